"""Replication report of a sweep: figures and statistics from the per-run files.

  python -m tf_gancond.report --sweep_dir=runs/quick [--output=runs/quick/report]

Reads each run's `config.txt`, `metrics.jsonl` and `status.json` (tf_gancond.runlog;
not TensorBoard), and the sweep's `sweep.json` / `sweep_status.json` when present
(launch/run_sweep.py), and writes to the output directory (default
<sweep_dir>/report) a self-contained Markdown report, `report.md`, its PNG
figures (matplotlib, Agg), `report.json` with the checks and `analysis.json` with
every number of the report. The runs of one report share one dataset.

Checks (`scorecard`): report.md opens with them, and report.json holds them as a
list of {'check', 'target', 'rule', 'measured', 'ci_low', 'ci_high', 'n',
'verdict', 'note', 'family'}: one row per SPEC checklist row the report judges (O1
ln cond range, O2 cluster split and top-k, O3 VAE spectra below the GANs' and alike,
O4 samples and r, O5 JC settings and good-cluster share, O7 CS/FD, A1/A2), the O2
top-k row once per score (their 'family' is the checklist row, else a row's own
'check'), verdict PASS, FAIL, INCONCLUSIVE or NOT RUN by the rule stated in the row
(stats.verdict, or the row's own test for O3).

Figures, in the shape of Odena et al. (2018):
  Fig. 1/5/6  mean log-condition number and each recorded score (classifier / Inception
              score, Frechet distance) against step, one line per run, one column per
              setting (baseline and Jacobian Clamping side by side).
  Fig. 2      ln cond(M_z) of every probe z against step for one run.
  Fig. 3/4    log singular values of the average Jacobian E_z[J_z] at the end, one line
              per run, one panel per setting (GAN vs VAE in O3, with/without JC in O5)
              and one with every run.
  Q           the median and 5-95 percentile band of Q (Algorithm 1) against step,
              with lambda_min and lambda_max.
  O4          final log-cond against the least-sampled class count.
  Scatter     final log-cond against each final score.

Statistics (tf_gancond.stats): per-setting mean, std and variance of the final
log-cond and scores with Student t intervals of the mean; each of them for Jacobian
Clamping minus its baseline twin of the same seed (paired_by_seed); the split of the
unregularized runs into a good (low log-cond) and a bad cluster, or "no separation"
(cluster_split), with the Jacobian Clamping runs placed by the same threshold; the
Spearman rank correlation of final log-cond with each score; the O2 check over the
unregularized runs (the k = round(0.4 n) lowest-log-cond runs against the k best
scores); the Pearson r of final log-cond with the least-sampled class count over the
unregularized runs (O4: -0.86 in the paper). Intervals of correlations: percentile
bootstrap, seeded, B = 2000 resamples of runs. Every interval needs a group of at
least 4 runs. Runs enter by their end point
(RunData.outcome): diverged, non-finite and collapsed runs rank worst by log-cond;
each statistic lists the runs it left out. Scores from different classifiers or
sample counts are never pooled (score_columns).

"log-cond" is ln cond(M_z) = 2 ln(sigma_max / sigma_min of J_z), natural log, averaged
over the fixed probe batch (SPEC 0); a final log-cond over final_probe_num_z z
(train.py) where a run set it.
"""

import json
import math
import os
import re
import sys
import time

import numpy as np

from tf_gancond import config as config_lib
from tf_gancond import runlog
from tf_gancond import stats

REPORT_FILE = 'report.md'
JSON_FILE = 'report.json'
ANALYSIS_FILE = 'analysis.json'
SWEEP_MANIFEST = 'sweep.json'
SWEEP_STATUS = 'sweep_status.json'
SETTING_ORDER = ('baseline', 'gan', 'jacobian_clamping', 'vae')
CLUSTER_COLORS = {'good': 'tab:blue', 'bad': 'tab:red', None: 'tab:gray'}
# Numeric keys of eval/final records that are scores; lower is better for distances.
_SCORE_NAME = re.compile(r'(score|distance|fid|kid|^is$)')
_NOT_SCORE = re.compile(r'(std|num_|split|seconds|time|_p\d+$|count)')
_DISTANCE_NAME = re.compile(r'(distance|fid|kid)')
_LOWER_BETTER = _DISTANCE_NAME  # Distances are the lower-is-better scores.
_HIGHER_BETTER = re.compile(r'(classifier_score|inception_score|^is)$')
_NON_FINITE = ('inf', '-inf', 'nan')
SCORE_PREFIXES = ('memorized_z_', 'random_z_')  # O7 final records (memorize.py).
OTHER_GROUP = 'other classifier or N'  # Why a run is not in a score column.
# A final classifier / Inception score below this marks a collapsed generator: the
# score is at most exp H(p(y)), so its samples span fewer effective classes.
COLLAPSE_SCORE = 1.5
RANKED_WORST = ('diverged', 'non-finite', 'collapsed')
UNREGULARIZED = ('baseline', 'gan')  # Settings of runs without a regularizer.
JACOBIAN_CLAMPING = 'jacobian_clamping'


class ReportError(ValueError):
  """Bad input to the report (missing directory, no runs); one line."""


# ----------------------------------------------------------------------------
# Reading the runs.


def _number(v):
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _value(v):
  """A recorded number as float, non-finite ones included (runlog writes them as the
  strings 'inf', '-inf', 'nan'); None for anything else."""
  if isinstance(v, (int, float)) and not isinstance(v, bool):
    return float(v)
  if v in _NON_FINITE:
    return float(v)
  return None


def score_keys(record):
  """The score fields of an eval or final record (finite or not), sorted."""
  return sorted(k for k, v in record.items() if _value(v) is not None and
                _SCORE_NAME.search(k) and not _NOT_SCORE.search(k))


def lower_is_better(key):
  return bool(_LOWER_BETTER.search(key))


def _read_json(path):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def _infer_setting(config):
  experiment = config.get('experiment', 'gan')
  if experiment not in ('gan', None):
    return experiment
  return 'jacobian_clamping' if config.get('jacobian_clamping') else 'baseline'


def _seed_from_name(name):
  m = re.search(r'seed(\d+)$', name)
  return int(m.group(1)) if m else None


def _last_of_each_step(records):
  """`records` with each (kind, step) once, the last written, in the order written;
  every 'start' kept. A run killed after its last checkpoint writes its closing
  probe, eval and final_probe again at that step on the resume (loop.run). Its
  'final' values are read from all its records (`runlog.final_values`)."""
  last = {(r.get('kind'), r.get('step')): i for i, r in enumerate(records)}
  return [r for i, r in enumerate(records)
          if r.get('kind') == 'start' or last[(r.get('kind'), r.get('step'))] == i]


class RunData:
  """Everything the report uses about one run.

  outcome: what the run's end point is worth to the statistics.
    'ok'          finished with a finite final log-cond and finite scores;
    'non-finite'  finished, but its final log-cond or a final score is inf or nan;
    'collapsed'   finished, with a classifier / Inception score below
                  `collapse_score` (fewer than that many effective classes);
    'diverged'    stopped by non-finite losses or weights (status.json);
    any other state ('failed', 'interrupted', 'running', 'not started'): no end point.
  outcome_reason says why, in a few words.
  """

  def __init__(self, name, workdir, setting=None, seed=None, sweep_state=None,
               collapse_score=COLLAPSE_SCORE):
    self.name, self.workdir = name, workdir
    self.config = runlog.read_config(workdir)
    self.setting = setting or _infer_setting(self.config)
    self.seed = seed if seed is not None else self.config.get('seed',
                                                              _seed_from_name(name))
    written = runlog.read_records(workdir) if os.path.isdir(workdir) else []
    records = _last_of_each_step(written)
    self.train = [r for r in records if r.get('kind') == 'train']
    self.probes = [r for r in records if r.get('kind') == 'probe']
    self.final_probes = [r for r in records if r.get('kind') == 'final_probe']
    self.evals = [r for r in records if r.get('kind') == 'eval']
    self.final = runlog.final_values(written)
    status = runlog.read_status(workdir) if os.path.isdir(workdir) else {}
    sweep_state = sweep_state or {}
    self.state = status.get('state') or sweep_state.get('state') or 'not started'
    if sweep_state.get('state') in ('failed', 'diverged', 'interrupted') and (
        self.state != 'finished'):
      self.state = sweep_state['state']
    self.reason = status.get('reason') or sweep_state.get('reason', '')
    steps = [r.get('step', 0) for r in records]
    self.step = max(steps + [status.get('step', 0) or 0])
    self.train_steps = self.config.get('train_steps', status.get('train_steps'))
    self.outcome, self.outcome_reason = self._outcome(collapse_score)
    self.cluster = None  # 'good' | 'bad', set by the analysis.
    self.scores = {}  # {score column: final score}, set by score_columns.

  def _outcome(self, collapse_score):
    if self.state != 'finished':
      return self.state, self.reason
    values = dict(self.final_scores, mean_log_cond=self.final_log_cond)
    bad = [f'{k} = {v}' for k, v in sorted(values.items())
           if v is not None and not math.isfinite(v)]
    if bad:
      return 'non-finite', ', '.join(bad)
    low = [f'{k} {v:.3f} < {collapse_score:g}' for k, v in sorted(
        self.final_scores.items()) if _HIGHER_BETTER.search(k) and v < collapse_score]
    if low:
      return 'collapsed', ', '.join(low)
    return 'ok', ''

  @property
  def counted(self):
    """Whether the run has an end point: finished, or diverged (ranked worst)."""
    return self.state in ('finished', 'diverged')

  @property
  def final_log_cond(self):
    """Mean log-cond at the end of a finished run (final record, else last probe),
    inf or nan as recorded; None for an unfinished run or one without probes."""
    if self.state != 'finished':
      return None
    source = self.final if 'mean_log_cond' in self.final else (
        self.probes[-1] if self.probes else {})
    return _value(source.get('mean_log_cond'))

  @property
  def final_per_z_log_cond(self):
    """ln cond(M_z) per z of the probe behind final_log_cond (the final probe over
    final_probe_num_z z, else the probe at the final record's step, else the last
    probe), float64; None without per-z values."""
    if self.state != 'finished':
      return None
    probes = self.probes
    if 'mean_log_cond' in self.final:
      step = self.final.get('step')
      probes = ([p for p in self.final_probes if p.get('step') == step] or
                [p for p in probes if p.get('step') == step])
    values = probes[-1].get('log_cond') if probes else None
    if not isinstance(values, list) or not values:
      return None
    return np.asarray([_value(v) for v in values], np.float64)

  @property
  def rank_log_cond(self):
    """The log-cond that ranks the run: +inf (worst) when the outcome is diverged,
    non-finite or collapsed, else final_log_cond."""
    return math.inf if self.outcome in RANKED_WORST else self.final_log_cond

  @property
  def final_scores(self):
    """{score key: value} of the final record (inf or nan as recorded)."""
    return {k: _value(self.final[k]) for k in score_keys(self.final)}

  def score_settings(self, key):
    """(classifier, num_samples, fd_layer) behind final score `key`: the first 12
    characters of its classifier_fingerprint, else its classifier identity (None if
    neither); its sample count; for a distance, the classifier layer it was taken on
    (`config.UNRECORDED_FD_LAYER` where the record names none), for a score None.
    Memorize records prefix these like their scores."""
    prefix = next((p for p in SCORE_PREFIXES if key.startswith(p)), '')
    fingerprint = self.final.get(prefix + 'classifier_fingerprint')
    classifier = fingerprint[:12] if fingerprint else self.final.get(
        prefix + 'classifier')
    layer = (self.final.get(prefix + 'fd_layer', config_lib.UNRECORDED_FD_LAYER)
             if _DISTANCE_NAME.search(key) else None)
    return classifier, self.final.get(prefix + 'num_samples'), layer

  @property
  def min_class_count(self):
    return _value(self.final.get('min_class_count'))

  @property
  def spectrum(self):
    """Singular values of E_z[J_z] at the last probe (or in the final record)."""
    for source in [self.final] + self.probes[::-1]:
      sv = source.get('avg_jacobian_singular_values')
      if isinstance(sv, list) and sv:
        return np.asarray(sv, np.float64)
    return None

  @property
  def jc_lambdas(self):
    return (float(self.config.get('jc_lambda_min', 1.0)),
            float(self.config.get('jc_lambda_max', 20.0)))


def _is_run_dir(path):
  return os.path.isdir(path) and any(os.path.exists(os.path.join(path, f)) for f in (
      runlog.METRICS_FILE, runlog.CONFIG_FILE, runlog.STATUS_FILE))


def load_sweep(sweep_dir, collapse_score=COLLAPSE_SCORE):
  """(sweep name, [RunData]) of a sweep directory or of a single run directory."""
  if not os.path.exists(sweep_dir):
    raise ReportError(f'sweep_dir={sweep_dir!r} does not exist')
  if not os.path.isdir(sweep_dir):
    raise ReportError(f'sweep_dir={sweep_dir!r} is not a directory')
  manifest = _read_json(os.path.join(sweep_dir, SWEEP_MANIFEST))
  sweep_status = _read_json(os.path.join(sweep_dir, SWEEP_STATUS)).get('runs', {})
  name = manifest.get('sweep') or os.path.basename(os.path.abspath(sweep_dir))
  runs, seen = [], set()
  for entry in manifest.get('runs', []) if isinstance(manifest.get('runs'), list) else []:
    run_name = entry.get('name')
    if not run_name or run_name in seen:
      continue
    seen.add(run_name)
    runs.append(RunData(run_name, os.path.join(sweep_dir, run_name),
                        setting=entry.get('setting'), seed=entry.get('seed'),
                        sweep_state=sweep_status.get(run_name),
                        collapse_score=collapse_score))
  for entry in sorted(os.listdir(sweep_dir)):
    path = os.path.join(sweep_dir, entry)
    # Hidden entries are not runs (a restore's `.NAME.restoring`, editor files).
    if entry not in seen and not entry.startswith('.') and _is_run_dir(path):
      runs.append(RunData(entry, path, sweep_state=sweep_status.get(entry),
                          collapse_score=collapse_score))
  if not runs and _is_run_dir(sweep_dir):  # A single run directory.
    runs.append(RunData(os.path.basename(os.path.abspath(sweep_dir)), sweep_dir,
                        collapse_score=collapse_score))
  if not runs:
    raise ReportError(f'sweep_dir={sweep_dir!r} holds no runs (no sweep.json and no '
                      'subdirectory with metrics.jsonl, config.txt or status.json)')
  datasets = sorted({r.config['dataset'] for r in runs if r.config.get('dataset')})
  if len(datasets) > 1:
    raise ReportError(f'sweep_dir={sweep_dir!r} mixes datasets ({", ".join(datasets)}); '
                      'report the runs of each dataset from their own directory')
  return name, runs


def sweep_dataset(runs):
  """The dataset of the runs' configs (load_sweep allows one), or None."""
  return next((r.config['dataset'] for r in runs if r.config.get('dataset')), None)


def settings_of(runs):
  return ordered_settings({r.setting for r in runs})


def ordered_settings(names):
  """Setting names in SETTING_ORDER, then the others alphabetically."""
  ordered = [s for s in SETTING_ORDER if s in names]
  return ordered + sorted(set(names) - set(ordered))


# ----------------------------------------------------------------------------
# Statistics.


def _ci(statistic, *samples, num_resamples, seed):
  return stats.bootstrap_ci(statistic, *samples, num_resamples=num_resamples, seed=seed)


def _count(reasons):
  return {k: reasons.count(k) for k in sorted(set(reasons))}


def _score(run, column):
  """The run's final score in a score column; OTHER_GROUP when the run's score of
  that key is in another column; None when it has none."""
  if column in run.scores:
    return run.scores[column]
  return OTHER_GROUP if column.partition(' (')[0] in run.final_scores else None


def _missing(run):
  """Why a run has no value: its state when it did not finish, else 'not recorded'."""
  return 'not recorded' if run.state == 'finished' else run.outcome


def _finite_rows(runs, *columns):
  """Rows of finite values for means and Pearson r, and the runs left out.

  columns: (value_of(run), is_log_cond) pairs. A run is left out, with the first
  reason that applies: its outcome, when the run has no end point (diverged, failed,
  interrupted, running, not started) or, for a log-cond column, when its log-cond
  ranks worst (non-finite, collapsed); 'not recorded'; a reason value_of returns
  instead of a number (_score's OTHER_GROUP); 'non-finite'.
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
  return rows, _count(reasons)


def _rank_rows(runs, column, lower_better):
  """Final log-cond and a final score (a score column) per run, for rank statistics.

  x = run.rank_log_cond (+inf for diverged, non-finite and collapsed runs); y = the
  final score, a non-finite one replaced by the worst value (-inf; +inf when lower
  is better). Runs without an end point, a probe or the score are left out.
  Returns (x, y, {reason left out: runs}, {reason ranked worst: runs}).
  """
  worst = math.inf if lower_better else -math.inf
  x, y, left_out, ranked_worst = [], [], [], []
  for r in runs:
    score = _score(r, column)
    if not r.counted or r.rank_log_cond is None or not isinstance(score, float):
      left_out.append(OTHER_GROUP if r.state == 'finished' and score == OTHER_GROUP
                      else _missing(r))
      continue
    if r.outcome in RANKED_WORST:
      ranked_worst.append(r.outcome)
    x.append(r.rank_log_cond)
    y.append(score if math.isfinite(score) else worst)
  return (np.array(x, np.float64), np.array(y, np.float64), _count(left_out),
          _count(ranked_worst))


def cluster_split(runs, method='kmeans'):
  """The good and bad clusters of Odena et al. (2018), Sec. 4; sets run.cluster.

  The unregularized runs (settings UNREGULARIZED) with a finite final log-cond are
  split in two by stats.two_cluster_split; their diverged, non-finite and collapsed
  runs join the high ("bad") cluster. When the split is separated (gap > 2 pooled
  within-cluster std), every unregularized and Jacobian Clamping run with an end
  point is placed by the same threshold: good below it, bad otherwise. When it is
  not, no run is labelled.

  Returns {} when fewer than two unregularized runs have a finite final log-cond,
  else {'method', 'n', 'threshold', 'gap', 'pooled_std', 'separated',
  'between_fraction', 'agrees_with_<other method>', 'ranked_worst', 'excluded'} and,
  when separated, 'good' and 'bad' (unregularized run names) and 'placed'
  ({setting: {'runs', 'good', 'bad', 'excluded'}}).
  """
  unregularized = [r for r in runs if r.setting in UNREGULARIZED]
  ranked = [r for r in unregularized if r.counted and r.rank_log_cond is not None]
  finite = [r for r in ranked if math.isfinite(r.rank_log_cond)]
  split = stats.two_cluster_split([r.rank_log_cond for r in finite], method)
  if split is None:
    return {}
  other = 'gap' if method == 'kmeans' else 'kmeans'
  alt = stats.two_cluster_split([r.rank_log_cond for r in finite], other)
  out = {k: split[k] for k in ('method', 'threshold', 'gap', 'pooled_std', 'separated',
                               'between_fraction')}
  out.update({'n': len(ranked), 'agrees_with_' + other: alt['low'] == split['low'],
              'ranked_worst': _count([r.outcome for r in ranked
                                      if r.outcome in RANKED_WORST]),
              'excluded': _count([_missing(r) for r in unregularized
                                  if r not in ranked])})
  if not split['separated']:
    return out
  out['placed'] = {}
  for s in [s for s in settings_of(runs) if s in UNREGULARIZED + (JACOBIAN_CLAMPING,)]:
    group = [r for r in runs if r.setting == s]
    placed = [r for r in group if r.counted and r.rank_log_cond is not None]
    for r in placed:
      r.cluster = 'good' if r.rank_log_cond < split['threshold'] else 'bad'
    out['placed'][s] = {
        'runs': len(placed), 'good': sum(r.cluster == 'good' for r in placed),
        'bad': sum(r.cluster == 'bad' for r in placed),
        'excluded': _count([_missing(r) for r in group if r not in placed])}
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


def _end_quantities(score_names):
  """{quantity: (value_of(run), is_log_cond)} of the end-point values the report
  summarises: final log-cond, each score column, the least-sampled class count."""
  quantities = {'final_log_cond': (lambda r: r.final_log_cond, True)}
  for k in score_names:
    quantities[k] = (lambda r, k=k: _score(r, k), False)
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
  settings = settings_of(runs)
  against = next((s for s in settings if s in UNREGULARIZED), None)
  if against is None or JACOBIAN_CLAMPING not in settings:
    return {}
  by_seed = {JACOBIAN_CLAMPING: {}, against: {}}
  for r in runs:
    if r.setting in by_seed:
      by_seed[r.setting].setdefault(r.seed, []).append(r)
  paired_runs = [r for r in runs if r.setting in by_seed]
  out = {}
  for key, column in quantities.items():
    if not any(isinstance(column[0](r), float) for r in paired_runs):
      continue
    differences, reasons = [], []
    for seed, same_seed in by_seed[JACOBIAN_CLAMPING].items():
      if seed is None:
        reasons += ['no seed'] * len(same_seed)
        continue
      if len(same_seed) > 1:
        reasons += [f'{len(same_seed)} {JACOBIAN_CLAMPING} runs of its seed'] * len(
            same_seed)
        continue
      twin = by_seed[against].get(seed, [])
      rows, own = _finite_rows(same_seed, column)
      if own:
        reasons += list(own)
      elif len(twin) != 1:
        reasons.append(f'{len(twin)} {against} runs of its seed' if twin else
                       f'no {against} run of its seed')
      else:
        twin_rows, twin_reason = _finite_rows(twin, column)
        if twin_reason:
          reasons.append(f'{against} twin {next(iter(twin_reason))}')
        else:
          differences.append(rows[0][0] - twin_rows[0][0])
    summary = stats.mean_std(differences)
    summary['ci_mean'] = stats.mean_interval(differences)
    summary['excluded'] = _count(reasons)
    out[key] = summary
  return {'setting': JACOBIAN_CLAMPING, 'against': against, 'quantities': out}


def analyse(runs, cluster_method='kmeans', num_resamples=stats.DEFAULT_BOOTSTRAP,
            seed=0):
  """All the numbers of the report (JSON-ready); sets run.cluster.

  Statistics use each run's end point (RunData.outcome): means and Pearson r leave
  out runs without a finite value, rank statistics rank diverged, non-finite and
  collapsed runs worst by log-cond; each statistic lists what it left out
  ('excluded') and ranked worst ('ranked_worst').
  """
  settings = settings_of(runs)
  columns = score_columns(runs)
  score_names = list(columns)
  out = {'cluster_method': cluster_method, 'bootstrap_resamples': num_resamples,
         'bootstrap_seed': seed, 'score_keys': score_names,
         'score_columns': columns, 'settings': {},
         'clusters': {}, 'spearman': {}, 'o4_pearson': {}, 'top_k': {}, 'q': {},
         'log_cond_noise': {}}

  quantities = _end_quantities(score_names)
  # Per-setting summaries of final values.
  for s in settings:
    group = [r for r in runs if r.setting == s]
    entry = {'runs': len(group), 'finished': sum(r.state == 'finished' for r in group)}
    for key, (value_of, is_log_cond) in quantities.items():
      if not any(isinstance(value_of(r), float) for r in group):
        continue
      rows, excluded = _finite_rows(group, (value_of, is_log_cond))
      values = [v for v, in rows]
      summary = stats.mean_std(values)
      summary['ci_mean'] = stats.mean_interval(values)
      summary['excluded'] = excluded
      entry[key] = summary
    out['settings'][s] = entry

  out['log_cond_noise'] = {s: v for s in settings for v in [log_cond_noise(
      [r for r in runs if r.setting == s])] if v}
  out['paired'] = paired_by_seed(runs, quantities)
  out['clusters'] = cluster_split(runs, cluster_method)
  unregularized = [r for r in runs if r.setting in UNREGULARIZED]

  # Rank correlation of final log-cond with each score, per setting.
  for s in settings:
    group = [r for r in runs if r.setting == s]
    for k in score_names:
      x, y, excluded, ranked_worst = _rank_rows(group, k,
                                                lower_is_better(columns[k]['key']))
      if x.size < 2:
        continue
      out['spearman'].setdefault(s, {})[k] = {
          'n': int(x.size), 'rho': stats.spearman(x, y),
          'ci': _ci(stats.spearman, x, y, num_resamples=num_resamples, seed=seed),
          'excluded': excluded, 'ranked_worst': ranked_worst}

  # O2: the k = round(0.4 n) unregularized runs with the lowest log-cond against the
  # k best by each score.
  for k in score_names:
    lower_better = lower_is_better(columns[k]['key'])
    x, y, excluded, ranked_worst = _rank_rows(unregularized, k, lower_better)
    if x.size < 2:
      continue
    size = stats.top_k_size(x.size)
    badness = y if lower_better else -y
    out['top_k'][k] = {'n': int(x.size), 'k': size,
                       'overlap': stats.top_k_overlap(x, badness, size),
                       'excluded': excluded, 'ranked_worst': ranked_worst}

  # O4: Pearson r of final log-cond with the least-sampled class count.
  rows, excluded = _finite_rows(unregularized, (lambda r: r.final_log_cond, True),
                                (lambda r: r.min_class_count, False))
  if len(rows) >= 2:
    x, y = np.array(rows).T
    out['o4_pearson'] = {
        'n': len(rows), 'r': stats.pearson(x, y), 'excluded': excluded,
        'ci': _ci(stats.pearson, x, y, num_resamples=num_resamples, seed=seed)}

  # Q: share of logged intervals with median Q inside [lambda_min, lambda_max].
  for s in settings:
    for cluster in ('good', 'bad', None):
      shares = []
      for r in runs:
        if r.setting != s or r.cluster != cluster or not r.counted:
          continue
        q = [t['q_p50'] for t in r.train if _number(t.get('q_p50'))]
        if q:
          lo, hi = r.jc_lambdas
          shares.append(float(np.mean([lo <= v <= hi for v in q])))
      if shares:
        out['q'].setdefault(s, {})[cluster or 'unclustered'] = {
            'runs': len(shares), 'mean_share_in_range': float(np.mean(shares)),
            'excluded': _count([r.outcome for r in runs if r.setting == s and
                                not r.counted])}
  return out


# ----------------------------------------------------------------------------
# Scorecard: the SPEC checklist rows the report can judge.

MIN_RUNS = stats.MIN_BOOTSTRAP_N  # Fewer runs: INCONCLUSIVE.
O1_RANGE = (12.0, 20.0)           # "from around 12 to around 20".
O2_TOP_K = 'O2 lowest-log-cond runs that have the best scores'  # One row per score.
O4_PAPER_R, O4_PAPER_RUNS, O4_SAMPLES = -0.86, 10, 360
O5_SETTINGS = {'jc_lambda_max': 20.0, 'jc_lambda_min': 1.0, 'jc_epsilon': 1.0}
O5_GOOD = {'mnist': (10, 10), 'cifar10': (9, 10), 'stl10': (10, 10)}  # Good of runs.
O7_TARGETS = (('CS, memorized z', 'memorized_z_classifier_score', 4.95),
              ('CS, random z', 'random_z_classifier_score', 2.22),
              ('FD, memorized z', 'memorized_z_frechet_distance', 118.0),
              ('FD, random z', 'random_z_frechet_distance', 240.0))
O7_TOLERANCE = 0.10               # The O7 target region: the paper's value +- 10%.
MEMORIZE = 'memorize'
VAE = 'vae'
O3_ALPHA = 0.05  # One-sided level of both O3 tests; 3 + 3 runs can reach it.
# Datasets judged against another's targets: Fashion-MNIST has MNIST's format and
# sizes and is the one real dataset offline here, so MNIST-type checks run on it;
# every such row says so in its note.
STAND_INS = {'fashion_mnist': 'mnist'}


def late_log_cond(run):
  """O1's "after the initial rise": the mean of the probes' mean log-cond over the
  second half of the run (probe step >= last step / 2); inf or nan if any of them
  is; None without such probes."""
  late = [_value(p.get('mean_log_cond')) for p in run.probes
          if p.get('step', 0) >= run.step / 2]
  late = [v for v in late if v is not None]
  return float(np.mean(late)) if late else None


def _row(check, target, rule, measured=None, ci=None, n=0, verdict=stats.NOT_RUN,
         note='', family=None):
  """One scorecard row. `family` names the checklist row that several rows judge
  (the O2 top-k check, one row per score); by default the row's own check."""
  low, high = ci if ci else (None, None)
  return {'check': check, 'target': target, 'rule': rule, 'measured': measured,
          'ci_low': low, 'ci_high': high, 'n': n, 'verdict': verdict, 'note': note,
          'family': family or check}


def _interval_rule(low, high, region=''):
  return (f'PASS: the 95% CI lies inside [{low:.4g}, {high:.4g}]{region}; FAIL: it '
          f'lies outside; INCONCLUSIVE: it straddles an edge, or n < {MIN_RUNS}.')


def _excluded_note(excluded, ranked_worst=None):
  parts = [f'ranked worst: {_fmt_counts(ranked_worst)}'] if ranked_worst else []
  parts += [f'excluded: {_fmt_counts(excluded)}'] if excluded else []
  return '; '.join(parts)


def _mean_check(check, target, region, values, excluded, region_text=''):
  """A row for the mean over runs of `values`, its Student t CI against `region`."""
  ci = stats.mean_interval(values)
  ci = (ci['low'], ci['high']) if ci else None
  return _row(check, target, _interval_rule(*region, region_text),
              float(np.mean(values)) if values else None, ci, len(values),
              stats.verdict(*(ci or (None, None)), *region, len(values)),
              _excluded_note(excluded))


def _with_note(row, notes):
  """The row with `notes` after its own note, for a row that was judged."""
  if row['verdict'] == stats.NOT_RUN or not notes:
    return row
  return dict(row, note='; '.join(([row['note']] if row['note'] else []) + notes))


def _for_dataset(row, target_dataset, dataset):
  """NOT RUN, with the measured value in the note, when the sweep's data differ;
  judged, with a note, on a stand-in dataset (STAND_INS)."""
  if dataset == target_dataset or row['verdict'] == stats.NOT_RUN:
    return row
  if STAND_INS.get(dataset) == target_dataset:
    note = f'{target_dataset} target, judged on its stand-in {dataset}'
    return dict(row, note=note + (f'; {row["note"]}' if row['note'] else ''))
  measured = _fmt(row['measured'])
  if row['ci_low'] is not None:
    measured += f' [{_fmt(row["ci_low"])}, {_fmt(row["ci_high"])}]'
  note = (f'the target is for {target_dataset}; this sweep is {dataset}: measured '
          f'{measured}, n = {row["n"]}')
  return dict(row, measured=None, ci_low=None, ci_high=None, verdict=stats.NOT_RUN,
              note=note + (f'; {row["note"]}' if row['note'] else ''))


def _o1(runs):
  check, target = 'O1 MNIST ln cond(M_z) after the initial rise', '~12–20'
  unregularized = [r for r in runs if r.setting in UNREGULARIZED]
  if not any(r.probes for r in unregularized):
    return _row(check, target, _interval_rule(*O1_RANGE), note='no probes of '
                'unregularized runs')
  rows, excluded = _finite_rows(unregularized, (late_log_cond, True))
  row = _mean_check(check, target, O1_RANGE, [v for v, in rows], excluded,
                    ' (mean over runs of each run\'s mean log-cond over the probes '
                    'of its second half)')
  lengths = sorted({r.step for r in unregularized
                    if _finite_rows([r], (late_log_cond, True))[0]})
  if lengths:
    note = f'runs of {", ".join(map(str, lengths))} steps'
    row['note'] = note + (f'; {row["note"]}' if row['note'] else '')
  return row


def _o2_split(runs, clusters):
  check, target = 'O2 MNIST cluster split (good / bad)', '≈5/5'
  n = clusters.get('n', sum(r.counted for r in runs if r.setting in UNREGULARIZED))
  low, high = -(-3 * n // 10), 7 * n // 10
  # In counts once n is enough to judge (below it, 30-70 % of 1 run is no count).
  share = (f'{low}–{high} of the {n} unregularized runs (30–70%)' if n >= MIN_RUNS
           else '30–70% of the unregularized runs')
  rule = (f'PASS: the split is a separation and the good cluster holds {share}; '
          f'FAIL: no separation, or a good cluster outside that; INCONCLUSIVE: '
          f'n < {MIN_RUNS}.')
  if not any(r.setting in UNREGULARIZED for r in runs):
    return _row(check, target, rule, note='no unregularized runs')
  if not clusters or n < MIN_RUNS:
    return _row(check, target, rule, n=n, verdict=stats.INCONCLUSIVE,
                note=f'fewer than {MIN_RUNS} runs to split')
  separation = (f'gap {_fmt(clusters["gap"], 2)} '
                f'{">" if clusters["separated"] else "≤"} {stats.SEPARATION_FACTOR:g} '
                f'× s_p = {_fmt(stats.SEPARATION_FACTOR * clusters["pooled_std"], 2)}')
  note = _excluded_note(clusters['excluded'], clusters['ranked_worst'])
  if not clusters['separated']:
    return _row(check, target, rule, n=n, verdict=stats.FAIL,
                note=f'no separation: {separation}' + (f'; {note}' if note else ''))
  good = len(clusters['good'])
  return _row(check, target, rule, good, None, n,
              stats.verdict(good, good, low, high, n),
              f'good {good} / bad {len(clusters["bad"])}, threshold '
              f'{_fmt(clusters["threshold"], 2)}, {separation}' +
              (f'; {note}' if note else ''))


def _o2_top_k(top_k, columns):
  rows = []
  for key, v in top_k.items():
    if columns[key]['key'] == 'kid':
      continue
    k = v['k']
    rule = (f'PASS: all k = round(0.4 n) = {k} lowest-log-cond unregularized runs '
            f'have the {k} best scores; FAIL: fewer; INCONCLUSIVE: n < {MIN_RUNS}.')
    rows.append(_row(f'O2 lowest-log-cond runs that have the best {_label(key)}',
                     f'{k} of {k}', rule, v['overlap'], None, v['n'],
                     stats.verdict(v['overlap'], v['overlap'], k, k, v['n']),
                     _excluded_note(v['excluded'], v['ranked_worst']), O2_TOP_K))
  if not rows:
    rows.append(_row(O2_TOP_K, '4 of 4',
                     'PASS: all k = round(0.4 n) lowest-log-cond unregularized runs '
                     'have the k best scores; FAIL: fewer.',
                     note=('fewer than 2 finished unregularized runs with scores'
                           if columns else 'no scores of unregularized runs recorded')))
  return rows


def spectrum_level(run):
  """Mean over i of ln sigma_i of the run's E_z[J_z] at the end: the log of the
  geometric mean of its singular values (-inf if one is 0)."""
  with np.errstate(divide='ignore'):
    return float(np.mean(np.log(run.spectrum)))


def between_run_spread(group):
  """RMS over the indices i of the between-run sd (ddof 1) of ln sigma_i, with each
  run's singular values sorted descending (on the shortest spectrum's indices)."""
  width = min(r.spectrum.size for r in group)
  log_sv = np.log([np.sort(r.spectrum)[::-1][:width] for r in group])
  return float(np.sqrt(np.mean(np.var(log_sv, axis=0, ddof=1))))


def _o3(runs):
  """O3 rows (Odena et al. 2018, Fig. 3): the VAEs' E_z[J_z] spectra lie below the
  GANs' and differ less between runs. Over finished runs with a finite spectrum; the
  GANs are the unregularized runs."""
  below = ("O3 VAE sensitivity below the GANs' (mean ln σ_i of E_z[J_z])",
           'quite a bit lower',
           f'PASS: a one-sided exact Mann-Whitney test puts the VAE runs\' mean ln σ_i '
           f'below the GAN runs\' at p ≤ {O3_ALPHA:g} (with 3 + 3 runs: every VAE '
           'below every GAN); FAIL: the VAE average is at or above the GAN average; '
           'INCONCLUSIVE: otherwise, or fewer than 2 runs of either.')
  vae = [r for r in runs if r.setting == VAE]
  gan = [r for r in runs if r.setting in UNREGULARIZED]
  def ok(r):
    return r.state == 'finished' and r.spectrum is not None and math.isfinite(
        spectrum_level(r))
  excluded_note = _excluded_note(_count([_missing(r) if r.state != 'finished' else
                                         'no finite spectrum' for r in vae + gan
                                         if not ok(r)]))
  vae, gan = [r for r in vae if ok(r)], [r for r in gan if ok(r)]
  n = len(vae) + len(gan)
  enough = min(len(vae), len(gan)) >= 2
  bound = stats.sd_ratio_bound(len(vae), len(gan), O3_ALPHA) if enough else None
  spread = ('O3 run-to-run spread of ln σ_i of E_z[J_z], VAE / GAN',
            'VAEs near-identical, GANs vary',
            'PASS: the ratio of the VAE runs\' spread to the GAN runs\' lies below ' +
            (f'{bound:.3g}, ' if bound else '') + f'where a one-sided F-test of the '
            f'variances is significant at {O3_ALPHA:g} (sqrt of the {O3_ALPHA:g} '
            'quantile of F(n_VAE - 1, n_GAN - 1)); a spread is the RMS over i of the '
            'between-run sd of ln σ_i, and those n - 1 degrees of freedom are '
            'conservative for an average over correlated i; FAIL: the ratio is at '
            'least 1; INCONCLUSIVE: between, or fewer than 2 runs of either.')
  if not any(r.setting == VAE for r in runs):
    return [_row(*below, note='no VAE runs'), _row(*spread, note='no VAE runs')]
  excluded = [excluded_note] if excluded_note else []
  if not enough:
    counts = f'{len(vae)} VAE and {len(gan)} GAN runs'
    return [_with_note(_row(*row, n=n, verdict=stats.INCONCLUSIVE, note=counts),
                       excluded) for row in (below, spread)]
  vae_level = [spectrum_level(r) for r in vae]
  gan_level = [spectrum_level(r) for r in gan]
  p = stats.rank_test_less(vae_level, gan_level)
  difference = float(np.mean(vae_level) - np.mean(gan_level))
  below_verdict = (stats.FAIL if difference >= 0 else
                   stats.PASS if p <= O3_ALPHA else stats.INCONCLUSIVE)
  vae_spread, gan_spread = between_run_spread(vae), between_run_spread(gan)
  ratio = vae_spread / gan_spread if gan_spread > 0 else math.inf
  spread_verdict = (stats.FAIL if ratio >= 1 else
                    stats.PASS if ratio < bound else stats.INCONCLUSIVE)
  return [
      _with_note(_row(*below, difference, None, n, below_verdict,
                      f'mean ln σ_i: VAE {_fmt(np.mean(vae_level))}, GAN '
                      f'{_fmt(np.mean(gan_level))}; p = {p:.3g}'), excluded),
      _with_note(_row(*spread, ratio, None, n, spread_verdict,
                      f'spread: VAE {_fmt(vae_spread)}, GAN {_fmt(gan_spread)} nats'),
                 excluded)]


def _o4_samples(runs):
  check, target = 'O4 samples per model', str(O4_SAMPLES)
  rule = f'PASS: every unregularized run classified {O4_SAMPLES} samples; FAIL: not.'
  counts = [_value(r.final.get('missing_modes_num_samples')) for r in runs
            if r.setting in UNREGULARIZED and r.state == 'finished']
  counts = [int(c) for c in counts if c is not None]
  if not counts:
    return _row(check, target, rule, note='no least-sampled class counts recorded')
  low, high = min(counts), max(counts)
  return _row(check, target, rule, low if low == high else None, None, len(counts),
              stats.verdict(low, high, O4_SAMPLES, O4_SAMPLES, len(counts), min_n=1),
              '' if low == high else f'from {low} to {high}')


def _o4_r(o4):
  check, target = 'O4 r(final log-cond, least-sampled class count)', str(O4_PAPER_R)
  region = (-1.0, stats.fisher_interval(O4_PAPER_R, O4_PAPER_RUNS)[1])
  rule = _interval_rule(*region, f' (r at least as negative as the top of the '
                        f'paper\'s own 95% interval, Fisher z for r = {O4_PAPER_R} '
                        f'from {O4_PAPER_RUNS} runs)')
  if not o4:
    return _row(check, target, rule, note='fewer than 2 unregularized runs with a '
                'least-sampled class count')
  ci = (o4['ci']['low'], o4['ci']['high']) if o4['ci'] else None
  return _row(check, target, rule, o4['r'], ci, o4['n'],
              stats.verdict(*(ci or (None, None)), *region, o4['n']),
              _excluded_note(o4['excluded']))


def _o5_settings(runs):
  check = 'O5 JC settings (lambda_max, lambda_min, epsilon)'
  target = ' / '.join(f'{v:g}' for v in O5_SETTINGS.values())
  rule = 'PASS: every JC run has these settings; FAIL: not.'
  jc = [r for r in runs if r.setting == JACOBIAN_CLAMPING and r.config]
  if not jc:
    return _row(check, target, rule, note='no JC runs')
  wrong = {}  # {other settings: names of their runs}, in the order of the runs.
  for r in jc:
    if any(r.config.get(k) != v for k, v in O5_SETTINGS.items()):
      settings = ', '.join(f'{k}={r.config.get(k)}' for k in O5_SETTINGS)
      wrong.setdefault(settings, []).append(r.name)
  good = len(jc) - sum(map(len, wrong.values()))
  return _row(check, target, rule, good, None, len(jc),
              stats.verdict(good, good, len(jc), len(jc), len(jc), min_n=1),
              '; '.join(f'{settings}: ' + (', '.join(names) if len(names) <= 3 else
                                           f'{len(names)} runs ({names[0]} to '
                                           f'{names[-1]})')
                        for settings, names in wrong.items()))


def _o5_good(runs, clusters, dataset):
  check = 'O5 JC runs in the good cluster'
  target_dataset = STAND_INS.get(dataset, dataset)
  a, b = O5_GOOD.get(target_dataset, (10, 10))
  rule = (f'PASS: at least ceil({a}/{b} n) of the n JC runs placed are good (the '
          f'paper: {", ".join(f"{d} {x} of {y}" for d, (x, y) in O5_GOOD.items())}); '
          f'FAIL: fewer; INCONCLUSIVE: no separation among the unregularized runs, or '
          f'n < {MIN_RUNS}.')
  target = f'{a} of {b}'
  if not any(r.setting == JACOBIAN_CLAMPING for r in runs):
    return _row(check, target, rule, note='no JC runs')
  if target_dataset not in O5_GOOD:
    return _row(check, target, rule, note=f'the targets are for '
                f'{", ".join(O5_GOOD)}; this sweep is {dataset}')
  stand_in = (f'{target_dataset} target, judged on its stand-in {dataset}; '
              if target_dataset != dataset else '')
  if not clusters.get('separated'):
    return _row(check, target, rule, verdict=stats.INCONCLUSIVE,
                note=stand_in + 'no separation among the unregularized runs: no good '
                'cluster')
  v = clusters['placed'][JACOBIAN_CLAMPING]
  n, need = v['runs'], -(-a * v['runs'] // b)
  return _row(check, target, rule, v['good'], None, n,
              stats.verdict(v['good'], v['good'], need, n, n),
              stand_in + f'bad {v["bad"]}' + (
                  f'; excluded: {_fmt_counts(v["excluded"])}' if v['excluded'] else ''))


def _o7(runs, columns):
  """O7 rows: one per target, and per classifier / sample-count group of its score."""
  memorize = [r for r in runs if r.setting == MEMORIZE]
  rows = []
  for label, key, value in O7_TARGETS:
    target = f'{value:g}'
    region = (value * (1 - O7_TOLERANCE), value * (1 + O7_TOLERANCE))
    if not memorize:
      rows.append(_row(f'O7 {label}', target, _interval_rule(*region),
                       note='no memorize runs'))
      continue
    for column in [c for c, v in columns.items() if v['key'] == key] or [key]:
      values, excluded = _finite_rows(memorize, (lambda r: _score(r, column), False))
      rows.append(_mean_check(f'O7 {label}{column[len(key):]}', target, region,
                              [v for v, in values], excluded,
                              f' (the paper\'s {value:g} ± {O7_TOLERANCE:.0%})'))
  return rows


# A1/A2 (Arjovsky & Bottou 2017): a fresh D trained against a frozen G. The rows
# judge the runs without instance noise; A3 (instance noise) has no target.
FROZEN_EXPERIMENTS = ('frozen_generator', 'frozen_g')
A1_FAST = 50             # Accuracy 1 "in sometimes less than 50 iterations".
A1_COST_NEAR_ZERO = 1e-2  # "The error goes to 0": a final running-average cost below it.
A2_BEST_DECAY = 1e-3      # The paper's best case is 1e-5; PASS within two orders of it.


def frozen_g_runs(runs, instance_noise=False):
  """Finished A1/A2 runs, with (A3) or without instance noise; None: both."""
  return [r for r in runs if r.config.get('experiment') in FROZEN_EXPERIMENTS and
          r.state == 'finished' and r.final and (
              instance_noise is None or
              bool(r.config.get('instance_noise', 0.0)) == instance_noise)]


def generator_step(run):
  """The step of the frozen G, read from its SavedModel path (.../step_00000938)."""
  m = re.search(r'step_(\d+)/*$', run.config.get('generator_saved_model', '') or '')
  return int(m.group(1)) if m else None


def _generator_label(run):
  step = generator_step(run)
  return f'G at step {step}' if step is not None else (
      run.config.get('generator_saved_model') or 'a random G')


def _a1_a2(runs):
  """A1/A2 rows. Each rule is over every finished run without instance noise."""
  frozen = frozen_g_runs(runs)
  def values(key):
    return [_value(r.final.get(key)) for r in frozen]
  def per_g(key):
    return '; '.join(f'{_generator_label(r)}: {_fmt_small(_value(r.final.get(key)))}'
                     for r in sorted(frozen, key=lambda r: generator_step(r) or 0))
  specs = [
      ('A1 iterations to D accuracy 1', 'sometimes < 50', 'iterations_to_accuracy_1',
       min, lambda v: v is not None and v < A1_FAST,
       f'PASS: the fastest run reaches a running-average D accuracy of 1 in fewer '
       f'than {A1_FAST} iterations; FAIL: no run does (a run that never does counts '
       'as never).', 'any'),
      ('A1 D cost (running average) at the end', '→ 0, even for the epoch-25 G',
       'final_d_cost_avg', max, lambda v: v is not None and v < A1_COST_NEAR_ZERO,
       f'PASS: every run ends with a running-average D cost below {A1_COST_NEAR_ZERO:g} '
       '(a choice for "goes to 0"); FAIL: a run does not.', 'all'),
      ('A2 original-cost gradient norm, last / first', '↓ up to ~10⁻⁵×',
       'grad_norm_minimax_ratio', min, None,
       'PASS: every run\'s ratio (mean of the last window over the first) is below 1 '
       f'and the smallest is at most {A2_BEST_DECAY:g} (within two orders of the '
       'paper\'s best case); FAIL: otherwise.', 'decay'),
      ('A2 -log D gradient norm, last / first', 'grows', 'grad_norm_nonsaturating_ratio',
       min, lambda v: v is not None and v > 1,
       'PASS: every run\'s ratio is above 1 (the noisiness the paper also reports is '
       'not judged); FAIL: a run\'s is not.', 'all'),
  ]
  rows = []
  for check, target, key, summary, ok, rule, mode in specs:
    if not frozen:
      rows.append(_row(check, target, rule,
                       note='no runs of a fresh D against a frozen G'))
      continue
    found = values(key)
    present = [v for v in found if v is not None]
    measured = summary(present) if present else None
    if key == 'iterations_to_accuracy_1' and measured is not None:
      measured = int(measured)  # A count of iterations.
    if mode == 'any':
      passed = any(ok(v) for v in found)
    elif mode == 'all':
      passed = all(ok(v) for v in found)
    else:
      passed = all(v is not None and v < 1 for v in found) and (
          measured is not None and measured <= A2_BEST_DECAY)
    rows.append(_row(check, target, rule, measured, None, len(frozen),
                     stats.PASS if passed else stats.FAIL, per_g(key)))
  return rows


def scorecard(runs, analysis, dataset):
  """The checks of the report: one row per SPEC checklist row it judges.

  Each row: {'check', 'target', 'rule' (what counts as PASS, FAIL, INCONCLUSIVE),
  'measured', 'ci_low', 'ci_high' (95%: Student t for a mean, percentile bootstrap
  over runs for a correlation; None for counts), 'n' (runs), 'verdict' (stats.PASS,
  FAIL, INCONCLUSIVE or NOT_RUN),
  'note'}. NOT RUN: the sweep has no runs for the check, or runs on another dataset
  than the target's (the measured value is then in the note). Verdicts come from
  stats.verdict on the measured interval (a count: [count, count]) and the target
  region stated in 'rule'.
  """
  noise = log_cond_noise([r for r in runs if r.setting in UNREGULARIZED])
  noise_note = ([] if not noise or noise['noise_share'] is None else
                [f'z-sampling noise share {noise["noise_share"]:.3g} of the run-to-run '
                 'variance of final log-cond'])
  mnist = [_o1(runs), _with_note(_o2_split(runs, analysis['clusters']), noise_note)]
  mnist += _o2_top_k(analysis['top_k'], analysis['score_columns'])
  mnist += _o3(runs)
  mnist += [_o4_samples(runs),
            _with_note(_o4_r(analysis['o4_pearson']), noise_note)]
  o7 = _o7(runs, analysis['score_columns'])
  rows = [_for_dataset(r, 'mnist', dataset) for r in mnist]
  rows += [_o5_settings(runs), _o5_good(runs, analysis['clusters'], dataset)]
  rows += [_for_dataset(r, 'mnist', dataset) for r in o7]
  return rows + _a1_a2(runs)


# ----------------------------------------------------------------------------
# Figures.


def _pyplot():
  import matplotlib
  matplotlib.use('Agg')  # Files only; no display.
  import matplotlib.pyplot as plt
  return plt


def _save(fig, output, name):
  path = os.path.join(output, name)
  fig.savefig(path, dpi=90)
  _pyplot().close(fig)
  return name


def _label(key):
  """A key for text: underscores of the name become spaces, a group suffix stays:
  'classifier_score (classifier /a_b, N=5)' -> 'classifier score (classifier /a_b,
  N=5)'."""
  name, sep, rest = key.partition(' (')
  return name.replace('_', ' ') + sep + rest


def _color(run):
  return CLUSTER_COLORS[run.cluster]


def _cluster_legend(ax):
  from matplotlib.lines import Line2D
  handles = [Line2D([], [], color=CLUSTER_COLORS['good'], label='good cluster'),
             Line2D([], [], color=CLUSTER_COLORS['bad'], label='bad cluster'),
             Line2D([], [], color=CLUSTER_COLORS[None], label='not clustered')]
  ax.legend(handles=handles, fontsize=7, loc='best')


def fig_over_time(runs, settings, score_names, output):
  """Fig. 1/5/6: log-cond and scores against step; rows = metrics, columns = settings."""
  rows = [('mean_log_cond', 'mean ln cond(M_z)')]
  rows += [(k, _label(k)) for k in score_names
           if any(k in e for r in runs for e in r.evals)]
  if not any(r.probes for r in runs) and len(rows) == 1:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(len(rows), len(settings), squeeze=False, sharey='row',
                           sharex=True, figsize=(4.2 * len(settings), 2.8 * len(rows)))
  for j, s in enumerate(settings):
    for i, (key, label) in enumerate(rows):
      ax = axes[i][j]
      for r in (r for r in runs if r.setting == s):
        records = r.probes if key == 'mean_log_cond' else r.evals
        points = [(e['step'], e[key]) for e in records if _number(e.get(key))]
        if points:
          x, y = zip(*points)
          ax.plot(x, y, color=_color(r), lw=1, marker='.' if len(x) < 4 else None,
                  alpha=0.85)
      if i == 0:
        ax.set_title(s)
      if j == 0:
        ax.set_ylabel(label)
      if i == len(rows) - 1:
        ax.set_xlabel('generator step')
      ax.grid(alpha=0.3)
  _cluster_legend(axes[0][0])
  fig.tight_layout()
  return _save(fig, output, 'fig1_log_cond_and_scores.png')


def fig2_run(runs):
  """The run shown in Fig. 2: the first baseline (or first) run with 2+ probes."""
  candidates = [r for r in runs if len(r.probes) >= 2 and
                isinstance(r.probes[-1].get('log_cond'), list)]
  candidates.sort(key=lambda r: (r.setting not in ('baseline', 'gan'), r.setting,
                                 r.seed if r.seed is not None else 0, r.name))
  return candidates[0] if candidates else None


def fig_per_z(run, output):
  """Fig. 2: ln cond(M_z) for each probe z against step, for one run."""
  if run is None:
    return None
  probes = [p for p in run.probes if isinstance(p.get('log_cond'), list)]
  steps = [p['step'] for p in probes]
  width = min(len(p['log_cond']) for p in probes)
  values = np.array([p['log_cond'][:width] for p in probes], np.float64)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 3.6))
  ax.plot(steps, values, color='tab:purple', lw=0.6, alpha=0.35)
  ax.plot(steps, values.mean(axis=1), color='black', lw=2, label='mean over z')
  ax.set_xlabel('generator step')
  ax.set_ylabel('ln cond(M_z)')
  ax.set_title(f'{run.name}: {width} probe z')
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  return _save(fig, output, 'fig2_per_z_log_cond.png')


def fig_spectra(runs, settings, output):
  """Fig. 3/4: sorted singular values of E_z[J_z] at the end, log axis: one panel
  per setting (colour: cluster), and with two or more settings a last panel with
  every run (colour: setting), as Fig. 3 sets the GANs against the VAEs."""
  with_spectrum = [s for s in settings if any(
      r.spectrum is not None for r in runs if r.setting == s)]
  if not with_spectrum:
    return None
  every = 'every setting'  # The title of the panel with every run.
  panels = with_spectrum + ([every] if len(with_spectrum) > 1 else [])
  setting_colors = {s: f'C{i}' for i, s in enumerate(with_spectrum)}
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(panels), squeeze=False, sharey=True,
                           figsize=(4.2 * len(panels), 3.4))
  for ax, panel in zip(axes[0], panels):
    for r in (r for r in runs if r.spectrum is not None and
              panel in (r.setting, every)):
      sv = np.sort(r.spectrum)[::-1]
      color = _color(r) if panel == r.setting else setting_colors[r.setting]
      ax.semilogy(np.arange(1, sv.size + 1), np.maximum(sv, 1e-30), color=color,
                  lw=1, alpha=0.85)  # 1e-30: a zero singular value stays on the axis.
    ax.set_title(panel)
    ax.set_xlabel('index')
    ax.grid(alpha=0.3, which='both')
  axes[0][0].set_ylabel('singular value of E_z[J_z]')
  _cluster_legend(axes[0][0])
  if len(panels) > 1:
    from matplotlib.lines import Line2D
    axes[0][-1].legend(handles=[Line2D([], [], color=c, label=s)
                                for s, c in setting_colors.items()], fontsize=7)
  fig.tight_layout()
  return _save(fig, output, 'fig3_avg_jacobian_spectra.png')


def drawn_lambdas(lambda_min, lambda_max, highest_q):
  """The clamp bounds that fig_q draws on its log axis: lambda_min only if > 0 (0
  clamps nothing and has no log), lambda_max only within 10x of the highest Q p95
  plotted (a bound set far away to switch the clamp off would squash the Q lines)."""
  drawn = [lambda_min] if lambda_min > 0 else []
  if highest_q is None or lambda_max <= 10 * highest_q:
    drawn.append(lambda_max)
  return drawn


def fig_q(runs, settings, output):
  """Q of Algorithm 1 against step: median per run with its 5-95 percentile band."""
  with_q = [s for s in settings if any(
      _number(t.get('q_p50')) for r in runs if r.setting == s for t in r.train)]
  if not with_q:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(with_q), squeeze=False, sharey=True,
                           figsize=(4.2 * len(with_q), 3.2))
  for j, s in enumerate(with_q):
    ax = axes[0][j]
    group = [r for r in runs if r.setting == s]
    for r in group:
      rows = [t for t in r.train if _number(t.get('q_p50'))]
      if not rows:
        continue
      x = [t['step'] for t in rows]
      ax.plot(x, [t['q_p50'] for t in rows], color=_color(r), lw=1)
      if all(_number(t.get('q_p5')) and _number(t.get('q_p95')) for t in rows):
        ax.fill_between(x, [t['q_p5'] for t in rows], [t['q_p95'] for t in rows],
                        color=_color(r), alpha=0.08, lw=0)
    highest_q = max((t['q_p95'] for r in group for t in r.train
                     if _number(t.get('q_p95'))), default=None)
    drawn = drawn_lambdas(*group[0].jc_lambdas, highest_q)
    for v in drawn:
      ax.axhline(v, color='black', ls='--', lw=0.8)
    ax.set_yscale('log')
    ax.set_title(f'{s} (dashed: lambda_min, lambda_max)' if drawn else s, fontsize=9)
    ax.set_xlabel('generator step')
    ax.grid(alpha=0.3, which='both')
  axes[0][0].set_ylabel('Q (median, 5-95% band)')
  _cluster_legend(axes[0][0])
  fig.tight_layout()
  return _save(fig, output, 'fig_q_over_time.png')


def _markers(settings):
  return {s: m for s, m in zip(settings, 'osD^v<>px')}


def fig_final_scatter(runs, settings, score_names, output):
  """Final log-cond against each final score (the rank-correlation claim)."""
  keys = [k for k in score_names if sum(
      1 for r in runs if _number(r.scores.get(k)) and
      _number(r.final_log_cond)) >= 2]
  if not keys:
    return None
  plt = _pyplot()
  markers = _markers(settings)
  fig, axes = plt.subplots(1, len(keys), squeeze=False, figsize=(4.2 * len(keys), 3.4))
  for j, k in enumerate(keys):
    ax = axes[0][j]
    for s in settings:
      pts = [(r.final_log_cond, r.scores[k]) for r in runs if r.setting == s and
             _number(r.scores.get(k)) and _number(r.final_log_cond)]
      if pts:
        x, y = zip(*pts)
        ax.scatter(x, y, marker=markers[s], label=s, alpha=0.8)
    ax.set_xlabel('final mean ln cond(M_z)')
    ax.set_ylabel(_label(k))
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  return _save(fig, output, 'fig_final_log_cond_vs_scores.png')


def fig_o4(runs, settings, output):
  """O4: final log-cond against the least-sampled class count."""
  pts = [r for r in runs if _number(r.min_class_count) and _number(r.final_log_cond)]
  if len(pts) < 2:
    return None
  plt = _pyplot()
  markers = _markers(settings)
  fig, ax = plt.subplots(figsize=(5, 3.6))
  for s in settings:
    group = [r for r in pts if r.setting == s]
    if group:
      ax.scatter([r.final_log_cond for r in group], [r.min_class_count for r in group],
                 marker=markers[s], label=s, alpha=0.8)
  ax.set_xlabel('final mean ln cond(M_z)')
  ax.set_ylabel('samples in least-sampled class')
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  return _save(fig, output, 'fig_o4_min_class_count.png')


# ----------------------------------------------------------------------------
# Markdown.


def fig_a1_a2(runs, output):
  """Figs 1-3 of Arjovsky & Bottou: D's running-average cost and accuracy and both
  generator gradient norms against D iteration, one line per run (dashed: A3)."""
  frozen = frozen_g_runs(runs, instance_noise=None)
  if not frozen:
    return None
  plt = _pyplot()
  panels = (('d_cost_avg', 'D cost (running average)', True),
            ('d_accuracy_avg', 'D accuracy (running average)', False),
            ('grad_norm_minimax', '||grad E log(1 - D(G(z)))||', True),
            ('grad_norm_nonsaturating', '||grad E -log D(G(z))||', True))
  fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
  colors = {}
  for r in sorted(frozen, key=lambda r: generator_step(r) or 0):
    g = generator_step(r)
    color = colors.setdefault(g, f'C{len(colors)}')
    noise = r.config.get('instance_noise', 0.0)
    for ax, (key, title, log) in zip(axes, panels):
      points = [(t['step'], t[key]) for t in r.train if _number(t.get(key))]
      if points:
        ax.plot(*zip(*points), color=color, linestyle='--' if noise else '-',
                linewidth=1, label=f'G step {g}' + (f', noise {noise:g}' if noise else ''))
  for ax, (key, title, log) in zip(axes, panels):
    ax.set_title(title, fontsize=9)
    ax.set_xlabel('D iteration')
    if log:
      ax.set_yscale('log')
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  return _save(fig, output, 'a1_a2.png')


def _fmt_small(v):
  """Three significant digits: A1/A2 values span 1e-5 to 1e2."""
  if v is None:
    return 'never'
  return f'{v:.3g}' if isinstance(v, float) else str(v)


def _fmt(v, digits=3):
  """A number for a table; '-' for None and for inf / nan, as floats or as the
  strings that analysis.json holds them as (results.py renders from that file)."""
  if v is None or v in _NON_FINITE or (isinstance(v, float) and not math.isfinite(v)):
    return '-'
  if isinstance(v, float):
    return f'{v:.{digits}f}'
  return str(v)


def _fmt_ci(ci, digits=3):
  if not ci:
    return 'n < 4'
  return f'[{_fmt(ci["low"], digits)}, {_fmt(ci["high"], digits)}]'


def _fmt_summary(summary, digits=3):
  return (f'{_fmt(summary["mean"], digits)} ± {_fmt(summary["std"], digits)} | '
          f'{_fmt(summary["var"], digits)} | {_fmt_ci(summary["ci_mean"], digits)}')


def _fmt_counts(counts):
  """{reason: runs} as '1 diverged, 2 failed' ('-' when empty)."""
  return ', '.join(f'{n} {reason}' for reason, n in counts.items()) or '-'


def _fmt_end(run, value, digits=3):
  """A final value of `run` for a table: its state when the run did not finish,
  'non-finite' for inf or nan; never a value from before the end."""
  if run.state != 'finished':
    return run.state
  if value is not None and not math.isfinite(value):
    return 'non-finite'
  return _fmt(value, digits)


def _fmt_measured(v):
  if isinstance(v, float) and 0 < abs(v) < 1e-2:
    return _fmt_small(v)  # 0.000 would hide it.
  return _fmt(v) if isinstance(v, float) else ('-' if v is None else str(v))


def render_checks(checks, dataset):
  """The "Checks" section: the scorecard table and each row's verdict rule."""
  lines = ['## Checks', '',
           f'One row per SPEC.md checklist row the report judges (dataset: {dataset}). '
           'Measured: the value over the runs, with its 95% interval: Student t for '
           'means, percentile bootstrap over runs for correlations (counts have '
           'none); '
           'NOT RUN: no runs for the check, or runs on another dataset than the '
           'target\'s (the value is then in the note).', '',
           '| check | target | measured | 95% CI | n | verdict | note |',
           '|---|---|---|---|---|---|---|']
  for c in checks:
    ci = ('-' if c['ci_low'] is None else
          f'[{_fmt_measured(c["ci_low"])}, {_fmt_measured(c["ci_high"])}]')
    lines.append(f'| {c["check"]} | {c["target"]} | {_fmt_measured(c["measured"])} | '
                 f'{ci} | {c["n"]} | {c["verdict"]} | {c["note"].replace("|", "/")} |')
  lines += ['', 'Verdict rules:', '']
  lines += [f'- {c["check"]}: {c["rule"]}' for c in checks]
  return lines + ['']


def render_a1_a2(runs):
  """The A1/A2 section: one row per finished run of a fresh D against a frozen G."""
  frozen = frozen_g_runs(runs, instance_noise=None)
  if not frozen:
    return []
  lines = ['## A1/A2: a fresh D against a frozen G', '',
           'Final values of each run (Arjovsky & Bottou 2017, Figs 1-3). Gradient '
           'ratios: mean norm over the last running-average window over the mean over '
           'the first. Runs with instance noise are A3, which has no target in the '
           'paper; the checks judge the runs without it.', '']
  header = ['run', 'G (step)', 'instance noise', 'iterations to D accuracy 1',
            'final D cost', 'original-cost gradient last / first',
            '-log D gradient last / first']
  lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in sorted(frozen, key=lambda r: (r.config.get('instance_noise', 0.0),
                                         generator_step(r) or 0, r.name)):
    f = r.final
    cells = [r.name, _fmt(generator_step(r)), f'{r.config.get("instance_noise", 0.0):g}',
             _fmt_small(f.get('iterations_to_accuracy_1'))] + [
                 _fmt_small(_value(f.get(k))) for k in (
                     'final_d_cost_avg', 'grad_norm_minimax_ratio',
                     'grad_norm_nonsaturating_ratio')]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines + ['']


def _end_keys(analysis):
  """The end values in table order: log-cond, the score columns, the class count."""
  return list(_end_quantities(analysis['score_keys']))


def render_final_values(analysis):
  """The "Final values per setting" section: mean ± std and the interval of the mean
  of each end value, per setting."""
  lines = ['### Final values per setting', '',
           '| setting | quantity | n | mean ± std | variance | 95% CI of mean | '
           'excluded |', '|---|---|---|---|---|---|---|']
  settings = ordered_settings(analysis['settings'])
  rows = [f'| {s} | {_label(key)} | {entry[key]["n"]} | {_fmt_summary(entry[key])} | '
          f'{_fmt_counts(entry[key]["excluded"])} |'
          for s in settings for entry in [analysis['settings'][s]]
          for key in _end_keys(analysis) if key in entry]
  if not rows:
    return lines[:2] + ['No final values recorded (no probes, scores or class '
                        'counts).', '']
  return lines + rows + ['']


def render_log_cond_noise(analysis):
  """The section of log_cond_noise per setting; none without it."""
  noise = analysis.get('log_cond_noise')
  if not noise:
    return []
  lines = ['### Measurement noise of the final log-cond', '',
           'A final log-cond is the mean of ln cond(M_z) over the N z of one probe; '
           'its standard error SE (sd over z / √N) is how far another draw of z moves '
           'it for one run. noise var is what z sampling adds to the variance between '
           'runs: the mean SE² for runs probed on their own z; for runs probed on one '
           'shared z batch, the runs × z interaction mean square / N (a pattern over z '
           'that all runs share cancels between them). noise share = noise var / the '
           'variance between runs: the part of the run-to-run spread the measurement '
           'alone gives. Near or above 1, the ranks, clusters and correlations of '
           'final log-cond are mostly z noise; below 1, a Pearson r with it is '
           'attenuated by about √(1 − share).', '',
           '| setting | runs | z per run | shared z | SE median [min, max] | noise var '
           '| variance between runs | noise share |', '|---|---|---|---|---|---|---|---|']
  for s in ordered_settings(noise):
    v = noise[s]
    share = v['noise_share']
    lines.append(f'| {s} | {v["n"]} | {", ".join(map(str, v["num_z"]))} | '
                 f'{"yes" if v["z_shared"] else "no"} | '
                 f'{_fmt_small(v["se_median"])} [{_fmt_small(v["se_min"])}, '
                 f'{_fmt_small(v["se_max"])}] | {_fmt_small(v["noise_var"])} | '
                 f'{_fmt_small(v["between_var"])} | '
                 f'{_fmt_small(share) if share is not None else "-"} |')
  return lines + ['']


def render_paired(analysis):
  """The section of paired_by_seed's differences; none without pairs."""
  paired = analysis['paired']
  if not paired:
    return []
  lines = [f'### {paired["setting"]} against its {paired["against"]} twin, paired by '
           'seed', '',
           f'd = {paired["setting"]} − {paired["against"]} of the same seed: the two '
           'runs start from the same weights and draw the same z, and the same data '
           'order until either is resumed, so d leaves out the seed-to-seed spread of '
           'the means. Left out, by reason: JC runs without a seed, with no twin, or '
           'sharing their seed with another run of their setting, and pairs where '
           'either run has no finite end value.', '',
           '| quantity | pairs | mean d ± std | variance | 95% CI of mean d | '
           'excluded |', '|---|---|---|---|---|---|']
  quantities = paired['quantities']
  lines += [f'| {_label(key)} | {quantities[key]["n"]} | '
            f'{_fmt_summary(quantities[key])} | '
            f'{_fmt_counts(quantities[key]["excluded"])} |'
            for key in _end_keys(analysis) if key in quantities]
  return lines + ['']


def render_markdown(name, source, runs, analysis, figures):
  """`source`: the sentence under the title that says where the runs are."""
  settings = settings_of(runs)
  score_names = analysis['score_keys']
  lines = [f'# Replication report: {name}', '', source, '',
           'log-cond is ln cond(M_z) = 2 ln(σmax/σmin of J_z) (natural log), averaged '
           'over the fixed probe batch; "final" is the final record\'s (over '
           'final_probe_num_z z, the probe batch first, in runs that set it), else the '
           'last probe\'s.',
           '']
  lines += render_checks(analysis['checks'], analysis['dataset'])
  states = {}
  for r in runs:
    states[r.state] = states.get(r.state, 0) + 1
  lines += ['## Runs', '',
            f'{len(runs)} runs: ' + ', '.join(f'{n} {s}' for s, n in sorted(states.items()))
            + '; by setting: ' + ', '.join(
                f'{s} {sum(r.setting == s for r in runs)}' for s in settings) + '.', '',
            'Final values are the end of each run: a run that did not finish shows its '
            'state; a final log-cond is replaced by "non-finite" when it or a final '
            'score is inf or nan, and by "collapsed" when a final classifier / Inception '
            f'score is below {analysis["collapse_score"]:g}; the note says which.', '']
  header = ['run', 'setting', 'seed', 'state', 'step', 'final log-cond', 'cluster']
  header += [_label(k) for k in score_names] + ['min class count', 'note']
  lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in sorted(runs, key=lambda r: (settings.index(r.setting),
                                       r.seed if r.seed is not None else 0, r.name)):
    log_cond = _fmt(r.final_log_cond, 2) if r.outcome == 'ok' else r.outcome
    row = [r.name, r.setting, _fmt(r.seed), r.state,
           f'{r.step}/{_fmt(r.train_steps)}', log_cond, r.cluster or '-']
    row += [_fmt_end(r, r.scores.get(k)) for k in score_names]
    row += [_fmt_end(r, r.min_class_count, 0),
            r.outcome_reason.replace('|', '/')[:120]]
    lines.append('| ' + ' | '.join(str(c) for c in row) + ' |')
  lines.append('')
  columns = analysis['score_columns']
  for key in sorted({c['key'] for c in columns.values()}):
    groups = [c for c, v in columns.items() if v['key'] == key]
    if len(groups) > 1:
      lines += [f'Not pooled: {_label(key)} comes from {len(groups)} groups of runs '
                'whose classifier (fingerprint, else identity) or sample count differ; '
                'each group is its own column: ' + '; '.join(
                    f'{_label(c)}: {", ".join(columns[c]["runs"])}' for c in groups)
                + '.', '']
  if not score_names:
    lines += ['No scores recorded (no eval or final records with scores: evaluation '
              'was off or the classifier was not available).', '']

  lines += render_a1_a2(runs)
  lines += ['## Figures', '']
  captions = {
      'over_time': 'Fig. 1/5/6 shape: mean log-condition number (top) and each recorded '
                   'score against generator step, one line per run, one column per '
                   'setting; colour = cluster of the run by final log-cond.',
      'per_z': 'Fig. 2 shape: ln cond(M_z) of each probe z for one run '
               '({run}); black: the mean over z.',
      'spectra': 'Fig. 3/4 shape: singular values of the average Jacobian E_z[J_z] at '
                 'the last probe, sorted, log axis, one line per run, one panel per '
                 'setting.',
      'q': 'Q of Algorithm 1 (||G(z)-G(z\')|| / ||z-z\'||) per logged interval: median '
           'line and 5-95 percentile band per run; dashed: λmin and λmax (not drawn: '
           'a λmin of 0, or a λmax over 10x every Q, which switch the clamp off). '
           'Records with q_num_samples measure every setting alike; in older records '
           'a baseline\'s percentiles come from one batch and a JC run\'s from every '
           'batch of its interval, so the baseline\'s scatter far more.',
      'scatter': 'Final log-cond against each final score, one point per run.',
      'o4': 'O4: final log-cond against the number of samples in the least-sampled '
            'class.',
      'a1_a2': 'A1/A2 (Arjovsky & Bottou Figs 1-3): a fresh D against each frozen G: '
               'running-average D cost and accuracy, and the norms of the original-cost '
               'and -log D generator gradients, against D iteration; dashed: with '
               'instance noise (A3).'}
  titles = {'over_time': 'Fig. 1/5/6', 'per_z': 'Fig. 2', 'spectra': 'Fig. 3/4',
            'q': 'Q over time', 'scatter': 'Final log-cond vs scores', 'o4': 'O4',
            'a1_a2': 'A1/A2'}
  missing = {'over_time': 'no probes and no scores recorded',
             'per_z': 'no run with two or more probes recorded',
             'spectra': 'no average-Jacobian spectra recorded',
             'q': 'no Q statistics recorded',
             'scatter': 'no scores recorded',
             'o4': 'no least-sampled class counts recorded (final evaluation off)',
             'a1_a2': 'no runs of a fresh D against a frozen G'}
  for key, (filename, extra) in figures.items():
    if filename:
      lines += [f'![{key}]({filename})', '', captions[key].format(**extra), '']
    else:
      lines += [f'*{titles[key]}: not drawn, {missing[key]}.*', '']

  lines += ['## Statistics', '',
            'Each statistic uses the end points of the runs. Means and Pearson r leave '
            'out runs without a finite value: diverged, failed, interrupted or '
            'unfinished runs, and for log-cond also runs whose final log-cond or '
            'scores are non-finite or whose generator collapsed (final classifier / '
            f'Inception score below {analysis["collapse_score"]:g}). Rank statistics '
            '(Spearman ρ, the top-k check, the cluster split) rank diverged, non-finite '
            'and collapsed '
            'runs worst by log-cond and a non-finite score worst among the scores. '
            'Every statistic lists the runs it left out ("excluded") and ranked worst. '
            'Intervals (95%, only for groups of at least 4 runs): of a mean, Student t '
            '(mean ± t s / √n: the percentile bootstrap covers only 86% of the time at '
            'n = 5); of a correlation, percentile bootstrap over runs, '
            f'{analysis["bootstrap_resamples"]} resamples, seed '
            f'{analysis["bootstrap_seed"]}. std and variance use ddof = 1 (inter-run '
            'variance).', '']
  lines += (render_final_values(analysis) + render_log_cond_noise(analysis) +
            render_paired(analysis))

  method = ('exact 1-D 2-means: the cut of the sorted final log-cond values with the '
            'least within-cluster sum of squares, tried over all n-1 cuts'
            if analysis['cluster_method'] == 'kmeans' else
            'the largest gap between consecutive sorted final log-cond values')
  lines += ['### Cluster split (good = low final log-cond)', '',
            f'Method: {method}, over the unregularized runs ({", ".join(UNREGULARIZED)}) '
            'with a finite final log-cond; their diverged, non-finite and collapsed runs '
            'join the bad cluster. Threshold = midpoint of the cut. The split counts as '
            f'a separation when the gap between the clusters exceeds '
            f'{stats.SEPARATION_FACTOR:g} × s_p, s_p = sqrt(within-cluster sum of '
            'squares / (n − 2)) the pooled within-cluster standard deviation; otherwise '
            'no run is labelled ("no separation"). When separated, Jacobian Clamping '
            'runs are placed by the same threshold.', '']
  c = analysis['clusters']
  if not c:
    lines += ['Not computed: fewer than two unregularized runs with a finite final '
              'log-cond.', '']
  else:
    other = [k for k in c if k.startswith('agrees_with_')][0]
    verdict = 'separated' if c['separated'] else 'no separation'
    relation = '>' if c['separated'] else '≤'
    factor = stats.SEPARATION_FACTOR
    lines.append(f'- {c["n"]} unregularized runs (ranked worst: '
                 f'{_fmt_counts(c["ranked_worst"])}; excluded: '
                 f'{_fmt_counts(c["excluded"])}): threshold {_fmt(c["threshold"], 2)}, '
                 f'gap {_fmt(c["gap"], 2)} {relation} {factor:g} × s_p = '
                 f'{_fmt(factor * c["pooled_std"], 2)}: {verdict}; '
                 f'between-cluster share of variance {_fmt(c["between_fraction"], 2)}; '
                 f'same split by {other[len("agrees_with_"):]}: '
                 f'{"yes" if c[other] else "no"}.')
    if c['separated']:
      lines.append(f'- good ({len(c["good"])}): {", ".join(c["good"])}; '
                   f'bad ({len(c["bad"])}): {", ".join(c["bad"])}.')
      lines.append('- Good-cluster runs per setting: ' + '; '.join(
          f'{s} {v["good"]}/{v["runs"]} (excluded: {_fmt_counts(v["excluded"])})'
          for s, v in c['placed'].items()) + '.')
  lines.append('')

  lines += ['### Rank correlation of final log-cond with each score (Spearman)', '']
  if not analysis['spearman']:
    lines += ['No scores recorded: no correlation to compute.', '']
  else:
    lines += ['| runs | score | n | Spearman ρ | 95% CI | ranked worst | excluded |',
              '|---|---|---|---|---|---|---|']
    for label, per_key in analysis['spearman'].items():
      for k, v in per_key.items():
        lines.append(f'| {label} | {_label(k)} | {v["n"]} | {_fmt(v["rho"])} | '
                     f'{_fmt_ci(v["ci"])} | {_fmt_counts(v["ranked_worst"])} | '
                     f'{_fmt_counts(v["excluded"])} |')
    lines.append('')
    if analysis['top_k']:
      lines += ['O2 check ("the 4 runs with the lowest condition number also have the 4 '
                'best scores"), over the unregularized runs, k = round(0.4 n):', '']
      for key, v in analysis['top_k'].items():
        lines.append(f'- {_label(key)}: k = round(0.4 × {v["n"]}) = {v["k"]}; '
                     f'{v["overlap"]} of the {v["k"]} lowest-log-cond runs are among '
                     f'the {v["k"]} best (ranked worst: {_fmt_counts(v["ranked_worst"])};'
                     f' excluded: {_fmt_counts(v["excluded"])}).')
      lines.append('')

  lines += ['### O4: final log-cond vs least-sampled class count (Pearson)', '']
  if not analysis['o4_pearson']:
    lines += ['No least-sampled class counts recorded (`min_class_count` in the final '
              'record; it needs the final evaluation).', '']
  else:
    v = analysis['o4_pearson']
    lines += ['Over the unregularized runs (paper: r = -0.86 over the 10 unregularized '
              'MNIST runs).', '',
              '| n | Pearson r | 95% CI | excluded |', '|---|---|---|---|',
              f'| {v["n"]} | {_fmt(v["r"])} | {_fmt_ci(v["ci"])} | '
              f'{_fmt_counts(v["excluded"])} |']
    lines.append('')

  if analysis['q']:
    lines += ['### Q inside [λmin, λmax]', '',
              'Mean over runs of the share of logged intervals whose median Q lies in '
              '[λmin, λmax] (the paper chose λ so that good unregularized runs have Q '
              '"mostly lying between those two values").', '',
              '| setting | cluster | runs | share in range | excluded |',
              '|---|---|---|---|---|']
    for s, per in analysis['q'].items():
      for cluster, v in per.items():
        lines.append(f'| {s} | {cluster} | {v["runs"]} | '
                     f'{_fmt(v["mean_share_in_range"], 2)} | '
                     f'{_fmt_counts(v["excluded"])} |')
    lines.append('')
  return '\n'.join(lines)


def write_report(sweep_dir, output=None, cluster_method='kmeans',
                 num_resamples=stats.DEFAULT_BOOTSTRAP, seed=0,
                 collapse_score=COLLAPSE_SCORE, source=None):
  """Writes report.md, report.json (the checks), analysis.json (every number) and
  the figures; returns the report.md path. `source` replaces report.md's line on
  where the runs are (default: sweep_dir and the time of writing)."""
  if cluster_method not in stats.CLUSTER_METHODS:
    raise ReportError(f'cluster_method={cluster_method!r} is not allowed; choose one '
                      f'of: {", ".join(stats.CLUSTER_METHODS)}')
  if not isinstance(num_resamples, int) or num_resamples < 1:
    raise ReportError(f'num_resamples={num_resamples!r} must be a positive integer')
  name, runs = load_sweep(sweep_dir, collapse_score)
  output = output or os.path.join(sweep_dir, 'report')
  if os.path.exists(output) and not os.path.isdir(output):
    raise ReportError(f'output={output!r} exists and is not a directory')
  os.makedirs(output, exist_ok=True)
  analysis = analyse(runs, cluster_method, num_resamples, seed)
  analysis['dataset'] = sweep_dataset(runs)
  analysis['collapse_score'] = collapse_score
  analysis['checks'] = scorecard(runs, analysis, analysis['dataset'])
  settings = settings_of(runs)
  chosen = fig2_run(runs)
  figures = {
      'over_time': (fig_over_time(runs, settings, sorted(
          {c['key'] for c in analysis['score_columns'].values()}), output), {}),
      'per_z': (fig_per_z(chosen, output), {'run': chosen.name if chosen else ''}),
      'spectra': (fig_spectra(runs, settings, output), {}),
      'q': (fig_q(runs, settings, output), {}),
      'scatter': (fig_final_scatter(runs, settings, analysis['score_keys'], output), {}),
      'o4': (fig_o4(runs, settings, output), {}),
  }
  if frozen_g_runs(runs, instance_noise=None):
    figures['a1_a2'] = (fig_a1_a2(runs, output), {})
  source = source or (f'Sweep directory: `{os.path.abspath(sweep_dir)}`; written '
                      f'{time.strftime("%Y-%m-%d %H:%M")} by `python -m tf_gancond.report`.')
  text = render_markdown(name, source, runs, analysis, figures)
  runlog.atomic_write_text(os.path.join(output, REPORT_FILE), text)
  analysis['figures'] = {k: v[0] for k, v in figures.items()}
  analysis['runs'] = [{
      'name': r.name, 'setting': r.setting, 'seed': r.seed, 'state': r.state,
      'step': r.step, 'outcome': r.outcome, 'outcome_reason': r.outcome_reason,
      'final_log_cond': r.final_log_cond, 'cluster': r.cluster,
      'final_scores': r.final_scores, 'min_class_count': r.min_class_count}
      for r in runs]
  runlog.atomic_write_text(os.path.join(output, ANALYSIS_FILE), json.dumps(
      runlog._jsonable(analysis), indent=1, sort_keys=True) + '\n')
  runlog.atomic_write_text(os.path.join(output, JSON_FILE), json.dumps(
      runlog._jsonable(analysis['checks']), indent=1) + '\n')
  return os.path.join(output, REPORT_FILE)


# ----------------------------------------------------------------------------
# Command line.


def define_flags():
  from absl import flags
  flags.DEFINE_string('sweep_dir', None, 'Sweep directory (launch/run_sweep.py) or any '
                      'directory of run directories, or one run directory.')
  flags.DEFINE_string('output', None, 'Output directory (default <sweep_dir>/report).')
  flags.DEFINE_enum('cluster_method', 'kmeans', list(stats.CLUSTER_METHODS),
                    'Cluster split of runs by final log-cond.')
  flags.DEFINE_integer('bootstrap', stats.DEFAULT_BOOTSTRAP, 'Bootstrap resamples.')
  flags.DEFINE_integer('bootstrap_seed', 0, 'Seed of the bootstrap resampling.')
  flags.DEFINE_float('collapse_score', COLLAPSE_SCORE, 'A finished run whose final '
                     'classifier / Inception score is below this is "collapsed".')


def _fail(message):
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def main(argv):
  from absl import flags
  flags_ = flags.FLAGS
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]!r}; every option is a --flag')
  if not flags_.sweep_dir:
    _fail('--sweep_dir is required')
  try:
    path = write_report(flags_.sweep_dir, flags_.output, flags_.cluster_method,
                        flags_.bootstrap, flags_.bootstrap_seed, flags_.collapse_score)
  except ReportError as e:
    _fail(str(e))
  print(f'report: {path}')


def run():
  """Console entry point (tf_gancond-report)."""
  from absl import app
  from absl import flags
  define_flags()

  def parser(argv):
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      _fail(str(e).splitlines()[0])
  app.run(main, flags_parser=parser)


if __name__ == '__main__':
  run()
