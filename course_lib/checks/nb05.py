"""Checkers for notebook 05 (the trade-off explorer). The widget exercises read the explorer's state, so they
check what the learner set with the sliders (or with ``explorer.select(...)``)."""
from __future__ import annotations

from . import not_attempted, passed


def check_pareto_front(fn, explorer) -> None:
    """Exercise 1: ``fn(points) -> list of points`` keeps the points that no other point beats on both axes
    (lower ``forget_acc`` AND higher ``retain_acc``). Compared with the library's on every method's sweep."""
    from ..widgets.sweep import pareto_front

    for method in explorer.methods:
        pts = explorer.points(method)
        try:
            got = fn([dict(p) for p in pts])
        except NotImplementedError:
            not_attempted("pareto_front")
            return
        if got is None:
            raise AssertionError("pareto_front returned None: did you forget `return`?")
        key = lambda p: (round(p["forget_acc"], 9), round(p["retain_acc"], 9))  # noqa: E731
        got_keys, want_keys = {key(p) for p in got}, {key(p) for p in pareto_front(pts)}
        if got_keys == {key(p) for p in pts} and len(want_keys) < len(got_keys):
            raise AssertionError(f"{method}: you kept every point; drop those that another point beats on both axes")
        extra, missing = got_keys - want_keys, want_keys - got_keys
        if extra:
            f, r = sorted(extra)[0]
            raise AssertionError(f"{method}: the point (forget {f:.3f}, retain {r:.3f}) is dominated: another point has "
                                 "lower-or-equal forget accuracy and higher-or-equal retain accuracy (one strictly)")
        if missing:
            f, r = sorted(missing)[0]
            raise AssertionError(f"{method}: the point (forget {f:.3f}, retain {r:.3f}) is on the front but you dropped "
                                 "it; check the direction: lower forget accuracy is better, higher retain is better")
    passed("A method's front is the menu of best trade-offs it offers; everything else is a worse setting.")


def check_close_to_gold(explorer, within: float) -> None:
    """Exercise 2: the explorer's selected setting is within ``within`` of the gold model on both axes."""
    gap = explorer.state.get("gap_to_gold")
    if gap is None:
        raise AssertionError("this explorer has no gold model: build it with reference=gold")
    if explorer.redraws <= 1:  # drawn once, when built: no control has been moved yet
        not_attempted("the sliders (or explorer.select(...))")
        return
    p = explorer.state["selected"]
    gold = explorer.sweep.landmarks["gold"]
    if gap > within:
        worse = "forget" if abs(p["forget_acc"] - gold["forget_acc"]) >= abs(p["retain_acc"] - gold["retain_acc"]) \
            else "retain"
        hint = ("forget more: more steps or a larger lr" if worse == "forget" and p["forget_acc"] > gold["forget_acc"]
                else "protect the retain set: a larger retain_weight, a smaller lr or fewer steps")
        raise AssertionError(f"your setting is {gap:.3f} from the gold model on the {worse} axis (goal: {within}); {hint}")
    passed(f"{p['method']} lands within {gap:.3f} of the retrained model on both axes: as close as this budget allows.")


def check_dominant_method(answer, explorer) -> None:
    """Exercise 3: the method whose Pareto front covers the most of the plane (:meth:`front_areas`)."""
    if answer is None:
        not_attempted("ANSWER")
        return
    areas = explorer.front_areas()
    if answer not in areas:
        raise AssertionError(f"ANSWER={answer!r}; allowed values: {', '.join(map(repr, areas))}")
    best = max(areas, key=areas.get)
    table = ", ".join(f"{m} {a:.3f}" for m, a in sorted(areas.items(), key=lambda kv: -kv[1]))
    if answer != best:
        raise AssertionError(f"not {answer}: compare the fronts' areas toward the corner (forget 0, retain 1): {table}")
    passed(f"{best}'s front dominates (areas: {table}): for almost any amount of forgetting, it keeps more utility.")
