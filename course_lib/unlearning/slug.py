"""SLUG, Single Layer Unlearning Gradient (Cai, Tan and Asif 2024, "Targeted Unlearning with Single Layer
Unlearning Gradient", arXiv 2407.11867, ICML 2025); notebook 10.

SLUG computes two gradients once, ranks the layers with them, and changes one layer with one step:

1. Gradients (one backward pass each):
   ``g_f = grad L_f`` with the forget loss ``L_f = mean_i cos(f(x_i), g(t_i))`` over the forget
   image-caption pairs (the negated cosine-embedding loss ``-(1 - cos)`` of the paper's code, up to a
   constant): descending it breaks the alignment of the forget images with their captions;
   ``g_r = grad L_r`` with ``L_r`` the CLIP contrastive loss on a sample of retain pairs.
2. Per weight matrix W (biases, LayerNorm and embeddings excluded): importance ``||g_f|| / ||W||`` and
   gradient alignment ``|cos(g_f, g_r)|``. Per tower (vision, text), a layer is on the Pareto front
   unless another layer has both a higher importance and a lower alignment.
3. One step on one layer: ``W <- W - lambda * ||W|| * g_f / ||g_f||`` (the paper's ``W + r g_f`` with
   ``r = -lambda ||W|| / ||g_f||``; its search starts at lambda = 0.1). Binary search finds the smallest
   lambda whose model's zero-shot accuracy on the forget images is at most ``target_accuracy``; every
   front layer is searched and the one that keeps the most zero-shot accuracy on retain images wins.

For a text-to-image model (``modality == "t2i"`` with ``.clip``, a ShapesCLIP whose text tower is its
text encoder) only the text tower is searched, as the paper edits only Stable Diffusion's text encoder.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data import shapes as shapes_data
from .registry import HParam, Outcome, check_sets, register
from .slug_probe import ZeroShotProbe, _as_clip, concept_attributes, zero_shot_report  # noqa: F401  (re-exported)

TOWERS = ("vision", "text")


@dataclass
class SlugGradients:
    """The two gradients SLUG needs, per candidate weight matrix (``name -> tensor`` on the CPU)."""

    forget: dict
    retain: dict
    forget_loss: float
    retain_loss: float
    seconds: float
    backward_passes: int = 2
    examples: int = 0
    meta: dict = field(default_factory=dict)


def tower_of(name: str) -> str:
    """"vision" or "text" for a CLIPModel parameter name."""
    return "vision" if name.startswith(("vision_model.", "visual_projection")) else "text"


def candidate_layers(clip, towers=TOWERS, projections: bool = True) -> dict[str, str]:
    """The weight matrices SLUG may edit: 2-D weights outside the embeddings (``name -> tower``).
    ``projections=False`` leaves out the towers' output projections (a text-to-image model never uses them)."""
    towers = _check_towers(towers)
    return {n: tower_of(n) for n, p in clip.model.named_parameters()
            if p.dim() == 2 and "embedding" not in n and tower_of(n) in towers
            and (projections or "projection" not in n)}


def _check_towers(towers) -> tuple:
    towers = (towers,) if isinstance(towers, str) else tuple(towers)
    bad = [t for t in towers if t not in TOWERS]
    if bad or not towers:
        raise ValueError(f"towers={towers!r}; allowed values: {', '.join(TOWERS)} (one or both)")
    return towers


def forget_alignment(clip, images: torch.Tensor, captions) -> torch.Tensor:
    """SLUG's forget loss: the mean cosine similarity of each forget image with its own caption."""
    return (clip.image_embeds(images) * clip.text_embeds(list(captions))).sum(-1).mean()


def _check_subset(subset, name: str):
    if subset is None or len(subset) == 0:
        raise ValueError(f"SLUG: the {name} set is empty; pass split.{name}_set (a ShapesSubset with images)")
    if not hasattr(subset, "images") or not hasattr(subset, "captions"):
        raise TypeError(f"SLUG: {name} must be a ShapesSubset (images and captions), e.g. split.{name}_set; "
                        f"got {type(subset).__name__}")


def compute_gradients(clip, forget_set, retain_set, retain_samples: int = 256, seed: int = 0,
                      chunk: int = 512) -> SlugGradients:
    """One gradient of the forget loss over the whole forget set (accumulated in chunks of ``chunk``)
    and one of the CLIP loss over ``retain_samples`` retain pairs drawn with ``seed``."""
    _check_subset(forget_set, "forget")
    _check_subset(retain_set, "retain")
    clip = _as_clip(clip)
    names = set(candidate_layers(clip))
    params = dict(clip.model.named_parameters())
    model = clip.model
    was_training = model.training
    frozen = {n: params[n].requires_grad for n in names}  # a t2i model keeps its text encoder frozen
    for n in names:
        params[n].requires_grad_(True)
    model.eval()
    start = time.perf_counter()

    def grads_of(loss_fn, chunks, total):
        model.zero_grad(set_to_none=True)
        value = 0.0
        for lo, hi in chunks:
            loss = loss_fn(lo, hi) * (hi - lo) / total
            loss.backward()
            value += float(loss.detach())
        out = {n: params[n].grad.detach().float().cpu().clone() for n in names}
        model.zero_grad(set_to_none=True)
        return out, value

    n_f = len(forget_set)
    g_f, l_f = grads_of(lambda lo, hi: forget_alignment(clip, forget_set.images[lo:hi], forget_set.captions[lo:hi]),
                        [(lo, min(n_f, lo + chunk)) for lo in range(0, n_f, chunk)], n_f)
    rng = np.random.default_rng([seed, 11])
    k = min(retain_samples, len(retain_set))
    pick = np.sort(rng.choice(len(retain_set), k, replace=False))
    r_images = retain_set.images[torch.as_tensor(pick)]
    r_captions = [retain_set.captions[i] for i in pick]
    g_r, l_r = grads_of(lambda lo, hi: clip.pairs_loss(r_images, r_captions), [(0, k)], k)
    model.train(was_training)
    for n, flag in frozen.items():
        params[n].requires_grad_(flag)
    return SlugGradients(g_f, g_r, l_f, l_r, time.perf_counter() - start, examples=n_f + k,
                         meta={"retain_indices": pick.tolist()})


def pareto_front(importance, alignment) -> np.ndarray:
    """Boolean mask: True where no other point has both a higher importance and a lower alignment."""
    imp, ali = np.asarray(importance, float), np.asarray(alignment, float)
    return np.array([not np.any((imp > imp[i]) & (ali < ali[i])) for i in range(len(imp))], dtype=bool)


def layer_table(clip, forget_set=None, retain_set=None, *, grads: SlugGradients | None = None, towers=TOWERS,
                retain_samples: int = 256, seed: int = 0, projections: bool = True):
    """A DataFrame, one row per candidate layer: ``layer, tower, importance, alignment, on_front,
    grad_norm, weight_norm`` (the Pareto front is computed per tower). Pass ``grads`` to reuse them."""
    import pandas as pd

    clip = _as_clip(clip)
    towers = _check_towers(towers)
    if grads is None:
        grads = compute_gradients(clip, forget_set, retain_set, retain_samples=retain_samples, seed=seed)
    params = dict(clip.model.named_parameters())
    rows = []
    for name, tower in candidate_layers(clip, towers, projections).items():
        g_f, g_r = grads.forget[name], grads.retain[name]
        w_norm = float(params[name].detach().float().norm())
        rows.append({"layer": name, "tower": tower, "importance": float(g_f.norm()) / w_norm,
                     "alignment": abs(float(F.cosine_similarity(g_f.flatten(), g_r.flatten(), dim=0))),
                     "grad_norm": float(g_f.norm()), "weight_norm": w_norm})
    table = pd.DataFrame(rows)
    table["on_front"] = False
    for tower in towers:
        sel = table["tower"] == tower
        table.loc[sel, "on_front"] = pareto_front(table.loc[sel, "importance"], table.loc[sel, "alignment"])
    return table[["layer", "tower", "importance", "alignment", "on_front", "grad_norm", "weight_norm"]]


def _grad_for(layer: str, grad):
    if isinstance(grad, SlugGradients):
        if layer not in grad.forget:
            raise ValueError(f"layer={layer!r} has no SLUG gradient; layers with one: {', '.join(sorted(grad.forget))}")
        return grad.forget[layer]
    return grad


def apply_step(clip, layer: str, step: float, grad) -> object:
    """Set ``layer`` to ``W0 - step * ||W0|| * g / ||g||`` in place and return ``clip`` (a ShapesCLIP or a
    t2i model with ``.clip``). ``W0`` is the layer's weight before the first ``apply_step`` on this model
    (kept, so calls do not accumulate: ``step=0`` restores it). ``grad``: the forget gradient of the layer
    (a tensor) or a :class:`SlugGradients`. Cheap: one tensor update (the SLUG explorer widget)."""
    c = _as_clip(clip)
    params = dict(c.model.named_parameters())
    if layer not in params:
        raise ValueError(f"layer={layer!r} is not a parameter of this CLIP; candidate layers: "
                         f"{', '.join(candidate_layers(c))}")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not np.isfinite(step):
        raise ValueError(f"step must be a finite number (a fraction of the weight's norm), got {step!r}")
    g = _grad_for(layer, grad)
    w = params[layer]
    if tuple(g.shape) != tuple(w.shape):
        raise ValueError(f"grad has shape {tuple(g.shape)} but layer {layer!r} has shape {tuple(w.shape)}")
    originals = c.__dict__.setdefault("_slug_originals", {})
    w0 = originals.setdefault(layer, w.detach().clone())
    g = g.to(w0.device, w0.dtype)
    with torch.no_grad():
        w.copy_(w0 - float(step) * w0.norm() * g / g.norm().clamp_min(1e-12))
    return clip


def restore(clip) -> object:
    """Undo every :func:`apply_step` on ``clip`` (put the kept original weights back)."""
    c = _as_clip(clip)
    params = dict(c.model.named_parameters())
    with torch.no_grad():
        for name, w0 in getattr(c, "_slug_originals", {}).items():
            params[name].copy_(w0)
    c.__dict__.pop("_slug_originals", None)
    return clip


def search_step(forget_at: Callable[[float], float | dict], target: float, *, start: float = 0.1,
                max_step: float = 4.0, iters: int = 6) -> tuple[float | None, list]:
    """The smallest step (to within ``2**-iters`` of the bracket) whose forget accuracy ``forget_at(step)``
    is at most ``target``: double ``start`` until the target is met (``None`` if that takes more than
    ``max_step``), then bisect; this assumes the accuracy falls as the step grows. ``forget_at`` returns a
    number or a dict with ``forget_accuracy`` (other keys go to the trace). Returns ``(step, trace)``."""
    trace = []

    def met(step):
        out = forget_at(step)
        rec = dict(out) if isinstance(out, dict) else {"forget_accuracy": float(out)}
        rec = {"step": step, **rec, "met": rec["forget_accuracy"] <= target}
        trace.append(rec)
        return rec["met"]

    lo, hi = 0.0, float(start)
    while not met(hi):
        lo, hi = hi, hi * 2
        if hi > max_step:
            return None, trace
    for _ in range(iters):
        mid = (lo + hi) / 2
        if met(mid):
            hi = mid
        else:
            lo = mid
    return hi, trace


# -- the registered method -------------------------------------------------------------------------

HPARAMS = {
    "target_accuracy": HParam(0.1, 0.0, 0.6, bounds=(0, 1), help="stop when the forget images' zero-shot accuracy "
                              "for the concept is at most this (chance: 0.2 for a shape, 0.17 for a colour)"),
    "towers": HParam("both", kind="choice", choices=("both", "vision", "text"),
                     help="which tower's layers to search (a t2i model: text only)"),
    "retain_samples": HParam(256, 32, 1024, kind="int", bounds=(2, 100_000), help="retain pairs in the retain gradient"),
    "search_iters": HParam(6, 2, 12, kind="int", bounds=(0, 30), help="bisection steps per layer"),
    "max_layers": HParam(6, 1, 12, kind="int", bounds=(1, 1000), help="front layers searched (most important first)"),
    "max_step": HParam(4.0, 0.5, 8.0, bounds=(0.01, 100), help="largest step tried, as a multiple of ||W||"),
    "eval_samples": HParam(512, 64, 2048, kind="int", bounds=(8, 100_000), help="retain images scored in the search"),
}


@register("slug", family="single layer", modality=("clip", "t2i"), hparams=HPARAMS,
          paper="Cai, Tan and Asif 2024, Targeted Unlearning with Single Layer Unlearning Gradient (SLUG)",
          summary="one gradient, one layer on the Pareto front of importance vs alignment, one searched step")
def slug(model, forget, retain, ctx, *, target_accuracy, towers, retain_samples, search_iters, max_layers,
         max_step, eval_samples):
    """SLUG (notebook 10). Gradients, once: ``g_f = grad mean_i cos(f(x_i), g(t_i))`` over the forget pairs and
    ``g_r = grad L_CLIP`` over ``retain_samples`` retain pairs. Per weight matrix: importance ``||g_f||/||W||``
    and alignment ``|cos(g_f, g_r)|``; Pareto front per tower. For each front layer (up to ``max_layers``,
    most important first) a binary search finds the smallest ``lambda`` with
    ``W <- W - lambda ||W|| g_f/||g_f||`` bringing the forget images' zero-shot accuracy for the concept to at
    most ``target_accuracy``; the layer that keeps the highest retain accuracy is applied. Only that one
    weight matrix changes. A t2i model is edited through its ``.clip``: text-encoder layers only (the
    UNet reads the text hidden states, so the text projection is left out)."""
    _check_subset(forget, "forget")
    _check_subset(retain, "retain")
    concept = forget.concept
    concept_attributes(concept)
    clip = _as_clip(model)
    t2i = getattr(model, "modality", None) == "t2i"
    chosen = ("text",) if t2i else TOWERS if towers == "both" else (towers,)
    start = time.perf_counter()
    grads = compute_gradients(clip, forget, retain, retain_samples=retain_samples, seed=ctx.seed)
    table = layer_table(clip, grads=grads, towers=chosen, projections=not t2i)
    rng = np.random.default_rng([ctx.seed, 12])
    eval_retain = retain if len(retain) <= eval_samples else _take(retain, rng.choice(len(retain), eval_samples, False))
    probe = ZeroShotProbe(clip, forget, eval_retain, concept)
    before = probe("both")
    front = table[table.on_front].sort_values("importance", ascending=False).head(max_layers)
    results, trace = [], []
    for layer in front.layer:
        def forget_at(step, layer=layer):
            apply_step(clip, layer, step, grads)
            return probe(tower_of(layer))
        step, layer_trace = search_step(forget_at, target_accuracy, max_step=max_step, iters=search_iters)
        restore(clip)
        probe(tower_of(layer))  # the edited tower's embeddings are stale
        trace += [{"layer": layer, **r} for r in layer_trace]
        if step is not None:
            at = next(r for r in layer_trace if r["step"] == step)
            results.append({"layer": layer, "step": step, **{k: at[k] for k in before}})
    if not results:
        raise RuntimeError(f"slug: no front layer reached target_accuracy={target_accuracy} within "
                           f"max_step={max_step}; raise max_step or target_accuracy (trace in the error's args)", trace)
    best = max(results, key=lambda r: (r["retain_accuracy"], -r["step"]))
    apply_step(clip, best["layer"], best["step"], grads)
    clip.__dict__.pop("_slug_originals", None)  # the edit is the result: nothing to restore to
    seconds = time.perf_counter() - start
    extras = {"layer": best["layer"], "step": best["step"], "tower": tower_of(best["layer"]), "layer_table": table,
              "search_trace": trace, "candidates": results, "before": before,
              "after": {k: best[k] for k in before}, "seconds": seconds, "gradient_seconds": grads.seconds,
              "gradient_evaluations": grads.backward_passes, "model_evaluations": len(trace), "gradients": grads}
    return Outcome(model, history=trace, extras=extras)


def _take(subset, idx):
    idx = np.sort(np.asarray(idx))
    t = torch.as_tensor(idx)
    return shapes_data.ShapesSubset(subset.indices[idx], subset.images[t], [subset.captions[i] for i in idx],
                                    {a: v[t] for a, v in subset.labels.items()}, [subset.ids[i] for i in idx],
                                    subset.concept)
