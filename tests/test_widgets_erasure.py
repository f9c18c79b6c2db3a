"""The diffusion erasure explorer (notebook 05) on a tiny text-to-image model: the sweep covers every method,
strength and checkpoint; every control at its extremes redraws; the cache round-trips; bad input is clear."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import course_lib as cl
from course_lib.data import shapes as SD
from course_lib.widgets import erasure as E
from course_lib.widgets.controls import extremes
from tests.test_t2i import tiny_t2i

PRESET = E.ErasurePreset(("esd", "salun"), {"esd": [1.0, 4.0], "salun": [0.5]}, num_steps=4, eval_every=2, samples=4,
                         hparams={"esd": {"batch_size": 4, "ddim_steps": 4}, "salun": {"batch_size": 4}})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    session = cl.setup(mode="fast", verbose=False)
    judge = cl.zoo.load("shape-judge", session, verbose=False)
    rt = dataclasses.replace(session, cache_dir=tmp_path_factory.mktemp("cache"))
    return rt, tiny_t2i(num_steps=20), judge, SD.load(mode="fast")


@pytest.fixture(scope="module")
def view(setup):
    rt, t2i, judge, data = setup
    return cl.widgets.erasure_explorer(t2i, judge, data, "circle", rt=rt, preset=PRESET, progress=False)


def test_sweep_covers_methods_strengths_and_checkpoints(view):
    pts = view.points()
    assert {(p["method"], p["strength"], p["num_steps"]) for p in pts} == \
        {("esd", 1.0, 2), ("esd", 1.0, 4), ("esd", 4.0, 2), ("esd", 4.0, 4), ("salun", 0.5, 2), ("salun", 0.5, 4)}
    assert all(0 <= p[k] <= 1 for p in pts for k in ("UA", "IRA", "CRA"))
    img = view._grid(pts[0]["id"], "concept")
    assert img.shape == (view.sweep["size"], 4 * view.sweep["size"], 3) and img.dtype == np.uint8


def test_every_control_at_its_extremes_redraws(view):
    for method in view.methods:
        view.controls["method"].value = method
        for name in ("strength", "num_steps"):
            for value in extremes(view.controls[name]):
                view.controls[name].value = value
                assert view.state["selected"]["method"] == method
                assert view.figure_png.startswith(b"\x89PNG") and "UnlearnCanvas" in view.readout.value
    view.controls["method"].value = "esd"
    view.controls["strength"].value = 4.0
    view.controls["num_steps"].value = 2
    assert (view.state["selected"]["strength"], view.state["selected"]["num_steps"]) == (4.0, 2)
    assert not view.errors, view.errors


def test_cache_round_trip(setup, view):
    rt, t2i, judge, data = setup
    again = E.compute_erasure_sweep(t2i, judge, data, "circle", rt=rt, preset=PRESET, progress=False)
    assert again["from_cache"] and again["points"] == view.sweep["points"]


def test_bad_inputs(setup):
    rt, t2i, judge, data = setup
    with pytest.raises(ValueError, match="neighbour"):
        E.compute_erasure_sweep(t2i, judge, data, "circle", neighbour="circle", rt=rt, preset=PRESET, progress=False)
    with pytest.raises(ValueError, match="same attribute"):
        E.compute_erasure_sweep(t2i, judge, data, "circle", neighbour="red", rt=rt, preset=PRESET, progress=False)
    with pytest.raises(ValueError, match="Known values"):
        E.compute_erasure_sweep(t2i, judge, data, "dodecahedron", neighbour="circle", rt=rt, preset=PRESET,
                                progress=False)
