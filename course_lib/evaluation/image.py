"""Image metrics for concept erasure in text-to-image models, UnlearnCanvas-style (notebook 09).

UnlearnCanvas (Zhang et al. 2024, "UnlearnCanvas: A Stylized Image Dataset for Enhanced Machine
Unlearning Evaluation in Diffusion Models") scores every method with the same numbers; here they are
measured by the shape judge (``cl.zoo.load("shape-judge", rt)``) on images generated for prompts:

- **UA** (unlearning accuracy): of the samples prompted with the erased concept, the fraction the judge
  does *not* classify as that concept (higher = more erased).
- **IRA** (in-domain retain accuracy): samples prompted with the *other* values of the same attribute
  (the other shapes when a shape is erased), fraction judged as prompted.
- **CRA** (cross-domain retain accuracy): the same retain samples judged on the *other* attribute
  (colour when a shape is erased, shape when a colour is), fraction judged as prompted.
- **judge FD** (a stand-in for FID): the Fréchet distance between Gaussians fitted to the judge's
  penultimate features of the retain samples and of real held-out images of the same concepts,
  ``||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 (S_g S_r)^(1/2))`` (Heusel et al. 2017). Lower = closer to real
  images; at this sample size it is biased upwards, so compare models on the same prompts only.
- **seconds**: the unlearning run's time; **bytes changed**: bytes of weights that differ from the base
  model (elements changed x bytes per element).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ..data import shapes as shapes_data

CANVAS_ATTRIBUTES = ("shape", "colour")  # the judge's two headline attributes (99-100 % on real images)
OTHER = {"shape": "colour", "colour": "shape"}


def attribute_of(value: str) -> str:
    """The attribute a single value belongs to (``"circle"`` -> ``"shape"``); shape or colour values only."""
    for attr in CANVAS_ATTRIBUTES:
        if value in shapes_data.CLASSES[attr]:
            return attr
    allowed = ", ".join(v for a in CANVAS_ATTRIBUTES for v in shapes_data.CLASSES[a])
    raise ValueError(f"concept={value!r} is not one shape or colour; allowed values: {allowed}")


def concept_prompts(value: str, n: int, seed: int = 0) -> tuple[list[str], list[dict]]:
    """``n`` captions showing ``value`` with the other attributes drawn at random (seeded), and their
    attribute dicts: the prompts every metric here generates from."""
    attr = attribute_of(value)
    rng = np.random.default_rng([seed, shapes_data.CLASSES[attr].index(value), len(attr)])
    prompts, attrs = [], []
    for _ in range(n):
        a = {k: vals[rng.integers(len(vals))] for k, vals in shapes_data.CLASSES.items()}
        a[attr] = value
        attrs.append(a)
        prompts.append(shapes_data.caption(**a))
    return prompts, attrs


def judged_as(judge, images: torch.Tensor, attr: str, wanted: Sequence[str]) -> np.ndarray:
    """Boolean per image: does the judge's ``attr`` prediction equal ``wanted[i]``?"""
    if len(images) != len(wanted):
        raise ValueError(f"{len(images)} images but {len(wanted)} wanted labels")
    pred = judge.predict(images)[attr] if len(images) else []
    return np.array([p == w for p, w in zip(pred, wanted)], dtype=bool)


def recognition(t2i, judge, value: str, n: int = 40, seed: int = 0, attr: str | None = None, **gen) -> float:
    """Fraction of ``n`` samples prompted with ``value`` that the judge names ``value`` (its attribute;
    or ``attr`` of each prompt when given, e.g. colour accuracy on shape prompts)."""
    prompts, attrs = concept_prompts(value, n, seed)
    images = t2i.generate(prompts, seed=seed, **gen)
    a = attr or attribute_of(value)
    return float(judged_as(judge, images, a, [x[a] for x in attrs]).mean())


def random_prompts(n: int, seed: int = 0) -> tuple[list[str], list[dict]]:
    """``n`` captions with every attribute drawn at random (seeded), and their attribute dicts."""
    rng = np.random.default_rng([seed, 977])
    attrs = [{k: vals[rng.integers(len(vals))] for k, vals in shapes_data.CLASSES.items()} for _ in range(n)]
    return [shapes_data.caption(**a) for a in attrs], attrs


def prompt_fidelity(t2i, judge, n: int = 100, seed: int = 0, **gen) -> dict:
    """How often samples for ``n`` random captions show the prompted shape, colour, and both (the judge's
    verdict): the base model's headline quality number (notebook 09)."""
    prompts, attrs = random_prompts(n, seed)
    images = t2i.generate(prompts, seed=seed, **gen)
    shape = judged_as(judge, images, "shape", [a["shape"] for a in attrs])
    colour = judged_as(judge, images, "colour", [a["colour"] for a in attrs])
    return {"shape": float(shape.mean()), "colour": float(colour.mean()), "both": float((shape & colour).mean())}


def recognition_table(models: Mapping[str, object], judge, values: Sequence[str], n: int = 40, seed: int = 0,
                      **gen):
    """A DataFrame: rows = models, columns = values, entries = :func:`recognition` (over-erasure at a glance)."""
    import pandas as pd

    return pd.DataFrame({name: {v: recognition(m, judge, v, n, seed, **gen) for v in values}
                         for name, m in models.items()}).T


def judge_features(judge, images: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """The judge's penultimate activations (the hidden layer before its heads), ``(N, hidden)``."""
    was = judge.training
    judge.eval()
    dev = next(judge.parameters()).device
    with torch.no_grad():
        feats = [judge.features(images[i:i + batch_size].to(dev)).float().cpu()
                 for i in range(0, len(images), batch_size)]
    judge.train(was)
    return torch.cat(feats).numpy().astype(np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to rows of ``a`` and ``b`` (as FID does on Inception features)."""
    from scipy import linalg

    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two sets of >= 2 feature rows of equal width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(s_a @ s_b)
    if not np.isfinite(covmean).all():  # singular product: the usual FID fix, a small ridge
        eps = np.eye(len(s_a)) * 1e-6
        covmean = linalg.sqrtm((s_a + eps) @ (s_b + eps))
    covmean = np.real(covmean)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean))


def bytes_changed(model, base, atol: float = 0.0) -> int:
    """Bytes of weights in ``model`` that differ from ``base`` (UNet and text encoder): changed elements
    times bytes per element. Compares ``.unet`` and ``.text_encoder`` where present, else the modules."""
    def tensors(m):
        parts = {}
        for name in ("unet", "text_encoder"):
            mod = getattr(m, name, None)
            if mod is not None:
                parts.update({f"{name}.{k}": v for k, v in mod.state_dict().items()})
        return parts or dict(m.state_dict())

    mine, ref = tensors(model), tensors(base)
    if mine.keys() != ref.keys():
        raise ValueError("model and base have different weights: compare a model with the base it was unlearned from")
    total = 0
    for k, v in mine.items():
        diff = (v.detach().cpu() - ref[k].detach().cpu()).abs() > atol
        total += int(diff.sum()) * v.element_size()
    return total


def value_samples(t2i, values: Sequence[str], n: int, seed: int = 0, **gen) -> dict:
    """``{value: (images, attrs)}``: ``n`` samples for each value's :func:`concept_prompts`, one ``generate``
    call per value (so a value's samples do not depend on which other values are asked for)."""
    out = {}
    for v in values:
        prompts, attrs = concept_prompts(v, n, seed)
        out[v] = (t2i.generate(prompts, seed=seed, **gen), attrs)
    return out


def canvas_scores(t2i, concept: str, judge, *, reference: torch.Tensor | None = None, base=None, result=None,
                  samples_per_value: int = 20, seed: int = 0, per_value: bool = False, **gen) -> dict:
    """The UnlearnCanvas numbers of ``t2i`` for the erased ``concept`` (a shape or a colour).

    ``reference``: real images of the retain concepts for the judge FD (e.g. :func:`reference_images`);
    None skips it. ``base``: the model before unlearning (for bytes changed); ``result``: the
    :class:`UnlearnResult` (for its seconds). ``per_value=True`` adds the recognition of every value of
    the concept's attribute (over-erasure at a glance). ``gen``: passed to ``generate``.
    Returns ``{"UA", "IRA", "CRA", "judge_FD", "seconds", "bytes_changed"}`` (NaN where not measured).
    """
    attr = attribute_of(concept)
    other = OTHER[attr]
    samples = value_samples(t2i, shapes_data.CLASSES[attr], samples_per_value, seed, **gen)
    hits = {v: judged_as(judge, imgs, attr, [a[attr] for a in attrs]) for v, (imgs, attrs) in samples.items()}
    retain = [v for v in samples if v != concept]
    cross = np.concatenate([judged_as(judge, samples[v][0], other, [a[other] for a in samples[v][1]]) for v in retain])
    retain_images = torch.cat([samples[v][0] for v in retain])
    fd = (frechet_distance(judge_features(judge, retain_images), judge_features(judge, reference))
          if reference is not None else float("nan"))
    out = {"UA": 1.0 - float(hits[concept].mean()), "IRA": float(np.concatenate([hits[v] for v in retain]).mean()),
           "CRA": float(cross.mean()), "judge_FD": fd,
           "seconds": float(getattr(result, "seconds", float("nan"))) if result is not None else float("nan"),
           "bytes_changed": bytes_changed(t2i, base) if base is not None else float("nan")}
    if per_value:
        out.update({v: float(h.mean()) for v, h in hits.items()})
    return out


def canvas_table(models: Mapping[str, object], concept: str, judge, *, base=None,
                 results: Mapping[str, object] | None = None, **kw):
    """:func:`canvas_scores` for several models (``{"name": t2i}``) as one DataFrame, one row per model.
    ``results``: ``{"name": UnlearnResult}`` for the seconds column."""
    import pandas as pd

    results = results or {}
    rows = {name: canvas_scores(m, concept, judge, base=base, result=results.get(name), **kw)
            for name, m in models.items()}
    return pd.DataFrame(rows).T


def reference_images(data: "shapes_data.ShapesData", concept: str, subset: str = "test") -> torch.Tensor:
    """Real images of ``data`` (``subset`` "test" or "train") whose attribute is not ``concept``: the
    judge FD's reference for the retain samples."""
    if subset not in ("test", "train"):
        raise ValueError(f"subset={subset!r}; allowed values: 'test', 'train'")
    idx = getattr(data, subset)
    keep = idx[~data.concept_mask(concept)[idx]]
    return data.images[torch.as_tensor(keep)]
