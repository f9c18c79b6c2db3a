"""Checkers for notebook 08 (is it really gone?)."""
from __future__ import annotations

import torch

from . import not_attempted, passed


def _cases():
    """Weight matrices (out x in) with rows of very different scales, and a row of zeros."""
    g = torch.Generator().manual_seed(8)
    w = torch.randn(6, 10, generator=g) * torch.tensor([1.0, 0.01, 3.0, 0.2, 1.0, 0.05])[:, None]
    w[4] = 0.0
    return [(w, 8), (w, 4), (torch.randn(3, 5, generator=g), 4)]


def check_fake_quantize(fn) -> None:
    """Exercise: ``fn(weight, bits)`` rounds an (out x in) matrix to ``bits``-bit symmetric integers with
    one scale per output channel (row), ``s = max|row| / (2^(bits-1) - 1)``, and returns ``s * round(w / s)``
    (Zhang et al. 2024's round-to-nearest), as ``cl.attacks.quantization.fake_quantize(w, bits, 0)``."""
    from ..attacks.quantization import fake_quantize

    w, bits = _cases()[1]
    try:
        got = fn(w.clone(), bits)
    except NotImplementedError:
        not_attempted("fake_quantize")
        return
    if got is None:
        raise AssertionError("fake_quantize returned None: did you forget `return`?")
    for w, bits in _cases():
        w_in = w.clone()
        got = torch.as_tensor(fn(w_in, bits)).float()
        want = fake_quantize(w, bits, channel_dim=0)
        if not torch.equal(w_in, w):
            raise AssertionError("you changed `weight` in place: return a new tensor")
        if got.shape != w.shape:
            raise AssertionError(f"return a tensor of the weight's shape {tuple(w.shape)}, got {tuple(got.shape)}")
        if torch.isnan(got).any():
            raise AssertionError("NaN in the result: a row of zeros has scale 0; give it scale 1 (it stays 0)")
        if torch.allclose(got, want, atol=1e-6):
            continue
        qmax = 2 ** (bits - 1) - 1
        per_tensor = w.abs().max() / qmax
        rows = w.abs().amax(dim=1, keepdim=True) / qmax
        rows = torch.where(rows > 0, rows, torch.ones_like(rows))
        hints = [
            (torch.round(w / per_tensor) * per_tensor, "one scale for the whole matrix: use one scale per row "
                                                       "(w.abs().amax(dim=1, keepdim=True))"),
            (torch.round(w / rows), "scale back: return s * round(w / s), not the integers"),
            (torch.floor(w / rows) * rows, "round to the nearest integer (torch.round), do not floor"),
            (torch.round(w / (w.abs().amax(dim=1, keepdim=True) / 2 ** bits).clamp_min(1e-12))
             * (w.abs().amax(dim=1, keepdim=True) / 2 ** bits), f"the largest level is 2^(bits-1) - 1 = {qmax}, "
                                                                 "symmetric around 0, not 2^bits"),
            (torch.round(w / w.abs().amax(dim=0, keepdim=True).clamp_min(1e-12) * qmax)
             * w.abs().amax(dim=0, keepdim=True) / qmax, "the scale is per row (output channel, dim=1 reduced), "
                                                         "not per column"),
        ]
        hint = next((h for t, h in hints if torch.allclose(got, t.float(), atol=1e-6)),
                    "s = max|row| / (2^(bits-1) - 1) per row; then s * clamp(round(w / s), -qmax, qmax)")
        bad = (got - want).abs().argmax()
        raise AssertionError(f"bits={bits}: element {tuple(int(i) for i in torch.unravel_index(bad, w.shape))} is "
                             f"{got.flatten()[bad]:.5f}, expected {want.flatten()[bad]:.5f}. Hint: {hint}.")
    passed("Your fake_quantize matches cl.attacks.quantization.fake_quantize at 8 and 4 bits.")
