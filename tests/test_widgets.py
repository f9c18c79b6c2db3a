"""The explorers of notebook 05, headless: every control at its minimum, maximum and a middle value updates
the figure and the readout (finite numbers, a new PNG) and no exception is left in a callback; the sweep's
disk cache round-trips and a corrupt or mismatched file is recomputed; the checkers read the explorer."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

import course_lib as cl
from course_lib.models import people_lm
from course_lib.widgets import sweep as S
from course_lib.widgets.controls import control_for, extremes
from tests.test_clip import TINY_CLIP
from tests.tiny import TINY_LM

PRESET = S.SweepPreset(("ga", "npo"), points=2, num_steps=4, eval_every=2, retain_sample=20,
                       values={"retain_weight": [1.0, 10.0]})


@pytest.fixture(scope="module")
def text(tmp_path_factory, small_people_data):
    """The course's fast-mode people LM (notebook 05's: the shipped weights, unpacked in seconds), so that
    forgetting and collapse are visible; a tiny model stands in for the gold one (only its numbers are read).
    A module fixture is built before the function-scoped ``course_people`` switch, so it switches itself."""
    from tests.conftest import course_people_config

    with course_people_config(small_people_data):
        session = cl.setup(mode="fast", verbose=False)
        lm = cl.zoo.load("people-lm", session, verbose=False)
        rt = dataclasses.replace(session, cache_dir=tmp_path_factory.mktemp("cache"))  # sweeps: a cache of their own
        facts = cl.data.people.load(rt)
    split = facts.split("forget10")
    gold = people_lm.train_people_lm(facts, TINY_LM, device="cpu", seed=1, progress=False)
    return rt, split, lm, gold


@pytest.fixture(scope="module")
def explorer(text):
    rt, split, lm, gold = text
    return cl.widgets.tradeoff_explorer(lm, split, reference=gold, rt=rt, preset=PRESET, progress=False)


def _numbers_finite(d: dict) -> bool:
    return all(math.isfinite(v) for v in d.values() if isinstance(v, float))


def test_sweep_has_every_setting_and_checkpoint(explorer):
    pts = explorer.sweep.frame()
    base = explorer.sweep.landmarks["base"]
    assert base["forget_acc"] > 0.3 and base["retain_acc"] > 0.3, base  # a base model that knows something
    assert set(pts.method) == {"ga", "npo"}
    assert sorted(pts.num_steps.unique()) == [2, 4]  # measured every eval_every steps, step 0 (the base) left out
    assert len(pts) == (2 + 2 * 2) * 2  # ga: 2 learning rates; npo: 2 x 2 retain weights; 2 checkpoints each
    assert pts[["forget_acc", "retain_acc", "unseen_forget_acc"]].apply(np.isfinite).all().all()
    assert set(explorer.sweep.landmarks) == {"base", "gold"}
    assert all(len(a) == len(explorer.sweep.questions) for a in explorer.sweep.answers.values())


def test_grid_includes_the_registry_default():
    for method in ("ga", "grad_diff", "npo", "simnpo"):
        grid = S.sweep_grid(method, points=2)
        info = cl.METHODS[method]
        for k, vals in grid.items():
            assert any(np.isclose(v, info.hparams[k].default) for v in vals), (method, k, vals)


def test_every_control_at_its_extremes_updates_the_figure(explorer):
    redrawn = 0
    for method in explorer.methods:
        explorer.controls["method"].value = method
        for name in [k for k in explorer.controls if k != "method"]:
            for value in extremes(explorer.controls[name]):
                before = explorer.redraws
                explorer.controls[name].value = value
                if explorer.redraws == before:  # the value is the one the control already showed
                    assert explorer.controls[name].value == pytest.approx(value, rel=0.05)
                    continue
                redrawn += 1
                assert explorer.figure_png.startswith(b"\x89PNG")
                assert _numbers_finite(explorer.state["selected"]), explorer.state
                assert "<table" in explorer.readout.value
            explorer.sliders[method][name].value = cl.METHODS[method].hparams[name].default \
                if name != "num_steps" else PRESET.num_steps
    assert redrawn >= 2 * sum(len(explorer.sliders[m]) for m in explorer.methods)  # most moves change the value
    assert not explorer.errors, explorer.errors


def test_a_slider_move_selects_the_nearest_swept_setting(explorer):
    explorer.select("npo", lr=1e-3, retain_weight=10.0, num_steps=2)
    sel = explorer.state["selected"]
    assert (sel["method"], sel["retain_weight"], sel["num_steps"]) == ("npo", 10.0, 2) and explorer.state["exact"]
    explorer.select("npo", retain_weight=9.0, num_steps=3)  # between grid values: the nearest one, flagged
    assert explorer.state["selected"]["retain_weight"] == 10.0 and not explorer.state["exact"]
    assert "Nearest computed setting" in explorer.readout.value


def test_run_exact_reproduces_a_swept_point_and_adds_it(explorer):
    explorer.select("npo", lr=1e-3, retain_weight=1.0, num_steps=4)
    swept = dict(explorer.state["selected"])
    n = len(explorer.live)
    live = explorer.run_exact()
    assert len(explorer.live) == n + 1 and explorer.state["exact"] and explorer.state["selected"]["live"]
    assert explorer.progress.value == 4
    assert live["forget_acc"] == pytest.approx(swept["forget_acc"]) and live["retain_acc"] == pytest.approx(swept["retain_acc"])


def test_errors_in_callbacks_are_captured_not_raised(explorer, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("boom")
    monkeypatch.setattr(explorer, "compute", broken)
    explorer.controls["num_steps"].value = 2 if explorer.controls["num_steps"].value != 2 else 4
    assert explorer.errors and "boom" in explorer.errors[-1] and "boom" in explorer.status.value
    explorer.errors.clear()


def test_static_fallback_is_in_the_display_bundle(explorer):
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["image/png"].startswith(b"\x89PNG")


def test_pareto_front_and_area():
    pts = [{"forget_acc": f, "retain_acc": r} for f, r in [(0.0, 0.2), (0.5, 0.9), (0.3, 0.5), (0.6, 0.6), (0.3, 0.4)]]
    front = S.pareto_front(pts)
    assert [(p["forget_acc"], p["retain_acc"]) for p in front] == [(0.0, 0.2), (0.3, 0.5), (0.5, 0.9)]
    # union of [f,1] x [0,r]: 1*0.2 + 0.7*0.3 + 0.5*0.4
    assert S.front_area(pts) == pytest.approx(0.2 + 0.21 + 0.2)
    assert S.front_area([{"forget_acc": 0.0, "retain_acc": 1.0}]) == pytest.approx(1.0)


def test_sweep_cache_round_trip_and_corruption(text, tmp_path):
    rt, split, lm, gold = text
    rt2 = dataclasses.replace(rt, cache_dir=tmp_path)
    small = S.SweepPreset(("ga",), points=1, num_steps=2, eval_every=2, retain_sample=10)
    first = S.compute_sweep(lm, split, rt=rt2, preset=small, progress=False)
    again = S.compute_sweep(lm, split, rt=rt2, preset=small, progress=False)
    assert not first.from_cache and again.from_cache and again.points == first.points
    (path,) = (tmp_path / "sweeps").glob("*.json")
    path.write_text(path.read_text()[:50])  # truncated
    with pytest.warns(UserWarning, match="unusable"):
        redo = S.compute_sweep(lm, split, rt=rt2, preset=small, progress=False)
    assert not redo.from_cache and redo.points == first.points
    data = json.loads(path.read_text())
    data["key"]["model"] = "something else"
    path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="does not match"):
        assert not S.compute_sweep(lm, split, rt=rt2, preset=small, progress=False).from_cache


def test_bad_inputs_are_clear_errors(text, explorer):
    rt, split, lm, gold = text
    with pytest.raises(ValueError, match="cannot be swept"):
        S.compute_sweep(lm, split, rt=rt, methods=["filter"], preset=PRESET, progress=False)
    with pytest.raises(ValueError, match="allowed values"):
        S.compute_sweep(lm, split, rt=rt, methods=["nope"], preset=PRESET, progress=False)
    with pytest.raises(ValueError, match="methods is empty"):
        S.compute_sweep(lm, split, rt=rt, methods=[], preset=S.SweepPreset((), 2, 4, 2, 10), progress=False)
    with pytest.raises(ValueError, match="allowed values: ga, npo"):
        explorer.select("rmu")
    with pytest.raises(ValueError, match="no hyper-parameter"):
        explorer.select("ga", beta=1.0)


def test_checkers_read_the_explorer(explorer, capsys):
    from course_lib.checks import nb05

    nb05.check_pareto_front(S.pareto_front, explorer)
    with pytest.raises(AssertionError, match="kept every point"):
        nb05.check_pareto_front(lambda pts: pts, explorer)
    nb05.check_dominant_method(None, explorer)
    assert "Not attempted" in capsys.readouterr().out
    areas = explorer.front_areas()
    nb05.check_dominant_method(max(areas, key=areas.get), explorer)
    other = next(m for m in areas if m != max(areas, key=areas.get))
    with pytest.raises(AssertionError, match=f"not {other}"):
        nb05.check_dominant_method(other, explorer)
    gap, best = explorer.best_gap_to_gold()
    explorer.select(best["method"], **{k: best[k] for k in explorer.sweep.grids[best["method"]]},
                    num_steps=best["num_steps"])
    nb05.check_close_to_gold(explorer, gap + 1e-9)
    assert gap > 0.01  # the tiny gold model differs from every unlearned one
    with pytest.raises(AssertionError, match="from the gold model"):
        nb05.check_close_to_gold(explorer, gap / 2)


def test_controls_follow_the_registry():
    h = cl.METHODS["npo"].hparams
    lr = control_for("lr", h["lr"])
    assert type(lr).__name__ == "FloatLogSlider" and lr.value == pytest.approx(h["lr"].default)
    assert 10 ** lr.min == pytest.approx(h["lr"].low) and 10 ** lr.max == pytest.approx(h["lr"].high)
    steps = control_for("num_steps", h["num_steps"])
    assert type(steps).__name__ == "IntSlider" and (steps.min, steps.max) == (h["num_steps"].low, h["num_steps"].high)
    assert not lr.continuous_update and not steps.continuous_update


# ---------------------------------------------------------------------------------------------- SLUG
@pytest.fixture(scope="module")
def slug_view():
    from course_lib.models.clip import train_shapes_clip

    cl.setup(mode="fast", verbose=False)
    data = cl.data.shapes.load(mode="fast")
    clip = train_shapes_clip(data, TINY_CLIP, data.train, seed=0, progress=False)
    return cl.widgets.slug_explorer(clip, data.split("red")), clip


def test_slug_explorer_edits_one_layer_of_its_own_copy(slug_view):
    view, clip = slug_view
    original = {k: v.clone() for k, v in clip.model.state_dict().items()}
    layer = view.controls["layer"].options[0][1]
    view.select(layer=layer, step=0.5)
    changed = [k for k, v in view.clip.model.state_dict().items() if not np.allclose(v.numpy(), original[k].numpy())]
    assert changed == [layer]
    assert all(np.array_equal(v.numpy(), original[k].numpy()) for k, v in clip.model.state_dict().items())
    view.select(step=0.0)
    assert all(np.array_equal(v.numpy(), original[k].numpy()) for k, v in view.clip.model.state_dict().items())
    assert view.state["forget_accuracy"] == pytest.approx(view.before["forget_accuracy"])


def test_slug_explorer_controls_at_extremes(slug_view):
    view, _ = slug_view
    layers = [v for _, v in view.controls["layer"].options]
    for layer in (layers[0], layers[len(layers) // 2], layers[-1]):
        view.controls["layer"].value = layer
        for step in extremes(view.controls["step"]):
            before = view.redraws
            view.controls["step"].value = step
            assert view.redraws > before or step == view.state["step"]
            assert _numbers_finite({k: v for k, v in view.state.items() if k != "before"})
    view.select(layer=layers[0], step=view.max_step)
    assert view.state["forget_accuracy"] < view.before["forget_accuracy"]  # a full step forgets
    assert not view.errors, view.errors
    with pytest.raises(ValueError, match="not a SLUG candidate"):
        view.select(layer="nope")
    with pytest.raises(ValueError, match="must be in"):
        view.select(step=-1.0)
