"""Checkers for notebook 03 (gradient unlearning)."""
from __future__ import annotations

import math

from . import passed, run_stub


def check_npo_loss(npo_loss) -> None:
    """Exercise: NPO's forget term from sequence log-probabilities (Zhang et al. 2024, eq. 3)."""
    import torch
    import torch.nn.functional as F

    logp = torch.tensor([-2.0, -5.0, -0.5])
    ref = torch.tensor([-1.0, -1.0, -1.0])
    got = run_stub(npo_loss, "npo_loss", logp, ref, 0.5)
    if got is None:
        return
    got = torch.as_tensor(got)
    assert got.ndim == 0, f"npo_loss should return one number (the mean over the batch), got shape {tuple(got.shape)}"
    at_start = float(npo_loss(ref, ref, 0.5))
    assert math.isclose(at_start, 4 * math.log(2), rel_tol=1e-4), (
        f"when logp == logp_ref the loss is (2/beta) log 2 = {4 * math.log(2):.4f}, got {at_start:.4f}: "
        "check the factor 2/beta and the sign inside the sigmoid")
    want = float(-(2 / 0.5) * F.logsigmoid(-0.5 * (logp - ref)).mean())
    if math.isclose(float(got), -want, rel_tol=1e-4):
        raise AssertionError("the sign is flipped: the loss must be -(2/beta) * mean(logsigmoid(...))")
    assert math.isclose(float(got), want, rel_tol=1e-4), f"expected {want:.4f}, got {float(got):.4f}"
    passed("NPO's loss is bounded below by 0: it stops pushing once the forget answer is far less likely than before.")
