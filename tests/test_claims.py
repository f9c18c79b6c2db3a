"""cl.claims (the notebooks' claim checks with margins), the bootstrap interval they compare, and notebook 02's
comparison of a live-trained model with the shipped reference."""
import json

import numpy as np
import pytest

import course_lib as cl
from course_lib import claims
from course_lib.evaluation.stats import bootstrap_mean


@pytest.fixture(autouse=True)
def no_claims_log(monkeypatch):
    """These tests' claims are examples: keep them out of a KIT_CLAIMS_LOG that a CI run collects."""
    monkeypatch.delenv("KIT_CLAIMS_LOG", raising=False)


def test_a_claim_prints_measured_threshold_and_margin(capsys):
    assert claims.at_least("memorised", 0.95, 0.9) == pytest.approx(0.05)
    assert claims.at_most("forgotten", 0.1, 0.25) == pytest.approx(0.15)
    out = capsys.readouterr().out
    assert "✅ memorised: measured 0.950, threshold >= 0.900, margin +0.050" in out
    assert "✅ forgotten: measured 0.100, threshold <= 0.250, margin +0.150" in out


def test_a_failed_claim_raises_with_its_numbers():
    with pytest.raises(AssertionError, match=r"❌ memorised: measured 0.850, threshold >= 0.900, margin -0.050"):
        claims.at_least("memorised", 0.85, 0.9)


def test_an_interval_must_clear_the_threshold_with_its_worse_end(capsys):
    claims.at_least("low end above", (0.91, 0.99), 0.9)
    with pytest.raises(AssertionError, match="margin -0.010"):
        claims.at_least("low end below", (0.89, 0.99), 0.9)
    with pytest.raises(AssertionError, match="margin -0.040"):
        claims.at_most("high end above", (0.1, 0.29), 0.25)
    assert "measured [0.910, 0.990]" in capsys.readouterr().out


@pytest.mark.parametrize("measured, match", [((0.5, 0.2), "low end"), ((1, 2, 3), "interval"),
                                             (float("nan"), "NaN")])
def test_bad_measurements_are_clear_errors(measured, match):
    with pytest.raises(ValueError, match=match):
        claims.at_least("x", measured, 0.5)
    with pytest.raises(ValueError, match="label"):
        claims.at_least("", 0.5, 0.5)


def test_claims_are_logged_when_asked(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("KIT_CLAIMS_LOG", str(log))
    monkeypatch.setenv("KIT_NOTEBOOK", "02_a_model_that_remembers")
    claims.at_least("a", 0.7, 0.6)
    with pytest.raises(AssertionError):
        claims.at_most("b", 0.7, 0.6)
    rows = claims.read_log(log)
    assert [(r["claim"], r["passed"], r["notebook"], r["direction"]) for r in rows] == [
        ("a", True, "02_a_model_that_remembers", ">="), ("b", False, "02_a_model_that_remembers", "<=")]
    assert rows[0]["margin"] == pytest.approx(0.1) and json.dumps(rows)


def test_bootstrap_mean_brackets_the_mean_and_narrows_with_more_questions():
    rng = np.random.default_rng(0)
    small, large = rng.random(20) < 0.8, rng.random(2000) < 0.8
    lo, hi = bootstrap_mean(small)
    assert lo <= small.mean() <= hi and 0.1 < hi - lo < 0.5
    lo2, hi2 = bootstrap_mean(large)
    assert lo2 <= large.mean() <= hi2 and hi2 - lo2 < 0.05
    assert bootstrap_mean(small) == bootstrap_mean(small), "seeded"
    with pytest.raises(ValueError, match="empty"):
        bootstrap_mean([])
    with pytest.raises(ValueError, match="ci="):
        bootstrap_mean(small, ci=1.5)


class Fixed:
    """A model that answers from a dict (what the comparison needs: ``answer``)."""

    def __init__(self, answers):
        self.answers = answers

    def answer(self, questions, prefix=""):
        return [self.answers.get(q, "?") for q in questions]


def test_compare_with_reference_reports_each_set_and_the_tolerance(rt):
    facts = cl.data.people.load(rt)
    qa = facts.qa[:20]
    right = {q.question: q.answer for q in qa}
    mine = Fixed({q: a for i, (q, a) in enumerate(right.items()) if i < 18})  # 18 of 20 right
    table = cl.evaluation.reference.compare(mine, Fixed(right), {"train": qa}, tolerance=0.05)
    row = table.loc["train"]
    assert row["your model"] == pytest.approx(0.9) and row["reference"] == 1.0
    assert row["difference"] == pytest.approx(-0.1) and not row["within tolerance"]
    assert cl.evaluation.reference.compare(mine, Fixed(right), {"train": qa}, 0.1).loc["train", "within tolerance"]
    with pytest.raises(ValueError, match="sets is empty"):
        cl.evaluation.reference.compare(mine, mine, {}, 0.1)
    with pytest.raises(ValueError, match="tolerance="):
        cl.evaluation.reference.compare(mine, mine, {"train": qa}, 2)


def test_difference_of_intervals_is_conservative():
    assert cl.claims.difference((0.7, 0.9), (0.1, 0.3)) == pytest.approx((0.4, 0.8))
    assert cl.claims.difference(0.5, 0.2) == pytest.approx((0.3, 0.3))
    with pytest.raises(ValueError, match="low end"):
        cl.claims.difference((0.9, 0.1), 0.0)
