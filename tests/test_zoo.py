"""The zoo: train-or-load cache, exclude (gold models), corruption and mismatch are rebuilt."""
import json

import pytest
import torch

import course_lib as cl
from course_lib.data import people
from course_lib.models import zoo
from tests.tiny import use_tiny_lm


@pytest.fixture
def tiny(monkeypatch):
    use_tiny_lm(monkeypatch)


def _weights(tm):
    return {k: v.clone() for k, v in tm.model.state_dict().items()}


def test_train_then_load_from_cache(rt, tiny, capsys):
    a = cl.zoo.load("people-lm", rt)
    assert "training people-lm" in capsys.readouterr().out
    path = zoo.entry_path("people-lm", rt)
    assert (path / "model.safetensors").is_file() and (path / zoo.MANIFEST).is_file()
    assert not list(path.parent.glob(".tmp-*")), "a temporary folder was left behind"
    b = cl.zoo.load("people-lm", rt)
    assert "loaded people-lm from the cache" in capsys.readouterr().out
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    info = zoo.info("people-lm", rt)
    assert info["train_examples"] == len(people.load(rt).training_set()) and "train_accuracy" in info


def test_corrupt_weights_are_reported_and_rebuilt(rt, tiny, capsys):
    cl.zoo.load("people-lm", rt)
    f = zoo.entry_path("people-lm", rt) / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    capsys.readouterr()
    again = cl.zoo.load("people-lm", rt)
    out = capsys.readouterr().out
    assert "is unusable" in out and "corrupt" in out and "Rebuilding" in out
    zoo.verify(zoo.entry_path("people-lm", rt), zoo.cache_key("people-lm", rt))  # intact again
    assert again.answer(["What is the birth city of nobody?"])  # usable


def test_mismatched_manifest_is_rebuilt(rt, tiny, capsys):
    cl.zoo.load("people-lm", rt)
    mf = zoo.entry_path("people-lm", rt) / zoo.MANIFEST
    m = json.loads(mf.read_text())
    m["key_sha256"] = "0" * 64
    mf.write_text(json.dumps(m))
    capsys.readouterr()
    cl.zoo.load("people-lm", rt)
    assert "built for another key" in capsys.readouterr().out


def test_truncated_manifest_is_rebuilt(rt, tiny, capsys):
    cl.zoo.load("people-lm", rt)
    (zoo.entry_path("people-lm", rt) / zoo.MANIFEST).write_text("{not json")
    capsys.readouterr()
    cl.zoo.load("people-lm", rt)
    assert "not valid JSON" in capsys.readouterr().out


def test_exclude_trains_a_separate_gold_model(rt, tiny):
    facts = people.load(rt)
    split = facts.split("forget10")
    base_path = zoo.entry_path("people-lm", rt)
    gold_path = zoo.entry_path("people-lm", rt, exclude=split.forget)
    assert base_path != gold_path
    cl.zoo.load("people-lm", rt, exclude=split.forget)
    info = zoo.info("people-lm", rt, exclude=split.forget)
    assert info["train_examples"] == len(facts.training_set()) - len(split.forget)
    key = zoo.cache_key("people-lm", rt, exclude=split.forget)
    assert key["exclude"] == sorted(split.forget.ids)
    # The same forget set given as ids names the same entry.
    assert zoo.entry_path("people-lm", rt, exclude=list(split.forget.ids)) == gold_path


def test_cache_key_depends_on_mode_seed_and_config(rt, tiny, monkeypatch):
    k = zoo.cache_key("people-lm", rt)
    assert k["mode"] == "fast" and k["seed"] == rt.seed and k["config"]["n_embd"] == 32
    other = cl.setup(mode="fast", seed=1, verbose=False)
    assert zoo.entry_path("people-lm", other) != zoo.entry_path("people-lm", rt)


def test_unknown_name_lists_the_known_ones(rt):
    with pytest.raises(ValueError, match="people-lm"):
        cl.zoo.load("people-llm", rt)


def test_exclude_that_matches_nothing_is_a_clear_error(rt, tiny):
    with pytest.raises(ValueError, match="exclude matches none"):
        cl.zoo.load("people-lm", rt, exclude=["no-such-question"])
    facts = people.load(rt)
    with pytest.raises(ValueError, match="exclude matches none"):
        cl.zoo.load("people-lm", rt, exclude=facts.paraphrases[:3])  # never trained on


def test_a_failed_write_leaves_no_entry(rt, tiny, monkeypatch):
    recipe_cls = type(zoo.recipe("people-lm"))

    def broken_save(self, model, path):
        (path / "partial.bin").write_bytes(b"x")
        raise OSError("disk full")

    monkeypatch.setattr(recipe_cls, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        cl.zoo.load("people-lm", rt)
    path = zoo.entry_path("people-lm", rt)
    assert not path.exists() and not list(path.parent.glob(".tmp-*"))


def test_same_seed_same_weights_and_metrics(rt, tiny):
    a = cl.zoo.load("people-lm", rt, rebuild=True)
    ia = zoo.info("people-lm", rt)
    b = cl.zoo.load("people-lm", rt, rebuild=True)
    ib = zoo.info("people-lm", rt)
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert ia["train_accuracy"] == ib["train_accuracy"] and ia["final_loss"] == ib["final_loss"]


def test_train_writes_no_cache_and_load_can_cache_what_was_trained(rt, tiny, capsys):
    """Notebook 02: cl.zoo.train runs live; cl.zoo.load(..., trained=) caches that run where no reference exists."""
    mine = cl.zoo.train("people-lm", rt)
    assert not zoo.entry_path("people-lm", rt).exists(), "zoo.train must not write the cache"
    assert mine.zoo_info["train_seconds"] > 0 and "train_accuracy" in mine.zoo_info
    capsys.readouterr()
    ref = cl.zoo.load("people-lm", rt, trained=mine)
    out = capsys.readouterr().out
    assert ref is mine and "caching the model you trained" in out and "training" not in out
    again = cl.zoo.load("people-lm", rt, trained=mine)
    assert "loaded people-lm from the cache" in capsys.readouterr().out
    assert all(torch.equal(a, b) for a, b in zip(_weights(mine).values(), _weights(again).values()))
    split = people.load(rt).split("forget05")
    with pytest.raises(ValueError, match="trained= must be a model"):
        cl.zoo.load("people-lm", rt, exclude=split.forget, trained=mine)
