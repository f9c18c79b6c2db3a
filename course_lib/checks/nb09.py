"""Checkers for notebook 09 (unlearning in diffusion)."""
from __future__ import annotations

from . import passed, run_stub


def check_esd_target(esd_target) -> None:
    """Exercise: ESD's training target from the frozen model's two noise predictions (Gandikota et al.
    2023, eq. 5): ``eps_uncond - eta * (eps_cond - eps_uncond)``. Compared with the library's."""
    import torch

    from ..unlearning.diffusion import esd_target as reference

    g = torch.Generator().manual_seed(9)
    e_u, e_c = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    got = run_stub(esd_target, "esd_target", e_u, e_c, 2.0)
    if got is None:
        return
    got = torch.as_tensor(got)
    assert got.shape == e_u.shape, f"the target has the shape of a noise prediction {tuple(e_u.shape)}, got {tuple(got.shape)}"
    want = reference(e_u, e_c, 2.0)
    if torch.allclose(got, e_u + 2.0 * (e_c - e_u), atol=1e-5):
        raise AssertionError("that is classifier-free guidance, which moves *toward* the concept; ESD uses "
                             "negative guidance: subtract eta * (eps_cond - eps_uncond)")
    if torch.allclose(got, e_c - 2.0 * (e_c - e_u), atol=1e-5) and not torch.allclose(got, want, atol=1e-5):
        raise AssertionError("start from the unconditional prediction eps_uncond, not from eps_cond")
    if torch.allclose(got, e_u - (e_c - e_u), atol=1e-5):
        raise AssertionError("eta is ignored: multiply the difference (eps_cond - eps_uncond) by negative_guidance")
    assert torch.allclose(got, want, atol=1e-5), (
        f"expected eps_uncond - eta * (eps_cond - eps_uncond); the largest difference is "
        f"{float((got - want).abs().max()):.4f}")
    assert torch.allclose(esd_target(e_u, e_c, 0.0), e_u, atol=1e-6), "with eta = 0 the target is eps_uncond"
    passed("The erased model is trained to predict the noise of 'anything but the concept': guidance run backwards.")
