"""Composition: a text-to-image model draws a combination it was never shown (notebook 11, section 5).

Cooper et al. (2024, "Machine Unlearning Doesn't Do What You Think"), mismatch 2, *removal does not give
suppression*, in its image form: the CommonCanvas point (Gokaslan et al. 2024) at toy scale. Retrain the
shapes text-to-image model without a single image of, say, a purple triangle (the UNet *and* the CLIP whose
text tower conditions it: ``cl.zoo.load("shapes-t2i", rt, exclude=shapes.split("purple triangle").forget)``),
then ask it for one. If the judge sees purple triangles, the data is gone and the output is not: the model
composes "purple" (seen on other shapes) and "triangle" (seen in other colours).

Every rate is the share of samples the shape judge (notebook 01) scores as asked, with the other attributes
(texture, size, position) drawn at random per prompt:

- **combination**: prompted with the combination, judged as showing all of its values;
- **part: <value>**: prompted with that value in combinations the training data *did* hold (purple with another
  shape; a triangle in another colour), judged on that value: the pieces the model composes from;
- **by accident**: prompted with *other* combinations of the same attributes, judged as the combination: what a
  model that ignored the prompt would score (about 1/30 for a colour and a shape).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..data import shapes as shapes_data
from .image import judged_as


def _draw(rng, fixed: dict, avoid: dict | None = None) -> dict:
    """Random attributes with ``fixed`` values; ``avoid``: the values of these attributes must not *all* match."""
    while True:
        a = {k: vals[rng.integers(len(vals))] for k, vals in shapes_data.CLASSES.items()}
        a.update(fixed)
        if not avoid or any(a[k] != v for k, v in avoid.items()):
            return a


def combination_prompts(concept: str, n: int, seed: int = 0, *, part: str | None = None,
                        other: bool = False) -> tuple[list[str], list[dict]]:
    """``n`` seeded captions and their attribute dicts for one of the three rates.

    Default: the combination itself. ``part="purple"``: that value with the concept's other attributes drawn
    so that the combination never appears. ``other=True``: combinations of the concept's attributes other
    than the concept (the by-accident control)."""
    wanted = shapes_data.parse_concept(concept)
    if len(wanted) < 2:
        raise ValueError(f"concept={concept!r} names one value; a combination needs two, e.g. 'purple triangle'")
    if part is not None and part not in wanted.values():
        raise ValueError(f"part={part!r} is not a value of concept={concept!r}; allowed values: "
                         f"{', '.join(wanted.values())}")
    rng = np.random.default_rng([seed, 7919, len(concept), 0 if part is None else 1 + len(part), int(other)])
    if other:
        attrs = [_draw(rng, {}, avoid=wanted) for _ in range(n)]
    elif part is not None:
        attr = next(k for k, v in wanted.items() if v == part)
        attrs = [_draw(rng, {attr: part}, avoid=wanted) for _ in range(n)]
    else:
        attrs = [_draw(rng, wanted) for _ in range(n)]
    return [shapes_data.caption(**a) for a in attrs], attrs


def _judged_all(judge, images, values: Mapping[str, str]) -> np.ndarray:
    """Per image: does the judge see every value in ``values`` (``{"colour": "purple", "shape": "triangle"}``)?"""
    ok = np.ones(len(images), bool)
    for attr, value in values.items():
        ok &= judged_as(judge, images, attr, [value] * len(images))
    return ok


def composition_scores(t2i, judge, concept: str, n: int = 40, seed: int = 0, **gen) -> dict[str, float]:
    """The three rates of the module docstring for one model (``n`` samples each, the same prompts and noise
    for every model)."""
    wanted = shapes_data.parse_concept(concept)
    prompts, _ = combination_prompts(concept, n, seed)
    images = t2i.generate(prompts, seed=seed, **gen)
    scores = {"combination": float(_judged_all(judge, images, wanted).mean())}
    for attr, value in wanted.items():
        scores[f"combination: {value} right"] = float(judged_as(judge, images, attr, [value] * n).mean())
    for attr, value in wanted.items():
        p, a = combination_prompts(concept, n, seed, part=value)
        imgs = t2i.generate(p, seed=seed, **gen)
        scores[f"part: {value}"] = float(judged_as(judge, imgs, attr, [x[attr] for x in a]).mean())
    p, _ = combination_prompts(concept, n, seed, other=True)
    scores["by accident"] = float(_judged_all(judge, t2i.generate(p, seed=seed, **gen), wanted).mean())
    return scores


def composition_table(models: Mapping[str, object], judge, concept: str, n: int = 40, seed: int = 0, **gen):
    """A DataFrame: rows = models, columns = :func:`composition_scores` (notebook 11's image table)."""
    import pandas as pd

    if not models:
        raise ValueError("models is empty; pass e.g. {'base': t2i, 'never shown': t2i_without}")
    return pd.DataFrame({name: composition_scores(m, judge, concept, n, seed, **gen) for name, m in models.items()}).T


def training_count(data, concept: str, exclude_ids=None) -> int:
    """How many training images show ``concept`` once ``exclude_ids`` (zoo ids) are left out: 0 for the
    model retrained without it (the check that it was *never shown* one)."""
    mask = data.concept_mask(concept)
    drop = set(exclude_ids or ())
    return int(sum(1 for i in data.train if mask[i] and data.ids[i] not in drop))
