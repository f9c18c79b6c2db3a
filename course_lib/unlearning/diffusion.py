"""Concept erasure in text-to-image diffusion models (notebook 09): ESD, concept ablation, SalUn.

Every method fine-tunes a copy of the shapes-t2i UNet (``cl.zoo.load("shapes-t2i", rt)``) so that prompts
showing the erased concept no longer produce it; the text encoder stays frozen. The forget set is
``shapes.split("circle").forget_set``: its ``concept`` names what to erase, its images and captions are
the concept's training data; the retain set holds everything else.

    res = cl.unlearn(t2i, forget=split.forget_set, retain=split.retain_set, method="esd", negative_guidance=1.0)

Notation: ``eps_theta(x_t, c)`` is the noise prediction of the model being trained for the noisy image
``x_t`` at timestep ``t`` and prompt ``c``; ``eps_*`` is the frozen original model (``ctx.base``); ``""``
is the empty prompt; ``||.||^2`` a mean squared error.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import shapes as shapes_data
from ..models import t2i_sampling as S
from . import diffusion_loop as L
from .registry import HParam, Outcome, register

TRAINING = {
    "lr": HParam(1e-3, 1e-5, 1e-2, log=True, help="learning rate (AdamW)"),
    "num_steps": HParam(100, 10, 400, kind="int", bounds=(1, 100_000), help="optimizer steps"),
    "batch_size": HParam(32, 4, 128, kind="int", bounds=(1, 100_000), help="forget images (and retain images) per step"),
}
RETAIN_WEIGHT = HParam(1.0, 0.0, 5.0, bounds=(0, None), help="weight of the retain term (0: none)")
FAMILY = dict(family="concept erasure", modality="t2i")


def esd_target(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, negative_guidance: float) -> torch.Tensor:
    """ESD's target: ``eps_*(x_t, "") - eta * (eps_*(x_t, c) - eps_*(x_t, ""))`` (negative guidance)."""
    return eps_uncond - negative_guidance * (eps_cond - eps_uncond)


def concept_names(attr: str, value: str) -> list[str]:
    """Short prompts naming the concept: ``"circle"``, ``"a circle"`` and the concept with each value of the
    other headline attribute (``"a red circle"``, ``"a blue circle"``, ...; ``"a red square"``, ... for a
    colour). The bare name alone is drawn in one default colour (blue, here), and ESD would erase that
    colour with the shape; the variants average it out."""
    other = "colour" if attr == "shape" else "shape"
    pairs = [f"a {v} {value}" if attr == "shape" else f"a {value} {v}" for v in shapes_data.CLASSES[other]]
    return [value, f"a {value}"] + pairs


def _generated_xt(t2i, cond, uncond, seed_gen: torch.Generator, ddim_steps: int):
    """ESD's x_t: DDIM-sample with the model being trained, conditioned on ``c``, for a random number of
    steps k in [0, ddim_steps) and stop; returns (x_t, t) with the same k for the whole batch."""
    sched = S.ddim_scheduler(t2i.scheduler_config, ddim_steps)
    k = int(torch.randint(ddim_steps, (1,), generator=seed_gen))
    noise = torch.randn((len(cond), 3, t2i.resolution, t2i.resolution), generator=seed_gen).to(t2i.device)
    was = t2i.unet.training
    t2i.unet.eval()
    x, t = S.ddim_sample(t2i.eps, noise, cond, uncond, sched, t2i.guidance_scale, stop_after=k)
    t2i.unet.train(was)
    return x, t.expand(len(cond)).to(t2i.device)


@register("esd", **FAMILY, paper="Gandikota et al. 2023, Erasing Concepts from Diffusion Models",
          hparams={**TRAINING, "negative_guidance": HParam(1.0, 0.0, 8.0, bounds=(0, None),
                                                           help="eta: how far the target is pushed away from the concept"),
                   "train_method": HParam("xattn", kind="choice", choices=("xattn", "noxattn", "full"),
                                          help="xattn = ESD-x (cross-attention only), noxattn = ESD-u (the rest)"),
                   "x_source": HParam("generated", kind="choice", choices=("generated", "data"),
                                      help="x_t from the model's own partial generations (paper) or noised forget images"),
                   "prompt": HParam("concept", kind="choice", choices=("concept", "captions"),
                                    help="c = the concept's name (paper) or the forget set's full captions"),
                   "ddim_steps": HParam(10, 4, 50, kind="int", bounds=(2, 1000), help="DDIM steps of the partial generations")},
          summary="train the concept's noise prediction toward negative guidance away from it")
def esd(model, forget, retain, ctx, *, lr, num_steps, batch_size, negative_guidance, train_method, x_source,
        prompt, ddim_steps):
    """Erased Stable Diffusion (ESD; Gandikota et al. 2023), notebook 09. Loss, for a prompt ``c`` naming
    the concept::

        L = || eps_theta(x_t, c) - [ eps_*(x_t, "") - eta (eps_*(x_t, c) - eps_*(x_t, "")) ] ||^2

    The target is classifier-free guidance run backwards: the frozen model's prediction steered *away*
    from the concept by ``eta`` (``negative_guidance``). ``x_t``: with ``x_source="generated"`` (the
    paper) a partial DDIM generation of the model being trained, conditioned on ``c`` and stopped after a
    random number of the ``ddim_steps`` steps; with ``"data"`` a forget image noised at a random ``t``.
    ``prompt="concept"`` (the paper): ``c`` is a short prompt naming the concept (:func:`concept_names`:
    "circle", "a circle", "a red circle", ...); ``"captions"``: the
    forget set's full captions ("a small red striped circle on the left"), whose target then steers away
    from *everything* the caption says, colour and position included (a failure mode, notebook 09).
    ``train_method``: ``"xattn"`` = ESD-x (cross-attention only: erases the concept where the prompt
    names it), ``"noxattn"`` = ESD-u (every non-cross-attention weight: a more global erasure).
    No retain term: the paper relies on the targets of unrelated content staying nearly unchanged.
    """
    attr, value = L.concept_value(forget)
    base = ctx.base
    names = concept_names(attr, value)
    bank = L.PromptBank(model, forget.captions if prompt == "captions" else names)
    gen = torch.Generator().manual_seed(ctx.seed + 31337)

    def loss(unet, batch):
        n = len(batch["captions"])
        prompts = batch["captions"] if prompt == "captions" else [names[k] for k in
                                                                  torch.randint(len(names), (n,), generator=gen).tolist()]
        cond, uncond = bank[prompts], bank[[""]].expand(n, -1, -1)
        if x_source == "generated":
            x_t, t = _generated_xt(model, cond, uncond[:1], gen, ddim_steps)
        else:
            x_t, _, t = S.noised(model.scheduler, batch["x0"], gen)
        with torch.no_grad():
            e = base.eps(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, uncond]))
            e_c, e_u = e.chunk(2)
            target = esd_target(e_u, e_c, negative_guidance)
        pred = model.eps(x_t, t, cond, unet=unet)
        mse = F.mse_loss(pred.float(), target.float())
        return {"loss": mse, "forget_loss": mse}

    trainable = L.select_parameters(model.unet, train_method)
    hist = L.run(model, forget, None, ctx, loss, num_steps=num_steps, lr=lr, batch_size=batch_size,
                 trainable=trainable, desc=f"unlearn: esd ({train_method})")
    return Outcome(model, hist, {"trained_parameters": trainable})


def default_anchor(attr: str, value: str) -> str:
    """The anchor a concept is mapped to when none is given: the next value of its attribute
    (circle -> square, red -> green)."""
    vals = shapes_data.CLASSES[attr]
    return vals[(vals.index(value) + 1) % len(vals)]


ANCHORS = ("auto",) + tuple(shapes_data.CLASSES["shape"]) + tuple(shapes_data.CLASSES["colour"])


@register("concept_ablation", **FAMILY,
          paper="Kumari et al. 2023, Ablating Concepts in Text-to-Image Diffusion Models",
          hparams={**TRAINING, "anchor": HParam("auto", kind="choice", choices=ANCHORS,
                                                help="the concept the erased one is mapped to (auto: the next value)"),
                   "train_method": HParam("xattn-kv", kind="choice", choices=("xattn-kv", "xattn", "full"),
                                          help="cross-attention keys/values (paper default), all cross-attention, all"),
                   "retain_weight": RETAIN_WEIGHT},
          summary="map the concept to an anchor concept: match the frozen model's anchor prediction")
def concept_ablation(model, forget, retain, ctx, *, lr, num_steps, batch_size, anchor, train_method, retain_weight):
    """Concept ablation (Kumari et al. 2023), model-based variant, notebook 09. For a forget caption
    ``c*`` ("a red circle ...") its anchor caption ``c`` ("a red square ...") and an image ``x`` the frozen
    model generated for ``c`` (once, before training), noised to ``x_t``::

        L = || eps_theta(x_t, c*) - eps_*(x_t, c) ||^2  +  retain_weight * || eps_theta(x'_t, c') - eps ||^2

    The first term makes the concept's prompt behave as the anchor's; the second is the ordinary
    denoising loss on retain images ``x'`` with their captions ``c'`` (the paper's regulariser on the anchor
    images, here on the whole retain set, which contains them). Paper default: train only the
    cross-attention keys and values (``train_method="xattn-kv"``).
    """
    attr, value = L.concept_value(forget)
    anchor = default_anchor(attr, value) if anchor == "auto" else anchor
    if anchor not in shapes_data.CLASSES[attr] or anchor == value:
        raise ValueError(f"concept_ablation: anchor={anchor!r} must be another {attr} than {value!r}; allowed: "
                         f"{', '.join(v for v in shapes_data.CLASSES[attr] if v != value)}")
    anchor_captions = [L.replace_value(c, value, anchor) for c in forget.captions]
    retain_captions = list(retain.captions) if retain is not None and retain_weight > 0 else []
    bank = L.PromptBank(model, list(forget.captions) + anchor_captions + retain_captions)
    # The anchor images: what the original model draws for the anchor prompts (the paper's model-based data).
    anchor_x0 = ctx.base.generate(anchor_captions, seed=ctx.seed + 1).to(model.device) * 2 - 1
    position = {c: i for i, c in enumerate(forget.captions)}
    gen = torch.Generator().manual_seed(ctx.seed + 4243)

    def loss(unet, batch):
        idx = torch.as_tensor([position[c] for c in batch["captions"]], device=anchor_x0.device)
        x_t, _, t = S.noised(model.scheduler, anchor_x0[idx], gen)
        with torch.no_grad():
            target = ctx.base.eps(x_t, t, bank[[anchor_captions[i] for i in idx.tolist()]])
        forget_mse = F.mse_loss(model.eps(x_t, t, bank[batch["captions"]], unet=unet).float(), target.float())
        logs = {"forget_loss": forget_mse}
        total = forget_mse
        if retain_captions:
            r = S.denoising_loss(unet, model.scheduler, batch["retain_x0"], bank[batch["retain_captions"]], gen)
            total = total + retain_weight * r
            logs["retain_loss"] = r
        return {"loss": total, **logs}

    trainable = L.select_parameters(model.unet, train_method)
    hist = L.run(model, forget, retain if retain_captions else None, ctx, loss, num_steps=num_steps, lr=lr,
                 batch_size=batch_size, trainable=trainable, desc=f"unlearn: concept ablation -> {anchor}")
    return Outcome(model, hist, {"anchor": anchor, "trained_parameters": trainable})


def saliency_mask(t2i, forget, fraction: float, batch_size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """SalUn's weight saliency: ``m = 1(|grad_theta L_f| >= gamma)`` with ``L_f`` the denoising loss on the
    forget images and captions, and ``gamma`` the threshold keeping the top ``fraction`` of all UNet
    weights by gradient magnitude (one global threshold, as the paper's code does)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    unet = t2i.unet
    unet.zero_grad(set_to_none=True)
    gen = torch.Generator().manual_seed(seed + 2718)
    bank = L.PromptBank(t2i, forget.captions)
    for s in range(0, len(forget), batch_size):
        x0 = forget.images[s:s + batch_size].to(t2i.device) * 2 - 1
        loss = S.denoising_loss(unet, t2i.scheduler, x0, bank[forget.captions[s:s + batch_size]], gen)
        (loss * len(x0) / len(forget)).backward()
    grads = {n: p.grad.detach().abs() for n, p in unet.named_parameters() if p.grad is not None}
    unet.zero_grad(set_to_none=True)
    flat = torch.cat([g.flatten() for g in grads.values()])
    k = max(1, int(round(fraction * flat.numel())))
    gamma = torch.topk(flat, k).values.min()
    return {n: (g >= gamma).float() for n, g in grads.items()}


@register("salun", **FAMILY,
          paper="Fan et al. 2024, SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency",
          hparams={**TRAINING, "saliency_fraction": HParam(0.5, 0.05, 1.0, bounds=(1e-6, 1.0),
                                                           help="share of UNet weights updated (top |gradient|)"),
                   "retain_weight": RETAIN_WEIGHT},
          summary="relabel the concept's images to another concept, updating only salient weights")
def salun(model, forget, retain, ctx, *, lr, num_steps, batch_size, saliency_fraction, retain_weight):
    """SalUn (Fan et al. 2024), its random-label form for diffusion models, notebook 09.

    1. Saliency mask ``m = 1(|grad_theta L_f(theta_0; D_f)| >= gamma)`` (:func:`saliency_mask`, the top
       ``saliency_fraction`` of weights by the forget set's denoising-loss gradient).
    2. Train ``theta = theta_0 + m * delta`` (only salient weights move) on::

        L = || eps_theta(x_t, c) - sg[eps_theta(x_t, c')] ||^2  +  retain_weight * || eps_theta(x'_t, c'') - eps ||^2

    with ``x_t`` a noised forget image, ``c`` its caption and ``c'`` the same caption relabelled to another
    value of the attribute drawn at random ("a red circle" -> "a red cross"); ``sg`` stops the gradient (the
    paper's code uses the current model's prediction for ``c'`` as the target). The second term is the
    denoising loss on retain images. Without it (``retain_weight=0``) the cheapest way to make every
    caption predict the same noise is to stop reading the caption at all: the model forgets every class.
    """
    attr, value = L.concept_value(forget)
    others = [v for v in shapes_data.CLASSES[attr] if v != value]
    relabelled = {c: [L.replace_value(c, value, o) for o in others] for c in set(forget.captions)}
    retain_captions = list(retain.captions) if retain is not None and retain_weight > 0 else []
    bank = L.PromptBank(model, list(forget.captions) + [c for v in relabelled.values() for c in v] + retain_captions)
    mask = saliency_mask(model, forget, saliency_fraction, seed=ctx.seed)
    gen = torch.Generator().manual_seed(ctx.seed + 1618)

    def loss(unet, batch):
        caps = batch["captions"]
        picks = torch.randint(len(others), (len(caps),), generator=gen).tolist()
        pseudo = [relabelled[c][k] for c, k in zip(caps, picks)]
        x_t, _, t = S.noised(model.scheduler, batch["x0"], gen)
        with torch.no_grad():
            target = model.eps(x_t, t, bank[pseudo], unet=unet)
        forget_mse = F.mse_loss(model.eps(x_t, t, bank[caps], unet=unet).float(), target.float())
        total, logs = forget_mse, {"forget_loss": forget_mse}
        if retain_captions:
            r = S.denoising_loss(unet, model.scheduler, batch["retain_x0"], bank[batch["retain_captions"]], gen)
            total = total + retain_weight * r
            logs["retain_loss"] = r
        return {"loss": total, **logs}

    hist = L.run(model, forget, retain if retain_captions else None, ctx, loss, num_steps=num_steps, lr=lr,
                 batch_size=batch_size, trainable=list(mask), grad_mask=mask, desc="unlearn: salun")
    kept = sum(int(m.sum()) for m in mask.values())
    return Outcome(model, hist, {"mask": mask, "salient_weights": kept,
                                 "total_weights": sum(m.numel() for m in mask.values())})
