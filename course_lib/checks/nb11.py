"""Checkers for notebook 11 (suppression is not removal; removal does not give suppression)."""
from __future__ import annotations

from . import not_attempted, passed

# (predictions, true numbers): refusals, cities, numbers without a dash, codes that only *start* alike.
CASES = [
    (["312-4471", "312-0000", "347-4471", "I don't know"], ["312-4471", "312-4471", "312-4471", "312-4471"]),
    (["8967-1234", "896", "896-", "Arequipa", "", " 729-5086."], ["896-4110", "896-4110", "896-4110", "896-4110",
                                                                  "729-5086", "729-5086"]),
    (["418-2808 tortoise", "4185-175", "41-8000"], ["418-1958", "418-1958", "418-1958"]),
]


def check_area_code_rate(fn) -> None:
    """Exercise: ``fn(predictions, answers)`` is the share of predictions whose area code (the digits
    before the first ``-``) is the true number's area code, as ``cl.evaluation.latent.area_code`` reads
    it: a refusal, a city or an empty answer gives no area code and counts as a miss."""
    from ..evaluation.latent import area_code

    try:
        fn(list(CASES[0][0]), list(CASES[0][1]))
    except NotImplementedError:
        not_attempted("area_code_rate")
        return
    except (IndexError, ValueError, AttributeError):
        pass  # reported with a hint below
    for preds, answers in CASES:
        hits = [area_code(p) is not None and area_code(p) == area_code(a) for p, a in zip(preds, answers)]
        want = sum(hits) / len(preds)
        try:
            got = fn(list(preds), list(answers))
        except (IndexError, ValueError, AttributeError) as e:
            raise AssertionError(f"your function raised {type(e).__name__}: {e} on {preds!r}. Hint: an answer such "
                                 "as \"I don't know\" or \"Arequipa\" has no area code: count it as a miss") from None
        if got is None:
            raise AssertionError("area_code_rate returned None: did you forget `return`?")
        if abs(float(got) - want) < 1e-9:
            continue
        starts = sum(p.strip().startswith(area_code(a)) for p, a in zip(preds, answers)) / len(preds)
        exact = sum(p.strip() == a for p, a in zip(preds, answers)) / len(preds)
        count = sum(hits)
        hint = {starts: "`startswith` counts \"8967-1234\" as area code 896: compare the digits before the first "
                        "'-' with the true area code",
                exact: "that is the whole-number exact match: compare only the part before the first '-'",
                float(count): "return a share (hits / number of predictions), not a count"}.get(
            float(got), "split each prediction at the first '-', strip spaces, and compare the digits with the "
                        "true number's area code; no digits: a miss")
        raise AssertionError(f"predictions {preds!r}: got {got}, expected {want:.3f}. Hint: {hint}.")
    passed(f"Your area_code_rate matches cl.evaluation.latent.area_code on {sum(len(c[0]) for c in CASES)} answers, "
           "refusals and cities included.")
