"""course_lib.runtime: modes, the KIT_MODE variable, seeds, devices, presets (notebook 00)."""
from __future__ import annotations

import pytest
import torch

import course_lib as cl
from course_lib import runtime


def test_bad_mode_names_the_allowed_values():
    with pytest.raises(ValueError) as err:
        cl.setup(mode="turbo", verbose=False)
    for mode in ("fast", "default", "full"):
        assert mode in str(err.value)


def test_bad_mode_from_environment_is_an_error_too(monkeypatch):
    monkeypatch.setenv("KIT_MODE", "warp")
    with pytest.raises(ValueError, match="allowed values"):
        cl.setup(verbose=False)


@pytest.mark.parametrize("mode", cl.MODES)
def test_mode_is_read_from_kit_mode(monkeypatch, tmp_path, mode):
    monkeypatch.setenv("KIT_MODE", mode)
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path))
    assert cl.setup(verbose=False).mode == mode


def test_explicit_mode_wins_over_kit_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("KIT_MODE", "full")
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path))
    assert cl.setup(mode="fast", verbose=False).mode == "fast"


def test_default_mode_without_kit_mode(monkeypatch, tmp_path):
    monkeypatch.delenv("KIT_MODE", raising=False)
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path))
    assert cl.setup(verbose=False).mode == "default"


def test_seeds_are_reproducible(rt):
    cl.setup(mode="fast", seed=123, verbose=False)
    first = torch.rand(5)
    cl.setup(mode="fast", seed=123, verbose=False)
    assert torch.equal(first, torch.rand(5))
    cl.setup(mode="fast", seed=124, verbose=False)
    assert not torch.equal(first, torch.rand(5))


def test_cache_dir_comes_from_kit_cache_dir(rt, tmp_path):
    assert rt.cache_dir == tmp_path / "cache"
    assert rt.cache_dir.is_dir()


def test_auto_device_is_cpu_or_cuda(rt):
    assert rt.device.type in ("cpu", "cuda")
    assert rt.on_gpu == (rt.device.type == "cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        runtime.resolve_device("cuda")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        cl.setup(mode="fast", device="cuda", verbose=False)


def test_unknown_device_names_the_allowed_values():
    with pytest.raises(ValueError, match="allowed values"):
        runtime.resolve_device("tpu")


def test_preset_picks_the_current_mode(rt):
    table = {"fast": 1, "default": 2, "full": 3}
    assert rt.preset(table) == 1
    for mode, value in table.items():
        assert cl.setup(mode=mode, verbose=False).preset(table) == value


def test_preset_table_must_name_every_mode(rt):
    with pytest.raises(KeyError, match="full"):
        rt.preset({"fast": 1, "default": 2})


def test_setup_prints_mode_device_and_versions(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path))
    rt = cl.setup(mode="fast")
    out = capsys.readouterr().out
    assert "mode=fast" in out and f"device={rt.device}" in out and "torch" in out


def test_kit_threads_sets_torch_threads(monkeypatch):
    import torch
    import course_lib
    from course_lib.runtime import cpu_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("KIT_THREADS", "1")
        course_lib.setup(mode="fast", verbose=False)
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("KIT_THREADS", "zero")
        with pytest.raises(ValueError, match="KIT_THREADS"):
            cpu_threads()
    finally:
        torch.set_num_threads(before)
