"""Checkers for notebook 06 (beyond gradients)."""
from __future__ import annotations

import torch

from . import not_attempted, passed


def _cases():
    """Small state dicts: float tensors of several shapes and an integer buffer that must be copied."""
    g = torch.Generator().manual_seed(6)
    base = {"wte.weight": torch.randn(5, 3, generator=g), "h.0.mlp.c_fc.bias": torch.randn(4, generator=g),
            "h.0.attn.masked_bias": torch.tensor([-1e4]), "step": torch.tensor([7])}
    fine = {k: (v + 0.1 * torch.randn(v.shape, generator=g) if v.is_floating_point() and k != "h.0.attn.masked_bias"
                else v.clone()) for k, v in base.items()}
    return [(base, fine, 1.0), (base, fine, 2.5), (base, fine, 0.0)]


def check_negate_task_vector(fn) -> None:
    """Exercise: ``fn(base_state, finetuned_state, alpha)`` returns ``theta_base - alpha * (theta_ft - theta_base)``
    per tensor (Ilharco et al. 2023), with non-floating-point tensors copied from the base."""
    from ..unlearning.weights import negate_task_vector

    base, fine, alpha = _cases()[1]
    try:
        got = fn({k: v.clone() for k, v in base.items()}, {k: v.clone() for k, v in fine.items()}, alpha)
    except NotImplementedError:
        not_attempted("negate_task_vector")
        return
    if got is None:
        raise AssertionError("negate_task_vector returned None: did you forget `return`?")
    for base, fine, alpha in _cases():
        b_copy, f_copy = {k: v.clone() for k, v in base.items()}, {k: v.clone() for k, v in fine.items()}
        got = fn(b_copy, f_copy, alpha)
        want = negate_task_vector(base, fine, alpha)
        if not isinstance(got, dict) or set(got) != set(want):
            raise AssertionError(f"return a dict with the same keys as the state dicts ({sorted(want)}); "
                                 f"got {type(got).__name__} with keys {sorted(got) if isinstance(got, dict) else '-'}")
        if any(not torch.equal(b_copy[k], base[k]) for k in base):
            raise AssertionError("you changed base_state in place: build new tensors (v - alpha * tau), "
                                 "the base model must stay as it was")
        w = "wte.weight"
        tau = fine[w] - base[w]
        hints = [
            (base[w] + alpha * tau, "the sign is flipped: negation SUBTRACTS the task vector, theta_base - alpha * tau"),
            (fine[w] - alpha * tau, "start from the base weights, not the fine-tuned ones"),
            (base[w] - tau, "scale the task vector by alpha"),
            (-alpha * tau, "the result is a model, not a difference: add theta_base back"),
        ]
        for k in want:
            if not torch.allclose(torch.as_tensor(got[k]).to(want[k].dtype), want[k], atol=1e-6):
                if k == w:
                    hint = next((h for t, h in hints if torch.allclose(torch.as_tensor(got[k]).float(), t, atol=1e-6)),
                                "compute tau = finetuned - base per tensor, then base - alpha * tau")
                else:
                    hint = ("tensors that are not floating point (step counters, masks) are copied from the base"
                            if not want[k].is_floating_point() else "apply the same formula to every float tensor")
                raise AssertionError(f"alpha={alpha}, tensor {k!r}: got {got[k].flatten()[:3].tolist()}..., expected "
                                     f"{want[k].flatten()[:3].tolist()}.... Hint: {hint}.")
    passed("Your task-vector negation matches cl.unlearning.weights.negate_task_vector on every test case.")
