"""Zero-shot scoreboard for unlearning an image concept from the tiny CLIP (notebook 10): what SLUG's
step search and the notebook's before / after tables read."""
from __future__ import annotations

import numpy as np
import torch

from ..data import shapes as shapes_data

TOWERS = ("vision", "text")


def _as_clip(model):
    """The ShapesCLIP inside ``model``: itself, or a text-to-image model's ``.clip``."""
    if getattr(model, "modality", None) == "clip":
        return model
    if getattr(model, "modality", None) == "t2i" and getattr(model, "clip", None) is not None:
        return model.clip
    raise TypeError(f"SLUG needs a ShapesCLIP (modality 'clip') or a text-to-image model with a .clip; got "
                    f"{type(model).__name__}")


def concept_attributes(concept: str) -> dict[str, str]:
    """``"purple triangle"`` -> ``{"colour": "purple", "shape": "triangle"}`` (the attributes it names)."""
    known = {v: a for a, vals in shapes_data.CLASSES.items() for v in vals}
    out = {}
    for token in str(concept or "").lower().replace(",", " ").split():
        if token not in known:
            listing = "; ".join(f"{a}: {', '.join(v)}" for a, v in shapes_data.CLASSES.items())
            raise ValueError(f"concept={concept!r}: {token!r} is not a class of the shapes data ({listing})")
        out[known[token]] = token
    if not out:
        raise ValueError("the forget set has no concept: make it with shapes.split('circle').forget_set")
    return out


class ZeroShotProbe:
    """Zero-shot accuracies for unlearning ``concept``, on forget and retain images (notebook 10's scoreboard):

    ``forget_accuracy``: on the forget images, the concept's attribute(s) (how often "circle" is still seen);
    ``retain_same_attribute``: on the retain images, the same attribute(s) (the other shapes);
    ``retain_other_attributes``: on the retain images, the other attributes; ``retain_accuracy``: their mean.

    ``probe(changed)`` re-encodes only the tower named by ``changed`` ("vision", "text" or "both"): after a
    one-layer edit the other tower's embeddings are still valid, which halves the cost of SLUG's search.
    """

    def __init__(self, clip, forget_set, retain_set, concept: str):
        self.attrs = concept_attributes(concept)
        self.clip = _as_clip(clip)
        self.images = torch.cat([forget_set.images, retain_set.images])
        self.n_forget = len(forget_set)
        self.labels = {a: torch.cat([forget_set.labels[a], retain_set.labels[a]]).cpu() for a in shapes_data.ATTRIBUTES}
        self._img = self._txt = None

    def __call__(self, changed: str = "both") -> dict[str, float]:
        from ..models.clip import all_captions

        if changed not in ("both", *TOWERS):
            raise ValueError(f"changed={changed!r}; allowed values: 'both', 'vision', 'text'")
        if self._img is None or changed in ("both", "vision"):
            self._img = self.clip.encode_images(self.images)
        if self._txt is None or changed in ("both", "text"):
            self._txt = self.clip.encode_text(all_captions()[0])
        pred = self.clip.predict_attributes(image_embeds=self._img, caption_embeds=self._txt)
        hit = {a: (pred[a] == self.labels[a]).float() for a in shapes_data.ATTRIBUTES}
        f, r = slice(0, self.n_forget), slice(self.n_forget, None)
        forget = float(np.mean([float(hit[a][f].mean()) for a in self.attrs]))
        same = float(np.mean([float(hit[a][r].mean()) for a in self.attrs]))
        other = float(np.mean([float(hit[a][r].mean()) for a in shapes_data.ATTRIBUTES if a not in self.attrs]))
        return {"forget_accuracy": forget, "retain_same_attribute": same, "retain_other_attributes": other,
                "retain_accuracy": (same + other) / 2}


def zero_shot_report(clip, forget_set, retain_set, concept: str) -> dict[str, float]:
    """The :class:`ZeroShotProbe` numbers of ``clip`` (forget / retain accuracy for ``concept``)."""
    return ZeroShotProbe(clip, forget_set, retain_set, concept)()
