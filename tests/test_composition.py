"""Composition rates (notebook 11, section 5): the prompts each rate uses, and the rates on stand-in
generators that draw exactly what they are asked (or never the combination), scored by the real judge."""
import itertools

import pytest
import torch

import course_lib as cl
from course_lib.data import shapes as SD
from course_lib.evaluation import composition as C

CONCEPT = "purple triangle"


class Painter:
    """A stand-in t2i model: renders each prompt's caption exactly, except ``refuse`` (drawn as a red square)."""

    def __init__(self, refuse: str | None = None):
        self.lookup = {SD.caption(*v): dict(zip(SD.ATTRIBUTES, v)) for v in itertools.product(*SD.CLASSES.values())}
        self.refuse = SD.parse_concept(refuse) if refuse else None

    def generate(self, prompts, seed=0):
        out = []
        for i, p in enumerate(prompts):
            a = dict(self.lookup[p])
            if self.refuse and all(a[k] == v for k, v in self.refuse.items()):
                a.update(shape="square", colour="red")
            out.append(torch.from_numpy(SD.render_array(**a, seed=seed + i)))
        return torch.stack(out)


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return cl.zoo.load("shape-judge", cl.setup(mode="fast", verbose=False), verbose=False)


def test_prompts_show_the_combination_its_parts_or_neither():
    wanted = SD.parse_concept(CONCEPT)
    _, combo = C.combination_prompts(CONCEPT, 50, seed=1)
    assert all(a["colour"] == "purple" and a["shape"] == "triangle" for a in combo)
    assert len({(a["texture"], a["size"], a["position"]) for a in combo}) > 10, "the other attributes vary"
    for value, attr in (("purple", "colour"), ("triangle", "shape")):
        _, part = C.combination_prompts(CONCEPT, 50, seed=1, part=value)
        assert all(a[attr] == value and any(a[k] != v for k, v in wanted.items()) for a in part)
    _, other = C.combination_prompts(CONCEPT, 200, seed=1, other=True)
    assert not any(a["colour"] == "purple" and a["shape"] == "triangle" for a in other)
    assert C.combination_prompts(CONCEPT, 5, seed=2) == C.combination_prompts(CONCEPT, 5, seed=2), "seeded"


def test_a_painter_composes_and_a_refuser_does_not(judge):
    table = C.composition_table({"painter": Painter(), "refuser": Painter(refuse=CONCEPT)}, judge, CONCEPT, n=40)
    print(table.round(3))
    # The judge names real shapes 99-100 % of the time, so a perfect painter scores about 1.
    assert table.loc["painter", "combination"] >= 0.9
    assert table.loc["refuser", "combination"] == 0.0
    for col in ("part: purple", "part: triangle"):
        assert (table[col] >= 0.9).all(), "both draw the parts"
    assert (table["by accident"] <= 0.05).all(), "other combinations are not judged as the concept"


def test_training_count_is_zero_once_excluded():
    data = SD.load(mode="fast")
    split = data.split(CONCEPT)
    assert C.training_count(data, CONCEPT) == len(split.forget) > 0
    assert C.training_count(data, CONCEPT, [data.ids[i] for i in split.forget]) == 0


def test_bad_concepts_are_clear_errors():
    with pytest.raises(ValueError, match="a combination needs two"):
        C.combination_prompts("purple", 4)
    with pytest.raises(ValueError, match="part='red' is not a value"):
        C.combination_prompts(CONCEPT, 4, part="red")
    with pytest.raises(ValueError, match="'hexagon' is not an attribute value"):
        C.combination_prompts("purple hexagon", 4)
    with pytest.raises(ValueError, match="models is empty"):
        C.composition_table({}, None, CONCEPT)
