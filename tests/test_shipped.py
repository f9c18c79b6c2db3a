"""The weights the kit ships (data/zoo/, course_lib.models.shipped): each export still matches its recipe's key
and its hashes and size, unpacks into a normal cache entry and scores the metrics recorded with it; a corrupt
export is reported and never used; and the recipe, retrained in fast mode, reproduces the fast export."""
import json
import shutil

import pytest
import torch

import course_lib as cl
from course_lib.models import clip as C
from course_lib.models import shipped, zoo
from course_lib.models import t2i as T
from tests.tiny import own_fast_shapes_models

pytestmark = pytest.mark.course_people  # the exports are of the course's models, not the unit tests' small ones

EXPORTS = sorted(p.parent for p in shipped.SHIPPED_DIR.glob(f"*/*/{shipped.META}"))
ids = [f"{p.parent.name}/{p.name}" for p in EXPORTS]


def runtime_for(meta, monkeypatch, cache):
    monkeypatch.setenv("KIT_CACHE_DIR", str(cache))
    return cl.setup(mode=meta["key"]["mode"], seed=meta["key"]["seed"], verbose=False)


def test_the_kit_ships_every_model_the_notebooks_stand_on(monkeypatch, tmp_path):
    """Every entry of shipped.EXPORTS (base models and the gold models the notebooks load), in fast and default."""
    missing = []
    for mode in shipped.SHIPPED_MODES:
        monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path))
        for name, what, offset in shipped.exports(mode):
            rt = cl.setup(mode=mode, seed=offset, verbose=False)
            if shipped.find(name, rt, shipped.exclusion(name, what, rt)) is None:
                missing.append(f"{name} ({mode}, exclude={what}, seed={offset})")
    assert not missing, ("not shipped: " + ", ".join(missing) +
                         "; export them with `python -m course_lib.models.shipped all --mode fast` (and default)")
    assert sum(f.stat().st_size for f in shipped.SHIPPED_DIR.rglob("*") if f.is_file()) <= 60 * 2 ** 20


@pytest.mark.parametrize("path", EXPORTS, ids=ids)
def test_export_matches_its_recipe_hashes_and_size(path, monkeypatch, tmp_path):
    meta = shipped.read_meta(path)
    rt = runtime_for(meta, monkeypatch, tmp_path)
    name, exclude = path.parent.name, meta["key"]["exclude"]
    key = zoo.cache_key(name, rt, exclude)
    assert meta["key_sha256"] == zoo._key_digest(key), (
        f"the {name} recipe (or its data) changed since {path} was exported: regenerate it with "
        f"`python -m course_lib.models.shipped {name} --mode {rt.mode}` and commit the new folder")
    assert shipped.export_path(name, rt, exclude) == path
    shipped.verify(path, key)
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) <= shipped.MAX_BYTES


def tolerance(name: str, value: float, n: int | None) -> float:
    """How far a recorded metric may move on another CPU. The weights are the same everywhere; what moves is
    the float summation order of inference. Greedy answers and judge labels flip rarely (0.03); the t2i
    metrics are rates over ``n`` sampled images whose DDIM trajectories drift with the kernels, so they get
    three binomial standard errors (measured: 0.633 vs 0.583 recorded, on an AVX2-only CPU)."""
    if name == "shapes-t2i" and n:
        return max(0.03, 3 * (value * (1 - value) / n) ** 0.5)
    return 0.03


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPORTS, ids=ids)
def test_unpacked_model_scores_its_recorded_metrics(path, monkeypatch, tmp_path, capsys):
    meta = shipped.read_meta(path)
    rt = runtime_for(meta, monkeypatch, tmp_path)
    name, exclude = path.parent.name, meta["key"]["exclude"]
    model = zoo.load(name, rt, exclude=exclude)
    assert "unpacked" in capsys.readouterr().out
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert zoo.info(name, rt, exclude)["unpacked_from"].startswith("data/zoo/")
    measured = shipped.measure(name, model, rt, exclude)
    print(name, rt.mode, "recorded", meta["metrics"], "measured", measured)
    for k, v in meta["metrics"].items():
        if k != "n":
            assert measured[k] == pytest.approx(v, abs=tolerance(name, v, meta["metrics"].get("n"))), k
    zoo.load(name, rt, exclude=exclude)
    assert "loaded" in capsys.readouterr().out, "the second load comes from the cache"


# -- the mechanism, on a tiny recipe exported into a temporary data/zoo ---------------------------

TINY_CLIP = C.ClipPreset(width=16, layers=1, heads=2, patch_size=4, projection_dim=16, num_steps=3, batch_size=16,
                         lr=1e-3, warmup_steps=0)
TINY_T2I = T.T2IPreset(block_out_channels=(8, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                       up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=4, norm_num_groups=4,
                       num_steps=5, batch_size=16, lr=3e-3, warmup_steps=0, sample_steps=2, ema_decay=None)


@pytest.fixture
def tiny_export(rt, monkeypatch, tmp_path):
    monkeypatch.setitem(C.PRESETS, "fast", TINY_CLIP)
    monkeypatch.setitem(T.PRESETS, "fast", TINY_T2I)
    own_fast_shapes_models(monkeypatch)
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "zoo")
    monkeypatch.setattr(shipped, "measure", lambda name, model, rt, exclude=None: {"parameters": model.num_parameters()})
    path = shipped.export("shapes-t2i", rt)
    trained = zoo.load("shapes-t2i", rt, verbose=False)
    zoo.clear(rt)
    return rt, path, trained


def test_export_unpacks_as_float32_close_to_what_was_trained(tiny_export, capsys):
    rt, path, trained = tiny_export
    assert path.parent == shipped.SHIPPED_DIR / "shapes-t2i"
    from safetensors.torch import load_file
    stored = load_file(path / "unet" / "diffusion_pytorch_model.safetensors")
    assert {t.dtype for t in stored.values()} == {torch.float16}, "the export stores half the bytes"
    model = zoo.load("shapes-t2i", rt)
    assert "unpacked shapes-t2i" in capsys.readouterr().out
    for a, b in zip(model.unet.parameters(), trained.unet.parameters()):
        assert a.dtype == torch.float32 and torch.allclose(a, b, rtol=1e-2, atol=1e-3)
    assert zoo.info("shapes-t2i", rt)["shipped_metrics"] == {"parameters": trained.num_parameters()}


def test_a_changed_recipe_ignores_the_export(tiny_export, monkeypatch, capsys):
    rt, _, _ = tiny_export
    monkeypatch.setitem(T.PRESETS, "fast", T.T2IPreset(**{**TINY_T2I.__dict__, "num_steps": 6}))
    zoo.load("shapes-t2i", rt)
    out = capsys.readouterr().out
    assert "unpacked" not in out and "training shapes-t2i" in out


def test_shipped_false_and_rebuild_train(tiny_export, capsys):
    rt, _, _ = tiny_export
    zoo.load("shapes-t2i", rt, shipped=False)
    assert "training shapes-t2i" in capsys.readouterr().out


def test_a_corrupt_export_is_reported_and_never_used(tiny_export, capsys):
    rt, path, _ = tiny_export
    weights = path / "unet" / "diffusion_pytorch_model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    zoo.load("shapes-t2i", rt)
    out = capsys.readouterr().out
    assert "shipped weights are unusable" in out and "is corrupt" in out and "training shapes-t2i" in out
    with pytest.raises(shipped.ShippedError, match="corrupt"):
        shipped.verify(path)
    shutil.rmtree(path / "unet")
    with pytest.raises(shipped.ShippedError, match="missing"):
        shipped.verify(path)


def test_measure_knows_only_the_shipped_names(rt):
    with pytest.raises(ValueError, match="allowed values: people-lm, people-lm-small, people-lm-sisa<k>-shard<j>, shape-judge"):
        shipped.measure("sisa-lm", None, rt)


def test_exclusion_builds_what_the_notebooks_exclude(rt):
    facts = cl.data.people.load(rt)
    split = facts.split("forget05")
    assert shipped.exclusion("people-lm", None, rt) is None
    assert shipped.exclusion("people-lm", "forget05", rt).ids == split.forget.ids
    phones = shipped.exclusion("people-lm", "forget05-phones", rt)
    assert phones.ids and {q.attribute for q in phones} == {"phone"}
    assert {q.person for q in phones} == set(split.forget_people)


# -- the recipe still produces what ships: retrain in fast mode, compare -------------------------

@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fast_recipe_reproduces_the_fast_export(monkeypatch, tmp_path):
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path))
    rt = cl.setup(mode="fast", verbose=False)
    # In fast mode the judge and the CLIP are default's (mode_aliases): retraining them takes about 1 min; the
    # people LM that notebook 02 trains live in fast mode is people-lm-small (40 s). The t2i and the 200-person
    # people LM (default's too) are left out: they take 7 and 2.5 min to train on 2 cores
    # (`python -m course_lib.models.shipped shapes-t2i --mode default --force` checks one by hand).
    for name in ("shape-judge", "shapes-clip", "people-lm-small"):
        path = shipped.find(name, rt)
        assert path is not None, f"the {name} export that fast mode loads is missing"
        meta = shipped.read_meta(path)
        model = zoo.load(name, rt, shipped=False, verbose=False)
        measured = shipped.measure(name, model, rt)
        print(name, "recorded", meta["metrics"], "retrained", measured)
        # retraining moves more than inference: the people LM's accuracy within the tolerance notebook 02 states
        # for a live run (cl.evaluation.reference)
        tol = {"people-lm-small": cl.evaluation.reference.TOLERANCE["fast"]}.get(name, 0.05)
        for k, v in meta["metrics"].items():
            if k != "n":
                assert measured[k] == pytest.approx(v, abs=tol), (name, k)


def test_fast_mode_loads_the_default_models(rt):
    """Issue 14: fast mode stands on default's shipped models (the t2i draws shapes, forget05 has 10 people), not on
    weaker ones; only notebook 02's live run has a fast model of its own (people-lm-small, on the small data)."""
    assert rt.mode == "fast"
    defaults = ("shape-judge", "shapes-clip", "shapes-t2i", "people-lm", "people-lm-sisa4-shard0")
    assert not any(name in defaults or name.startswith("people-lm-sisa") for name, _, _ in shipped.exports("fast"))
    assert shipped.exports("fast") == (("people-lm-small", None, 0),)
    assert cl.data.people.load(rt).people == cl.data.people.load(mode="default").people
    assert len(cl.data.people.load(rt, small=True).people) == cl.data.people.SMALL[0] < len(cl.data.people.load(rt).people)
    for name in defaults:
        assert zoo.model_runtime(name, rt).mode == "default"
        assert zoo.cache_key(name, rt) == zoo.cache_key(name, zoo.model_runtime(name, rt))
        assert shipped.find(name, rt) is not None and shipped.find(name, rt).name.startswith("default-")
    assert zoo.model_runtime("people-lm-small", rt) is rt
    assert shipped.find("people-lm-small", rt).name.startswith("fast-")
    assert shipped.read_meta(shipped.find("shapes-t2i", rt))["metrics"]["both"] >= 0.9
