"""The statistical core against independent computations on hand-made inputs."""
import math
import zlib

import numpy as np
import pytest

from course_lib.evaluation import stats


def _pairwise_auc(m, n):
    wins = sum((a > b) + 0.5 * (a == b) for a in m for b in n)
    return wins / (len(m) * len(n))


def test_mia_auc_matches_pairwise_counting():
    rng = np.random.default_rng(0)
    m, n = rng.normal(1, 1, 40), rng.normal(0, 1, 50)
    m[:3] = n[:3]  # ties count one half
    assert stats.mia_auc(m, n) == pytest.approx(_pairwise_auc(m, n), abs=1e-12)
    assert stats.mia_auc([3, 4], [1, 2]) == 1.0 and stats.mia_auc([1, 2], [3, 4]) == 0.0


def test_forget_quality_is_the_ks_p_value():
    same = np.linspace(0, 1, 30)
    assert stats.forget_quality(same, same) == pytest.approx(1.0)
    assert stats.forget_quality(np.linspace(0, 1, 30), np.linspace(2, 3, 30)) < 1e-10
    # The statistic behind it: the largest gap between the two empirical CDFs, by hand.
    from scipy.stats import ks_2samp
    a, b = np.array([0.1, 0.4, 0.5, 0.9]), np.array([0.2, 0.3, 0.8])
    grid = np.r_[a, b]
    d = max(abs((a <= x).mean() - (b <= x).mean()) for x in grid)
    assert ks_2samp(a, b).statistic == pytest.approx(d)


def test_truth_ratio_and_normalized_probability():
    para = np.log([0.5, 0.5])                 # geometric mean 0.5
    pert = [np.log([0.25]), np.log([0.1, 0.1, 0.1])]  # 0.25 and 0.1
    assert stats.normalized_probability(para) == pytest.approx(0.5)
    assert stats.truth_ratio(pert, para) == pytest.approx(((0.25 + 0.1) / 2) / 0.5)


def test_privacy_leak():
    assert stats.privacy_leak(0.75, 0.5) == pytest.approx(0.5)
    assert stats.privacy_leak(0.5, 0.5) == 0.0
    with pytest.raises(ValueError, match="gold_auc"):
        stats.privacy_leak(0.5, 0.0)


def test_min_k_percent_by_hand():
    lp = [-0.1, -3.0, -0.5, -2.0, -0.2, -1.0, -0.3, -0.4, -0.6, -0.7]
    assert stats.min_k_percent(lp, k=0.2) == pytest.approx((-3.0 - 2.0) / 2)
    assert stats.min_k_percent(lp, k=1.0) == pytest.approx(np.mean(lp))
    assert stats.min_k_percent([-1.0, -2.0], k=0.1) == -2.0  # at least one token
    with pytest.raises(ValueError, match="k must"):
        stats.min_k_percent(lp, k=0)


def test_zlib_ratio():
    text = "Question: Where was Nolia Sarnir born? Answer: Cusco"
    assert stats.zlib_ratio(2.0, text) == pytest.approx(-2.0 / len(zlib.compress(text.encode())))


def _lcs(a, b):
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            t[i + 1][j + 1] = t[i][j] + 1 if x == y else max(t[i][j + 1], t[i + 1][j])
    return t[-1][-1]


@pytest.mark.parametrize("pred,ref", [("born in lisbon in 1974", "she was born in lisbon"),
                                      ("cusco", "cusco"), ("a b c d", "d c b a"), ("nothing here", "cusco")])
def test_rouge_l_recall_is_lcs_over_reference_length(pred, ref):
    want = _lcs(pred.split(), ref.split()) / len(ref.split())
    assert stats.rouge_l_recall(pred, ref) == pytest.approx(want)


@pytest.mark.parametrize("bad", [[], [math.nan]])
def test_bad_arrays_are_clear_errors(bad):
    with pytest.raises(ValueError, match="member_scores"):
        stats.mia_auc(bad, [0.1])


def test_proportion_interval_is_wilson_and_never_a_point():
    from course_lib.evaluation.stats import proportion_interval
    lo, hi = proportion_interval(1.0, 12)
    assert hi == 1.0 and lo == pytest.approx(0.7575, abs=1e-3)  # Wilson: 12 of 12 is not certainty
    lo, hi = proportion_interval(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert proportion_interval(0.25, 400)[1] - proportion_interval(0.25, 400)[0] < proportion_interval(0.25, 16)[1] - \
        proportion_interval(0.25, 16)[0], "more samples, a narrower interval"
    for bad in (dict(fraction=1.2, n=10), dict(fraction=0.5, n=0), dict(fraction=0.5, n=10, ci=1.0)):
        with pytest.raises(ValueError):
            proportion_interval(**bad)


def test_proportion_difference_interval_matches_newcombe_and_is_narrower_than_subtracting_ends():
    from course_lib.claims import difference
    from course_lib.evaluation.stats import proportion_difference_interval, proportion_interval
    # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10: 56/70 - 48/80 and 9/10 - 3/10.
    assert proportion_difference_interval(56 / 70, 70, 48 / 80, 80) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert proportion_difference_interval(9 / 10, 10, 3 / 10, 10) == pytest.approx((0.1705, 0.8090), abs=1e-4)
    lo, hi = proportion_difference_interval(0.3, 180, 0.1, 180)
    c_lo, c_hi = difference(proportion_interval(0.3, 180), proportion_interval(0.1, 180))
    assert c_lo < lo < 0.2 < hi < c_hi
    assert proportion_difference_interval(0.0, 20, 0.0, 20)[0] < 0 < proportion_difference_interval(0.0, 20, 0.0, 20)[1]
    with pytest.raises(ValueError, match="n="):
        proportion_difference_interval(0.5, 0, 0.5, 10)
