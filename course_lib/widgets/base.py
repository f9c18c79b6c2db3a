"""What every explorer of notebook 05 shares: a figure drawn to PNG, a status line, error capture, and a
static fallback so that an executed notebook shows the default setting where widgets cannot render.

Each explorer is split into *compute* (numbers for a setting; no widgets), *render* (a figure and HTML
from those numbers) and *make_ui* (the controls, wired to the two). Callbacks read only the explorer's
own state, never notebook globals.
"""
from __future__ import annotations

import html
import io
import time
import traceback



def figure_png(fig, dpi: int = 72) -> bytes:
    """The figure as PNG bytes (what an ``ipywidgets.Image`` shows)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})  # light compression: 20 ms faster
    return buf.getvalue()


def new_figure(ncols: int = 2, width: float = 9.5, height: float = 3.6, dpi: int = 72):
    """A figure that no pyplot backend shows by itself (the explorer owns it and sends it as PNG)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    axes = fig.subplots(1, ncols) if ncols > 1 else [fig.subplots(1, 1)]
    # A fixed layout: "constrained" re-solves the layout on every redraw and doubles the time to a new PNG.
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.9, wspace=0.25)
    return fig, list(axes)


class Blitter:
    """Off-screen blitting: draw the figure once, keep its pixels, and on each update draw only the artists that
    move (``dynamic``) over them. Text (ticks, labels, legends) is most of matplotlib's drawing time, and it does
    not change when a slider moves: this takes a slider move from 156 ms to 18 ms (median, 2 busy cores; bench_widgets)."""

    def __init__(self, fig):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.fig, self.canvas = fig, FigureCanvasAgg(fig)
        self.dynamic: list = []
        self.background = None

    def set_dynamic(self, artists) -> None:
        """The artists redrawn on every update (they are left out of the cached background)."""
        for a in artists:
            a.set_animated(True)
        self.dynamic, self.background = list(artists), None

    def invalidate(self) -> None:
        """Something static changed: the next :meth:`png` redraws everything."""
        self.background = None

    def png(self) -> bytes:
        from PIL import Image

        if self.background is None:
            self.canvas.draw()  # animated (dynamic) artists are skipped here
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        else:
            self.canvas.restore_region(self.background)
        for a in self.dynamic:
            self.fig.draw_artist(a)
        w, h = self.canvas.get_width_height()
        buf = io.BytesIO()
        Image.frombuffer("RGBA", (w, h), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).save(
            buf, format="png", compress_level=1)
        return buf.getvalue()


def table_html(rows: list[dict], title: str = "") -> str:
    """A small HTML table from a list of dicts (the readouts under the figure)."""
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{html.escape(_fmt(r.get(c)))}</td>" for c in cols)
                   + "</tr>" for r in rows)
    cap = f"<b>{html.escape(title)}</b>" if title else ""
    return f"{cap}<table style='border-collapse:collapse;font-size:12px'><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}"
    return "" if v is None else str(v)


class Explorer:
    """Base of the explorers: ``.ui`` (an ipywidgets box), ``.controls`` (name -> widget), ``.state`` (the
    numbers on screen), ``.errors`` (exceptions raised by callbacks, also shown in the status line),
    ``.redraws`` (how many times the figure was redrawn) and ``.figure_png`` (the current figure).

    Displaying an explorer shows the live UI where a widget manager runs (JupyterLab, VS Code) and the PNG
    of the current figure everywhere else (HTML export, GitHub, a front end without widgets).
    """

    def __init__(self):
        import ipywidgets as W

        self.controls: dict = {}
        self.state: dict = {}
        self.errors: list[str] = []
        self.redraws = 0
        self.last_update_seconds = 0.0
        self.image = W.Image(format="png", layout=W.Layout(width="auto", max_width="100%"))
        self.status = W.HTML()
        self.readout = W.HTML()
        self.ui = None

    # -- error capture: an exception in a callback goes to the status line and .errors, never to an Output
    def _guarded(self, fn):
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - shown to the learner, kept for tests
                self.errors.append("".join(traceback.format_exception_only(type(err), err)).strip())
                self.status.value = (f"<span style='color:#b00020'>Error: {html.escape(self.errors[-1])}</span>")
        return wrapper

    def _show_figure(self, fig, png: bytes | None = None) -> None:
        self.image.value = png if png is not None else figure_png(fig)
        self.redraws += 1

    @property
    def figure_png(self) -> bytes:
        return bytes(self.image.value)

    def update(self) -> None:
        """Recompute and redraw for the controls' current values (what every control change calls)."""
        start = time.perf_counter()
        self._update()
        self.last_update_seconds = time.perf_counter() - start

    def _update(self) -> None:  # pragma: no cover - each explorer implements it
        raise NotImplementedError

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.ui._repr_mimebundle_(include=include, exclude=exclude)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data = dict(data)
        if self.image.value:
            data["image/png"] = self.figure_png
        data["text/plain"] = f"{type(self).__name__} (a live widget; the figure shows its current setting)"
        return data

    def close(self) -> None:
        """Close the widgets (and free the figure)."""
        for w in [*self.controls.values(), self.image, self.status, self.readout, self.ui]:
            if w is not None:
                w.close()
