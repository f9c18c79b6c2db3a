"""Is it really gone? Every text attack of notebook 08, and one table for many models.

The attacks (each returns an :class:`~course_lib.attacks.result.AttackResult`; ``before`` is what the
usual evaluation sees, ``after`` what the attacker recovers, both fractions of forget facts):

==================== ================================================================ ===========================
name                 what the attacker does                                           module
==================== ================================================================ ===========================
``relearn``          fine-tunes on half the forget facts; measures the other half     :mod:`.relearning` (Hu et al. 2024)
``quantize8/4``      rounds the weights to 8 / 4 bits (RTN, per channel)              :mod:`.quantization` (Zhang et al. 2024)
``paraphrase``       asks with a wording never trained on                             :mod:`.prompting` (Zhou et al. 2024)
``in_context``       states the fact in the prompt                                    :mod:`.prompting` (Cooper et al. 2024)
``in_context_neighbour`` states another fact of the same person                       :mod:`.prompting`
``probe``            a linear probe on hidden states, trained on retain people        :mod:`.probing`
``logit_lens``       decodes intermediate layers through the output head              :mod:`.probing` (nostalgebraist 2020)
==================== ================================================================ ===========================

The survey of limitations (Zhou et al. 2024, "On the Limitations and Prospects of Machine Unlearning for
Generative AI") argues that unlearning must be judged against such attacks, not only on the forget set's
accuracy. The retrained **gold model** is the control: whatever an attack "recovers" from a model that
never saw the forget set is generalisation (or, in context, reading), not a failure of unlearning. So
:func:`attack_table` reports ``excess = after - after(control)`` for every attack.

    table = attack_table({"base": lm, "gold": gold, "npo": npo.model}, split)   # control="gold"
    recovery_matrix(table)                                                       # models x attacks
"""
from __future__ import annotations

from functools import partial

import pandas as pd

from .probing import PROBE_ATTRIBUTES, logit_lens, probe, prompt_states, lens_logits  # noqa: F401
from .prompting import contexts_for, in_context, paraphrase  # noqa: F401
from .quantization import fake_quantize, quantization_attack, quantize, weight_change_vs_step  # noqa: F401
from .relearning import relearn, split_by_fact  # noqa: F401
from .result import AttackResult  # noqa: F401

ATTACKS = {
    "relearn": relearn,
    "quantize8": partial(quantization_attack, bits=8),
    "quantize4": partial(quantization_attack, bits=4),
    "paraphrase": paraphrase,
    "in_context": partial(in_context, context="fact"),
    "in_context_neighbour": partial(in_context, context="neighbour"),
    "probe": probe,
    "logit_lens": logit_lens,
}
DEFAULT_ATTACKS = ("relearn", "quantize8", "quantize4", "paraphrase", "in_context", "probe", "logit_lens")
# Attacks that also succeed on a model that never saw the facts, by design: the fact is given.
GIVES_THE_FACT = ("in_context",)


def attack_table(models: dict, split, attacks=DEFAULT_ATTACKS, *, control: str = "gold",
                 settings: dict | None = None, progress: bool = True) -> pd.DataFrame:
    """Run every attack in ``attacks`` on every model of ``models`` (name -> model), notebook 08.

    One row per (model, attack): ``before``, ``after``, ``gain = after - before``, ``control`` (the
    control model's ``after`` for the same attack) and ``excess = after - control``. ``control`` names
    the entry of ``models`` that was retrained without the forget set. ``settings``: attack name ->
    keyword arguments (e.g. ``{"relearn": {"num_steps": 30}}``), the same for every model. The
    :class:`AttackResult` objects are in ``table.attrs["results"][(model, attack)]``.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError("models is empty: pass a dict name -> model, with the retrained control model among them")
    if control not in models:
        raise ValueError(f"control={control!r} is not one of the models ({', '.join(map(repr, models))}); "
                         "pass the retrained gold model as models[control]: it is what every attack is compared to")
    attacks = (attacks,) if isinstance(attacks, str) else tuple(attacks)
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown or not attacks:
        raise ValueError(f"attacks={unknown or list(attacks)!r}; allowed values: {', '.join(ATTACKS)}")
    settings = dict(settings or {})
    stray = [k for k in settings if k not in attacks]
    if stray:
        raise ValueError(f"settings names attacks that are not run: {stray}; attacks run: {', '.join(attacks)}")
    from tqdm.auto import tqdm

    results, rows = {}, []
    bar = tqdm(total=len(attacks) * len(models), desc="attacks", disable=not progress, leave=False)
    for attack in attacks:
        for name, model in models.items():
            bar.set_postfix_str(f"{attack} on {name}")
            res = ATTACKS[attack](model, split, **settings.get(attack, {}))
            results[(name, attack)] = res
            rows.append({"model": name, **res.row()})
            bar.update(1)
    bar.close()
    table = pd.DataFrame(rows)
    ctrl = table[table["model"] == control].set_index("attack")["after"]
    table.insert(table.columns.get_loc("gain") + 1, "control", table["attack"].map(ctrl))
    table.insert(table.columns.get_loc("control") + 1, "excess", table["after"] - table["control"])
    table.attrs["results"] = results
    table.attrs["control"] = control
    return table


def recovery_matrix(table: pd.DataFrame, value: str = "after") -> pd.DataFrame:
    """Models x attacks of one column of :func:`attack_table` (``after``, ``excess``, ``gain``, ...), in
    the order the table ran them. For ``after``, when a quantization attack ran, a first ``no attack``
    column holds each model's plain forget accuracy (its ``before``: the whole forget set, where the
    relearning row's ``before`` covers the held-back half only)."""
    if value not in table.columns:
        raise ValueError(f"value={value!r}; allowed values: {', '.join(c for c in table.columns if c not in ('model', 'attack', 'measure'))}")
    models = list(dict.fromkeys(table["model"]))
    attacks = list(dict.fromkeys(table["attack"]))
    out = table.pivot(index="model", columns="attack", values=value).loc[models, attacks]
    plain = table[table["attack"].str.startswith("quantize")]
    if value == "after" and len(plain):
        out.insert(0, "no attack", plain.groupby("model")["before"].first().loc[models])
    return out


def only_hidden(table: pd.DataFrame, margin: float = 0.15, exclude=GIVES_THE_FACT) -> pd.Series:
    """Per model: the attacks that brought back at least ``margin`` (``gain``) *and* got at least ``margin``
    more than from the control model (``excess``), leaving out those that hand the model the fact
    (``exclude``). A non-empty list means the knowledge was hidden, not removed, as far as these attacks
    can tell; an empty one is no proof of removal. A model that never forgot (the base model) answers
    openly: there is nothing for an attack to bring back, so it lists nothing either."""
    if not 0 <= margin <= 1:
        raise ValueError(f"margin={margin!r}; it must be in [0, 1] (a difference of accuracies)")
    rows = table[~table["attack"].isin(exclude) & (table["model"] != table.attrs.get("control"))]
    hits = rows[(rows["excess"] >= margin) & (rows["gain"] >= margin)]
    models = [m for m in dict.fromkeys(table["model"]) if m != table.attrs.get("control")]
    return pd.Series({m: list(hits.loc[hits["model"] == m, "attack"]) for m in models}, name="recovered by")


def excess_interval(table: pd.DataFrame, model: str, attack: str, ci: float = 0.95) -> tuple[float, float]:
    """The ``ci`` interval of one row's ``excess`` (its ``after`` minus the control model's, both fractions of
    ``n`` forget facts): Newcombe's interval of a difference of proportions, what notebook 08 compares with its
    thresholds so that no claim rests on a question or two. It treats the two rows as independent samples."""
    from ..evaluation.stats import proportion_difference_interval

    rows = table.set_index(["model", "attack"])
    control = table.attrs.get("control")
    for key in ((model, attack), (control, attack)):
        if key not in rows.index:
            raise ValueError(f"(model, attack)={key!r} is not a row of the attack table; rows: {list(rows.index)}")
    row, ctrl = rows.loc[(model, attack)], rows.loc[(control, attack)]
    return proportion_difference_interval(float(row["after"]), int(row["n"]), float(ctrl["after"]), int(ctrl["n"]), ci)
