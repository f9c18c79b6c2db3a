"""Classic unlearning (notebook 01): GA, fine-tuning, SISA, metrics and the exercise checkers."""

import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib.data import shapes as S
from course_lib.evaluation import classic as metrics
from course_lib.models import classifier as C
from course_lib.unlearning import classic

TINY = {"channels": [4, 8], "hidden": 16, "num_steps": 60, "batch_size": 32, "lr": 1e-2}


@pytest.fixture(scope="module")
def setup():
    data = S.load(mode="fast")
    split = data.split("circle")
    first = lambda idx: idx[idx < 1080]  # the first 2 blocks (900 training images): a tiny judge trains in seconds
    model = C.train_judge(data.images, data.labels, first(data.train), TINY, seed=0, progress=False)
    return data, split, model, classic.examples(data, first(split.forget)), classic.examples(data, first(split.retain))


@torch.no_grad()
def _forget_loss(model, ex):
    """The loss gradient ascent climbs: the cross-entropy summed over the heads."""
    return float(C.judge_loss(model, ex)["loss"])


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_gradient_ascent_raises_forget_loss_and_leaves_the_original(setup):
    data, split, model, forget, retain = setup
    before, weights = _forget_loss(model, forget), _weights(model)
    res = classic.gradient_ascent(model, forget, retain, num_steps=5, lr=1e-3, progress=False)
    assert _forget_loss(res.model, forget) > before + 0.5
    assert [h["loss"] for h in res.history][-1] < -before  # the training loss is minus the forget loss
    assert res.steps == 5 and res.seconds > 0 and res.model is not model
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items()), "the original was modified"


def test_finetune_keeps_retain_accuracy(setup):
    data, split, model, forget, retain = setup
    acc = lambda m: metrics.accuracy(m, retain["images"], retain["shape"])
    res = classic.finetune(model, forget, retain, num_steps=20, lr=1e-3, progress=False)
    assert acc(res.model) >= acc(model) - 0.05


def test_stop_at_ends_early_once_forgotten(setup):
    data, split, model, forget, retain = setup
    res = classic.gradient_ascent(model, forget, retain, num_steps=200, lr=1e-3, stop_at=0.1, progress=False)
    assert res.steps < 200 and metrics.accuracy(res.model, forget["images"], forget["shape"]) <= 0.1


def test_assign_shards_partitions_and_keeps_groups_together():
    group = np.array([3, 17, 40, 41])
    shards = classic.assign_shards(np.arange(60), 4, seed=1, keep_together=[group])
    assert sorted(np.concatenate(shards).tolist()) == list(range(60))
    assert max(len(s) for s in shards) - min(len(s) for s in shards) <= len(group)
    assert len(classic.shards_to_retrain(shards, group)) == 1


def test_sisa_deletion_retrains_exactly_one_shard(setup):
    data, split, model, forget, retain = setup
    user = data.random_split(0.05, seed=0)
    sisa = classic.SISA(data, data.train, 3, TINY, shard_steps=3, keep_together=[user.forget], progress=False)
    assert sisa.shard_trainings == 3
    before = [_weights(m) for m in sisa.models]
    touched = sisa.unlearn(user.forget)
    assert len(touched) == 1 and sisa.shard_trainings == 4
    assert not np.isin(np.concatenate(sisa.shards), user.forget).any()
    for j, w in enumerate(before):
        same = all(torch.equal(w[k], v) for k, v in sisa.models[j].state_dict().items())
        assert same == (j not in touched)
    assert len(classic.shards_to_retrain(sisa.shards, split.forget)) == 3  # a concept sits in every shard
    out = sisa.model.logits(data.images[:4])
    assert torch.allclose(out["shape"].exp().sum(-1), torch.ones(4), atol=1e-4)  # soft vote: probabilities


def test_same_seed_gives_identical_weights(setup):
    data, split, model, forget, retain = setup
    a = C.train_judge(data.images, data.labels, data.train[:128], {**TINY, "num_steps": 5}, seed=7, progress=False)
    b = C.train_judge(data.images, data.labels, data.train[:128], {**TINY, "num_steps": 5}, seed=7, progress=False)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    ga = [classic.gradient_ascent(model, forget, retain, num_steps=3, seed=2, progress=False).model for _ in range(2)]
    assert all(torch.equal(v, ga[1].state_dict()[k]) for k, v in ga[0].state_dict().items())


def test_metrics(setup):
    data, split, model, forget, retain = setup
    x = forget["images"]
    assert metrics.agreement(model, model, x) == 1.0 and abs(metrics.kl_to_reference(model, model, x)) < 1e-6
    assert metrics.mia_auc([0.1, 0.2], [1.0, 2.0]) == 1.0 and metrics.mia_auc([1.0, 1.0], [1.0, 1.0]) == 0.5
    rng = np.random.default_rng(0)
    m, n = rng.exponential(size=30).round(1), rng.exponential(size=20).round(1)  # ties on purpose
    by_hand = sum((a < b) + 0.5 * (a == b) for a in m for b in n) / (len(m) * len(n))  # lower loss = member
    assert abs(metrics.mia_auc(m, n) - by_hand) < 1e-9
    table = metrics.distance_table({"a": model}, model, data, split)
    assert table.loc["a", "agree forget"] == 1.0 and 0 <= table.loc["a", "MIA AUC"] <= 1
    assert {"acc forget", "agree retain", "KL test", "MIA AUC"} <= set(table.columns)


def test_exercise_checkers(capsys):
    cl.checks.check_ga_loss(classic.ga_loss)
    cl.checks.check_shards_to_retrain(classic.shards_to_retrain)
    assert capsys.readouterr().out.count("Correct") == 2

    def stub(*args):
        raise NotImplementedError

    cl.checks.check_ga_loss(stub)
    cl.checks.check_shards_to_retrain(stub)
    assert capsys.readouterr().out.count("Not attempted yet") == 2
    with pytest.raises(AssertionError, match="sign is flipped"):
        cl.checks.check_ga_loss(lambda m, b: C.judge_loss(m, b)["loss"])
    with pytest.raises(AssertionError, match="shard NUMBERS"):
        cl.checks.check_shards_to_retrain(lambda shards, forget: list(forget))
