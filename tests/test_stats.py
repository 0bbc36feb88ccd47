"""tf_gancond.stats on synthetic data with known answers, and against scipy."""

import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tf_gancond import stats


def test_correlations_are_exactly_minus_one_for_a_decreasing_relation():
  x = np.array([12.0, 14.5, 15.0, 17.25, 19.0, 21.0])
  y_linear = 3.0 - 0.5 * x
  y_monotone = np.exp(-x)  # Not linear: Spearman -1, Pearson above -1.
  assert stats.pearson(x, y_linear) == pytest.approx(-1.0, abs=1e-12)
  assert stats.spearman(x, y_linear) == -1.0
  assert stats.spearman(x, y_monotone) == -1.0
  assert stats.pearson(x, y_monotone) > -0.99


def test_correlations_match_scipy_with_ties():
  rng = np.random.default_rng(3)
  x = rng.integers(0, 5, size=30).astype(float)  # Many ties.
  y = x + rng.normal(size=30)
  assert stats.spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y)[0], abs=1e-12)
  assert stats.pearson(x, y) == pytest.approx(scipy_stats.pearsonr(x, y)[0], abs=1e-12)
  np.testing.assert_allclose(stats.rankdata(x), scipy_stats.rankdata(x))


def test_correlation_of_constant_is_nan_and_lengths_must_match():
  assert np.isnan(stats.pearson([1, 1, 1], [1, 2, 3]))
  assert np.isnan(stats.spearman([1], [2]))
  with pytest.raises(ValueError, match='length'):
    stats.pearson([1, 2], [1, 2, 3])


def test_bootstrap_interval_of_a_tiny_sample_is_the_exact_percentile_interval():
  """x = [0, 0, 0, 1]: a resample's mean is j/4, j ~ Binomial(4, 1/4), so
  P(j <= 0, 1, 2, 3) = 0.316, 0.738, 0.949, 0.996. The 2.5th percentile is 0; the
  97.5th is 3/4 (0.949 < 0.975 <= 0.996). At level 0.8: 0 and 1/2 (the 90th lies
  between 0.738 and 0.949). Each margin is over 5 standard errors of 2000 resamples."""
  x = [0.0, 0.0, 0.0, 1.0]
  for seed in (0, 1, 7):
    ci = stats.bootstrap_ci(np.mean, x, seed=seed)
    assert (ci['low'], ci['high']) == (0.0, 0.75)
    assert ci['num_resamples'] == ci['num_valid'] == 2000
    ci = stats.bootstrap_ci(np.mean, x, level=0.8, seed=seed)
    assert (ci['low'], ci['high'], ci['level']) == (0.0, 0.5, 0.8)
  assert stats.bootstrap_ci(np.mean, [2.5] * 6) == {
      'low': 2.5, 'high': 2.5, 'level': 0.95, 'num_resamples': 2000, 'num_valid': 2000}


def test_bootstrap_is_seeded():
  x = np.random.default_rng(0).normal(size=40)
  assert stats.bootstrap_ci(np.mean, x, seed=7) == stats.bootstrap_ci(np.mean, x,
                                                                      seed=7)
  assert stats.bootstrap_ci(np.mean, x, seed=7) != stats.bootstrap_ci(np.mean, x,
                                                                      seed=8)


def test_bootstrap_of_a_perfect_correlation_is_degenerate():
  x = np.arange(6.0)
  ci = stats.bootstrap_ci(stats.spearman, x, -x)
  # Every resample with two distinct x has rho = -1; all-equal resamples are nan.
  assert ci['low'] == ci['high'] == -1.0
  assert 0 < ci['num_valid'] <= 2000


def test_bootstrap_needs_four_runs():
  assert stats.bootstrap_ci(np.mean, [0.0, 0.0, 1.0]) is None
  ci = stats.bootstrap_ci(np.mean, [0.0, 0.0, 0.0, 1.0])
  assert (ci['low'], ci['high']) == (0.0, 0.75)  # See the test above.


def test_mean_interval_is_students_t():
  # [1, 2, 3, 4]: mean 2.5, s = sqrt(5/3), t(0.975, 3) = 3.182446305284263:
  # half width 3.182446 * 1.290994 / 2 = 2.054260.
  ci = stats.mean_interval([1.0, 2.0, 3.0, 4.0])
  assert ci['low'] == pytest.approx(2.5 - 2.0542603, abs=1e-6)
  assert ci['high'] == pytest.approx(2.5 + 2.0542603, abs=1e-6)
  assert ci['level'] == 0.95 and ci['method'] == 'student t'
  values = np.random.default_rng(0).normal(3.0, 2.0, size=9)
  low, high = scipy_stats.t.interval(0.9, 8, loc=values.mean(),
                                     scale=scipy_stats.sem(values))
  ci = stats.mean_interval(values, level=0.9)
  assert (ci['low'], ci['high']) == pytest.approx((low, high), abs=1e-12)
  assert stats.mean_interval([1.0, 2.0, 3.0]) is None  # Fewer than 4 runs.
  assert stats.mean_interval([2.0] * 5) == {'low': 2.0, 'high': 2.0, 'level': 0.95,
                                            'method': 'student t'}


def test_mean_interval_covers_the_mean_as_often_as_it_says():
  # 20,000 samples of 5 normal values: the t interval covers the true mean in 95 %
  # of them (binomial sd 0.15 %); the percentile bootstrap it replaced covered 86 % at n = 5 and 91 % at n = 10.
  samples = np.random.default_rng(1).normal(0.0, 1.0, size=(20000, 5))
  covered = [ci['low'] <= 0.0 <= ci['high']
             for ci in map(stats.mean_interval, samples)]
  assert np.mean(covered) == pytest.approx(0.95, abs=0.006)
  # The percentile bootstrap's interval of the same means covers less (measured with
  # 2,000 samples and B = 2,000: 86 % at n = 5, 91 % at n = 10); 400 samples and
  # B = 500 here, binomial sd 1.7 %.
  bootstrap = [stats.bootstrap_ci(np.mean, x, num_resamples=500, seed=i)
               for i, x in enumerate(samples[:400])]
  assert np.mean([ci['low'] <= 0.0 <= ci['high'] for ci in bootstrap]) < 0.91


def test_mean_interval_leaves_out_missing_and_non_finite_values():
  assert stats.mean_interval([1.0, None, 2.0, float('nan'), 3.0, 4.0, float('inf')]
                             ) == stats.mean_interval([1.0, 2.0, 3.0, 4.0])


def test_two_cluster_split_known_answer():
  values = [19.5, 12.1, 18.7, 12.9, 20.2, 11.8]
  for method in stats.CLUSTER_METHODS:
    split = stats.two_cluster_split(values, method)
    assert split['low'] == [1, 3, 5] and split['high'] == [0, 2, 4]
    assert split['threshold'] == pytest.approx((12.9 + 18.7) / 2)
    assert split['gap'] == pytest.approx(18.7 - 12.9)
    v = np.array(values)
    within = np.var(v[[1, 3, 5]]) * 3 + np.var(v[[0, 2, 4]]) * 3
    assert split['between_fraction'] == pytest.approx(1 - within / (np.var(v) * 6))


def test_kmeans_split_is_the_global_optimum():
  """Against brute force over every partition into two non-empty groups."""
  rng = np.random.default_rng(11)
  v = np.concatenate([rng.normal(0, 1, 5), rng.normal(2.5, 1.5, 4)])
  split = stats.two_cluster_split(v, 'kmeans')
  best = np.inf
  for mask in itertools.product([False, True], repeat=v.size):
    m = np.array(mask)
    if m.all() or not m.any():
      continue
    ss = np.sum((v[m] - v[m].mean()) ** 2) + np.sum((v[~m] - v[~m].mean()) ** 2)
    best = min(best, ss)
  assert split['within_ss'] == pytest.approx(best, rel=1e-12)


def test_split_pooled_std():
  # Cut 14 | 19: within-cluster SS = 0.5 + 0.5, s_p = sqrt(1 / (4 - 2)); gap 5.
  split = stats.two_cluster_split([19.0, 13.0, 20.0, 14.0])
  assert split['pooled_std'] == pytest.approx(np.sqrt(0.5)) and split['gap'] == 5.0
  # Evenly spaced: cut 11 | 12 (SS 0.5 + 2 = 2.5, tied with 12 | 13, first kept).
  split = stats.two_cluster_split([10.0, 11.0, 12.0, 13.0, 14.0])
  assert split['low'] == [0, 1] and split['gap'] == 1.0
  assert split['pooled_std'] == pytest.approx(np.sqrt(2.5 / 3))
  # Two values: no within-cluster spread.
  assert np.isnan(stats.two_cluster_split([1.0, 9.0])['pooled_std'])


def test_two_means_gain_known_answers():
  # Two tight groups: no within-cluster spread, gain 1. Evenly spaced 10..14: total
  # SS 10, best within SS 2.5, gain 0.75. Rows at once, as the bootstrap uses it.
  gains = stats.two_means_gain([[0.0, 1.0, 0.0, 1.0, 1.0],
                                [10.0, 11.0, 12.0, 13.0, 14.0]])
  np.testing.assert_allclose(gains, [1.0, 0.75])
  rng = np.random.default_rng(3)
  for v in rng.normal(size=(5, 7)):
    assert stats.two_means_gain(v) == pytest.approx(
        stats.two_cluster_split(v)['between_fraction'], rel=1e-12)


def test_two_cluster_test_p_values():
  # Two tight groups: a gain of 1 no Gaussian sample reaches, p = 1 / (B + 1).
  test = stats.two_cluster_test([1.0, 1.0, 1.0, 5.0, 5.0, 5.0], num_resamples=200)
  assert test['gain'] == pytest.approx(1.0) and test['p'] == 1 / 201
  # Evenly spaced values are what one Gaussian gives: no evidence of two clusters.
  assert stats.two_cluster_test([10.0, 11.0, 12.0, 13.0, 14.0])['p'] > 0.2
  # The same seed, the same p.
  v = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6]
  assert stats.two_cluster_test(v, seed=4) == stats.two_cluster_test(v, seed=4)
  assert stats.two_cluster_test([1.0, 9.0]) is None
  assert stats.two_cluster_test([2.0, 2.0, 2.0]) is None


def test_two_cluster_test_is_calibrated_and_has_power():
  """Under one Gaussian it rejects at 0.05 about 5 % of the time (200 samples of 10:
  binomial sd 1.5 %); two Gaussians 6 sd apart, 5 + 5 runs, it rejects most of the
  time (88 % measured; 100 samples, binomial sd 3.2 %), 8 sd apart nearly always
  (98-100 % measured)."""
  rng = np.random.default_rng(0)
  one = [stats.two_cluster_test(rng.normal(size=10), num_resamples=400, seed=i)['p']
         for i in range(200)]
  assert 0.01 <= np.mean(np.array(one) < 0.05) <= 0.10
  for apart, power in ((6.0, 0.75), (8.0, 0.9)):
    two = [stats.two_cluster_test(np.concatenate([rng.normal(0, 1, 5),
                                                  rng.normal(apart, 1, 5)]),
                                  num_resamples=400, seed=i)['p'] for i in range(100)]
    assert np.mean(np.array(two) < 0.05) >= power


def test_top_k_size_is_0_4_n_rounded():
  assert [stats.top_k_size(n) for n in (4, 5, 6, 9, 10, 11, 20)] == [
      2, 2, 2, 4, 4, 4, 8]


def test_gap_and_kmeans_can_differ():
  # Largest gap (3) isolates the zeros; 2-means balances the spread tail.
  v = [0, 0, 0, 0, 3, 4.5, 6, 7.5, 9]
  assert stats.two_cluster_split(v, 'gap')['low'] == [0, 1, 2, 3]
  assert stats.two_cluster_split(v, 'kmeans')['low'] == [0, 1, 2, 3, 4]


def test_split_edge_cases_and_bad_method():
  assert stats.two_cluster_split([5.0]) is None
  assert stats.two_cluster_split([2.0, 2.0, 2.0]) is None
  with pytest.raises(ValueError, match='method'):
    stats.two_cluster_split([1, 2], 'median')


def test_verdict_rules():
  v = stats.verdict
  # Interval inside the target region (edges included): PASS.
  assert v(13.0, 15.0, 12.0, 20.0, n=10) == stats.PASS
  assert v(12.0, 20.0, 12.0, 20.0, n=10) == stats.PASS
  # No overlap: FAIL, on either side.
  assert v(20.5, 22.0, 12.0, 20.0, n=10) == stats.FAIL
  assert v(-0.4, 0.1, -0.966, -0.502, n=10) == stats.FAIL
  # Straddles an edge, or covers the whole region: INCONCLUSIVE.
  assert v(11.0, 14.0, 12.0, 20.0, n=10) == stats.INCONCLUSIVE
  assert v(10.0, 22.0, 12.0, 20.0, n=10) == stats.INCONCLUSIVE
  # Too few runs, or no interval: INCONCLUSIVE whatever the values.
  assert v(13.0, 15.0, 12.0, 20.0, n=3) == stats.INCONCLUSIVE
  assert v(float('nan'), 15.0, 12.0, 20.0, n=10) == stats.INCONCLUSIVE
  assert v(None, None, 12.0, 20.0, n=10) == stats.INCONCLUSIVE
  # A count is the interval [count, count].
  assert v(4, 4, 4, 4, n=10) == stats.PASS
  assert v(3, 3, 4, 4, n=10) == stats.FAIL
  assert v(1, 1, 1, 1, n=1, min_n=1) == stats.PASS


def test_fisher_interval_of_the_papers_r():
  # atanh(-0.86) = -1.29334, half-width 1.95996 / sqrt(10 - 3) = 0.74080,
  # tanh(-2.03414) = -0.96636, tanh(-0.55255) = -0.50243.
  low, high = stats.fisher_interval(-0.86, 10)
  assert low == pytest.approx(-0.96636, abs=1e-5)
  assert high == pytest.approx(-0.50243, abs=1e-5)


def test_mean_std_and_top_k_overlap():
  out = stats.mean_std([1.0, 2.0, 3.0, None, float('nan')])
  assert out == {'n': 3, 'mean': 2.0, 'std': 1.0, 'var': 1.0}
  assert np.isnan(stats.mean_std([4.0])['std'])
  log_cond = [12, 13, 20, 21, 14]
  score = [8.0, 7.5, 2.0, 3.0, 7.0]
  assert stats.top_k_overlap(log_cond, -np.array(score), 3) == 3
  assert stats.top_k_overlap(log_cond, score, 2) == 0


def test_count_test_greater_is_the_exact_hypergeometric_tail():
  # All 5 events in group x of 5 + 5: 1 / C(10, 5); 3 of 3 events there: C(5, 3) /
  # C(10, 3) = 10 / 120; events equally frequent: p >= 0.5.
  assert stats.count_test_greater(5, 5, 0, 5) == pytest.approx(1 / 252)
  assert stats.count_test_greater(3, 5, 0, 5) == pytest.approx(10 / 120)
  assert stats.count_test_greater(2, 5, 2, 5) > 0.5


def test_welch_interval_uses_satterthwaite_degrees_of_freedom():
  # x = 1, 2, 3 (mean 2, var 1); y = 0, 0, 1 (mean 1/3, var 1/3): se^2 = 1/3 + 1/9
  # = 4/9; dof = (4/9)^2 / ((1/3)^2 / 2 + (1/9)^2 / 2) = 3.2.
  half = scipy_stats.t.ppf(0.975, 3.2) * 2 / 3
  low, high = stats.welch_interval([1, 2, 3], [0, 0, 1])
  assert (low, high) == pytest.approx((5 / 3 - half, 5 / 3 + half), rel=1e-12)
  assert stats.welch_interval([1], [0, 1]) is None
  assert stats.welch_interval([1, 1], [0, 0]) is None


def test_paired_difference_interval_takes_the_spread_of_the_reference_runs():
  # Reference 10, 11, 12, 13: s = sqrt(5 / 3); two differences 2 and 3: 2.5 -+
  # t(0.975, 3) s sqrt(2 / 2).
  half = scipy_stats.t.ppf(0.975, 3) * np.sqrt(5 / 3)
  assert stats.paired_difference_interval([2.0, 3.0], [10, 11, 12, 13]) == (
      pytest.approx(2.5 - half), pytest.approx(2.5 + half))
  assert stats.paired_difference_interval([2.0], [10, 11, 12]) is None
  assert stats.paired_difference_interval([], [10, 11, 12, 13]) is None


def test_sd_ratio_interval_is_the_f_interval():
  # For 5 + 5 samples: ratio / sqrt(F(0.975; 4, 4) = 9.6045) and / sqrt(F(0.025;
  # 4, 4) = 1 / 9.6045).
  low, high = stats.sd_ratio_interval(1.0, 5, 5)
  assert (low, high) == pytest.approx((1 / np.sqrt(9.6045), np.sqrt(9.6045)), rel=1e-4)


def test_two_sample_bootstrap_resamples_each_sample_on_its_own():
  # Differences of means of two constant samples never vary; of x = 0, 1, 2, 3
  # against a constant, the interval spans about the bootstrap spread of a mean.
  assert stats.two_sample_bootstrap_ci(
      lambda x, y: x.mean() - y.mean(), [1.0] * 4, [5.0] * 6) == (-4.0, -4.0)
  low, high = stats.two_sample_bootstrap_ci(
      lambda x, y: x.mean() - y.mean(), [0.0, 1.0, 2.0, 3.0], [0.0] * 6,
      num_resamples=4000)
  assert 0.2 < low < 0.75 and 2.25 < high < 2.8
  assert stats.two_sample_bootstrap_ci(np.subtract, [1.0] * 3, [1.0] * 5) is None
