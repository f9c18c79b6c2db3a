"""Text measures on a QA set, batched over the whole set (notebook 02 introduces them).

``correct``: greedy exact match per question; ``answer_accuracy``: its mean; ``answer_loss``: the mean
negative log-likelihood per answer token, per question (the LOSS membership signal of notebook 04).
"""
from __future__ import annotations

import numpy as np


def normalize(text: str) -> str:
    """Exact match ignores surrounding spaces, case and a final full stop."""
    return " ".join(text.strip().rstrip(".").lower().split())


def correct(model, qaset, prefix: str = "") -> np.ndarray:
    """Boolean array: does the model's greedy answer equal the reference answer (normalised)?"""
    if len(qaset) == 0:
        return np.zeros(0, dtype=bool)
    preds = model.answer(list(qaset.questions), prefix=prefix)
    return np.array([normalize(p) == normalize(a) for p, a in zip(preds, qaset.answers)], dtype=bool)


def answer_accuracy(model, qaset, prefix: str = "") -> float:
    """Fraction of questions answered exactly (greedy decoding); NaN for an empty set."""
    c = correct(model, qaset, prefix=prefix)
    return float(c.mean()) if len(c) else float("nan")


def answer_loss(model, qaset) -> np.ndarray:
    """Per question: mean negative log-probability of the reference answer's tokens (with end token)."""
    lps = model.answer_logprobs(list(qaset.questions), list(qaset.answers), with_eos=True)
    return np.array([-lp.mean() for lp in lps])


def accuracy_table(model, sets: dict):
    """One row per named QA set: questions, exact-match accuracy, mean answer loss (notebook 02)."""
    import pandas as pd

    rows = []
    for name, qs in sets.items():
        rows.append({"set": name, "questions": len(qs), "accuracy": answer_accuracy(model, qs),
                     "mean answer loss": float(answer_loss(model, qs).mean()) if len(qs) else float("nan")})
    return pd.DataFrame(rows).set_index("set")


def answer_table(model, qaset, prefix: str = ""):
    """The model's greedy answers next to the references, one row per question."""
    import pandas as pd

    preds = model.answer(list(qaset.questions), prefix=prefix)
    return pd.DataFrame({"person": [q.person for q in qaset], "question": qaset.questions,
                         "reference": qaset.answers, "model": preds,
                         "correct": [normalize(p) == normalize(a) for p, a in zip(preds, qaset.answers)]})
