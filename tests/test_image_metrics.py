"""UnlearnCanvas-style image metrics against hand computations on hand-made generators and judges."""
import numpy as np
import pytest
import torch

from course_lib.data import shapes as SD
from course_lib.evaluation import image as I

SHAPES, COLOURS = SD.CLASSES["shape"], SD.CLASSES["colour"]


def _parse(caption: str) -> dict:
    words = caption.split()
    return {"shape": next(w for w in words if w in SHAPES), "colour": next(w for w in words if w in COLOURS)}


class CodedGenerator:
    """A stand-in text-to-image model: pixel (0, 0) of channel 0 encodes the drawn shape, of channel 1 the
    colour. ``swap`` maps a prompted shape to the one drawn; ``wrong_colour_every`` breaks every k-th colour."""

    def __init__(self, swap=None, wrong_colour_every=0):
        self.swap, self.every = swap or {}, wrong_colour_every

    def generate(self, prompts, seed=0, **kw):
        out = torch.zeros(len(prompts), 3, 4, 4)
        for i, p in enumerate(prompts):
            a = _parse(p)
            shape = self.swap.get(a["shape"], a["shape"])
            colour = COLOURS.index(a["colour"])
            if self.every and i % self.every == 0:
                colour = (colour + 1) % len(COLOURS)
            out[i, 0, 0, 0] = SHAPES.index(shape) / 10
            out[i, 1, 0, 0] = colour / 10
            out[i, 2] = torch.rand(4, 4, generator=torch.Generator().manual_seed(seed + i))
        return out


class CodedJudge(torch.nn.Module):
    """Reads the code back: a perfect judge for :class:`CodedGenerator`."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.features = torch.nn.Flatten()

    def predict(self, images):
        return {"shape": [SHAPES[int(round(float(v) * 10))] for v in images[:, 0, 0, 0]],
                "colour": [COLOURS[int(round(float(v) * 10))] for v in images[:, 1, 0, 0]]}


def test_concept_prompts_are_seeded_and_show_the_value():
    p, a = I.concept_prompts("circle", 30, seed=0)
    assert len(p) == 30 and all("circle" in x for x in p) and all(x["shape"] == "circle" for x in a)
    assert p == I.concept_prompts("circle", 30, seed=0)[0] and p != I.concept_prompts("circle", 30, seed=1)[0]
    assert len({x["colour"] for x in a}) > 1  # the other attributes vary
    with pytest.raises(ValueError, match="allowed values"):
        I.concept_prompts("purple triangle", 3)


def test_canvas_scores_match_a_hand_count():
    gen = CodedGenerator(swap={"circle": "square"}, wrong_colour_every=4)
    n = 8
    s = I.canvas_scores(gen, "circle", CodedJudge(), samples_per_value=n)
    # every circle prompt drew a square: UA = 1; the other four shapes are drawn as prompted: IRA = 1;
    # each shape's 8 prompts are one generate call, in which images 0 and 4 get the wrong colour: CRA = 6/8.
    assert s["UA"] == 1.0 and s["IRA"] == 1.0
    assert s["CRA"] == pytest.approx(1 - 2 / 8)
    with_values = I.canvas_scores(gen, "circle", CodedJudge(), samples_per_value=n, per_value=True)
    assert with_values["circle"] == 0.0 and all(with_values[v] == 1.0 for v in SHAPES[1:])
    assert np.isnan(s["judge_FD"]) and np.isnan(s["seconds"]) and np.isnan(s["bytes_changed"])
    untouched = I.canvas_scores(CodedGenerator(), "circle", CodedJudge(), samples_per_value=n)
    assert untouched["UA"] == 0.0 and untouched["CRA"] == 1.0


def test_canvas_scores_for_a_colour_swap_the_domains():
    gen = CodedGenerator(swap={"triangle": "cross"})
    s = I.canvas_scores(gen, "red", CodedJudge(), samples_per_value=10)
    # erasing a colour: in-domain = the other colours (all right), cross-domain = shapes (triangles wrong)
    prompts, attrs = [], []
    for c in COLOURS[1:]:
        p, a = I.concept_prompts(c, 10, 0)
        attrs += a
    expected_cra = np.mean([a["shape"] != "triangle" for a in attrs])
    assert s["UA"] == 0.0 and s["IRA"] == 1.0 and s["CRA"] == pytest.approx(expected_cra)


def test_frechet_distance_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (500, 1)), rng.normal(2, 3, (400, 1))
    va, vb = a.var(ddof=1), b.var(ddof=1)
    expected = (a.mean() - b.mean()) ** 2 + va + vb - 2 * np.sqrt(va * vb)
    assert I.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    # diagonal covariances: the sum over dimensions of the 1-D formula
    x, y = rng.normal(0, [1, 2], (800, 2)), rng.normal([1, 0], [1, 1], (800, 2))
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    assert I.frechet_distance(x, y) > 1.0
    assert I.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="feature rows"):
        I.frechet_distance(x, y[:, :1])


def test_bytes_changed_counts_changed_elements_times_their_size():
    class Holder:
        def __init__(self, unet):
            self.unet = unet

    base = torch.nn.Linear(4, 3)
    edited = torch.nn.Linear(4, 3)
    edited.load_state_dict(base.state_dict())
    with torch.no_grad():
        edited.weight[0, :2] += 1.0
        edited.bias[1] += 0.5
    assert I.bytes_changed(Holder(edited), Holder(base)) == 3 * 4  # three float32 elements
    assert I.bytes_changed(Holder(base), Holder(base)) == 0


def test_judged_as_and_recognition():
    gen, judge = CodedGenerator(swap={"circle": "square"}), CodedJudge()
    assert I.recognition(gen, judge, "circle", n=6) == 0.0
    assert I.recognition(gen, judge, "square", n=6) == 1.0
    assert I.recognition(CodedGenerator(wrong_colour_every=2), judge, "circle", n=6, attr="colour") == 0.5
    table = I.recognition_table({"a": gen, "b": CodedGenerator()}, judge, ["circle", "square"], n=4)
    assert table.loc["a", "circle"] == 0.0 and table.loc["b", "circle"] == 1.0
    with pytest.raises(ValueError, match="wanted"):
        I.judged_as(judge, torch.zeros(2, 3, 4, 4), "shape", ["circle"])


def test_prompt_fidelity_counts_shape_colour_and_both():
    s = I.prompt_fidelity(CodedGenerator(wrong_colour_every=4), CodedJudge(), n=20)
    assert s == {"shape": 1.0, "colour": 0.75, "both": 0.75}
    s = I.prompt_fidelity(CodedGenerator(swap={v: "cross" for v in SHAPES}), CodedJudge(), n=40)
    _, attrs = I.random_prompts(40)
    assert s["shape"] == pytest.approx(np.mean([a["shape"] == "cross" for a in attrs])) and s["colour"] == 1.0


def test_reference_images_leave_out_the_concept():
    data = SD.load(mode="fast")
    ref = I.reference_images(data, "circle")
    n_test_circles = int(data.concept_mask("circle")[data.test].sum())
    assert len(ref) == len(data.test) - n_test_circles
