"""Answer checkers for the notebooks' exercises: each says what is wrong, not only that it is wrong.

A checker raises ``AssertionError`` with a hint, or prints a success line. Grouped by notebook.
"""
from __future__ import annotations


def passed(msg: str = "") -> None:
    """Print the standard success line of an exercise checker."""
    print("✅ Correct." + (f" {msg}" if msg else ""))


# --- notebook 00 -----------------------------------------------------------------------------

STEPS_PER_MODE = {"fast": 20, "default": 200, "full": 2000}


def check_steps_for(steps_for) -> None:
    """Notebook 00, exercise 1: ``steps_for(rt)`` picks 20 / 200 / 2000 steps with ``rt.preset``."""
    from dataclasses import replace
    from pathlib import Path

    from ..runtime import Runtime

    base = Runtime(mode="fast", seed=0, device="cpu", cache_dir=Path("."))
    for mode, expected in STEPS_PER_MODE.items():
        got = steps_for(replace(base, mode=mode))
        assert got is not None, "steps_for returned None: did you forget `return`?"
        assert got == expected, (f"in mode {mode!r} steps_for(rt) returned {got!r}, expected {expected}: "
                                 "pass rt.preset a table with all three modes, "
                                 "rt.preset({'fast': 20, 'default': 200, 'full': 2000})")
    passed("rt.preset picks the value for the current mode, so one notebook fits CI, a laptop and a GPU.")


# --- notebook 01 -----------------------------------------------------------------------------


def check_ga_loss(ga_loss) -> None:
    """Notebook 01, exercise 1: ``ga_loss(model, batch)`` is minus the cross-entropy summed over the heads."""
    import torch
    import torch.nn.functional as F

    from ..models.classifier import ShapeJudge

    torch.manual_seed(0)
    model = ShapeJudge(channels=(4, 8), hidden=8)
    batch = {"images": torch.rand(6, 3, 16, 16), **{k: torch.randint(0, len(v), (6,)) for k, v in model.classes.items()}}
    try:
        out = ga_loss(model, batch)
    except NotImplementedError:
        print("Not attempted yet: fill in ga_loss() and run this cell again.")
        return
    if out is None:
        raise AssertionError("ga_loss returned None: did you forget `return`?")
    loss = out["loss"] if isinstance(out, dict) else out
    if not torch.is_tensor(loss) or loss.numel() != 1:
        raise AssertionError(f"ga_loss must return one number as a tensor (fit() backpropagates it), got {loss!r}")
    if not loss.requires_grad:
        raise AssertionError("The loss has no gradient: compute it from model(batch['images']) without "
                             ".item(), .detach() or torch.no_grad().")
    logits = model(batch["images"])
    ces = {k: F.cross_entropy(v, batch[k]).item() for k, v in logits.items()}
    want, got = -sum(ces.values()), loss.item()
    if abs(got + want) < 1e-4:
        raise AssertionError("The sign is flipped: that is the ordinary training loss (descent). Gradient "
                             "ascent minimises MINUS the cross-entropy.")
    if abs(got + ces["shape"]) < 1e-4:
        raise AssertionError("That is only the shape head. The forget examples' loss is the sum over all heads "
                             "(shape, colour, texture, size, position).")
    if abs(got - want / len(ces)) < 1e-4:
        raise AssertionError("That is the mean over the heads; the judge is trained on their sum, so ascend the sum.")
    if abs(got - want) > 1e-4:
        raise AssertionError(f"Expected {want:.4f}, got {got:.4f}: return -(sum over heads of "
                             "F.cross_entropy(logits[head], batch[head])).")
    passed("Minimising this loss climbs the forget set's cross-entropy: that is all gradient ascent is.")


def check_shards_to_retrain(shards_to_retrain) -> None:
    """Notebook 01, exercise 2: ``shards_to_retrain(shards, forget)`` lists the shards holding forget examples."""
    import numpy as np

    shards = [np.array([0, 1, 2]), np.array([3, 4]), np.array([5, 6, 7])]
    cases = [([4], [1]), ([0, 7], [0, 2]), ([7, 0, 6], [0, 2]), ([], []), ([99], [])]
    for forget, want in cases:
        try:
            got = shards_to_retrain(shards, np.array(forget, dtype=np.int64))
        except NotImplementedError:
            print("Not attempted yet: fill in shards_to_retrain() and run this cell again.")
            return
        if got is None:
            raise AssertionError("shards_to_retrain returned None: did you forget `return`?")
        got = [int(j) for j in got]
        where = f"shards {[s.tolist() for s in shards]}, forget {forget}"
        if len(got) != len(set(got)):
            raise AssertionError(f"For {where} you listed a shard twice ({got}): each shard is retrained once.")
        if sorted(got) == sorted(i for i in forget if i < 8) and sorted(got) != want:
            raise AssertionError(f"For {where} you returned the forget indices {got}; return shard NUMBERS "
                                 "(positions in `shards`).")
        if sorted(got) != want:
            raise AssertionError(f"For {where} expected shards {want}, got {sorted(got)}: a shard must be "
                                 "retrained if and only if it holds at least one forget index.")
    passed("Only shards that held deleted examples are retrained; the others are untouched and still exact.")


# --- notebook 02 -----------------------------------------------------------------------------


def check_loss_gap(loss_gap, train_loss, holdout_loss) -> None:
    """Exercise 1 of notebook 02: the median answer loss of holdout people minus that of train questions."""
    import numpy as np

    try:
        got = loss_gap(train_loss, holdout_loss)
    except NotImplementedError:
        print("Not attempted yet: fill in loss_gap() and run this cell again.")
        return
    want = float(np.median(holdout_loss) - np.median(train_loss))
    if got is None:
        raise AssertionError("loss_gap returned None: did you forget `return`?")
    if abs(float(got) + want) < 1e-6 and want != 0:
        raise AssertionError("The sign is flipped: subtract the train median from the holdout median.")
    if abs(float(got) - float(np.mean(holdout_loss) - np.mean(train_loss))) < 1e-6 and abs(want - got) > 1e-6:
        raise AssertionError("That is the gap of the means; the exercise asks for medians (robust to outliers).")
    if abs(float(got) - want) > 1e-6:
        raise AssertionError(f"Expected {want:.4f}, got {float(got):.4f}. Use np.median on each array.")
    passed(f"The gap is {want:.2f} nats per token: trained answers are far more likely than unseen ones.")


def check_failed_objective(answer) -> None:
    """Exercise 2 of notebook 02: which objective does the base model fail before any unlearning?"""
    allowed = ("accuracy", "locality", "generalizability")
    if answer is None:
        print("Not attempted yet: set `answer` to one of " + ", ".join(allowed) + ".")
        return
    if answer not in allowed:
        raise AssertionError(f"answer must be one of {allowed}, got {answer!r}")
    if answer == "locality":
        raise AssertionError("Locality is about the retain set, which the base model answers well. Look again.")
    if answer == "generalizability":
        raise AssertionError("Partly: the base model also answers some paraphrases, but the objective it fails "
                             "outright is the one about the forget set's own questions.")
    passed("Before unlearning the model answers the forget set as well as the rest: Accuracy is near 0.")
