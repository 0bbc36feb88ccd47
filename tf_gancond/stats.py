"""Statistics over the runs of a sweep (pure numpy functions, no TensorFlow).

Odena et al. (2018) state their claims over distributions of runs: two clusters of
runs by final mean log-condition number (Sec. 4, Fig. 1), the rank agreement of
conditioning with the scores, and a Pearson r of -0.86 between log-cond and the
least-sampled class count (O4). These functions give those numbers, Student t
intervals for means and percentile bootstrap intervals for the rest.

  pearson(x, y)          Pearson r.
  spearman(x, y)         Spearman rho = Pearson r of the ranks (ties: average ranks).
  bootstrap_ci(...)      percentile bootstrap interval, seeded.
  mean_interval(v)       Student t interval of a mean.
  two_cluster_split(v)   split 1-D values into a low and a high cluster
                         ('kmeans': exact 1-D 2-means; 'gap': largest gap).
  two_cluster_test(v)    p-value of the 2-means gain of v under one Gaussian
                         (parametric bootstrap): is the split more than noise?
  top_k_overlap(a, b, k) how many of the k smallest by a are among the k smallest by b.
  top_k_size(n)          k = round(0.4 n) of the O2 check (4 of 10 runs).
  mean_std(v)            mean, sample std (ddof=1) and variance.
  fisher_interval(r, n)  the interval of a Pearson r from n pairs (Fisher z).
  rank_test_less(x, y)   exact one-sided Mann-Whitney p that x lies below y.
  count_test_greater(..) exact one-sided Fisher p that one group's events are more
                         frequent than another's.
  welch_interval(x, y)   Welch t interval of mean(x) - mean(y).
  paired_difference_interval(d, ref)
                         interval of a mean of a few paired differences, from the
                         spread of many reference runs.
  sd_ratio_bound(...)    the sd ratio below which a one-sided F-test is significant.
  sd_ratio_interval(...) the F interval of a ratio of two sds.
  two_sample_bootstrap_ci(...)
                         percentile bootstrap of a statistic of two independent
                         samples, each resampled on its own.
  verdict(...)           PASS / FAIL / INCONCLUSIVE of a measured interval against
                         a target region (the report's scorecard).
"""

import math
import statistics

import numpy as np
from scipy import stats as scipy_stats

MIN_BOOTSTRAP_N = 4     # Fewer runs: too few distinct resamples for an interval.
DEFAULT_BOOTSTRAP = 2000
CLUSTER_METHODS = ('kmeans', 'gap')
CLUSTER_ALPHA = 0.05     # two_cluster_test rejects one Gaussian below this p.
MIN_CLUSTER_N = 4        # Fewer values: no split is called clusters (3 values always
                         # have a gain of at least 0.75 under one Gaussian).
TOP_K_FRACTION = 0.4     # Odena et al. (2018): "the 4 runs" of 10.
PASS, FAIL, INCONCLUSIVE, NOT_RUN = 'PASS', 'FAIL', 'INCONCLUSIVE', 'NOT RUN'


def _pair(x, y):
  x = np.asarray(x, np.float64).ravel()  # float64: sums of squares of many values.
  y = np.asarray(y, np.float64).ravel()
  if x.shape != y.shape:
    raise ValueError(f'x and y differ in length: {x.size} vs {y.size}')
  return x, y


def pearson(x, y):
  """Pearson r = cov(x, y) / (std x std y); nan if n < 2 or x or y is constant."""
  x, y = _pair(x, y)
  if x.size < 2:
    return float('nan')
  dx, dy = x - x.mean(), y - y.mean()
  denom = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
  if denom == 0:
    return float('nan')
  # Clip: rounding can leave |r| a few ulp above 1 for exactly linear data.
  return float(np.clip(np.sum(dx * dy) / denom, -1.0, 1.0))


def rankdata(values):
  """Ranks 1..n of `values` [n], ties given the average of their ranks."""
  v = np.asarray(values, np.float64).ravel()
  order = np.argsort(v, kind='mergesort')
  ranks = np.empty(v.size, np.float64)
  sorted_v = v[order]
  i = 0
  while i < v.size:
    j = i
    while j + 1 < v.size and sorted_v[j + 1] == sorted_v[i]:
      j += 1
    ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0  # Average of ranks i+1 .. j+1.
    i = j + 1
  return ranks


def spearman(x, y):
  """Spearman rank correlation: Pearson r of the (average-tie) ranks."""
  x, y = _pair(x, y)
  return pearson(rankdata(x), rankdata(y))


def bootstrap_ci(statistic, *samples, num_resamples=DEFAULT_BOOTSTRAP, level=0.95,
                 seed=0):
  """Percentile bootstrap interval of `statistic(*samples)`.

  The samples (equal length n, e.g. x and y of a correlation) are resampled
  together: num_resamples draws of n row indices with replacement, from a
  generator seeded with `seed` (same inputs -> same interval). Resamples where
  the statistic is undefined (nan, e.g. all rows equal) are dropped.

  Returns {'low', 'high', 'level', 'num_resamples', 'num_valid'}, or None when
  n < MIN_BOOTSTRAP_N.
  """
  arrays = [np.asarray(s, np.float64).ravel() for s in samples]
  n = arrays[0].size
  if any(a.size != n for a in arrays):
    raise ValueError('bootstrap samples differ in length')
  if n < MIN_BOOTSTRAP_N:
    return None
  if not 0 < level < 1:
    raise ValueError(f'level={level!r} must lie in (0, 1)')
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, n, size=(num_resamples, n))
  values = np.array([statistic(*(a[i] for a in arrays)) for i in idx], np.float64)
  valid = values[np.isfinite(values)]
  if valid.size == 0:
    return {'low': float('nan'), 'high': float('nan'), 'level': level,
            'num_resamples': num_resamples, 'num_valid': 0}
  alpha = 100.0 * (1.0 - level) / 2.0
  low, high = np.percentile(valid, [alpha, 100.0 - alpha])
  return {'low': float(low), 'high': float(high), 'level': level,
          'num_resamples': num_resamples, 'num_valid': int(valid.size)}


def mean_interval(values, level=0.95):
  """Student t interval of the mean: mean -+ t(0.5 + level / 2, n - 1) s / sqrt(n).

  For a mean over a handful of runs this is the interval that covers as often as it
  says (exactly, for normal values); the percentile bootstrap covers less, 86 % for
  a 95 % interval at n = 5 and 91 % at n = 10 (measured; tests/test_stats.py checks
  that it covers less). None and non-finite values are left out, as in mean_std.
  Returns {'low', 'high', 'level', 'method'}, or None when n < MIN_BOOTSTRAP_N (the
  rule of every interval of the report).
  """
  v = np.asarray([x for x in values if x is not None], np.float64).ravel()
  v = v[np.isfinite(v)]
  if v.size < MIN_BOOTSTRAP_N:
    return None
  half = scipy_stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(
      v.size)
  return {'low': float(v.mean() - half), 'high': float(v.mean() + half),
          'level': level, 'method': 'student t'}


def mean_std(values):
  """{'n', 'mean', 'std' (ddof=1), 'var' (ddof=1)}; std/var nan for n < 2."""
  v = np.asarray([x for x in values if x is not None], np.float64)
  v = v[np.isfinite(v)]
  out = {'n': int(v.size), 'mean': float('nan'), 'std': float('nan'),
         'var': float('nan')}
  if v.size:
    out['mean'] = float(v.mean())
  if v.size >= 2:
    out['var'] = float(v.var(ddof=1))
    out['std'] = float(np.sqrt(out['var']))
  return out


def two_cluster_split(values, method='kmeans'):
  """Splits 1-D values into a low and a high cluster.

  'kmeans': exact 2-means in 1-D. Optimal 2-means clusters of 1-D data are
    contiguous in sorted order, so trying the n-1 cut points and keeping the one
    with the least within-cluster sum of squares gives the global optimum (no
    random restarts; ties go to the first cut).
  'gap': cut at the largest gap between consecutive sorted values.

  Returns {'method', 'threshold' (midpoint of the cut), 'low' and 'high' (index
  lists into `values`), 'within_ss', 'gap', 'between_fraction', 'pooled_std'} or
  None for fewer than 2 values or all values equal.

  A split always exists; whether it means anything is two_cluster_test's to say.
    gap         the distance between the highest low and the lowest high value;
    pooled_std  s_p = sqrt(within_ss / (n - 2)), the pooled within-cluster standard
                deviation (nan for n = 2);
    between_fraction  1 - within_ss / total_ss (1: two tight groups).
  """
  if method not in CLUSTER_METHODS:
    raise ValueError(f'method={method!r} is not allowed; choose one of: '
                     f'{", ".join(CLUSTER_METHODS)}')
  v = np.asarray(values, np.float64).ravel()
  if v.size < 2 or np.all(v == v[0]):
    return None
  order = np.argsort(v, kind='mergesort')
  s = v[order]
  gaps = np.diff(s)
  if method == 'gap':
    cut = int(np.argmax(gaps)) + 1
  else:
    best = None
    for k in range(1, s.size):
      if s[k] == s[k - 1]:
        continue  # Equal values stay together.
      lo, hi = s[:k], s[k:]
      ss = np.sum((lo - lo.mean()) ** 2) + np.sum((hi - hi.mean()) ** 2)
      if best is None or ss < best[0]:
        best = (ss, k)
    cut = best[1]
  lo, hi = s[:cut], s[cut:]
  within = float(np.sum((lo - lo.mean()) ** 2) + np.sum((hi - hi.mean()) ** 2))
  total = float(np.sum((s - s.mean()) ** 2))  # > 0: the values are not all equal.
  gap = float(s[cut] - s[cut - 1])
  pooled_std = float(np.sqrt(within / (s.size - 2))) if s.size > 2 else float('nan')
  return {'method': method,
          'threshold': float(0.5 * (s[cut - 1] + s[cut])),
          'low': sorted(int(i) for i in order[:cut]),
          'high': sorted(int(i) for i in order[cut:]),
          'within_ss': within,
          'gap': gap,
          'between_fraction': 1.0 - within / total,
          'pooled_std': pooled_std}


def two_means_gain(values):
  """The 2-means gain of each row: 1 - (least within-cluster sum of squares over
  the n - 1 cuts of the sorted row) / (total sum of squares).

  values: [..., n], n >= 2, no row constant. Returns [...]: between_fraction of
  two_cluster_split('kmeans') for every row at once (cumulative sums over the
  sorted values, float64).
  """
  s = np.sort(np.asarray(values, np.float64), axis=-1)
  n = s.shape[-1]
  k = np.arange(1, n)  # Values in the low cluster.
  s1, s2 = np.cumsum(s, axis=-1), np.cumsum(s * s, axis=-1)
  low = s2[..., :-1] - s1[..., :-1] ** 2 / k
  high = (s2[..., -1:] - s2[..., :-1]) - (s1[..., -1:] - s1[..., :-1]) ** 2 / (n - k)
  total = s2[..., -1] - s1[..., -1] ** 2 / n
  return 1.0 - np.min(low + high, axis=-1) / total


def two_cluster_test(values, num_resamples=DEFAULT_BOOTSTRAP, seed=0):
  """Is the 2-means split of `values` more than the noise of one Gaussian?

  Parametric bootstrap of the 2-means gain G = two_means_gain(values) (a dip-free
  stand-in for a test of unimodality): num_resamples samples of the same size from
  one Gaussian of the values' mean and sd, seeded. G does not depend on the mean or
  the scale, so standard normals serve. p = (1 + #{G_null >= G}) / (1 +
  num_resamples), never 0.

  Returns {'gain', 'p', 'num_resamples', 'n'}, or None for fewer than 3 values or
  all values equal (2 values always split with gain 1).
  """
  v = np.asarray(values, np.float64).ravel()
  if v.size < 3 or np.all(v == v[0]):
    return None
  gain = float(two_means_gain(v))
  null = two_means_gain(np.random.default_rng(seed).standard_normal(
      (num_resamples, v.size)))
  # 1e-12: a null gain equal to G up to rounding counts as reaching it.
  p = (1 + int(np.sum(null >= gain - 1e-12))) / (1 + num_resamples)
  return {'gain': gain, 'p': float(p), 'num_resamples': num_resamples,
          'n': int(v.size)}


def top_k_overlap(key_a, key_b, k):
  """How many of the k smallest items by key_a are among the k smallest by key_b.

  Odena et al. (2018): "the 4 runs with the lowest condition number also have the
  4 best scores" is top_k_overlap(log_cond, -score, 4) == 4 (ties broken by
  position).
  """
  a = np.argsort(np.asarray(key_a, np.float64), kind='mergesort')[:k]
  b = np.argsort(np.asarray(key_b, np.float64), kind='mergesort')[:k]
  return int(len(set(a.tolist()) & set(b.tolist())))


def top_k_size(n):
  """k of the O2 check for n runs: round(TOP_K_FRACTION * n) (4 for 10 runs)."""
  return int(round(TOP_K_FRACTION * n))


def fisher_interval(r, n, level=0.95):
  """(low, high): tanh(atanh(r) -+ z / sqrt(n - 3)), z the normal quantile of level.

  The usual interval of a Pearson r from n pairs; for the paper's r = -0.86 from 10
  runs, [-0.966, -0.502].
  """
  z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
  half = z / math.sqrt(n - 3)
  return math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half)


def rank_test_less(x, y):
  """Exact one-sided Mann-Whitney U p-value for "x tends to lie below y" (no ties
  assumed). Every x below every y gives p = 1 / C(n_x + n_y, n_x): 0.05 at 3 + 3."""
  return float(scipy_stats.mannwhitneyu(x, y, alternative='less', method='exact').pvalue)


def count_test_greater(events_x, n_x, events_y, n_y):
  """Exact one-sided Fisher p-value that events are more frequent in group x
  (events_x of n_x) than in group y (events_y of n_y). 5 of 5 against 0 of 5 gives
  1 / C(10, 5) = 0.004; 3 of 5 against 0 of 5 gives 0.083."""
  table = [[events_x, n_x - events_x], [events_y, n_y - events_y]]
  return float(scipy_stats.fisher_exact(table, alternative='greater')[1])


def welch_interval(x, y, level=0.95):
  """(low, high) of mean(x) - mean(y) by Welch's t (unequal variances, Satterthwaite
  degrees of freedom); None when either sample has fewer than 2 values or both
  have no spread."""
  x, y = (np.asarray(v, np.float64).ravel() for v in (x, y))
  if x.size < 2 or y.size < 2:
    return None
  vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
  if vx + vy == 0:
    return None
  dof = (vx + vy) ** 2 / (vx ** 2 / (x.size - 1) + vy ** 2 / (y.size - 1))
  half = scipy_stats.t.ppf(0.5 + level / 2, dof) * math.sqrt(vx + vy)
  difference = x.mean() - y.mean()
  return float(difference - half), float(difference + half)


def paired_difference_interval(differences, reference, level=0.95):
  """(low, high) of the mean of n paired differences (a run under a change minus
  its twin of the same seed), with the sd s of `reference` (many runs of the twins'
  setting) standing in for the runs' spread: mean -+ t(n_ref - 1) s sqrt(2 / n), as
  a difference of two independent runs has twice one run's variance if the change
  keeps that spread. For n too small to estimate its own spread (2 seeds); None
  when `reference` has fewer than MIN_BOOTSTRAP_N finite values or no differences."""
  d = np.asarray(differences, np.float64).ravel()
  spread = mean_std(reference)
  if d.size == 0 or spread['n'] < MIN_BOOTSTRAP_N:
    return None
  half = scipy_stats.t.ppf(0.5 + level / 2, spread['n'] - 1) * spread['std'] * math.sqrt(
      2 / d.size)
  return float(d.mean() - half), float(d.mean() + half)


def sd_ratio_bound(n_x, n_y, alpha=0.05):
  """The sd ratio s_x / s_y below which the one-sided F-test of var_x < var_y on
  n_x and n_y normal samples is significant at `alpha`: sqrt of the alpha quantile
  of F(n_x - 1, n_y - 1). For 3 + 3 samples: sqrt(1/19) = 0.229."""
  return math.sqrt(scipy_stats.f.ppf(alpha, n_x - 1, n_y - 1))


def sd_ratio_interval(ratio, n_x, n_y, level=0.95):
  """(low, high): the interval of sigma_x / sigma_y from a measured s_x / s_y of n_x
  and n_y normal samples: ratio / sqrt(F quantiles of F(n_x - 1, n_y - 1))."""
  tail = (1 - level) / 2
  return (ratio / math.sqrt(scipy_stats.f.ppf(1 - tail, n_x - 1, n_y - 1)),
          ratio / math.sqrt(scipy_stats.f.ppf(tail, n_x - 1, n_y - 1)))


def two_sample_bootstrap_ci(statistic, x, y, num_resamples=DEFAULT_BOOTSTRAP,
                            level=0.95, seed=0):
  """Percentile bootstrap interval of statistic(x, y) for two independent samples:
  each draw resamples x and y on their own, with replacement (a generator seeded
  with `seed`). None when either has fewer than MIN_BOOTSTRAP_N values."""
  x, y = (np.asarray(v, np.float64).ravel() for v in (x, y))
  if min(x.size, y.size) < MIN_BOOTSTRAP_N:
    return None
  rng = np.random.default_rng(seed)
  values = np.array([statistic(x[rng.integers(0, x.size, x.size)],
                               y[rng.integers(0, y.size, y.size)])
                     for _ in range(num_resamples)], np.float64)
  values = values[np.isfinite(values)]
  if values.size == 0:
    return None
  alpha = 100.0 * (1.0 - level) / 2.0
  low, high = np.percentile(values, [alpha, 100.0 - alpha])
  return float(low), float(high)


def verdict(low, high, target_low, target_high, n, min_n=MIN_BOOTSTRAP_N):
  """Verdict of a measured interval [low, high] against a target region.

    INCONCLUSIVE  n < min_n, or low or high is missing or not finite;
    PASS          target_low <= low and high <= target_high (inside the region);
    FAIL          high < target_low or low > target_high (no overlap);
    INCONCLUSIVE  otherwise (the interval straddles an edge of the region).

  A count without an interval is passed as low = high = count, so it passes inside
  the region and fails outside it. NOT_RUN (no data) is the caller's to decide.
  """
  if n < min_n or low is None or high is None or not (
      math.isfinite(low) and math.isfinite(high)):
    return INCONCLUSIVE
  if target_low <= low and high <= target_high:
    return PASS
  if high < target_low or low > target_high:
    return FAIL
  return INCONCLUSIVE
