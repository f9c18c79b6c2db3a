"""Live explorers for the utility-forgetting trade-off (notebook 05), built with ipywidgets.

- :func:`tradeoff_explorer`: a text unlearning method's hyper-parameters vs the forget-vs-utility plane;
- :func:`slug_explorer`: SLUG's step size and layer on the tiny CLIP, applied on the fly;
- :func:`erasure_explorer`: a diffusion model's concept erasure (method, strength, steps) with image grids.

Each explorer separates compute / render / make_ui (see :mod:`.base`); displaying one shows the live UI,
or a static figure of its current setting where widgets cannot render.
"""
from __future__ import annotations

from .tradeoff import TradeoffExplorer, tradeoff_explorer  # noqa: F401


def __getattr__(name: str):
    if name in ("slug_explorer", "SlugExplorer"):
        from . import slug_ui as mod

        return getattr(mod, name)
    if name in ("erasure_explorer", "ErasureExplorer"):
        from . import erasure as mod

        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
