"""The plumbing the concept-erasure methods share (notebook 09): which UNet weights train, cached
prompt embeddings, forget / retain image batches, prompt rewriting (concept -> anchor), and a run of
the kit's training loop on a text-to-image model.
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

import torch

from ..data import shapes as shapes_data
from ..train import TrainConfig, fit

TRAIN_METHODS = ("xattn", "xattn-kv", "noxattn", "full")


def is_cross_attention(name: str) -> bool:
    """Cross-attention parameters of a diffusers UNet are the ``attn2`` modules of its transformer blocks."""
    return ".attn2." in name


def select_parameters(unet, train_method: str) -> list[str]:
    """Names of the UNet parameters a method trains (as ESD's code selects them):

    ``"xattn"`` (ESD-x): every cross-attention parameter (``attn2``: to_q, to_k, to_v, to_out);
    ``"xattn-kv"`` (concept ablation's default): only cross-attention keys and values, the two maps that
    read the text; ``"noxattn"`` (ESD-u): everything except cross-attention and the time embedding;
    ``"full"``: all.
    """
    if train_method not in TRAIN_METHODS:
        raise ValueError(f"train_method={train_method!r}; allowed values: {', '.join(TRAIN_METHODS)}")
    names = []
    for name, _ in unet.named_parameters():
        xattn = is_cross_attention(name)
        if train_method == "full" \
                or (train_method == "xattn" and xattn) \
                or (train_method == "xattn-kv" and xattn and re.search(r"\.to_[kv]\.", name)) \
                or (train_method == "noxattn" and not xattn and not name.startswith("time_embedding")):
            names.append(name)
    return names


def replace_value(caption: str, old: str, new: str) -> str:
    """``caption`` with the attribute value ``old`` replaced by ``new`` (whole words only)."""
    out, n = re.subn(rf"\b{re.escape(old)}\b", new, caption)
    if n == 0:
        raise ValueError(f"caption {caption!r} does not mention {old!r}")
    return out


def concept_value(forget) -> tuple[str, str]:
    """(attribute, value) of the forget set's concept: a single shape or colour, e.g. ``"circle"``."""
    concept = getattr(forget, "concept", None)
    for attr in ("shape", "colour"):
        if concept in shapes_data.CLASSES[attr]:
            return attr, concept
    raise ValueError(f"the forget set's concept is {concept!r}; the concept-erasure methods erase one shape or "
                     f"colour: make the split with shapes.split('circle') (allowed: "
                     f"{', '.join(shapes_data.CLASSES['shape'] + shapes_data.CLASSES['colour'])})")


class PromptBank:
    """Frozen text-encoder hidden states for a fixed set of prompts, encoded once (the text tower does
    not train in these methods): ``bank[list_of_prompts] -> (N, L, D)`` on the model's device."""

    def __init__(self, t2i, prompts: Sequence[str]):
        distinct = sorted(set(prompts) | {""})
        self.index = {p: i for i, p in enumerate(distinct)}
        with torch.no_grad():
            self.embeds = torch.cat([t2i.encode_prompts(distinct[i:i + 512]) for i in range(0, len(distinct), 512)])

    def __getitem__(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.embeds[torch.as_tensor([self.index[p] for p in prompts], device=self.embeds.device)]


class ForgetRetainBatches:
    """Collate forget-set positions into ``{"x0", "captions"}`` (images in [-1, 1]) plus, when a retain set
    is given, an equally large retain batch ``{"retain_x0", "retain_captions"}`` drawn with its own seed."""

    def __init__(self, forget, retain=None, seed: int = 0):
        self.forget, self.retain = forget, retain
        self.gen = torch.Generator().manual_seed(seed + 7919)

    def __call__(self, positions: list[int]) -> dict:
        i = torch.as_tensor(positions)
        batch = {"x0": self.forget.images[i] * 2 - 1, "captions": [self.forget.captions[k] for k in positions]}
        if self.retain is not None and len(self.retain):
            j = torch.randint(len(self.retain), (len(positions),), generator=self.gen)
            batch["retain_x0"] = self.retain.images[j] * 2 - 1
            batch["retain_captions"] = [self.retain.captions[k] for k in j.tolist()]
        return batch


class _EvalEvery:
    def __init__(self, t2i, every: int, eval_fn: Callable):
        self.t2i, self.every, self.eval_fn = t2i, every, eval_fn

    def on_step_end(self, state):
        if self.every and state["step"] % self.every == 0:
            was = self.t2i.unet.training
            state["record"].update({k: float(v) for k, v in self.eval_fn(self.t2i).items()})
            self.t2i.unet.train(was)


def run(t2i, forget, retain, ctx, loss_fn: Callable, *, num_steps: int, lr: float, batch_size: int,
        trainable: Sequence[str] | None = None, desc: str = "unlearn", grad_mask: dict | None = None) -> list:
    """Train ``t2i.unet`` with ``loss_fn(unet, batch)`` on forget batches (and retain batches); returns the history.

    ``trainable``: names of the UNet parameters to update (the others get no gradient at all);
    ``grad_mask``: name -> 0/1 tensor multiplied into that parameter's gradient (SalUn's saliency mask).
    """
    unet = t2i.unet
    names = set(trainable) if trainable is not None else {n for n, _ in unet.named_parameters()}
    if not names:
        raise ValueError("no UNet parameters selected for training")
    flags = {n: p.requires_grad for n, p in unet.named_parameters()}
    hooks = []
    for n, p in unet.named_parameters():
        p.requires_grad_(n in names)
        if grad_mask is not None and n in grad_mask:
            hooks.append(p.register_hook(lambda g, m=grad_mask[n]: g * m.to(g.device, g.dtype)))
    collate = ForgetRetainBatches(forget, retain, ctx.seed)
    cfg = TrainConfig(num_steps=num_steps, batch_size=batch_size, lr=lr, schedule="constant", seed=ctx.seed,
                      desc=desc, progress=ctx.progress)
    callbacks = list(ctx.callbacks)
    if ctx.eval_every and ctx.eval_fn is not None:
        callbacks.append(_EvalEvery(t2i, ctx.eval_every, ctx.eval_fn))
    try:
        res = fit(unet, list(range(len(forget))), loss_fn, cfg, collate_fn=collate, callbacks=callbacks,
                  params=[p for n, p in unet.named_parameters() if n in names], device=t2i.device)
    finally:
        for h in hooks:
            h.remove()
        for n, p in unet.named_parameters():
            p.requires_grad_(flags[n])
    unet.eval()
    return res.history
