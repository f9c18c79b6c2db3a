"""Shapes data: sizes, ranges, captions, concept splits, hash check, byte-identical regeneration."""
import hashlib
import shutil

import numpy as np
import pytest
import torch

from course_lib.data import shapes as S


@pytest.fixture(scope="module")
def data():
    return S.load(mode="fast")


def test_sizes_and_value_ranges(data):
    n = S.PRESETS["fast"]["blocks"] * 540
    assert len(data) == n and data.images.shape == (n, 3, 16, 16) and data.images.dtype == torch.float32
    assert 0.0 <= float(data.images.min()) and float(data.images.max()) <= 1.0
    assert len(data.captions) == n and list(data.attributes.columns[:6]) == ["id", *S.ATTRIBUTES]
    assert sorted(np.concatenate([data.train, data.test]).tolist()) == list(range(n))
    assert len(data.test) == S.PRESETS["fast"]["blocks"] * S.TEST_PER_BLOCK
    for attr, labels in data.labels.items():
        assert labels.shape == (n,) and int(labels.max()) < len(data.classes[attr])
    assert S.load(mode="full").images.shape[-1] == 32


def test_captions_match_labels(data):
    for i in range(0, len(data), 97):
        names = [data.classes[a][int(data.labels[a][i])] for a in S.ATTRIBUTES]
        assert data.captions[i] == S.caption(*names)
        assert data.captions[i].startswith(f"a {names[3]} {names[1]} {names[2]} {names[0]} ")


def test_split_one_value(data):
    split = data.split("circle")
    shape = data.attributes["shape"].to_numpy()
    assert (shape[split.forget] == "circle").all() and (shape[split.retain] != "circle").all()
    assert sorted(np.concatenate([split.forget, split.retain]).tolist()) == sorted(data.train.tolist())
    assert (shape[split.forget_test] == "circle").all() and set(split.forget_test) <= set(data.test)
    assert len(split.forget) > 0 and len(split.retain_test) > 0


def test_split_combination_in_any_order(data):
    a, b = data.split("purple triangle"), data.split("Triangle, purple")
    assert np.array_equal(a.forget, b.forget) and len(a.forget) > 0
    attrs = data.attributes
    both = (attrs["colour"] == "purple") & (attrs["shape"] == "triangle")
    assert both.to_numpy()[a.forget].all() and not both.to_numpy()[a.retain].any()
    assert (attrs["colour"].to_numpy()[a.retain] == "purple").any()  # other purple shapes are retained


def test_unknown_concept_lists_known_values(data):
    with pytest.raises(ValueError, match="Known values") as err:
        data.split("hexagon")
    assert "circle" in str(err.value) and "purple" in str(err.value) and "striped" in str(err.value)
    with pytest.raises(ValueError, match="two shapes"):
        data.split("circle square")


def test_random_split(data):
    split = data.random_split(0.05, seed=3)
    assert len(split.forget) == round(0.05 * len(data.train)) and not set(split.forget) & set(split.retain)
    assert np.array_equal(split.forget, data.random_split(0.05, seed=3).forget)


def test_regeneration_is_byte_identical():
    raw = S.table_bytes(S.generate_table())
    assert raw == S.csv_path().read_bytes()
    assert hashlib.sha256(raw).hexdigest() == S.CSV_SHA256


def test_hash_check_names_file_and_fix(tmp_path):
    shutil.copy(S.csv_path(), tmp_path / S.CSV_NAME)
    assert len(S.read_table(tmp_path)) == S.NUM_BLOCKS * 540
    S.load(type("RT", (), {"mode": "fast", "data_dir": tmp_path})())
    f = tmp_path / S.CSV_NAME
    f.write_bytes(f.read_bytes().replace(b"circle", b"square", 1))
    with pytest.raises(S.DataIntegrityError) as err:
        S.read_table(tmp_path)
    msg = str(err.value)
    assert str(f) in msg and S.CSV_SHA256 in msg and "python -m course_lib.data.shapes --write" in msg
    assert isinstance(err.value, ValueError)
    with pytest.raises(S.DataIntegrityError):  # the loader checks too, even after a first good load
        S.load(type("RT", (), {"mode": "fast", "data_dir": tmp_path})())


def test_rendering_is_deterministic(data):
    a = data.render("triangle", "red", "striped", "small", "left", seed=5)
    assert a.shape == (3, 16, 16) and torch.equal(a, data.render("triangle", "red", "striped", "small", "left", seed=5))
    assert not torch.equal(a, data.render("triangle", "red", "striped", "small", "left", seed=6))  # jitter + noise
    row = data.attributes.iloc[7]
    again = S.render_array(row["shape"], row["colour"], row["texture"], row["size"], row["position"], int(row["seed"]))
    assert np.array_equal(again, data.images[7].numpy())
    with pytest.raises(ValueError, match="allowed values"):
        data.render("hexagon", "red")


def test_subset_of_n_is_a_seeded_sample_in_order(data):
    split = data.split("circle")
    forget = split.forget_set
    a, b = split.subset("forget", n=20, seed=1), split.subset("forget", n=20, seed=1)
    assert len(a) == 20 and list(a.indices) == list(b.indices) and list(a.indices) == sorted(a.indices)
    assert set(a.indices) <= set(forget.indices) and a.concept == "circle"
    assert list(split.subset("forget", n=20, seed=2).indices) != list(a.indices)
    i = int(np.searchsorted(forget.indices, a.indices[3]))
    assert a.captions[3] == forget.captions[i] and torch.equal(a.images[3], forget.images[i])
    assert int(a.labels["shape"][3]) == int(forget.labels["shape"][i]) and a.ids[3] == forget.ids[i]
    assert len(split.subset("forget", n=10 ** 6)) == len(forget)
    with pytest.raises(ValueError, match="positive number"):
        split.subset("forget", n=0)


def test_fast_mode_shares_default_images():
    """Fast mode loads default's shapes models (their recipes' mode_aliases), so it must see default's images."""
    assert S.PRESETS["fast"] == S.PRESETS["default"]
