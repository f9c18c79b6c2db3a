"""What every text attack of notebook 08 returns: one :class:`AttackResult`, a row of the attack table.

``before`` is what the usual evaluation sees (e.g. forget accuracy); ``after`` is what the attacker
gets (e.g. the accuracy on the held-back forget facts after relearning). Both are fractions of forget
facts recovered, so one table can hold every attack; ``measure`` says exactly what was counted.
``details`` keeps the attack's own numbers (per step, per layer, per bit width) as a DataFrame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class AttackResult:
    """One attack on one model. ``row()`` is its line in :func:`~course_lib.attacks.text.attack_table`."""

    attack: str
    measure: str                 # what before / after count, in words
    before: float                # without the attack
    after: float                 # with it
    n: int                       # questions (or facts) the numbers are over
    seconds: float = 0.0
    details: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    extras: dict = field(default_factory=dict, repr=False)

    @property
    def gain(self) -> float:
        """``after - before``: what the attack brought back."""
        return self.after - self.before

    def row(self) -> dict:
        return {"attack": self.attack, "measure": self.measure, "before": self.before, "after": self.after,
                "gain": self.gain, "n": self.n, "seconds": round(self.seconds, 2)}

    def frame(self) -> pd.DataFrame:
        """The attack's own numbers (per step, layer, ...); a one-row summary if it has none."""
        return self.details if len(self.details) else pd.DataFrame([self.row()])

    def __repr__(self) -> str:
        return (f"AttackResult({self.attack}: {self.measure} {self.before:.3f} -> {self.after:.3f} "
                f"over {self.n}, {self.seconds:.1f} s)")


def need_items(qaset, argument: str, hint: str = "") -> None:
    """A clear error for an empty QA set passed as ``argument``."""
    if qaset is None or len(qaset) == 0:
        raise ValueError(f"{argument} is empty: an attack needs questions to measure"
                         + (f"; {hint}" if hint else ""))


def accuracy(model, qaset, prefix="") -> float:
    """Greedy exact-match accuracy (``evaluation.text.answer_accuracy``); NaN for an empty set."""
    from ..evaluation.text import answer_accuracy

    return answer_accuracy(model, qaset, prefix=prefix)
