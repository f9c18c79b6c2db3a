"""The shape judge: outputs, a tiny training, save_pretrained round trip, the zoo recipe and exclude."""
import pytest
import torch

import course_lib as cl
from course_lib.data import shapes as S
from course_lib.models import classifier as C
from course_lib.models import zoo
from tests.tiny import own_fast_shapes_models

TINY = {"channels": [4, 8], "hidden": 16, "num_steps": 30, "batch_size": 32, "lr": 1e-2}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(C.PRESETS, "fast", TINY)
    own_fast_shapes_models(monkeypatch)


@pytest.fixture(scope="module")
def data():
    return S.load(mode="fast")


def test_forward_shapes_any_resolution():
    model = C.ShapeJudge(channels=(4, 8), hidden=16)
    for size in (16, 32):
        out = model(torch.rand(3, 3, size, size))
        assert set(out) == set(C.HEADS)
        assert all(out[k].shape == (3, len(S.CLASSES[k])) for k in C.HEADS)


def test_predict_and_accuracy_api(data):
    model = C.ShapeJudge(channels=(4, 8), hidden=16)
    pred = model.predict(data.images[:5])
    assert set(pred) == set(C.HEADS) and all(len(v) == 5 and v[0] in S.CLASSES[k] for k, v in pred.items())
    assert len(model.predict(data.images[0])["shape"]) == 1  # one image without a batch axis
    acc = model.accuracy(data.images[:20], {k: v[:20] for k, v in data.labels.items()})
    assert set(acc) == set(C.HEADS) and all(0.0 <= a <= 1.0 for a in acc.values())


def test_loss_decreases_in_a_tiny_training(data):
    model = C.train_judge(data.images, data.labels, data.train[:256], {**TINY, "num_steps": 40}, seed=0,
                          progress=False)
    losses = [h["loss"] for h in model.train_result.history]
    assert len(losses) == 40 and sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_save_pretrained_round_trip(tmp_path, data):
    model = C.train_judge(data.images, data.labels, data.train[:64], {**TINY, "num_steps": 3}, seed=0, progress=False)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt")), "no pickles"
    again = C.ShapeJudge.from_pretrained(tmp_path)
    assert again.classes == model.classes
    x = data.images[:16]
    assert torch.allclose(again.logits(x)["shape"], model.logits(x)["shape"])
    assert again.predict(x) == model.predict(x)


def test_zoo_round_trip(rt, tiny, capsys, data):
    a = cl.zoo.load("shape-judge", rt)
    assert "training shape-judge" in capsys.readouterr().out
    path = zoo.entry_path("shape-judge", rt)
    assert (path / "model.safetensors").is_file() and str(path).startswith(str(rt.cache_dir))
    info = zoo.info("shape-judge", rt)
    assert set(info["test_accuracy"]) == set(C.HEADS) and info["train_images"] == len(data.train)
    b = cl.zoo.load("shape-judge", rt)
    assert "loaded shape-judge from the cache" in capsys.readouterr().out
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_zoo_exclude_trains_without_them(rt, tiny, data):
    split = data.split("circle")
    ids = [data.ids[i] for i in split.forget]
    recipe = zoo.recipe("shape-judge")
    assert recipe.exclude_ids(split, rt) == recipe.exclude_ids(ids, rt) == recipe.exclude_ids(split.forget, rt)
    cl.zoo.load("shape-judge", rt, exclude=split.forget, verbose=False)
    assert zoo.info("shape-judge", rt, exclude=split)["train_images"] == len(split.retain)


def test_exclude_that_matches_nothing_is_an_error(rt, data):
    with pytest.raises(ValueError, match="matches none of the"):
        cl.zoo.load("shape-judge", rt, exclude=data.test[:5])   # test images are never trained on
    with pytest.raises(ValueError, match="not an image id"):
        cl.zoo.load("shape-judge", rt, exclude=["no-such-image"])
    with pytest.raises(ValueError, match="neither an image id nor an index"):
        cl.zoo.load("shape-judge", rt, exclude=[10**6])
