"""Reading a sweep: one RunData per run from its per-run files.

Each run's `config.txt`, `metrics.jsonl` and `status.json` (tf_gancond.runlog; not
TensorBoard), and the sweep's `sweep.json` / `sweep_status.json` when present
(launch/run_sweep.py). The runs of one report share one dataset.
"""

import json
import math
import os
import re

import numpy as np

from tf_gancond import config as config_lib
from tf_gancond import runlog

SWEEP_MANIFEST = 'sweep.json'
SWEEP_STATUS = 'sweep_status.json'
SETTING_ORDER = ('baseline', 'gan', 'jacobian_clamping', 'vae')
# Numeric keys of eval/final records that are scores; lower is better for distances.
_SCORE_NAME = re.compile(r'(score|distance|fid|kid|^is$)')
_NOT_SCORE = re.compile(r'(std|num_|split|seconds|time|_p\d+$|count)')
_DISTANCE_NAME = re.compile(r'(distance|fid|kid)')
_LOWER_BETTER = _DISTANCE_NAME  # Distances are the lower-is-better scores.
_HIGHER_BETTER = re.compile(r'(classifier_score|inception_score|^is)$')
NON_FINITE = ('inf', '-inf', 'nan')
SCORE_PREFIXES = ('memorized_z_', 'random_z_')  # O7 final records (memorize.py).
INCEPTION_SCORE = 'inception_score'  # The IS key of eval and final records.
OTHER_GROUP = 'other classifier or N'  # Why a run is not in a score column.
# A final classifier / Inception score below this marks a collapsed generator: the
# score is at most exp H(p(y)), so its samples span fewer effective classes.
COLLAPSE_SCORE = 1.5
RANKED_WORST = ('diverged', 'non-finite', 'collapsed')
UNREGULARIZED = ('baseline', 'gan')  # Settings of runs without a regularizer.
JACOBIAN_CLAMPING = 'jacobian_clamping'


class ReportError(ValueError):
  """Bad input to the report (missing directory, no runs); one line."""


def is_number(v):
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def as_float(v):
  """A recorded number as float, non-finite ones included (runlog writes them as the
  strings 'inf', '-inf', 'nan'); None for anything else."""
  if isinstance(v, (int, float)) and not isinstance(v, bool):
    return float(v)
  if v in NON_FINITE:
    return float(v)
  return None


def score_keys(record):
  """The score fields of an eval or final record (finite or not), sorted."""
  return sorted(k for k, v in record.items() if as_float(v) is not None and
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
               collapse_score=COLLAPSE_SCORE, precision=None):
    self.name, self.workdir = name, workdir
    self.config = runlog.read_config(workdir)
    self.setting = setting or _infer_setting(self.config)
    # Without a config.txt (not started): the precision its sweep gives it.
    self.precision = self.config.get('precision', precision or 'float32')
    if self.precision != 'float32' and not self.setting.endswith(self.precision):
      # An arm of its own, never pooled with float32 runs (docs/experiments.md#bf16).
      self.setting += '_' + self.precision
    self.seed = seed if seed is not None else self.config.get('seed',
                                                              _seed_from_name(name))
    has_folder = os.path.isdir(workdir)  # A committed part's unfinished run has none.
    written = runlog.read_records(workdir) if has_folder else []
    records = _last_of_each_step(written)
    self.train = [r for r in records if r.get('kind') == 'train']
    self.probes = [r for r in records if r.get('kind') == 'probe']
    self.final_probes = [r for r in records if r.get('kind') == 'final_probe']
    self.evals = [r for r in records if r.get('kind') == 'eval']
    self.final = runlog.final_values(written)
    status = runlog.read_status(workdir) if has_folder else {}
    sweep_state = sweep_state or {}
    self.state = status.get('state') or sweep_state.get('state') or 'not started'
    if sweep_state.get('state') in ('failed', 'diverged', 'interrupted') and (
        self.state != 'finished'):
      self.state = sweep_state['state']
    self.reason = status.get('reason') or sweep_state.get('reason', '')
    if has_folder:
      steps = [r.get('step', 0) for r in records] + [status.get('step', 0) or 0]
      self.step = max(steps)
      self.train_steps = self.config.get('train_steps', status.get('train_steps'))
    else:  # A committed part's unfinished run: the state collect recorded.
      self.step = sweep_state.get('step', 0) or 0
      self.train_steps = sweep_state.get('train_steps')
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
    return as_float(source.get('mean_log_cond'))

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
    return np.asarray([as_float(v) for v in values], np.float64)

  @property
  def evaluated_steps(self):
    """[{'step', 'mean_log_cond', score keys...}]: the probe's mean ln cond and the
    scores at each step that has both a probe and an evaluation record (the points
    of the score curve), in step order; the scores as recorded, the ln cond of the
    probe batch (not of final_probe_num_z z)."""
    probes = {p.get('step'): p for p in self.probes}
    return [dict({k: as_float(e[k]) for k in score_keys(e)}, step=e['step'],
                 mean_log_cond=as_float(probes[e['step']].get('mean_log_cond')))
            for e in self.evals if e.get('step') in probes]

  @property
  def median_step_time(self):
    """The median over the train records of their mean seconds per step, or None."""
    times = [as_float(r.get('step_time')) for r in self.train]
    times = [t for t in times if t is not None and math.isfinite(t)]
    return float(np.median(times)) if times else None

  @property
  def rank_log_cond(self):
    """The log-cond that ranks the run: +inf (worst) when the outcome is diverged,
    non-finite or collapsed, else final_log_cond."""
    return math.inf if self.outcome in RANKED_WORST else self.final_log_cond

  @property
  def final_scores(self):
    """{score key: value} of the final record (inf or nan as recorded)."""
    return {k: as_float(self.final[k]) for k in score_keys(self.final)}

  def final_value(self, key):
    """The finite value of `key` in a finished run's final record, else None."""
    value = as_float(self.final.get(key)) if self.state == 'finished' else None
    return value if value is not None and math.isfinite(value) else None

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
    return as_float(self.final.get('min_class_count'))

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
    overrides = dict(entry.get('overrides') or {}, **(manifest.get('extra') or {}))
    runs.append(RunData(run_name, os.path.join(sweep_dir, run_name),
                        setting=entry.get('setting'), seed=entry.get('seed'),
                        sweep_state=sweep_status.get(run_name),
                        collapse_score=collapse_score,
                        precision=overrides.get('precision')))
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
