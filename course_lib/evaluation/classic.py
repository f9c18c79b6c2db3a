"""Metrics for classic unlearning on the shape judge (notebook 01): how close is a model to the retrained one?

The classic definition: an unlearned model should be indistinguishable from A(D minus S), the model
retrained without the forget set S. At notebook scale we compare one model of each, per image set:

- ``agreement``: fraction of images on which the two predict the same class;
- ``kl_to_reference``: mean KL(p_reference || p_model) of the predicted distributions (0 = identical);
- ``mia_auc``: a loss-based membership-inference attack (Yeom et al. 2018): the AUC of telling the forget
  images (trained on) from similar images never trained on by their loss; 0.5 = cannot tell.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import stats


def _logits(model, images: torch.Tensor, attr: str) -> torch.Tensor:
    return model.logits(images)[attr]


def per_example_loss(model, images: torch.Tensor, labels: torch.Tensor, attr: str = "shape") -> torch.Tensor:
    """Cross-entropy of each image's ``attr`` label, shape (N,)."""
    return F.cross_entropy(_logits(model, images, attr), labels.cpu(), reduction="none")


def accuracy(model, images: torch.Tensor, labels: torch.Tensor, attr: str = "shape") -> float:
    """Fraction of images whose predicted ``attr`` is the label."""
    return float((_logits(model, images, attr).argmax(-1) == labels.cpu()).float().mean())


def agreement(model, reference, images: torch.Tensor, attr: str = "shape") -> float:
    """Fraction of images on which ``model`` and ``reference`` predict the same ``attr`` class."""
    a = _logits(model, images, attr).argmax(-1)
    b = _logits(reference, images, attr).argmax(-1)
    return float((a == b).float().mean())


def kl_to_reference(model, reference, images: torch.Tensor, attr: str = "shape") -> float:
    """Mean KL(reference || model) over ``images`` of the ``attr`` distributions, in nats."""
    log_p = _logits(reference, images, attr).log_softmax(-1)
    log_q = _logits(model, images, attr).log_softmax(-1)
    return float((log_p.exp() * (log_p - log_q)).sum(-1).mean())


def mia_auc(member_losses, nonmember_losses) -> float:
    """AUC of the attack "a low loss means it was trained on": members vs non-members (0.5 = chance).

    The loss attack of :func:`course_lib.evaluation.stats.mia_auc` with score = -loss.
    """
    return stats.mia_auc(-np.asarray(member_losses, dtype=float), -np.asarray(nonmember_losses, dtype=float))


def image_sets(shapes, split) -> dict[str, np.ndarray]:
    """The sets the notebook compares on: forget (S), retain (D minus S), test (held-out images outside S's
    concept) and forget_test (held-out images like S's, never trained on: the MIA's non-members)."""
    return {"forget": split.forget, "retain": split.retain, "test": split.retain_test, "forget_test": split.forget_test}


def distance_table(models: dict, reference, shapes, split, attr: str = "shape", seconds: dict | None = None):
    """One row per model: accuracy, agreement and KL to ``reference`` on forget / retain / test, MIA AUC.

    ``models``: name -> judge (the reference may be one of them: it scores agreement 1 and KL 0).
    Returns a pandas DataFrame indexed by model name.
    """
    import pandas as pd

    sets = image_sets(shapes, split)
    labels = {s: shapes.labels[attr][idx] for s, idx in sets.items()}

    def logits(model):  # each model's logits on each set, computed once
        return {s: _logits(model, shapes.images[idx], attr) for s, idx in sets.items()}

    ref = logits(reference)
    rows = {}
    for name, model in models.items():
        out = ref if model is reference else logits(model)
        row = {f"acc {s}": float((out[s].argmax(-1) == labels[s]).float().mean()) for s in ("forget", "retain", "test")}
        for s in ("forget", "retain", "test"):
            row[f"agree {s}"] = float((out[s].argmax(-1) == ref[s].argmax(-1)).float().mean())
        for s in ("forget", "retain", "test"):
            log_p, log_q = ref[s].log_softmax(-1), out[s].log_softmax(-1)
            row[f"KL {s}"] = float((log_p.exp() * (log_p - log_q)).sum(-1).mean())
        losses = {s: F.cross_entropy(out[s], labels[s], reduction="none") for s in ("forget", "forget_test")}
        row["MIA AUC"] = mia_auc(losses["forget"], losses["forget_test"])
        if seconds and name in seconds:
            row["seconds"] = seconds[name]
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
