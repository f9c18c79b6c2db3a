"""The weights the kit ships (data/zoo/, course_lib.models.shipped): each export still matches its recipe's key
and its hashes and size, unpacks into a normal cache entry and scores the metrics recorded with it; a corrupt
export is reported and never used; and the recipe, retrained in fast mode, reproduces the fast export."""
import json
import shutil

import pytest
import torch

import course_lib as cl
from course_lib.models import clip as C
from course_lib.models import shipped, zoo
from course_lib.models import t2i as T

EXPORTS = sorted(p.parent for p in shipped.SHIPPED_DIR.glob(f"*/*/{shipped.META}"))
ids = [f"{p.parent.name}/{p.name}" for p in EXPORTS]


def runtime_for(meta, monkeypatch, cache):
    monkeypatch.setenv("KIT_CACHE_DIR", str(cache))
    return cl.setup(mode=meta["key"]["mode"], seed=meta["key"]["seed"], verbose=False)


def test_the_kit_ships_the_text_to_image_models():
    names = {(json.loads((p / shipped.META).read_text())["key"]["mode"], p.parent.name) for p in EXPORTS}
    assert {("fast", "shapes-t2i"), ("default", "shapes-t2i"), ("default", "shapes-clip")} <= names, names


@pytest.mark.parametrize("path", EXPORTS, ids=ids)
def test_export_matches_its_recipe_hashes_and_size(path, monkeypatch, tmp_path):
    meta = shipped.read_meta(path)
    rt = runtime_for(meta, monkeypatch, tmp_path)
    name, exclude = path.parent.name, meta["key"]["exclude"]
    key = zoo.cache_key(name, rt, exclude)
    assert meta["key_sha256"] == zoo._key_digest(key), (
        f"the {name} recipe (or its data) changed since {path} was exported: regenerate it with "
        f"`python -m course_lib.models.shipped {name} --mode {rt.mode}` and commit the new folder")
    assert shipped.export_path(name, rt, exclude) == path
    shipped.verify(path, key)
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) <= shipped.MAX_BYTES


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPORTS, ids=ids)
def test_unpacked_model_scores_its_recorded_metrics(path, monkeypatch, tmp_path, capsys):
    meta = shipped.read_meta(path)
    rt = runtime_for(meta, monkeypatch, tmp_path)
    name, exclude = path.parent.name, meta["key"]["exclude"]
    model = zoo.load(name, rt, exclude=exclude)
    assert "unpacked" in capsys.readouterr().out
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert zoo.info(name, rt, exclude)["unpacked_from"].startswith("data/zoo/")
    measured = shipped.measure(name, model, rt)
    print(name, rt.mode, "recorded", meta["metrics"], "measured", measured)
    for k, v in meta["metrics"].items():
        assert measured[k] == pytest.approx(v, abs=0.03), k
    zoo.load(name, rt, exclude=exclude)
    assert "loaded" in capsys.readouterr().out, "the second load comes from the cache"


# -- the mechanism, on a tiny recipe exported into a temporary data/zoo ---------------------------

TINY_CLIP = C.ClipPreset(width=16, layers=1, heads=2, patch_size=4, projection_dim=16, num_steps=3, batch_size=16,
                         lr=1e-3, warmup_steps=0)
TINY_T2I = T.T2IPreset(block_out_channels=(8, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                       up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=4, norm_num_groups=4,
                       num_steps=5, batch_size=16, lr=3e-3, warmup_steps=0, sample_steps=2, ema_decay=None)


@pytest.fixture
def tiny_export(rt, monkeypatch, tmp_path):
    monkeypatch.setitem(C.PRESETS, "fast", TINY_CLIP)
    monkeypatch.setitem(T.PRESETS, "fast", TINY_T2I)
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "zoo")
    monkeypatch.setattr(shipped, "measure", lambda name, model, rt: {"parameters": model.num_parameters()})
    path = shipped.export("shapes-t2i", rt)
    trained = zoo.load("shapes-t2i", rt, verbose=False)
    zoo.clear(rt)
    return rt, path, trained


def test_export_unpacks_as_float32_close_to_what_was_trained(tiny_export, capsys):
    rt, path, trained = tiny_export
    assert path.parent == shipped.SHIPPED_DIR / "shapes-t2i"
    from safetensors.torch import load_file
    stored = load_file(path / "unet" / "diffusion_pytorch_model.safetensors")
    assert {t.dtype for t in stored.values()} == {torch.float16}, "the export stores half the bytes"
    model = zoo.load("shapes-t2i", rt)
    assert "unpacked shapes-t2i" in capsys.readouterr().out
    for a, b in zip(model.unet.parameters(), trained.unet.parameters()):
        assert a.dtype == torch.float32 and torch.allclose(a, b, rtol=1e-2, atol=1e-3)
    assert zoo.info("shapes-t2i", rt)["shipped_metrics"] == {"parameters": trained.num_parameters()}


def test_a_changed_recipe_ignores_the_export(tiny_export, monkeypatch, capsys):
    rt, _, _ = tiny_export
    monkeypatch.setitem(T.PRESETS, "fast", T.T2IPreset(**{**TINY_T2I.__dict__, "num_steps": 6}))
    zoo.load("shapes-t2i", rt)
    out = capsys.readouterr().out
    assert "unpacked" not in out and "training shapes-t2i" in out


def test_shipped_false_and_rebuild_train(tiny_export, capsys):
    rt, _, _ = tiny_export
    zoo.load("shapes-t2i", rt, shipped=False)
    assert "training shapes-t2i" in capsys.readouterr().out


def test_a_corrupt_export_is_reported_and_never_used(tiny_export, capsys):
    rt, path, _ = tiny_export
    weights = path / "unet" / "diffusion_pytorch_model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    zoo.load("shapes-t2i", rt)
    out = capsys.readouterr().out
    assert "shipped weights are unusable" in out and "is corrupt" in out and "training shapes-t2i" in out
    with pytest.raises(shipped.ShippedError, match="corrupt"):
        shipped.verify(path)
    shutil.rmtree(path / "unet")
    with pytest.raises(shipped.ShippedError, match="missing"):
        shipped.verify(path)


def test_measure_knows_only_the_shipped_names(rt):
    with pytest.raises(ValueError, match="allowed values: shapes-t2i, shapes-clip"):
        shipped.measure("people-lm", None, rt)


# -- the recipe still produces what ships: retrain in fast mode, compare -------------------------

@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fast_recipe_reproduces_the_fast_export(monkeypatch, tmp_path):
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path))
    rt = cl.setup(mode="fast", verbose=False)
    for name in ("shapes-clip", "shapes-t2i"):  # the CLIP first: the t2i recipe conditions on the cached one
        path = shipped.find(name, rt)
        if path is None:
            assert name == "shapes-clip", "the fast t2i export is missing"
            continue
        meta = shipped.read_meta(path)
        model = zoo.load(name, rt, shipped=False, verbose=False)
        measured = shipped.measure(name, model, rt)
        print(name, "recorded", meta["metrics"], "retrained", measured)
        tol = 0.05 if name == "shapes-clip" else 0.1  # t2i: 60 samples of a blob-drawing model
        for k, v in meta["metrics"].items():
            assert measured[k] == pytest.approx(v, abs=tol), k
        if "final_loss" in meta["info"]:
            assert zoo.info(name, rt)["final_loss"] == pytest.approx(meta["info"]["final_loss"], rel=0.05)
