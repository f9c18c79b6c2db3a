"""The scorecard against independent computations, its bootstrap intervals, MUSE's experiments, the
plots and notebook 04's checker."""
from __future__ import annotations

import dataclasses
import importlib

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.stats import hmean  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import course_lib as cl  # noqa: E402
from course_lib.data.people import paraphrase_answer  # noqa: E402
from course_lib.evaluation import stats  # noqa: E402
from course_lib.evaluation.text import answer_accuracy  # noqa: E402
from tests.test_mia import bigram, bigram_model, by_hand, facts, memoriser, tokenizer  # noqa: E402,F401

# The module (``cl.evaluation.scorecard`` is its function of the same name).
sc = importlib.import_module("course_lib.evaluation.scorecard")


@pytest.fixture(scope="module")
def split(facts):
    """forget05 with 60 holdout questions (of 360): the by-hand recomputation stays quick."""
    s = facts.split("forget05")
    return dataclasses.replace(s, holdout=s.holdout.sample(60, seed=0))


@pytest.fixture(scope="module")
def bigram_scores(bigram, split):
    return sc.score_model(bigram, split, retain_questions=60)


def _np(lp):
    return float(np.exp(np.mean(lp)))


def test_card_matches_an_independent_computation(bigram, tokenizer, split, bigram_scores):
    other = bigram_model(tokenizer, seed=5)
    ref = sc.score_model(other, split, retain_questions=60)
    card = sc.scorecard(bigram_scores, split, reference=ref, n_boot=50).iloc[0]

    def per_question(model, qs):
        out = {"prob": [], "R": [], "Rv": [], "mc": [], "loss": [], "nll": [], "ntok": []}
        for q in qs:
            lp = by_hand(model, q.question, q.answer)[0]
            para = by_hand(model, q.question, q.paraphrased_answer, with_eos=False)[0]
            pert = [by_hand(model, q.question, paraphrase_answer(q.attribute, p), with_eos=False)[0]
                    for p in q.perturbed_answers]
            raw = [_np(by_hand(model, q.question, p, with_eos=False)[0]) for p in q.perturbed_answers]
            out["prob"].append(_np(lp[:-1]))
            out["R"].append(stats.truth_ratio(pert, para))
            out["Rv"].append(stats.truth_ratio([by_hand(model, q.question, p, with_eos=False)[0]
                                                for p in q.perturbed_answers], lp[:-1]))
            out["mc"].append(_np(lp[:-1]) / (_np(lp[:-1]) + sum(raw)))
            out["loss"].append(lp.mean())
            out["nll"].append(-lp.sum())
            out["ntok"].append(lp.size)
        return {k: np.array(v) for k, v in out.items()}

    retain = split.retain.sample(60, seed=0)
    f, h, r, w = (per_question(bigram, qs) for qs in (split.forget, split.holdout, retain, split.world))
    f_ref, h_ref = per_question(other, split.forget), per_question(other, split.holdout)
    assert card["forget_acc"] == pytest.approx(answer_accuracy(bigram, split.forget))
    assert card["retain_acc"] == pytest.approx(answer_accuracy(bigram, retain))
    assert card["forget_prob"] == pytest.approx(f["prob"].mean(), rel=1e-4)
    assert card["forget_truth_ratio"] == pytest.approx(np.minimum(f["R"], 1 / f["R"]).mean(), rel=1e-4)
    assert card["retain_truth_ratio"] == pytest.approx(np.maximum(0, 1 - r["R"]).mean(), abs=1e-5)
    assert card["world_prob"] == pytest.approx(w["mc"].mean(), rel=1e-4)
    assert card["world_truth_ratio"] == pytest.approx(np.maximum(0, 1 - w["Rv"]).mean(), abs=1e-5)
    assert card["forget_truth_ratio_verbatim"] == pytest.approx(np.minimum(f["Rv"], 1 / f["Rv"]).mean(), rel=1e-4)
    assert card["forget_quality_verbatim"] == pytest.approx(stats.forget_quality(f["Rv"], f_ref["Rv"]), rel=1e-3)
    assert card["retain_perplexity"] == pytest.approx(np.exp(r["nll"].sum() / r["ntok"].sum()), rel=1e-4)
    auc = roc_auc_score(np.r_[np.ones(len(f["loss"])), np.zeros(len(h["loss"]))], np.r_[f["loss"], h["loss"]])
    assert card["mia_auc_loss"] == pytest.approx(auc, abs=1e-6)
    auc_ref = stats.mia_auc(f_ref["loss"], h_ref["loss"])
    assert card["privacy_leak_loss"] == pytest.approx((auc - auc_ref) / auc_ref, abs=1e-6)
    assert card["forget_quality"] == pytest.approx(stats.forget_quality(f["R"], f_ref["R"]), rel=1e-3)
    parts = [card[c] for c in sc.UTILITY_PARTS]
    assert card["model_utility"] == pytest.approx(hmean(parts) if min(parts) > 0 else 0.0)
    assert card["objective_accuracy"] == pytest.approx(1 - card["forget_acc"])
    assert card["objective_generalizability"] == pytest.approx(1 - answer_accuracy(bigram, split.unseen_forget))


def _fake_scores(n_forget=200, n_holdout=300, p=0.3, seed=0, shift=1.0) -> sc.ModelScores:
    """Hand-made per-question numbers (no model): known means and a known member / non-member shift."""
    rng = np.random.default_rng(seed)

    def one(n, member):
        d = {m: rng.random(n) for m in ("rouge", "prob", "tr_forget", "tr_keep", "em", "es", "prob_mc",
                                        "tr_forget_verbatim", "tr_keep_verbatim")}
        d.update(correct=(rng.random(n) < p).astype(float), degenerate=np.zeros(n), truth_ratio=rng.lognormal(0, 1, n),
                 truth_ratio_verbatim=rng.lognormal(0, 1, n),
                 nll=rng.random(n) * 3, ntok=np.full(n, 3.0))
        d.update({f"mia_{s}": rng.normal(shift * member, 1, n) for s in cl.evaluation.mia.MIA_SCORES})
        return d

    per = {"forget": one(n_forget, 1), "unseen_forget": one(50, 1), "retain": one(400, 0), "world": one(34, 0),
           "holdout": one(n_holdout, 0)}
    ids = {k: [f"{k}{i}" for i in range(len(v["correct"]))] for k, v in per.items()}
    return sc.ModelScores(per, "fake", ids)


def test_bootstrap_intervals_behave_like_the_textbook():
    s = _fake_scores(n_forget=400)
    card = sc.scorecard(s, None, n_boot=2000, seed=1).iloc[0]
    p, n = card["forget_acc"], 400
    half = 1.96 * np.sqrt(p * (1 - p) / n)  # the normal approximation of a proportion's 95 % interval
    assert card["forget_acc_lo"] == pytest.approx(p - half, abs=0.01)
    assert card["forget_acc_hi"] == pytest.approx(p + half, abs=0.01)
    for m in sc.measures(sc.scorecard(s, None, n_boot=50)):
        assert card[f"{m}_lo"] <= card[m] + 1e-9 and card[m] <= card[f"{m}_hi"] + 1e-9, m
    again = sc.scorecard(s, None, n_boot=2000, seed=1).iloc[0]
    other = sc.scorecard(s, None, n_boot=2000, seed=2).iloc[0]
    assert again["mia_auc_loss_lo"] == card["mia_auc_loss_lo"] and other["mia_auc_loss_lo"] != card["mia_auc_loss_lo"]
    small = sc.scorecard(_fake_scores(n_forget=40), None, n_boot=2000, seed=1).iloc[0]
    assert small["forget_acc_hi"] - small["forget_acc_lo"] > 2 * (card["forget_acc_hi"] - card["forget_acc_lo"])


def test_bootstrap_auc_equals_sklearn_row_by_row():
    rng = np.random.default_rng(0)
    m, n = rng.normal(1, 1, 30), np.round(rng.normal(0, 1, 45), 1)  # rounding makes ties
    im, inn = sc._index(30, 5, 0, "a"), sc._index(45, 5, 0, "b")
    got = sc.boot_auc(m, n, im, inn)
    for b in range(5):
        want = roc_auc_score(np.r_[np.ones(30), np.zeros(45)], np.r_[m[im[b]], n[inn[b]]])
        assert got[b] == pytest.approx(want, abs=1e-12)


def test_forget_quality_and_privacy_leak_against_the_reference():
    s, same = _fake_scores(seed=0), _fake_scores(seed=0)
    card = sc.scorecard(s, None, reference=same, n_boot=200).iloc[0]
    assert card["forget_quality"] == pytest.approx(1.0) and card["privacy_leak_loss"] == pytest.approx(0.0)
    assert card["privacy_leak_loss_lo"] == pytest.approx(0.0) and card["forget_quality_lo"] == pytest.approx(1.0)
    gold = _fake_scores(seed=3, shift=0.0)                      # members look like strangers
    gold.per_question["forget"]["truth_ratio"] = gold.per_question["forget"]["truth_ratio"] * 3
    card = sc.scorecard(s, None, reference=gold, n_boot=200).iloc[0]
    print(card[["mia_auc_loss", "privacy_leak_loss", "forget_quality"]].to_dict())
    assert card["mia_auc_loss"] > 0.7 and card["privacy_leak_loss"] > 0.3 and card["forget_quality"] < 1e-6
    assert card["forget_quality_lo"] <= card["forget_quality"] <= card["forget_quality_hi"]
    with pytest.raises(ValueError, match="other forget questions"):
        sc.scorecard(s, None, reference=_fake_scores(n_forget=10))


def test_a_subset_of_sets_leaves_out_what_needs_the_others(bigram, split, bigram_scores):
    part = sc.scorecard(bigram, split, n_boot=20, retain_questions=60, sets=("forget", "retain", "world"))
    assert "model_utility" in part and not any(c.startswith("mia_auc") for c in part.columns)
    full = sc.scorecard(bigram_scores, split, n_boot=20)
    assert part["model_utility"].iloc[0] == pytest.approx(full["model_utility"].iloc[0])
    with pytest.raises(ValueError, match="forget is required"):
        sc.score_model(bigram, split, sets=("retain",))


def test_harmonic_mean_is_zero_when_a_part_is():
    assert sc.harmonic_mean([0.5, 0.25]) == pytest.approx(hmean([0.5, 0.25]))
    np.testing.assert_allclose(sc.harmonic_mean([[1.0, 0.0], [1.0, 1.0]]), [0.0, 1.0])


def test_bad_arguments_are_clear_errors(bigram_scores, split):
    with pytest.raises(ValueError, match="n_boot"):
        sc.scorecard(bigram_scores, split, n_boot=3)
    with pytest.raises(ValueError, match="ci"):
        sc.scorecard(bigram_scores, split, ci=95)
    with pytest.raises(ValueError, match="models is empty"):
        sc.scorecards({}, split)


def test_memoriser_vs_a_model_that_never_saw_the_forget_people(memoriser, split):
    """Behaviour: a model trained on the forget set leaks membership and fails forget quality."""
    from course_lib.models.people_lm import lm_loss, qa_batches
    from course_lib.train import TrainConfig, fit

    tm, _ = memoriser
    gold = tm.clone()
    for p in gold.model.parameters():  # the same architecture, trained only on two retain people
        p.data.normal_(0, 0.02)
    others = split.retain.filter(person=split.retain.people[:2])
    fit(gold.model, list(others), lm_loss, TrainConfig(num_steps=120, batch_size=36, lr=1e-2, warmup_steps=5,
                                                       progress=False), collate_fn=qa_batches(gold))
    card = sc.scorecards({"memoriser": tm, "gold": gold}, split, reference=gold, n_boot=200, retain_questions=60)
    print(card[["forget_acc", "mia_auc_min_k_pp", "privacy_leak_min_k_pp", "forget_quality"]])
    mem, g = card.loc["memoriser"], card.loc["gold"]
    assert mem["forget_acc"] > 0.8 and g["forget_acc"] < 0.2
    assert mem["mia_auc_loss"] > 0.9 and mem["privacy_leak_loss"] > 0.3
    assert mem["forget_quality"] < 0.01 and g["forget_quality"] == pytest.approx(1.0)
    assert mem["forget_es"] > g["forget_es"] + 0.5


def test_unlearn_result_and_scorecards(bigram, split, bigram_scores, monkeypatch):
    res = cl.unlearn(bigram, split.forget, split.retain, method="ga", num_steps=2, batch_size=8, progress=False)
    calls = []
    real = sc.score_model
    monkeypatch.setattr(sc, "score_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    card = sc.scorecards({"base": bigram, "ga": res}, split, reference=bigram, n_boot=20, retain_questions=30,
                         tags={"ga": {"method": "ga", "seed": 0}})
    assert list(card.index) == ["base", "ga"] and len(calls) == 2  # the reference (= base) is scored once
    assert card.loc["ga", "seconds"] == pytest.approx(res.seconds) and np.isnan(card.loc["base", "seconds"])
    assert card.loc["ga", "method"] == "ga" and card.loc["base", "forget_quality"] == pytest.approx(1.0)
    assert sc.scorecard(res, split, n_boot=20, retain_questions=30).index[0] == "ga"
    spread = sc.spread_over_seeds(card.dropna(subset=["method"]), columns=["forget_acc"])
    assert ("forget_acc", "mean") in spread.columns
    assert "[" in sc.with_ci(card, ["forget_acc"]).iloc[0, 0]


def test_deletion_requests_are_disjoint_and_forget_what_came_before(facts):
    reqs = cl.evaluation.muse.deletion_requests(facts, 4, "forget10")
    pool = facts.split("forget10").forget_people
    assert sorted(p for r in reqs for p in r.forget_people) == sorted(pool) and len(reqs) == 4
    for i, r in enumerate(reqs):
        for earlier in reqs[:i + 1]:
            assert not set(earlier.forget.ids) & set(r.retain.ids)
        for later in reqs[i + 1:]:
            assert set(later.forget.ids) <= set(r.retain.ids)  # not yet requested: still retained
    with pytest.raises(ValueError, match="n_requests"):
        cl.evaluation.muse.deletion_requests(facts, 99)


def test_muse_experiments_run_on_a_tiny_model(bigram, facts):
    muse = cl.evaluation.muse
    hp = {"num_steps": 2, "batch_size": 8}
    scal = muse.scalability(bigram, facts, "ga", hp, n_boot=20, retain_questions=30)
    assert list(scal.index) == list(muse.MUSE_SPLITS)
    assert list(scal["forget_people"]) == [len(facts.split(s).forget_people) for s in muse.MUSE_SPLITS]
    sus = muse.sustainability(bigram, facts, "ga", {"num_steps": 2, "batch_size": 8, "lr": 0.5}, n_requests=2,
                              n_boot=20, retain_questions=30)
    assert list(sus.index) == [0, 1, 2] and sus["seconds"].is_monotonic_increasing
    assert np.isnan(sus.loc[0, "forget_acc_done"])
    assert {"forget_acc_request1", "forget_acc_request2"} <= set(sus.columns)
    assert sus.loc[0, "retain_perplexity"] != sus.loc[2, "retain_perplexity"]  # the requests changed the model


def test_plots_draw(bigram, split):
    import matplotlib.pyplot as plt

    from course_lib import plots_eval

    card = sc.scorecards({"base": bigram, "gold": bigram_model(bigram.tokenizer, seed=9),
                          "npo s0": bigram_model(bigram.tokenizer, seed=10)}, split, reference=bigram, n_boot=20,
                         retain_questions=30, tags={n: {"method": n.split()[0]} for n in ("base", "gold", "npo s0")})
    plots_eval.scorecard_plot(card)
    plots_eval.forget_utility_plane(card)
    plots_eval.agreement_heatmap(card)
    plots_eval.rank_plot(card)
    plots_eval.seed_strip(card, "forget_acc")
    plots_eval.mia_histograms({"bigram": sc.score_model(bigram, split, retain_questions=30)})
    with pytest.raises(ValueError, match="not columns"):
        plots_eval.scorecard_plot(card, ["nope"])
    plt.close("all")


def test_checker_nb04(capsys):
    from course_lib.checks import nb04

    def stub(logits, targets, k):
        raise NotImplementedError

    nb04.check_min_k_plus_plus(stub)
    assert "Not attempted" in capsys.readouterr().out

    def solution(logits, targets, k):
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        p = np.exp(logp)
        mu = (p * logp).sum(-1)
        sigma = np.sqrt((p * logp ** 2).sum(-1) - mu ** 2)
        z = (logp[np.arange(len(targets)), targets] - mu) / sigma
        return np.sort(z)[:int(np.ceil(k * len(z)))].mean()

    nb04.check_min_k_plus_plus(solution)
    assert "Correct" in capsys.readouterr().out

    def min_k(logits, targets, k):
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        tok = logp[np.arange(len(targets)), targets]
        return np.sort(tok)[:int(np.ceil(k * len(tok)))].mean()

    with pytest.raises(AssertionError, match="Min-K%"):
        nb04.check_min_k_plus_plus(min_k)
