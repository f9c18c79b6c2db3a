"""Side effects of unlearning on the people who stay: damage by similarity to the forgotten (notebook 12).

Cooper et al. (2024, "Machine Unlearning Doesn't Do What You Think", mismatch 5) point out that removing
one person's data changes what a model says about others, and not at random: the people *like* the
forgotten ones are the likely casualties. The survey's Locality averages over the whole retain set and
hides that. Here each retain person gets a similarity to the forget people, and the damage (base
accuracy minus unlearned accuracy on that person's retain questions) is read against it:

- ``shared_values``: how many of the person's attribute values (phone left out: it is unique) also belong
  to *some* forget person (same birth city as one, same pet as another, ...);
- ``max_overlap``: the most values shared with any *one* forget person (the closest forget person);
- ``shared_name``: shares a first name or a surname with a forget person (``PeopleData.namesakes``).

    sim = similarity_to_forget(facts, split)                       # one row per retain person
    loc = locality_by_similarity(base, unlearned, facts, split)     # + base / unlearned accuracy, damage
    damage_by_bucket(loc, "max_overlap")                           # mean damage per similarity value
    similarity_correlation(loc)                                    # Spearman rank correlations

(Named ``side_effects``, not ``locality``: ``cl.evaluation.locality`` is the survey's Locality objective.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .text import correct

SIMILARITY = ("shared_values", "max_overlap", "shared_name")
SKIP = ("phone",)  # unique per person: never shared


def _compared(facts) -> tuple[str, ...]:
    from ..data.people import ATTRIBUTES

    return tuple(a for a in ATTRIBUTES if a not in SKIP)


def similarity_to_forget(facts, split) -> pd.DataFrame:
    """One row per retain person (index ``person``): ``name`` and the similarity columns of
    :data:`SIMILARITY` (see the module docstring), against ``split.forget_people``."""
    attrs = _compared(facts)
    forget = [facts.person(p) for p in split.forget_people]
    if not forget:
        raise ValueError("split has no forget people: nothing to be similar to")
    forget_ids = {p.id for p in forget}
    values = {a: {getattr(p, a) for p in forget} for a in attrs}
    rows = []
    for pid in split.retain.people:
        if pid in forget_ids:  # a partial split (some attributes forgotten): the person is no neighbour
            continue
        p = facts.person(pid)
        overlap = [sum(getattr(p, a) == getattr(f, a) for a in attrs) for f in forget]
        rows.append({"person": pid, "name": p.name,
                     "shared_values": sum(getattr(p, a) in values[a] for a in attrs),
                     "max_overlap": max(overlap),
                     "shared_name": any(p.first_name == f.first_name or p.last_name == f.last_name for f in forget)})
    return pd.DataFrame(rows).set_index("person")


def per_person_accuracy(model, qaset) -> pd.Series:
    """Greedy exact-match accuracy per person on ``qaset`` (index: person id)."""
    ok = correct(model, qaset)
    return pd.Series(ok, index=[q.person for q in qaset], dtype=float).groupby(level=0).mean()


def locality_by_similarity(base, unlearned, facts, split, *, retain=None) -> pd.DataFrame:
    """:func:`similarity_to_forget` plus, per retain person, ``base_acc`` and ``unlearned_acc`` on their
    retain questions (``retain``: default ``split.retain``, all of them) and ``damage = base_acc -
    unlearned_acc`` (positive: the unlearning hurt this person). Notebook 12."""
    retain = split.retain if retain is None else retain
    sim = similarity_to_forget(facts, split)
    before, after = per_person_accuracy(base, retain), per_person_accuracy(unlearned, retain)
    out = sim.join(pd.DataFrame({"base_acc": before, "unlearned_acc": after}), how="inner")
    if out.empty:
        raise ValueError("retain has no questions about the split's retain people")
    out["damage"] = out["base_acc"] - out["unlearned_acc"]
    return out


def damage_by_bucket(table: pd.DataFrame, by: str = "max_overlap", min_people: int = 1) -> pd.DataFrame:
    """Mean damage (and base / unlearned accuracy) per value of the similarity column ``by``, with the
    number of people and the standard error of the mean damage; buckets with fewer than
    ``min_people`` people are dropped."""
    if by not in table.columns:
        raise ValueError(f"by={by!r}; allowed values: {', '.join(c for c in SIMILARITY if c in table.columns)}")
    g = table.groupby(by)
    out = pd.DataFrame({"people": g.size(), "base_acc": g["base_acc"].mean(), "unlearned_acc": g["unlearned_acc"].mean(),
                        "damage": g["damage"].mean(),
                        "damage_se": g["damage"].std(ddof=1).fillna(0.0) / np.sqrt(g.size())})
    return out[out["people"] >= min_people]


def _ranks(x: pd.Series) -> pd.Series:
    return x.astype(float).rank(method="average")


def similarity_correlation(table: pd.DataFrame, columns=SIMILARITY) -> pd.Series:
    """Spearman rank correlation of ``damage`` with each similarity column (NaN when a column is constant)."""
    dmg = _ranks(table["damage"])
    out = {}
    for c in columns:
        r = _ranks(table[c])
        out[c] = float(np.corrcoef(r, dmg)[0, 1]) if r.std() > 0 and dmg.std() > 0 else float("nan")
    return pd.Series(out, name="spearman r with damage")


def damage_by_shared_answer(base, unlearned, facts, split, *, retain=None) -> pd.DataFrame:
    """Per retain *question*: is its answer a value some forget person also has for that attribute
    (``shared``)? Returns accuracy before / after and damage for shared vs not-shared answers: NPO pushes
    the forget answers down wherever they appear, so a neighbour's question whose answer is one of them
    is the first to suffer. Notebook 12."""
    retain = split.retain if retain is None else retain
    forget_ids = set(split.forget_people)
    retain = retain.filter(attribute=_compared(facts))
    retain = type(retain)(q for q in retain if q.person not in forget_ids)
    values = {a: {getattr(facts.person(p), a) for p in forget_ids} for a in _compared(facts)}
    shared = np.array([q.answer in values[q.attribute] for q in retain])
    before, after = correct(base, retain).astype(float), correct(unlearned, retain).astype(float)
    rows = []
    for flag in (False, True):
        m = shared == flag
        rows.append({"shared": flag, "questions": int(m.sum()), "base_acc": before[m].mean() if m.any() else np.nan,
                     "unlearned_acc": after[m].mean() if m.any() else np.nan})
    out = pd.DataFrame(rows).set_index("shared")
    out["damage"] = out["base_acc"] - out["unlearned_acc"]
    return out


def plot_damage(table: pd.DataFrame, by: str = "max_overlap", shared: pd.DataFrame | None = None, title: str | None = None):
    """Notebook 12's figure: mean damage per similarity bucket (retain colour, one standard error), and,
    given :func:`damage_by_shared_answer`'s table as ``shared``, damage on retain questions whose answer
    a forget person shares (forget colour) or not (retain colour)."""
    import matplotlib.pyplot as plt

    from ..plots import COLORS

    buckets = damage_by_bucket(table, by)
    fig, axes = plt.subplots(1, 2 if shared is not None else 1, figsize=(9.5 if shared is not None else 5.5, 3.4),
                             squeeze=False)
    ax = axes[0, 0]
    ax.bar([str(v) for v in buckets.index], buckets["damage"], yerr=buckets["damage_se"], color=COLORS["retain"],
           capsize=3)
    for x, (d, se, n) in enumerate(zip(buckets["damage"], buckets["damage_se"], buckets["people"])):
        ax.annotate(f"n={n}", (x, max(d, 0) + se), ha="center", va="bottom", fontsize=8, xytext=(0, 3),
                    textcoords="offset points")
    ax.axhline(0, color="k", lw=0.8)
    ax.margins(y=0.15)  # room for the counts above the bars
    ax.set(xlabel=by.replace("_", " ") + " (with the forget people)", ylabel="accuracy lost (base - unlearned)",
           title=title or f"Damage by similarity (Spearman r = {similarity_correlation(table, [by])[by]:.2f})")
    if shared is not None:
        ax2 = axes[0, 1]
        labels = ["answer shared" if s else "answer not shared" for s in shared.index]
        ax2.bar(labels, shared["damage"], color=[COLORS["forget"] if s else COLORS["retain"] for s in shared.index])
        for x, (d, n) in enumerate(zip(shared["damage"], shared["questions"])):
            ax2.annotate(f"{n} questions", (x, max(d, 0)), ha="center", va="bottom", fontsize=8, xytext=(0, 4),
                         textcoords="offset points")
        ax2.axhline(0, color="k", lw=0.8)
        ax2.margins(y=0.15)
        ax2.set(ylabel="accuracy lost", title="Per retain question: is its answer a forget answer?")
    fig.tight_layout()
    return fig
