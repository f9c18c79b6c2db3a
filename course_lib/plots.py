"""One plot style and the kit's standard figures (notebook 00 shows the colour code).

The same colours everywhere: forget, retain, unseen forget (paraphrases), holdout, gold model, base model.
"""
from __future__ import annotations

COLORS = {
    "forget": "#d62728",         # red: what we want gone
    "retain": "#1f77b4",         # blue: what we want kept
    "unseen_forget": "#ff7f0e",  # orange: paraphrases of the forget set, never trained on
    "holdout": "#7f7f7f",        # grey: people never trained on
    "world": "#17becf",          # teal: world facts
    "gold": "#2ca02c",           # green: the retrained (exact-unlearning) model
    "base": "#000000",           # black: the model before unlearning
}


def use_style() -> None:
    """Small, readable figures with labelled axes; called by ``cl.setup``."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.figsize": (6.0, 3.6),
        "figure.dpi": 100,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "legend.frameon": False,
    })


def loss_curve(history, ax=None, title: str = "Training loss"):
    """Plot ``history`` (a list of dicts with ``step`` and ``loss``) and return the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["loss"] for h in history], color=COLORS["base"])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    return ax


class LiveLoss:
    """A training-loop callback that redraws the loss curve every ``every`` steps (notebook 02).

    In a notebook it updates one figure in place; elsewhere (a script, CI) it draws nothing until
    :meth:`show` is called at the end.
    """

    def __init__(self, every: int = 50, title: str = "Training loss"):
        self.every, self.title = every, title
        self.steps: list[int] = []
        self.losses: list[float] = []
        self._handle = None

    def on_step_end(self, state) -> None:
        self.steps.append(state["step"])
        self.losses.append(state["loss"])
        if state["step"] % self.every == 0:
            self._redraw()

    def figure(self):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(self.steps, self.losses, color=COLORS["base"], lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (log scale)")
        ax.set_title(self.title)
        plt.close(fig)
        return fig

    def _redraw(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)

    def show(self):
        """The final figure (returned, so that a notebook cell displays it)."""
        return self.figure()


def zoo_loss_curve(info: dict, ax=None, title: str = "How the base model was trained"):
    """The loss curve a zoo model recorded when it was trained (``cl.zoo.info(name, rt)``)."""
    import matplotlib.pyplot as plt

    curve = info.get("loss_curve") or []
    if ax is None:
        _, ax = plt.subplots()
    if curve:
        ax.plot([c[0] for c in curve], [c[1] for c in curve], color=COLORS["base"])
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("answer loss (log scale)")
    ax.set_title(title)
    return ax


def loss_gap(member_loss, nonmember_loss, ax=None, labels=("train questions", "holdout people")):
    """Histograms of per-question answer loss: members (trained on) vs non-members (notebook 02)."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots()
    hi = float(np.percentile(np.concatenate([member_loss, nonmember_loss]), 99)) + 1e-6
    bins = np.linspace(0, hi, 40)
    ax.hist(member_loss, bins=bins, alpha=0.7, color=COLORS["retain"], label=labels[0])
    ax.hist(nonmember_loss, bins=bins, alpha=0.7, color=COLORS["holdout"], label=labels[1])
    ax.set_xlabel("answer loss (negative log-probability per token)")
    ax.set_ylabel("questions")
    ax.set_title("Trained-on answers have far lower loss: the model memorised them")
    ax.legend()
    return ax


def objectives_bars(results: dict, ax=None, title: str = "The survey's three objectives (higher is better)"):
    """Grouped bars of Accuracy / Locality / Generalizability for several models (notebook 02)."""
    import matplotlib.pyplot as plt
    import numpy as np

    names = ["accuracy", "locality", "generalizability"]
    if ax is None:
        _, ax = plt.subplots()
    width = 0.8 / max(1, len(results))
    palette = [COLORS["base"], COLORS["gold"], COLORS["forget"], COLORS["unseen_forget"], COLORS["retain"]]
    for i, (model_name, res) in enumerate(results.items()):
        xs = np.arange(len(names)) + i * width
        ax.bar(xs, [res[n] for n in names], width, label=model_name, color=palette[i % len(palette)])
    ax.set_xticks(np.arange(len(names)) + width * (len(results) - 1) / 2)
    ax.set_xticklabels(["Accuracy\n(forget set gone)", "Locality\n(retain set kept)",
                        "Generalizability\n(paraphrases gone)"])
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(loc="lower right")
    return ax
