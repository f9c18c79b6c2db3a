"""The diffusion maths of the shapes text-to-image model (notebook 09): noising, the training loss (and
the loop's pieces: a seeded loss function, an EMA of the weights), and DDIM sampling with
classifier-free guidance, all on `diffusers` schedulers.

- Training (Ho et al. 2020, DDPM): ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` with ``t`` uniform in
  ``[0, T)``; the UNet predicts ``eps`` (or ``v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0``) and the loss is
  the mean squared error to it. ``DDPMScheduler.add_noise`` does the noising.
- Sampling (Song et al. 2021, DDIM, deterministic with eta = 0) in tens of steps with ``DDIMScheduler``,
  and classifier-free guidance (Ho & Salimans 2021): ``eps = eps(x, "") + w (eps(x, c) - eps(x, ""))``.

Everything here works on noise predictions in eps-space: :func:`eps_from_output` converts a
v-prediction, so that the concept-erasure losses (ESD, concept ablation, SalUn) read as in their papers.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

PREDICTION_TYPES = ("epsilon", "v_prediction")


def ddpm_scheduler(config: dict):
    """A ``diffusers.DDPMScheduler`` (the training noise schedule) from a config dict."""
    from diffusers import DDPMScheduler

    if config.get("prediction_type", "epsilon") not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type={config.get('prediction_type')!r}; allowed values: {PREDICTION_TYPES}")
    return DDPMScheduler.from_config(config)


def ddim_scheduler(config: dict, num_inference_steps: int):
    """A ``diffusers.DDIMScheduler`` on the same noise schedule, set to ``num_inference_steps`` steps."""
    from diffusers import DDIMScheduler

    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be a positive int, got {num_inference_steps!r}")
    # The sampler is always fed eps (see eps_from_output), whatever the UNet predicts.
    sched = DDIMScheduler.from_config(config, prediction_type="epsilon", timestep_spacing="trailing",
                                      set_alpha_to_one=False)
    sched.set_timesteps(num_inference_steps)
    return sched


def _abar(scheduler, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    abar = scheduler.alphas_cumprod.to(like.device)[t.to(like.device).long()].float()
    return abar.view(-1, *([1] * (like.dim() - 1)))


def eps_from_output(scheduler, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The UNet's output as a noise prediction: itself for eps-prediction; for v-prediction
    ``eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t``."""
    if scheduler.config.prediction_type == "epsilon":
        return output
    a = _abar(scheduler, t, x_t)
    return a.sqrt() * output + (1 - a).sqrt() * x_t


def target_for(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the UNet is trained to output: ``noise`` (eps-prediction) or ``v``."""
    if scheduler.config.prediction_type == "epsilon":
        return noise
    return scheduler.get_velocity(x0, noise, t)


def noised(scheduler, x0: torch.Tensor, generator: torch.Generator | None = None,
           t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_t, noise, t)``: ``x0`` noised at random timesteps (or at ``t``), drawn from ``generator`` on the CPU."""
    n = len(x0)
    if t is None:
        t = torch.randint(0, scheduler.config.num_train_timesteps, (n,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    t = t.to(x0.device)
    return scheduler.add_noise(x0, noise, t), noise, t


def denoising_loss(unet, scheduler, x0: torch.Tensor, embeds: torch.Tensor,
                   generator: torch.Generator | None = None, snr_gamma: float | None = None) -> torch.Tensor:
    """The diffusion training loss: ``E_t,eps || unet(x_t, t, c) - target ||^2`` (target eps or v).

    ``snr_gamma``: Min-SNR weighting (Hang et al. 2023), ``w_t = min(SNR_t, gamma) / SNR_t`` for eps
    (``/(SNR_t + 1)`` for v): it stops the nearly noise-free timesteps from dominating; None = uniform.
    """
    x_t, noise, t = noised(scheduler, x0, generator)
    out = unet(x_t, t, encoder_hidden_states=embeds).sample
    err = F.mse_loss(out.float(), target_for(scheduler, x0, noise, t).float(), reduction="none").mean(dim=(1, 2, 3))
    if snr_gamma:
        a = scheduler.alphas_cumprod.to(x0.device)[t].float()
        snr = a / (1 - a)
        denom = snr if scheduler.config.prediction_type == "epsilon" else snr + 1
        err = err * torch.clamp(snr, max=snr_gamma) / denom
    return err.mean()


EpsFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def guided_eps(eps_fn: EpsFn, x: torch.Tensor, t, cond: torch.Tensor, uncond: torch.Tensor,
               guidance_scale: float) -> torch.Tensor:
    """Classifier-free guidance: ``eps(x, "") + w (eps(x, c) - eps(x, ""))`` in one doubled batch."""
    tt = torch.as_tensor(t, device=x.device).expand(len(x))
    if guidance_scale == 1.0:
        return eps_fn(x, tt, cond)
    both = eps_fn(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([cond, uncond.expand_as(cond)]))
    e_c, e_u = both.chunk(2)
    return e_u + guidance_scale * (e_c - e_u)


@torch.no_grad()
def ddim_sample(eps_fn: EpsFn, noise: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor, scheduler,
                guidance_scale: float = 3.0, stop_after: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run DDIM (eta = 0) from ``noise`` with guidance; returns ``(x, t)``.

    ``scheduler``: a :func:`ddim_scheduler` (its timesteps set). ``stop_after=k`` stops after k of its
    steps and returns the partially denoised ``x_t`` with the timestep ``t`` it is at (ESD trains on these);
    by default it runs every step and returns the clean sample with ``t = 0``.
    """
    x = noise
    steps = scheduler.timesteps
    k = len(steps) if stop_after is None else int(stop_after)
    if not 0 <= k <= len(steps):
        raise ValueError(f"stop_after={stop_after} must be in [0, {len(steps)}]")
    for t in steps[:k]:
        e = guided_eps(eps_fn, x, t, cond, uncond, guidance_scale)
        x = scheduler.step(e, t, x, eta=0.0).prev_sample
    t_now = steps[k] if k < len(steps) else torch.tensor(0)
    return x, torch.as_tensor(t_now).long()


# -- training pieces ---------------------------------------------------------------------------------

class DenoisingLoss:
    """``loss_fn(unet, batch)`` for the kit's loop: :func:`denoising_loss`, seeded."""

    def __init__(self, scheduler, seed: int = 0, snr_gamma: float | None = None):
        self.scheduler, self.snr_gamma = scheduler, snr_gamma
        self.gen = torch.Generator().manual_seed(seed + 15485863)

    def __call__(self, unet, batch: dict) -> dict:
        return {"loss": denoising_loss(unet, self.scheduler, batch["x0"], batch["embeds"], self.gen,
                                         self.snr_gamma)}


class EMA:
    """A training callback keeping an exponential moving average of the UNet's weights (as diffusers'
    ``EMAModel``; warm-up ``min(decay, (1 + step) / (10 + step))``). Diffusion samples from the average are
    much cleaner than from the last weights of a short run. :meth:`copy_to` writes it into a model."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def on_step_end(self, state: dict) -> None:
        step = state["step"]
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in state["model"].state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, module: torch.nn.Module) -> None:
        module.load_state_dict(self.shadow)


def loss_curve(history, points: int = 100) -> list[list[float]]:
    """(step, mean loss) pairs, about ``points`` of them (the zoo's info, notebook 09's training plot)."""
    every = max(1, len(history) // points)
    return [[history[i]["step"], round(sum(h["loss"] for h in history[i:i + every]) / len(history[i:i + every]), 5)]
            for i in range(0, len(history), every)]
