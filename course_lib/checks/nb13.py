"""Checkers for notebook 13 (the capstone: a policy scorecard)."""
from __future__ import annotations

from . import passed, run_stub

# Policy rows (the numbers the privacy lens reads) that each break one part of the rule, or none.
_COLUMNS = ("black_box_excess", "reads_excess", "relearn_excess", "privacy_leak", "locality_gap")
_CASES = {
    "gold-like":             (0.00, 0.00, 0.00, 0.00, 0.00),
    "close to gold":         (0.05, 0.08, 0.09, -0.04, 0.06),
    "answers still out":     (0.60, 0.05, 0.05, 0.02, 0.00),
    "filter (weights kept)": (-0.10, 0.90, 0.80, 0.02, -0.02),
    "reads only":            (0.00, 0.30, 0.05, 0.00, 0.00),
    "relearns only":         (0.00, 0.05, 0.40, 0.00, 0.00),
    "members stand out":     (0.02, 0.02, 0.02, 0.45, 0.00),
    "too unlike members":    (0.02, 0.02, 0.02, -0.45, 0.00),   # a negative leak: the Streisand effect
    "collapsed":             (0.00, 0.05, 0.00, 0.01, 0.70),
    "at the limit":          (0.10, 0.10, 0.10, 0.10, 0.10),
}
_HINTS = {
    "answers still out": "the outputs come first: black_box_excess above margin fails",
    "filter (weights kept)": "white-box reads count for privacy: reads_excess above margin fails",
    "reads only": "check reads_excess (probe, logit lens) against margin",
    "relearns only": "check relearn_excess against margin: knowledge that comes back was never gone",
    "members stand out": "check the privacy leak against leak_margin",
    "too unlike members": "the privacy leak counts in absolute value: abs(privacy_leak) <= leak_margin "
                          "(forgetting *too* well also gives the forget set away)",
    "collapsed": "a model that lost its utility fails: locality_gap above utility_margin",
    "at the limit": "a number equal to its limit passes: use <=, not <",
}


def check_privacy_rule(fn) -> None:
    """Exercise: ``fn(row, margin, leak_margin, utility_margin) -> bool`` is the privacy lens's rule for one
    row of ``policy_scorecard``: outputs, white-box reads and relearning each at most ``margin`` above the gold
    model, ``|privacy_leak| <= leak_margin`` and ``locality_gap <= utility_margin``
    (``cl.evaluation.policy.judge(policy, "privacy")``)."""
    import pandas as pd

    from ..evaluation.policy import THRESHOLDS, judge

    policy = pd.DataFrame(_CASES, index=_COLUMNS).T
    limits = dict(THRESHOLDS)
    if run_stub(fn, "privacy_rule", policy.iloc[0], **limits) is None:
        return
    for limits in (THRESHOLDS, {"margin": 0.2, "leak_margin": 0.5, "utility_margin": 0.05}):
        want = judge(policy, "privacy", **limits)["passes"]
        for name, row in policy.iterrows():
            got = fn(row.copy(), **limits)
            if got is None:
                raise AssertionError("privacy_rule returned None: did you forget `return`?")
            if bool(got) == bool(want[name]):
                continue
            numbers = ", ".join(f"{c} {row[c]:+.2f}" for c in _COLUMNS)
            hint = _HINTS.get(name, "every part must hold: outputs, reads, relearning, privacy leak, utility")
            if limits is not THRESHOLDS:
                hint = "use the thresholds passed in (margin, leak_margin, utility_margin), not fixed numbers"
            raise AssertionError(f"row {name!r} ({numbers}) with {limits}: you said "
                                 f"{'pass' if got else 'fail'}, the lens says {'pass' if want[name] else 'fail'}. "
                                 f"Hint: {hint}.")
    passed(f"Your privacy rule agrees with policy.judge on {len(policy)} rows and two sets of thresholds.")
