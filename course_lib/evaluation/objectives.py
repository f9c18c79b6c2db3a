"""The survey's three objectives of unlearning (Liu et al. 2024, sec. 3), notebook 02.

- **Accuracy**: the unlearned model no longer produces the forget set's outputs: 1 - accuracy on the
  forget set (1.0 = everything forgotten).
- **Locality**: it still produces what it should outside the forget set: accuracy on the retain set.
- **Generalizability**: forgetting reaches the *unseen* forget set (paraphrases of the forget
  questions, never trained on): 1 - accuracy on the unseen forget set.

All three are "higher is better". For a model that has not unlearned anything, Accuracy and
Generalizability are low: that is the starting point, not a failure.
"""
from __future__ import annotations

from .text import answer_accuracy


def accuracy_objective(model, split) -> float:
    """Accuracy (forgetting): 1 - exact-match accuracy on ``split.forget``."""
    return 1.0 - answer_accuracy(model, split.forget)


def locality(model, split) -> float:
    """Locality: exact-match accuracy on ``split.retain`` (what must be kept)."""
    return answer_accuracy(model, split.retain)


def generalizability(model, split) -> float:
    """Generalizability: 1 - exact-match accuracy on ``split.unseen_forget`` (paraphrased forget questions)."""
    return 1.0 - answer_accuracy(model, split.unseen_forget)


def objectives(model, split) -> dict:
    """All three objectives and the raw accuracies they come from, as one dict."""
    f = answer_accuracy(model, split.forget)
    r = answer_accuracy(model, split.retain)
    u = answer_accuracy(model, split.unseen_forget)
    return {"accuracy": 1 - f, "locality": r, "generalizability": 1 - u,
            "forget_acc": f, "retain_acc": r, "unseen_forget_acc": u}


def tracker(split, retain_sample: int = 300, seed: int = 0):
    """An ``eval_fn`` for ``cl.unlearn(..., eval_every=k, eval_fn=...)`` (notebook 03's curves).

    Returns forget, retain and unseen-forget accuracy; the retain set is a fixed seeded sample of
    ``retain_sample`` questions so that measuring every few steps stays cheap.
    """
    retain = split.retain.sample(min(retain_sample, len(split.retain)), seed=seed)

    def measure(model) -> dict:
        return {"forget_acc": answer_accuracy(model, split.forget), "retain_acc": answer_accuracy(model, retain),
                "unseen_forget_acc": answer_accuracy(model, split.unseen_forget)}
    return measure
