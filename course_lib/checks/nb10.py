"""Checkers for notebook 10 (SLUG: single layer unlearning gradient)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import not_attempted, passed


def check_importance_alignment(fn, clip, grads, table, layers=None) -> None:
    """Exercise 1: ``fn(weight, g_forget, g_retain) -> (importance, alignment)`` for one weight matrix must
    match SLUG's layer table (``importance = ||g_f|| / ||W||``, ``alignment = |cos(g_f, g_r)|``)."""
    params = dict(clip.model.named_parameters())
    rows = table.set_index("layer")
    layers = list(layers or [rows.index[0], rows["importance"].idxmax(), rows["alignment"].idxmax()])
    for layer in layers:
        w = params[layer].detach().clone()
        g_f, g_r = grads.forget[layer].clone(), grads.retain[layer].clone()
        try:
            out = fn(w, g_f, g_r)
        except NotImplementedError:
            not_attempted("importance_and_alignment")
            return
        if out is None:
            raise AssertionError("importance_and_alignment returned None: did you forget `return`?")
        try:
            imp, ali = (float(v) for v in out)
        except (TypeError, ValueError):
            raise AssertionError(f"return two numbers (importance, alignment); got {out!r}") from None
        want_imp, want_ali = float(rows.loc[layer, "importance"]), float(rows.loc[layer, "alignment"])
        if abs(imp - want_imp) > 1e-4 * max(1.0, want_imp) + 1e-7:
            hints = [(float(w.norm() / g_f.norm()), "importance is inverted: ||g_forget|| / ||W||, not the other way"),
                     (float(g_r.norm() / w.norm()), "importance uses the FORGET gradient, not the retain gradient"),
                     (float(g_f.abs().mean() / w.abs().mean()), "use the Frobenius norms (torch.norm), not mean |.|"),
                     (float(g_f.norm()), "divide by the weight's norm: importance is relative to the layer's size")]
            hint = next((h for v, h in hints if abs(v - imp) < 1e-4 * max(1.0, abs(v))), None)
            raise AssertionError(f"{layer}: importance {imp:.6g}, expected {want_imp:.6g}. "
                                 + (hint or "importance = ||g_forget|| / ||W|| (Frobenius norms)"))
        if abs(ali - want_ali) > 1e-3 * max(1.0, want_ali) + 1e-6:
            signed = float(F.cosine_similarity(g_f.flatten(), g_r.flatten(), dim=0))
            rowwise = float(F.cosine_similarity(g_f, g_r, dim=-1).abs().mean())
            hints = [(signed, "take the absolute value: the alignment is |cos|, either sign means interference"),
                     (rowwise, "flatten both gradients first: one cosine over the whole matrix, not one per row"),
                     (abs(float((g_f * g_r).sum())), "normalise: a cosine divides the dot product by both norms")]
            hint = next((h for v, h in hints if abs(v - ali) < 1e-4 * max(1.0, abs(v))), None)
            raise AssertionError(f"{layer}: alignment {ali:.6g}, expected {want_ali:.6g}. "
                                 + (hint or "alignment = |cos(g_forget, g_retain)| of the flattened gradients"))
    if isinstance(out[0], torch.Tensor) and out[0].requires_grad:
        raise AssertionError("return plain numbers (float(...)), not tensors that carry gradients")
    passed(f"importance and alignment match SLUG's layer table on {len(layers)} layers")
