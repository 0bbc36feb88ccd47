"""Command line: propose Jacobian Clamping's lambda_min / lambda_max from baseline runs.

  python -m tf_gancond.propose_lambda --run_dirs=runs/s/baseline_seed0,runs/s/baseline_seed1
      [--low_pct=5 --high_pct=95 --good_fraction=0.5 --skip_fraction=0.2]

Odena et al. 2018 (Sec. 5): "We set lambda_min, lambda_max such that the runs that
achieved good scores had Q mostly lying between those two values." This command
repeats that procedure on runs trained WITHOUT Jacobian Clamping (every run logs
Q's percentiles, `q_p5 ... q_p95`, in its metrics.jsonl train records):
  1. good runs = the best `good_fraction` of runs by final score (classifier or
     Inception score, higher is better; else Frechet distance, lower is better);
     without scores, by lowest final mean log-condition number (the paper's
     finding that conditioning predicts scores). The criterion used is printed;
  2. over the good runs' train records after the first `skip_fraction` of
     training: lambda_min = the median of their q_p{low_pct}, lambda_max = the
     median of their q_p{high_pct}.
Bad input: one line, exit code 2.
"""

import json
import os
import sys

import numpy as np
from absl import flags

from tf_gancond import runlog

_FLAGS = flags.FlagValues()
flags.DEFINE_list('run_dirs', [], 'Baseline run directories (comma separated).',
                  flag_values=_FLAGS)
flags.DEFINE_integer('low_pct', 5, 'Q percentile for lambda_min (5, 25, 50, 75, 95).',
                     flag_values=_FLAGS)
flags.DEFINE_integer('high_pct', 95, 'Q percentile for lambda_max.', flag_values=_FLAGS)
flags.DEFINE_float('good_fraction', 0.5, 'Share of runs counted as good.',
                   flag_values=_FLAGS)
flags.DEFINE_float('skip_fraction', 0.2, 'Early share of training left out.',
                   flag_values=_FLAGS)

PERCENTILES = (5, 25, 50, 75, 95)


class ProposeError(ValueError):
  """Bad input; one line."""


def _as_float(value):
  """A number of a metrics record; runlog writes NaN / Inf as the strings 'nan', 'inf'."""
  try:
    return float(value)
  except (TypeError, ValueError):
    return None


def _final_value(records, keys):
  """The last final/eval value of the first of `keys` found (NaN if it diverged)."""
  for record in reversed(records):
    if record.get('kind') in ('final', 'eval'):
      for key in keys:
        value = _as_float(record.get(key)) if key in record else None
        if value is not None:
          return value
  return None


def _order(values, higher_is_better):
  """Names sorted best first; a NaN or infinite value (a diverged run) ranks last."""
  def key(name):
    v = values[name]
    if not np.isfinite(v):
      return (1, 0.0)
    return (0, -v if higher_is_better else v)
  return sorted(values, key=key)


def rank_runs(run_records):
  """Orders runs best first; returns (names best first, criterion text)."""
  for keys, higher, text in ((('classifier_score', 'inception_score'), True,
                              'final classifier/Inception score (higher is better)'),
                             (('frechet_distance', 'fid'), False,
                              'final Frechet distance (lower is better)')):
    values = {name: _final_value(recs, keys) for name, recs in run_records.items()}
    if all(v is not None for v in values.values()):
      return _order(values, higher), text
  values = {}
  for name, recs in run_records.items():
    probes = [r for r in recs if r.get('kind') == 'probe' and 'mean_log_cond' in r]
    if not probes:
      raise ProposeError(f'run {name!r} has no scores and no probe records to rank it')
    value = _as_float(probes[-1]['mean_log_cond'])
    values[name] = float('nan') if value is None else value
  return _order(values, False), ('lowest final mean log-condition number '
                                  '(no scores recorded)')


def propose(run_dirs, low_pct=5, high_pct=95, good_fraction=0.5, skip_fraction=0.2):
  """Returns a dict with lambda_min, lambda_max, the good runs and the criterion."""
  if low_pct not in PERCENTILES or high_pct not in PERCENTILES or low_pct >= high_pct:
    raise ProposeError(f'low_pct={low_pct!r}, high_pct={high_pct!r}: choose two of '
                       f'{PERCENTILES}, low < high')
  if not 0 < good_fraction <= 1 or not 0 <= skip_fraction < 1:
    raise ProposeError(f'good_fraction={good_fraction!r} must be in (0, 1] and '
                       f'skip_fraction={skip_fraction!r} in [0, 1)')
  if not run_dirs:
    raise ProposeError('run_dirs is empty; give baseline run directories')
  run_records = {}
  for d in run_dirs:
    if not os.path.isdir(d):
      raise ProposeError(f'run_dir={d!r} is not a directory')
    records = runlog.read_records(d)
    if not any('q_p50' in r for r in records if r.get('kind') == 'train'):
      raise ProposeError(f'run_dir={d!r} has no Q statistics in {runlog.METRICS_FILE}')
    run_records[d] = records
  order, criterion = rank_runs(run_records)
  good = order[:max(1, int(round(good_fraction * len(order))))]
  lows, highs = [], []
  for name in good:
    train = [r for r in run_records[name] if r.get('kind') == 'train' and 'q_p50' in r]
    last = max(r['step'] for r in train)
    late = [r for r in train if r['step'] > skip_fraction * last] or train
    lows += [_as_float(r.get(f'q_p{low_pct}')) for r in late]
    highs += [_as_float(r.get(f'q_p{high_pct}')) for r in late]
  lows = [v for v in lows if v is not None and np.isfinite(v)]  # Diverged steps.
  highs = [v for v in highs if v is not None and np.isfinite(v)]
  if not lows or not highs:
    raise ProposeError(f'good runs {good!r} have no finite Q percentiles')
  return {'lambda_min': float(np.median(lows)), 'lambda_max': float(np.median(highs)),
          'good_runs': good, 'ranked_runs': order, 'criterion': criterion,
          'low_pct': low_pct, 'high_pct': high_pct, 'skip_fraction': skip_fraction}


def main(argv):
  _FLAGS.unparse_flags()  # Each call parses afresh (tests call main twice).
  try:
    rest = _FLAGS(argv)
  except flags.Error as e:
    _fail(str(e).splitlines()[0])
  if len(rest) > 1:
    _fail(f'unexpected arguments {rest[1:]!r}')
  try:
    result = propose(_FLAGS.run_dirs, _FLAGS.low_pct, _FLAGS.high_pct,
                     _FLAGS.good_fraction, _FLAGS.skip_fraction)
  except ProposeError as e:
    _fail(str(e))
  print(json.dumps(result, indent=1))
  print(f'--jc_lambda_min={result["lambda_min"]:.3g} '
        f'--jc_lambda_max={result["lambda_max"]:.3g}   (good runs by {result["criterion"]})')


def _fail(message):
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def run():
  main(sys.argv)


if __name__ == '__main__':
  run()
