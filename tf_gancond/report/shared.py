"""The analyses that several checks share, computed once per report (Context).

  Context            the runs of one report with their score columns, cluster split,
                     per-setting end values, z-sampling noise and JC against its
                     twin of the same seed.
  cluster_split      the good and bad clusters of [O] Sec. 4, by a calibrated test
                     (docs/experiments.md#o2).
  log_cond_noise     the z-sampling noise of the final log-cond beside its spread.
  paired_by_seed     Jacobian Clamping minus its unregularized twin of the same seed.
  score_columns      score columns that never pool classifiers or sample counts.

Statistics use each run's end point (RunData.outcome): means and Pearson r leave out
runs without a finite value (finite_rows), rank statistics rank diverged, non-finite
and collapsed runs worst by log-cond (rank_rows); each statistic lists what it left
out ('excluded') and ranked worst ('ranked_worst').
"""

import functools
import math

import numpy as np

from tf_gancond import stats
from tf_gancond.report import records


class Context:
  """The runs of one report and the analyses its checks share, each computed once.

  Score columns (score_columns sets run.scores) come first and the cluster split
  (cluster_split sets run.cluster) second, as every later statistic reads them.
  `analysis` is the JSON-ready dict of analysis.json; checks add their own entries
  (Check.analyse) and read the shared ones from it or from the attributes.
  """

  def __init__(self, runs, dataset=None, cluster_method='kmeans',
               num_resamples=stats.DEFAULT_BOOTSTRAP, seed=0,
               collapse_score=records.COLLAPSE_SCORE):
    self.runs, self.dataset = runs, dataset
    self.num_resamples, self.seed = num_resamples, seed
    self.settings = records.settings_of(runs)
    self.columns = score_columns(runs)
    self.score_names = list(self.columns)
    self.unregularized = [r for r in runs if r.setting in records.UNREGULARIZED]
    self.clusters = cluster_split(runs, cluster_method, num_resamples, seed)
    self.analysis = {
        'cluster_method': cluster_method, 'bootstrap_resamples': num_resamples,
        'bootstrap_seed': seed, 'score_keys': self.score_names,
        'score_columns': self.columns, 'settings': self.per_setting,
        'clusters': self.clusters, 'log_cond_noise': self.noise,
        'paired': self.paired, 'dataset': dataset, 'collapse_score': collapse_score}

  def group(self, setting):
    return [r for r in self.runs if r.setting == setting]

  def ci(self, statistic, *samples):
    """The report's percentile bootstrap interval of statistic(*samples)."""
    return stats.bootstrap_ci(statistic, *samples, num_resamples=self.num_resamples,
                              seed=self.seed)

  @functools.cached_property
  def quantities(self):
    return end_quantities(self.score_names)

  @functools.cached_property
  def per_setting(self):
    """{setting: {'runs', 'finished', quantity: mean_std + 'ci_mean', 'excluded'}}
    of each end value some run of the setting has."""
    out = {}
    for s in self.settings:
      group = self.group(s)
      entry = {'runs': len(group),
               'finished': sum(r.state == 'finished' for r in group)}
      for key, (value_of, is_log_cond) in self.quantities.items():
        if not any(isinstance(value_of(r), float) for r in group):
          continue
        rows, excluded = finite_rows(group, (value_of, is_log_cond))
        values = [v for v, in rows]
        summary = stats.mean_std(values)
        summary['ci_mean'] = stats.mean_interval(values)
        summary['excluded'] = excluded
        entry[key] = summary
      out[s] = entry
    return out

  @functools.cached_property
  def noise(self):
    """{setting: log_cond_noise of its runs} where defined."""
    return {s: v for s in self.settings for v in [log_cond_noise(self.group(s))] if v}

  @functools.cached_property
  def unregularized_noise(self):
    """log_cond_noise over every unregularized run (the runs the split and O4 use)."""
    return log_cond_noise(self.unregularized)

  @functools.cached_property
  def paired(self):
    return paired_by_seed(self.runs, self.quantities)


def count(reasons):
  return {k: reasons.count(k) for k in sorted(set(reasons))}


def score_of(run, column):
  """The run's final score in a score column; records.OTHER_GROUP when the run's
  score of that key is in another column; None when it has none."""
  if column in run.scores:
    return run.scores[column]
  return records.OTHER_GROUP if column.partition(' (')[0] in run.final_scores else None


def missing(run):
  """Why a run has no value: its state when it did not finish, else 'not recorded'."""
  return 'not recorded' if run.state == 'finished' else run.outcome


def finite_rows(runs, *columns):
  """Rows of finite values for means and Pearson r, and the runs left out.

  columns: (value_of(run), is_log_cond) pairs. A run is left out, with the first
  reason that applies: its outcome, when the run has no end point (diverged, failed,
  interrupted, running, not started) or, for a log-cond column, when its log-cond
  ranks worst (non-finite, collapsed); 'not recorded'; a reason value_of returns
  instead of a number (score_of's OTHER_GROUP); 'non-finite'.
  Returns ([[one value per column] per run kept], {reason: number of runs}).
  """
  rows, reasons = [], []
  for r in runs:
    row, reason = [], None
    for value_of, is_log_cond in columns:
      v = value_of(r)
      if r.state != 'finished' or (is_log_cond and r.outcome != 'ok'):
        reason = r.outcome
      elif v is None:
        reason = 'not recorded'
      elif isinstance(v, str):
        reason = v
      elif not math.isfinite(v):
        reason = 'non-finite'
      if reason:
        break
      row.append(v)
    if reason:
      reasons.append(reason)
    else:
      rows.append(row)
  return rows, count(reasons)


def rank_rows(runs, column, lower_better):
  """Final log-cond and a final score (a score column) per run, for rank statistics.

  x = run.rank_log_cond (+inf for diverged, non-finite and collapsed runs); y = the
  final score, a non-finite one replaced by the worst value (-inf; +inf when lower
  is better). Runs without an end point, a probe or the score are left out.
  Returns (x, y, {reason left out: runs}, {reason ranked worst: runs}).
  """
  worst = math.inf if lower_better else -math.inf
  x, y, left_out, ranked_worst = [], [], [], []
  for r in runs:
    score = score_of(r, column)
    if not r.counted or r.rank_log_cond is None or not isinstance(score, float):
      left_out.append(records.OTHER_GROUP if r.state == 'finished' and
                      score == records.OTHER_GROUP else missing(r))
      continue
    if r.outcome in records.RANKED_WORST:
      ranked_worst.append(r.outcome)
    x.append(r.rank_log_cond)
    y.append(score if math.isfinite(score) else worst)
  return (np.array(x, np.float64), np.array(y, np.float64), count(left_out),
          count(ranked_worst))


def cluster_split(runs, method='kmeans', num_resamples=stats.DEFAULT_BOOTSTRAP,
                  seed=0):
  """The good and bad clusters of Odena et al. (2018), Sec. 4; sets run.cluster.

  The unregularized runs (settings UNREGULARIZED) with a finite final log-cond are
  split in two by stats.two_cluster_split; their diverged, non-finite and collapsed
  runs join the high ("bad") cluster. The split counts as clusters ('separated')
  only when stats.two_cluster_test rejects one Gaussian at stats.CLUSTER_ALPHA over
  at least stats.MIN_CLUSTER_N finite values; then every unregularized and
  Jacobian Clamping run with an end point is placed by the same threshold: good
  below it, bad otherwise. Otherwise no run is labelled ("not clustered").

  Returns {} when fewer than two unregularized runs have a finite final log-cond,
  else {'method', 'n', 'n_tested', 'threshold', 'gap', 'pooled_std',
  'between_fraction', 'p' (of two_cluster_test; None below 3 values), 'separated',
  'agrees_with_<other method>', 'ranked_worst', 'excluded'} and, when separated,
  'good' and 'bad' (unregularized run names) and 'placed' ({setting: {'runs',
  'good', 'bad', 'excluded'}}).
  """
  unregularized = [r for r in runs if r.setting in records.UNREGULARIZED]
  ranked = [r for r in unregularized if r.counted and r.rank_log_cond is not None]
  finite = [r for r in ranked if math.isfinite(r.rank_log_cond)]
  values = [r.rank_log_cond for r in finite]
  split = stats.two_cluster_split(values, method)
  if split is None:
    return {}
  other = 'gap' if method == 'kmeans' else 'kmeans'
  alt = stats.two_cluster_split(values, other)
  test = stats.two_cluster_test(values, num_resamples, seed)
  out = {k: split[k] for k in ('method', 'threshold', 'gap', 'pooled_std',
                               'between_fraction')}
  out.update({'n': len(ranked), 'n_tested': len(finite),
              'p': test['p'] if test else None,
              'separated': bool(test and len(finite) >= stats.MIN_CLUSTER_N and
                                test['p'] < stats.CLUSTER_ALPHA),
              'agrees_with_' + other: alt['low'] == split['low'],
              'ranked_worst': count([r.outcome for r in ranked
                                     if r.outcome in records.RANKED_WORST]),
              'excluded': count([missing(r) for r in unregularized
                                 if r not in ranked])})
  if not out['separated']:
    return out
  out['placed'] = {}
  placeable = records.UNREGULARIZED + (records.JACOBIAN_CLAMPING,)
  for s in [s for s in records.settings_of(runs) if s in placeable]:
    group = [r for r in runs if r.setting == s]
    placed = [r for r in group if r.counted and r.rank_log_cond is not None]
    for r in placed:
      r.cluster = 'good' if r.rank_log_cond < split['threshold'] else 'bad'
    out['placed'][s] = {
        'runs': len(placed), 'good': sum(r.cluster == 'good' for r in placed),
        'bad': sum(r.cluster == 'bad' for r in placed),
        'excluded': count([missing(r) for r in group if r not in placed])}
  out['good'] = [r.name for r in ranked if r.cluster == 'good']
  out['bad'] = [r.name for r in ranked if r.cluster == 'bad']
  return out


def log_cond_noise(runs):
  """The z-sampling noise of the runs' final log-cond beside its spread between runs.

  A run's final log-cond x_i is the mean of ln cond(M_z) over its probe's N z, so
  another draw of z moves it: by SE_i = sd over z (ddof 1) / sqrt(N) for a run on
  its own. Between runs, the variance of the x_i is the variance of the generators
  plus noise_var, the noise that z sampling adds to their differences:
  * runs probed on their own z: noise_var = mean SE_i^2;
  * runs probed on one shared z batch (the same probe_seed and N, config.py): a
    pattern of ln cond over z that every run shares cancels between runs, so
    noise_var = MS_interaction / N, from the runs x z table of per-z values with run
    and z effects removed (two-way layout without replication; MS = SS / ((n - 1)
    (N - 1))), the expected noise part of var_i(x_i) when z is a random draw.
  noise_share = noise_var / between_var is the part of the run-to-run spread the
  measurement alone gives: near or above 1, ranks and clusters of these runs are
  mostly z noise, and a Pearson r with the final log-cond is attenuated by about
  sqrt(1 - noise_share) (regression dilution).

  Over runs that ended 'ok' with finite per-z values; None for fewer than 2.
  Returns {'n', 'num_z' (sorted distinct N), 'z_shared', 'se_median', 'se_min',
  'se_max' (of SE_i), 'noise_var', 'between_var' (ddof 1), 'noise_share' (None when
  between_var is 0)}.
  """
  kept = [r for r in runs if r.outcome == 'ok' and r.final_per_z_log_cond is not None]
  kept = [r for r in kept if r.final_per_z_log_cond.size > 1 and
          np.all(np.isfinite(r.final_per_z_log_cond))]
  if len(kept) < 2:
    return None
  per_z = [r.final_per_z_log_cond for r in kept]
  sizes = sorted({z.size for z in per_z})
  seeds = {r.config.get('probe_seed') for r in kept}
  z_shared = len(sizes) == 1 and len(seeds) == 1 and None not in seeds
  se = np.array([np.std(z, ddof=1) / math.sqrt(z.size) for z in per_z])
  if z_shared:
    table = np.stack(per_z)  # [runs, z]
    n, num_z = table.shape
    interaction = (table - table.mean(1, keepdims=True) - table.mean(0, keepdims=True)
                   + table.mean())
    noise_var = float(np.sum(interaction ** 2) / ((n - 1) * (num_z - 1)) / num_z)
  else:
    noise_var = float(np.mean(se ** 2))
  between_var = float(np.var([r.final_log_cond for r in kept], ddof=1))
  return {'n': len(kept), 'num_z': [int(v) for v in sizes], 'z_shared': z_shared,
          'se_median': float(np.median(se)), 'se_min': float(se.min()),
          'se_max': float(se.max()), 'noise_var': noise_var, 'between_var': between_var,
          'noise_share': noise_var / between_var if between_var > 0 else None}


def score_columns(runs):
  """The score columns of the report; sets run.scores ({column: final score}).

  Scores are comparable only when made by the same classifier from the same number
  of samples, and distances only on the same classifier layer. A score key whose
  runs differ in classifier (fingerprint, else identity: RunData.score_settings), in
  num_samples or in fd_layer becomes one column per group,
  '<key> (classifier <id>, N=<num_samples>[, <fd_layer>])'; otherwise its column is
  the key. Returns {column: {'key', 'classifier', 'num_samples', 'fd_layer',
  'runs' (names)}}.
  """
  groups = {}
  for r in runs:
    r.scores = {}
    for k in r.final_scores:
      groups.setdefault(k, {}).setdefault(r.score_settings(k), []).append(r)
  columns = {}
  for k, by_setting in sorted(groups.items()):
    for (classifier, num_samples, layer), members in by_setting.items():
      column = k if len(by_setting) == 1 else (
          f'{k} (classifier {classifier}, N={num_samples}'
          + (f', {layer})' if layer else ')'))
      columns[column] = {'key': k, 'classifier': classifier,
                         'num_samples': num_samples, 'fd_layer': layer,
                         'runs': [r.name for r in members]}
      for r in members:
        r.scores[column] = r.final_scores[k]
  return columns


def end_quantities(score_names):
  """{quantity: (value_of(run), is_log_cond)} of the end-point values the report
  summarises: final log-cond, each score column, the least-sampled class count."""
  quantities = {'final_log_cond': (lambda r: r.final_log_cond, True)}
  for k in score_names:
    quantities[k] = (lambda r, k=k: score_of(r, k), False)
  quantities['min_class_count'] = (lambda r: r.min_class_count, False)
  return quantities


def paired_by_seed(runs, quantities):
  """Jacobian Clamping minus its unregularized twin of the same seed.

  The two runs of one seed start from the same weights (loop.py seeds the
  initialisation), draw the same z (rng.stream_seed keys each draw by purpose, and
  JC's direction has its own) and read the data in the same order (a resume goes on
  with the stream; runs made before that reseeded it at seed + start step, so
  there the order is shared until either resumed), so they differ by the
  regularizer; d_s = JC_s - twin_s leaves out the seed-to-seed spread that the
  per-setting means carry. Per quantity (those some JC run or twin has):
  stats.mean_std of d over the seeds where both runs have a finite end value
  (_finite_rows), the Student t interval of its mean (the paired t interval), and
  the JC runs left out by reason: 'no seed'; '<k> jacobian_clamping runs of its
  seed' (each, as their differences would not be independent); the JC run's own
  reason; 'no <twin> run of its seed', '<k> <twin> runs of its seed' or '<twin>
  twin <its reason>'. Twins without a JC run are not listed.
  Returns {'setting', 'against', 'quantities': {quantity: summary}}, or {} when the
  runs lack either setting.
  """
  settings = records.settings_of(runs)
  against = next((s for s in settings if s in records.UNREGULARIZED), None)
  if against is None or records.JACOBIAN_CLAMPING not in settings:
    return {}
  by_seed = {records.JACOBIAN_CLAMPING: {}, against: {}}
  for r in runs:
    if r.setting in by_seed:
      by_seed[r.setting].setdefault(r.seed, []).append(r)
  paired_runs = [r for r in runs if r.setting in by_seed]
  out = {}
  for key, column in quantities.items():
    if not any(isinstance(column[0](r), float) for r in paired_runs):
      continue
    differences, reasons = [], []
    for seed, same_seed in by_seed[records.JACOBIAN_CLAMPING].items():
      if seed is None:
        reasons += ['no seed'] * len(same_seed)
        continue
      if len(same_seed) > 1:
        reasons += [f'{len(same_seed)} {records.JACOBIAN_CLAMPING} runs of its '
                    'seed'] * len(same_seed)
        continue
      twin = by_seed[against].get(seed, [])
      rows, own = finite_rows(same_seed, column)
      if own:
        reasons += list(own)
      elif len(twin) != 1:
        reasons.append(f'{len(twin)} {against} runs of its seed' if twin else
                       f'no {against} run of its seed')
      else:
        twin_rows, twin_reason = finite_rows(twin, column)
        if twin_reason:
          reasons.append(f'{against} twin {next(iter(twin_reason))}')
        else:
          differences.append(rows[0][0] - twin_rows[0][0])
    summary = stats.mean_std(differences)
    summary['ci_mean'] = stats.mean_interval(differences)
    summary['excluded'] = count(reasons)
    out[key] = summary
  return {'setting': records.JACOBIAN_CLAMPING, 'against': against, 'quantities': out}
