"""Controls built from a method's hyper-parameters (``cl.METHODS[name].hparams``), notebook 05.

Each :class:`~course_lib.unlearning.registry.HParam` becomes the widget its kind calls for: a log slider for
a learning rate, an integer slider for a number of steps, a dropdown for a choice, a checkbox for a flag.
The slider ranges are the registry's ``low``..``high``, so the registry is the one place they live.
"""
from __future__ import annotations

import math

STYLE = {"description_width": "110px"}


def control_for(name: str, h, value=None):
    """The widget for hyper-parameter ``name`` (an ``HParam``), set to ``value`` (default: ``h.default``).
    ``continuous_update=False``: the explorer recomputes when the slider is released, not while it moves."""
    import ipywidgets as W

    value = h.default if value is None else value
    common = dict(description=name, style=STYLE, continuous_update=False, tooltip=h.help,
                  layout=W.Layout(width="330px"))
    if h.kind == "choice":
        return W.Dropdown(options=list(h.choices), value=value, description=name, style=STYLE,
                          layout=W.Layout(width="330px"))
    if h.kind == "bool":
        return W.Checkbox(value=bool(value), description=name, style=STYLE)
    lo, hi = _range(h, value)
    if h.kind == "int":
        return W.IntSlider(value=int(value), min=int(lo), max=int(hi), step=1, **common)
    if h.log:
        return W.FloatLogSlider(value=float(value), base=10, min=math.log10(lo), max=math.log10(hi), step=0.05,
                                readout_format=".1e", **common)
    return W.FloatSlider(value=float(value), min=float(lo), max=float(hi), step=(hi - lo) / 50, readout_format=".2f",
                         **common)


def _range(h, value) -> tuple[float, float]:
    """The slider's range: the registry's ``low``..``high``, widened to include ``value``."""
    lo = h.low if h.low is not None else value
    hi = h.high if h.high is not None else value
    return min(lo, value), max(hi, value)


def widen(widget, lo: float, hi: float) -> None:
    """Stretch a slider's range to include ``lo``..``hi`` (values an explorer's sweep holds must be reachable)."""
    import ipywidgets as W

    if isinstance(widget, W.FloatLogSlider):
        widget.min, widget.max = min(widget.min, math.log10(lo)), max(widget.max, math.log10(hi))
    elif isinstance(widget, (W.IntSlider, W.FloatSlider)):
        widget.min, widget.max = min(widget.min, lo), max(widget.max, hi)


def extremes(widget) -> list:
    """The values a test sets a control to: its minimum, maximum and a middle value (every option of a
    dropdown, both states of a checkbox)."""
    import ipywidgets as W

    if isinstance(widget, W.Dropdown) or isinstance(widget, W.SelectionSlider):
        return [v for _, v in widget.options] if widget.options and isinstance(widget.options[0], tuple) \
            else list(widget.options)
    if isinstance(widget, W.Checkbox):
        return [True, False]
    if isinstance(widget, W.FloatLogSlider):
        lo, hi = widget.base ** widget.min, widget.base ** widget.max
        return [lo, hi, math.sqrt(lo * hi)]
    if isinstance(widget, (W.IntSlider, W.FloatSlider)):
        mid = (widget.min + widget.max) / 2
        return [widget.min, widget.max, int(mid) if isinstance(widget, W.IntSlider) else mid]
    raise TypeError(f"no extreme values for a {type(widget).__name__}")
