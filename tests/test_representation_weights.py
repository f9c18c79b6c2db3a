"""RMU, task-vector negation and LoRA unlearning (notebook 06) on a tiny two-block people LM."""
import dataclasses

import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib.data import people
from course_lib.models.people_lm import train_people_lm
from course_lib.unlearning import representation, weights
from course_lib.unlearning.registry import Context
from tests.tiny import TINY_LM

TINY2 = dataclasses.replace(TINY_LM, n_layer=2, num_steps=60)  # two blocks: one steered, one left alone


@pytest.fixture(scope="module")
def split():
    return people.load(mode="fast").split("forget05")


@pytest.fixture(scope="module")
def tiny(split):
    cl.setup(mode="fast", verbose=False)  # KIT_THREADS torch threads
    return train_people_lm(people.load(mode="fast"), TINY2, progress=False)


def _state(tm):
    return {k: v.detach().clone() for k, v in tm.model.state_dict().items()}


def _changed(a, b):
    return sorted(k for k in a if not torch.equal(a[k], b[k]))


def _forget_loss(tm, split):
    return float(cl.evaluation.answer_loss(tm, split.forget).mean())


RMU = dict(layer=1, update_layers=1, num_steps=30, lr=3e-2, steering_coeff=20.0, relative=False, alpha=10.0,
           batch_size=16)


def test_rmu_moves_forget_activations_toward_the_target_and_holds_retain(tiny, split):
    """The forget term pulls block l's forget activations to c*u; the retain term holds the retain ones.
    (A tiny, barely trained model cannot tell forget from retain inputs apart, so each term is shown
    with and without the retain weight; notebook 06 shows both at once on a model that memorised.)"""
    free = cl.unlearn(tiny, split.forget, split.retain, method="rmu", progress=False, **{**RMU, "alpha": 0.0})
    held = cl.unlearn(tiny, split.forget, split.retain, method="rmu", progress=False, **RMU)
    target = representation.control_vector_of(free)
    assert torch.allclose(target.norm(), torch.tensor(RMU["steering_coeff"]), atol=1e-4)
    assert torch.equal(target, representation.control_vector_of(held)), "u is fixed by the seed"
    before = representation.distance_to(tiny, split.forget, 1, target)
    after = representation.distance_to(free.model, split.forget, 1, target)
    retain = split.retain[:100]
    base_acts = representation.layer_activations(tiny, retain, 1)
    drift_free = representation.distance_to(free.model, retain, 1, base_acts)
    drift_held = representation.distance_to(held.model, retain, 1, base_acts)
    print(f"forget distance to c*u {before:.2f} -> {after:.2f}; retain drift {drift_free:.2f} (alpha=0), "
          f"{drift_held:.2f} (alpha=10); forget loss {_forget_loss(tiny, split):.2f} -> {_forget_loss(free.model, split):.2f}")
    # measured: 21.0 -> 1.4; 20.5 vs 2.1; forget loss 3.15 -> 6.33
    assert after < 0.3 * before, "RMU should pull the forget activations toward c*u"
    assert drift_held < 0.25 * drift_free, "the retain term should hold the retain activations"
    assert _forget_loss(free.model, split) > _forget_loss(tiny, split) + 1.0


def test_rmu_updates_only_the_chosen_mlp_weights(tiny, split):
    base = _state(tiny)
    res = cl.unlearn(tiny, split.forget, split.retain, method="rmu", progress=False, **RMU)
    changed = _changed(_state(res.model), base)
    assert changed and all(k.startswith("transformer.h.1.mlp.") for k in changed), changed
    two = cl.unlearn(tiny, split.forget, split.retain, method="rmu", progress=False, **{**RMU, "update_layers": 3})
    changed = _changed(_state(two.model), base)
    assert {k.split(".mlp.")[0] for k in changed} == {"transformer.h.0", "transformer.h.1"}  # l-2 clipped at 0
    assert all(".mlp." in k for k in changed)
    assert two.extras["updated_blocks"] == [0, 1]
    assert _state(tiny).keys() == base.keys() and not _changed(_state(tiny), base), "the base model is untouched"


def test_rmu_is_seeded_and_checks_its_layer(tiny, split):
    a = cl.unlearn(tiny, split.forget, split.retain, method="rmu", seed=3, progress=False, **{**RMU, "num_steps": 3})
    b = cl.unlearn(tiny, split.forget, split.retain, method="rmu", seed=3, progress=False, **{**RMU, "num_steps": 3})
    assert not _changed(_state(a.model), _state(b.model))
    with pytest.raises(ValueError, match="layer=5 but the model has 2"):
        cl.unlearn(tiny, split.forget, split.retain, method="rmu", progress=False, layer=5)
    with pytest.raises(TypeError, match="unknown hyper-parameter.*steering"):
        cl.unlearn(tiny, split.forget, split.retain, method="rmu", progress=False, steering=3.0)


def test_task_vector_is_base_minus_alpha_times_the_finetuning_difference(tiny, split):
    hp = dict(num_steps=10, lr=1e-3, batch_size=16)
    res = cl.unlearn(tiny, split.forget, split.retain, method="task_vector", alpha=1.5, seed=1, progress=False, **hp)
    ft, _ = weights.finetune_on_forget(tiny, split.forget, Context(base=tiny, seed=1, progress=False), **hp)
    base, fine, got = _state(tiny), _state(ft), _state(res.model)
    for k in base:
        if base[k].is_floating_point():
            torch.testing.assert_close(got[k], base[k] - 1.5 * (fine[k] - base[k]), rtol=0, atol=1e-6)
    assert res.extras["tau_norm"] > 0
    print(f"task vector: forget loss {_forget_loss(tiny, split):.2f} -> {_forget_loss(res.model, split):.2f}")
    assert _forget_loss(res.model, split) > _forget_loss(tiny, split) + 0.15  # measured: 3.15 -> 3.58


def test_negate_task_vector_on_state_dicts():
    base = {"w": torch.tensor([1.0, 2.0]), "steps": torch.tensor([3])}
    ft = {"w": torch.tensor([1.5, 1.0]), "steps": torch.tensor([4])}
    out = weights.negate_task_vector(base, ft, alpha=2.0)
    assert torch.equal(out["w"], torch.tensor([0.0, 4.0])) and torch.equal(out["steps"], base["steps"])
    with pytest.raises(ValueError, match="same keys"):
        weights.negate_task_vector(base, {"w": ft["w"]})


LORA = dict(rank=2, lora_alpha=8.0, num_steps=15, lr=1e-2, batch_size=16, retain_weight=1.0)


def test_lora_trains_only_the_adapter_and_detaching_restores_the_base(tiny, split):
    base = _state(tiny)
    res = cl.unlearn(tiny, split.forget, split.retain, method="lora", merge=False, progress=False, **LORA)
    model = res.model
    assert isinstance(model, weights.LoRATextModel)
    adapter = model.adapter_parameters()
    assert adapter and all(p.requires_grad for p in adapter.values())
    assert all(not p.requires_grad for n, p in model.model.named_parameters() if n not in adapter)
    assert any(float(p.detach().abs().sum()) > 0 for n, p in adapter.items() if "lora_B" in n), "B starts at 0 and must train"
    print(f"lora: forget loss {_forget_loss(tiny, split):.2f} -> {_forget_loss(model, split):.2f}")
    assert _forget_loss(model, split) > _forget_loss(tiny, split) + 1.0  # measured: 3.15 -> 9.21
    detached = weights.detach_adapter(model)
    assert not _changed(_state(detached), base), "detaching must give the base weights back exactly"
    np.testing.assert_allclose(cl.evaluation.answer_loss(detached, split.forget),
                               cl.evaluation.answer_loss(tiny, split.forget), atol=1e-6)
    assert weights.bytes_changed(model, tiny) == sum(p.numel() * 4 for p in adapter.values())


def test_lora_merge_changes_the_base_weights_like_the_attached_adapter(tiny, split):
    attached = cl.unlearn(tiny, split.forget, split.retain, method="lora", merge=False, progress=False, **LORA).model
    merged = cl.unlearn(tiny, split.forget, split.retain, method="lora", merge=True, progress=False, **LORA).model
    assert type(merged) is cl.models.lm.TextModel
    changed = _changed(_state(merged), _state(tiny))
    assert changed and all(k.split(".")[-2] in weights.GPT2_LORA_TARGETS for k in changed), changed
    np.testing.assert_allclose(cl.evaluation.answer_loss(merged, split.forget),
                               cl.evaluation.answer_loss(attached, split.forget), rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError, match="merged"):
        weights.detach_adapter(merged)


def test_lora_model_saves_clones_and_reloads(tiny, split, tmp_path):
    model = cl.unlearn(tiny, split.forget, split.retain, method="lora", merge=False, loss="npo", progress=False,
                       **{**LORA, "num_steps": 5}).model
    twin = model.clone()
    assert isinstance(twin, weights.LoRATextModel) and twin.model is not model.model
    model.save_pretrained(tmp_path / "m")
    back = weights.LoRATextModel.from_pretrained(tmp_path / "m")
    qs = split.forget[:6]
    np.testing.assert_allclose(cl.evaluation.answer_loss(back, qs), cl.evaluation.answer_loss(model, qs), atol=1e-5)
    plain = cl.models.lm.TextModel.from_pretrained(tmp_path / "m")  # the folder holds the base model itself
    np.testing.assert_allclose(cl.evaluation.answer_loss(plain, qs), cl.evaluation.answer_loss(tiny, qs), atol=1e-5)
    with pytest.raises(ValueError, match="loss='rmu'; allowed values"):
        cl.unlearn(tiny, split.forget, split.retain, method="lora", loss="rmu")


def test_registry_entries():
    for name, family in (("rmu", "representation"), ("task_vector", "task vector"), ("lora", "parameter-efficient")):
        info = cl.METHODS[name]
        assert info.family == family and info.changes_weights and info.paper
        assert "notebook 06" in info.describe()
