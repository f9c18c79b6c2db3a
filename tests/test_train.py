"""The one training loop: loss goes down, callbacks, NaN guard, determinism, two processes."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_lib.data import people
from course_lib.models.people_lm import lm_loss, new_model, qa_batches, train_people_lm
from course_lib.train import NonFiniteLossError, TrainConfig, fit
from tests.tiny import TINY_LM

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def facts():
    return people.load(mode="fast")


def _fit(facts, **kw):
    torch.manual_seed(0)
    tm = new_model(facts, TINY_LM)
    cfg = TrainConfig(**{"num_steps": 40, "batch_size": 32, "lr": 1e-2, "progress": False, **kw})
    res = fit(tm.model, list(facts.training_set()), lm_loss, cfg, collate_fn=qa_batches(tm))
    return tm, res


def test_loss_decreases(facts):
    _, res = _fit(facts)
    first = sum(h["loss"] for h in res.history[:5]) / 5
    last = sum(h["loss"] for h in res.history[-5:]) / 5
    assert res.steps == 40 and len(res.history) == 40
    assert last < 0.6 * first, (first, last)


def test_callbacks_see_every_step_and_can_stop(facts):
    seen = []

    def cb(state):
        seen.append(state["step"])
        return "stop" if state["step"] == 7 else None

    tm = new_model(facts, TINY_LM)
    res = fit(tm.model, list(facts.qa), lm_loss, TrainConfig(num_steps=40, progress=False),
              collate_fn=qa_batches(tm), callbacks=[cb])
    assert seen == list(range(1, 8)) and res.stopped_early and res.steps == 7


def test_too_large_learning_rate_is_a_clear_error(facts):
    with pytest.raises(NonFiniteLossError, match="lr=1e\\+06"):
        _fit(facts, lr=1e6, grad_clip=None)


@pytest.mark.parametrize("bad", [dict(num_steps=-1), dict(batch_size=0), dict(lr=float("nan")),
                                 dict(schedule="linear"), dict(mixed_precision="fp8")])
def test_bad_config_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        TrainConfig(**bad)


def test_empty_dataset_is_a_clear_error(facts):
    tm = new_model(facts, TINY_LM)
    with pytest.raises(ValueError, match="empty"):
        fit(tm.model, [], lm_loss, TrainConfig(num_steps=1, progress=False), collate_fn=qa_batches(tm))


def test_same_seed_gives_identical_weights(facts):
    a = train_people_lm(facts, TINY_LM, seed=3, progress=False)
    b = train_people_lm(facts, TINY_LM, seed=3, progress=False)
    c = train_people_lm(facts, TINY_LM, seed=4, progress=False)
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert [h["loss"] for h in a.train_result.history] == [h["loss"] for h in b.train_result.history]


@pytest.mark.slow
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="two CPU processes: for machines without CUDA")
def test_two_processes_under_accelerate_launch_train_like_one(tmp_path):
    """The path to several GPUs is real: the same script under ``accelerate launch --num_processes 2``."""
    launcher = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or shutil.which("accelerate")
    assert launcher, "the accelerate command line is not installed"
    script = REPO / "tests" / "accelerate_tiny_training.py"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one.json")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    # `accelerate launch --cpu` starts one process unless MPI is installed; its torchrun launcher
    # (`--multi_gpu`) starts two, and on a machine without CUDA the loop runs them on CPU (gloo).
    two = subprocess.run([launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
                          str(script), str(tmp_path / "two.json")], env=env, capture_output=True, text=True,
                         timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    r1, r2 = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert r2["num_processes"] == 2 and r1["num_processes"] == 1
    # Both runs learn: the final loss is far below the first, and within a factor of the one-process run.
    for r in (r1, r2):
        assert r["last_loss"] < 0.6 * r["first_loss"], r
    assert r2["last_loss"] < 2.0 * r1["last_loss"] + 0.2, (r1, r2)


def test_grouped_batches_never_mix_groups_and_cover_every_example():
    from course_lib.train import GroupedBatches

    groups = [i % 4 == 0 for i in range(50)]
    sampler = GroupedBatches(groups, batch_size=8, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2 + 5  # 13 True -> 2 batches, 37 False -> 5 batches
    assert sorted(i for b in batches for i in b) == list(range(50))
    assert all(len({groups[i] for i in b}) == 1 for b in batches)
    again = list(GroupedBatches(groups, batch_size=8, seed=0))
    assert again == batches and list(sampler) != batches  # seeded; a new pass reshuffles
