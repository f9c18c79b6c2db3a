"""An embedding attack on concept erasure (notebook 09): is the erased concept gone from the weights,
or only from the path the prompt takes to it?

In the spirit of Concept Inversion (Pham et al. 2023, "Circumventing Concept Erasure Methods for
Text-to-Image Generative Models") and UnlearnDiffAtk (Zhang et al. 2024, "To Generate or Not? Safety-Driven
Unlearned Diffusion Models Are Still Easy to Generate Unsafe Images ... For Now"): the attacker keeps every
weight of the erased model fixed and optimises only a continuous prompt embedding, by textual inversion
(Gal et al. 2023) on a few real images of the concept::

    delta* = argmin_delta  E_{(x, c), t, eps} || eps_theta(x_t, t, E(c) + delta) - eps ||^2

where ``E(c)`` is the frozen text encoder's hidden states (L x D) for a caption ``c`` of the concept and
``delta`` one shared L x D offset. The attack then generates from ``E(c) + delta`` for *new* prompts of
the concept (``generate(prompt_embeds=...)``) and the shape judge counts how often the concept is back:
the attack success rate.

    atk = cl.attacks.embedding.embedding_attack(erased, split.subset("forget_test"), num_steps=100)
    rate = cl.attacks.embedding.success_rate(erased, judge, "circle", atk)   # vs attack=None: the plain prompts
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..evaluation import image as image_metrics
from ..models import t2i_sampling as S


@dataclass
class EmbeddingAttack:
    """The optimised offset ``delta`` (L x D), the per-step training loss, and the denoising loss on a fixed
    probe before and after the attack."""

    delta: torch.Tensor
    history: list = field(default_factory=list)
    seconds: float = 0.0
    loss_before: float = float("nan")  # the denoising loss on a fixed probe (same images, noise, t) at delta = 0
    loss_after: float = float("nan")   # ... and at the optimised delta

    def prompt_embeds(self, t2i, prompts) -> torch.Tensor:
        """``E(c) + delta`` for ``prompts``: what :meth:`ShapesT2I.generate` takes as ``prompt_embeds``."""
        with torch.no_grad():
            return t2i.encode_prompts(list(prompts)) + self.delta.to(t2i.device)



def embedding_attack(t2i, concept_images, num_steps: int = 100, lr: float = 5e-2, batch_size: int = 32,
                     seed: int = 0, progress: bool = True) -> EmbeddingAttack:
    """Optimise ``delta`` on ``concept_images`` (a ShapesSubset with ``images`` and ``captions``, e.g.
    ``split.subset("forget_test")``: images of the concept the model was not trained on) by Adam on the
    denoising loss above. The model's weights are not changed (checked); each step draws a batch,
    timesteps and noise from a generator seeded with ``seed``."""
    import os
    import time

    from tqdm.auto import tqdm

    if len(concept_images) == 0:
        raise ValueError("concept_images is empty: pass images showing the erased concept (e.g. split.subset('forget_test'))")
    if num_steps < 1 or lr <= 0 or batch_size < 1:
        raise ValueError(f"num_steps ({num_steps}) and batch_size ({batch_size}) must be >= 1 and lr ({lr}) > 0")
    unet = t2i.unet
    flags = [p.requires_grad for p in unet.parameters()]
    unet.requires_grad_(False)
    was_training = unet.training
    unet.eval()
    dev = t2i.device
    with torch.no_grad():
        base_embeds = torch.cat([t2i.encode_prompts(concept_images.captions[i:i + 512])
                                 for i in range(0, len(concept_images), 512)])
    delta = torch.zeros_like(base_embeds[0], requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)
    gen = torch.Generator().manual_seed(seed + 90210)
    x0_all = concept_images.images.to(dev) * 2 - 1
    history = []
    probe = _probe(t2i, x0_all, base_embeds, seed)
    loss_before = probe(torch.zeros_like(delta))
    start = time.perf_counter()
    show = progress and os.environ.get("KIT_PROGRESS") != "0"
    try:
        for step in tqdm(range(num_steps), desc="embedding attack", disable=not show, leave=False):
            idx = torch.randint(len(x0_all), (min(batch_size, len(x0_all)),), generator=gen).to(dev)
            loss = S.denoising_loss(unet, t2i.scheduler, x0_all[idx], base_embeds[idx] + delta, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.append({"step": step, "loss": float(loss.detach())})
    finally:
        for p, f in zip(unet.parameters(), flags):
            p.requires_grad_(f)
        unet.train(was_training)
    seconds = time.perf_counter() - start
    return EmbeddingAttack(delta.detach().cpu(), history, seconds, loss_before, probe(delta.detach()))


def _probe(t2i, x0: torch.Tensor, embeds: torch.Tensor, seed: int, n: int = 64):
    """``f(delta) -> float``: the denoising loss on up to ``n`` images with noise and timesteps fixed once,
    so that the loss before and after the attack is compared on the same draw."""
    g = torch.Generator().manual_seed(seed + 4711)
    idx = torch.randperm(len(x0), generator=g)[:n].to(x0.device)
    x_t, noise, t = S.noised(t2i.scheduler, x0[idx], g)
    target = S.target_for(t2i.scheduler, x0[idx], noise, t)

    @torch.no_grad()
    def f(delta: torch.Tensor) -> float:
        out = t2i.unet(x_t, t, encoder_hidden_states=embeds[idx] + delta.to(x_t.device)).sample
        return float(((out.float() - target.float()) ** 2).mean())
    return f


def success_rate(t2i, judge, concept: str, attack: EmbeddingAttack | None, n: int = 40, seed: int = 1,
                 **gen) -> float:
    """Fraction of ``n`` samples for new prompts of ``concept`` (:func:`evaluation.image.concept_prompts`)
    that the judge names ``concept``, generated from ``E(c) + delta`` (``attack=None``: from ``E(c)``, the
    plain prompts, for comparison)."""
    attr = image_metrics.attribute_of(concept)
    prompts, _ = image_metrics.concept_prompts(concept, n, seed)
    embeds = attack.prompt_embeds(t2i, prompts) if attack is not None else t2i.encode_prompts(prompts)
    images = t2i.generate(prompt_embeds=embeds, seed=seed, **gen)
    return float(image_metrics.judged_as(judge, images, attr, [concept] * n).mean())


def attack_table(models: dict, attacks: dict, judge, concept: str, n: int = 40, seed: int = 1, **gen):
    """Per model (``{"ESD": t2i, ...}`` with ``attacks[name]`` its :class:`EmbeddingAttack`): how often the
    judge sees ``concept`` from plain prompts and from the attacked embeddings, and the attack's probe loss
    before and after. A DataFrame (notebook 09's "it comes back" table)."""
    import pandas as pd

    missing = sorted(set(models) - set(attacks))
    if missing:
        raise ValueError(f"no attack for {missing}: pass attacks={{name: embedding_attack(model, images)}} for every model")
    rows = {}
    for name, m in models.items():
        atk = attacks[name]
        rows[name] = {"recognised (prompt)": success_rate(m, judge, concept, None, n, seed, **gen),
                      "recognised (attack)": success_rate(m, judge, concept, atk, n, seed, **gen),
                      "attack loss before": atk.loss_before, "attack loss after": atk.loss_after,
                      "attack seconds": atk.seconds}
    return pd.DataFrame(rows).T
