"""cl.unlearn(..., cache=True): a trained text model is stored once and loaded, bit for bit, by the next identical
request (notebooks 08 -> 11, 12, 13); any change to the request trains anew; a corrupt entry is retrained."""
import pytest
import torch

import course_lib as cl
from course_lib.models.people_lm import train_people_lm
from course_lib.unlearning import result_cache
from tests.tiny import TINY_LM


@pytest.fixture(scope="module")
def lm(facts):
    return train_people_lm(facts, TINY_LM, progress=False)


def _same(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_repeated_request_loads_the_same_model(lm, split, rt, capsys):
    first = cl.unlearn(lm, split.forget, split.retain, method="rmu", num_steps=3, layer=0, seed=0, progress=False,
                       cache=True, rt=rt)
    assert not getattr(first, "from_cache", False)
    again = cl.unlearn(lm, split.forget, split.retain, method="rmu", num_steps=3, layer=0, seed=0, progress=False,
                       cache=True, rt=rt)
    assert again.from_cache and "loaded from the cache" in capsys.readouterr().out
    assert _same(first.model, again.model)
    qs = split.forget.questions[:8]
    assert first.model.answer(qs) == again.model.answer(qs)
    assert again.seconds == first.seconds and again.history == first.history and again.hparams == first.hparams
    assert torch.equal(again.extras["control_vector"], first.extras["control_vector"])  # a tensor extra
    assert again.extras["layer"] == first.extras["layer"]


@pytest.mark.parametrize("change", [{"seed": 1}, {"num_steps": 4}, {"method": "grad_diff"}, {"forget": "smaller"}])
def test_any_change_to_the_request_trains_anew(lm, split, rt, change):
    base = dict(method="ga", num_steps=3, seed=0)
    cl.unlearn(lm, split.forget, split.retain, progress=False, cache=True, rt=rt, **base)
    args = {**base, **{k: v for k, v in change.items() if k != "forget"}}
    forget = split.forget.sample(len(split.forget) - 1, seed=0) if "forget" in change else split.forget
    res = cl.unlearn(lm, forget, split.retain, progress=False, cache=True, rt=rt, **args)
    assert not getattr(res, "from_cache", False)


def test_other_base_weights_train_anew(lm, split, rt):
    cl.unlearn(lm, split.forget, split.retain, method="ga", num_steps=2, seed=0, progress=False, cache=True, rt=rt)
    other = lm.clone()
    with torch.no_grad():
        next(other.model.parameters()).add_(1e-3)
    res = cl.unlearn(other, split.forget, split.retain, method="ga", num_steps=2, seed=0, progress=False,
                     cache=True, rt=rt)
    assert not getattr(res, "from_cache", False)


def test_a_corrupt_entry_is_reported_and_retrained(lm, split, rt, capsys):
    first = cl.unlearn(lm, split.forget, split.retain, method="ga", num_steps=2, seed=5, progress=False,
                       cache=True, rt=rt)
    key = result_cache.cache_key(lm, split.forget, split.retain, "ga", first.hparams, 5)
    weights = result_cache.entry_path(rt, key) / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    capsys.readouterr()
    redo = cl.unlearn(lm, split.forget, split.retain, method="ga", num_steps=2, seed=5, progress=False,
                      cache=True, rt=rt)
    assert "is unusable" in capsys.readouterr().out and not getattr(redo, "from_cache", False)
    assert _same(first.model, redo.model)  # seeded: the retrained model is the same
    assert cl.unlearn(lm, split.forget, split.retain, method="ga", num_steps=2, seed=5, progress=False,
                      cache=True, rt=rt).from_cache  # and stored again


def test_what_is_not_cached_and_bad_input(lm, split, rt):
    guarded = cl.unlearn(lm, split.forget, split.retain, method="filter", cache=True, rt=rt).model
    again = cl.unlearn(lm, split.forget, split.retain, method="filter", cache=True, rt=rt)
    assert not getattr(again, "from_cache", False) and type(again.model) is type(guarded)  # a wrapper: no entry
    cl.unlearn(lm, split.forget, split.retain, method="ga", num_steps=2, seed=0, progress=False, cache=True, rt=rt)
    seen = []
    res = cl.unlearn(lm, split.forget, split.retain, method="ga", num_steps=2, seed=0, progress=False, cache=True,
                     rt=rt, eval_every=1, eval_fn=lambda m: seen.append(1) or {})
    assert seen and not getattr(res, "from_cache", False)  # an eval_fn always runs, though the entry exists
    wrapped = cl.unlearn(guarded, split.forget, split.retain, method="ga", num_steps=2, seed=0, progress=False,
                         cache=True, rt=rt)
    assert not getattr(wrapped, "from_cache", False)  # a wrapped base is never answered from a plain model's entry
    with pytest.raises(ValueError, match="cache=True needs rt="):
        cl.unlearn(lm, split.forget, split.retain, method="ga", num_steps=2, cache=True)
