"""bf16 against float32: is a bfloat16-trained run worth the same as a float32 one?

The rule, stated before its runs (docs/experiments.md#bf16). Each bfloat16 run with
an end point is paired with the float32 run of the same setting and seed. Per
quantity, d = bf16 value - float32 value over the pairs where both runs ended 'ok',
and the mean of d with its 95 % Student t interval (stats.mean_interval). A judged
quantity's own verdict:

  EQUIVALENT      at least MIN_PAIRS values of d and the interval inside
                  [-margin, +margin];
  NOT EQUIVALENT  the interval wholly outside it;
  INCONCLUSIVE    otherwise (fewer values, or an interval that crosses a margin).

Failures are compared apart: over the pairs where exactly one run diverged,
collapsed or ended non-finite, a one-sided exact sign test that bf16 fails more
often (p <= 0.05: at least 5 such pairs, all bf16's). The whole comparison is NOT
EQUIVALENT if that test or a quantity says so, EQUIVALENT if every judged quantity
is, INCONCLUSIVE otherwise.

The margins are those of issue 31: 0.2 nats for ln cond (its mean over z and its
10th and 90th percentiles over z), 0.1 for the classifier score, 1 for the Fréchet
distance. The least-sampled class count and the step time are shown, not judged
(the step time as the geometric mean of bf16 / float32 with its interval on the
log ratios; a run's step time is its train records' median, probes and scores
included).
"""

import collections
import math

from scipy import stats as scipy_stats

from tf_gancond import stats

EQUIVALENT, NOT_EQUIVALENT, INCONCLUSIVE = 'EQUIVALENT', 'NOT EQUIVALENT', 'INCONCLUSIVE'
MIN_PAIRS = 10  # The seeds of the float32 stage it pairs with.
Quantity = collections.namedtuple('Quantity', 'key words margin')
QUANTITIES = (
    Quantity('final_log_cond', 'ln cond: mean over z', 0.2),
    Quantity('final_log_cond_p10', 'ln cond: 10th percentile over z', 0.2),
    Quantity('final_log_cond_p90', 'ln cond: 90th percentile over z', 0.2),
    Quantity('classifier_score', 'classifier score', 0.1),
    Quantity('frechet_distance', 'Fréchet distance (logits)', 1.0),
    Quantity('min_class_count', 'least-sampled class count (of 360)', None),
)
STEP_TIME = 'median_step_time'
BAD_OUTCOMES = ('diverged', 'collapsed', 'non-finite')


def _value(run, key):
  value = run.get(key, (run.get('final_scores') or {}).get(key))
  return float(value) if isinstance(value, (int, float)) and math.isfinite(
      value) else None


def _base_setting(run):
  """The setting of a run without its precision suffix (records.RunData)."""
  setting, precision = run.get('setting', ''), run.get('precision', 'float32')
  suffix = '_' + precision
  return setting[:-len(suffix)] if setting.endswith(suffix) else setting


def pairs(reference_runs, bf16_runs):
  """[(float32 run, bf16 run)] of the same setting and seed, both with an end point
  (analysis.json 'runs' entries), finished at the same step unless one diverged."""
  ended = lambda r: r.get('state') in ('finished', 'diverged')  # noqa: E731
  twins = {(r.get('setting'), r.get('seed')): r for r in reference_runs
           if r.get('precision', 'float32') == 'float32' and ended(r)}
  matched = []
  for run in bf16_runs:
    twin = twins.get((_base_setting(run), run.get('seed')))
    if run.get('precision') == 'bfloat16' and twin is not None and ended(run) and (
        'diverged' in (run['state'], twin['state']) or run.get('step') == twin.get(
            'step')):
      matched.append((twin, run))
  return matched


def _row_verdict(row):
  if row['low'] is not None and (row['low'] > row['margin'] or
                                 row['high'] < -row['margin']):
    return NOT_EQUIVALENT
  if row['n'] >= MIN_PAIRS and -row['margin'] <= row['low'] and (
      row['high'] <= row['margin']):
    return EQUIVALENT
  return INCONCLUSIVE


def compare(reference_runs, bf16_runs):
  """{'verdict', 'reason', 'pairs', 'failures', 'rows', 'step_time'}.

  rows: per QUANTITIES entry {'words', 'margin', 'verdict' (None when not judged),
  'n', 'mean', 'low', 'high', 'deltas'} (low/high None below 2 values);
  failures: {'bf16_only', 'float32_only', 'p'}; step_time: {'n', 'ratio', 'low',
  'high'} or None.
  """
  matched = pairs(reference_runs, bf16_runs)
  failed = lambda run: run.get('outcome') in BAD_OUTCOMES  # noqa: E731
  bf16_only = sum(failed(b) and not failed(f) for f, b in matched)
  float32_only = sum(failed(f) and not failed(b) for f, b in matched)
  discordant = bf16_only + float32_only
  p_fail = (float(scipy_stats.binomtest(bf16_only, discordant, 0.5,
                                        alternative='greater').pvalue)
            if discordant else 1.0)
  both_ok = [(f, b) for f, b in matched if f.get('outcome') == 'ok' and
             b.get('outcome') == 'ok']
  rows = []
  for q in QUANTITIES:
    deltas = [_value(b, q.key) - _value(f, q.key) for f, b in both_ok
              if _value(b, q.key) is not None and _value(f, q.key) is not None]
    interval = stats.mean_interval(deltas)
    row = {'words': q.words, 'margin': q.margin, 'n': len(deltas),
           'mean': sum(deltas) / len(deltas) if deltas else None,
           'low': interval['low'] if interval else None,
           'high': interval['high'] if interval else None, 'deltas': deltas}
    row['verdict'] = _row_verdict(row) if q.margin is not None else None
    rows.append(row)
  logs = [math.log(_value(b, STEP_TIME) / _value(f, STEP_TIME)) for f, b in both_ok
          if _value(b, STEP_TIME) and _value(f, STEP_TIME)]
  interval = stats.mean_interval(logs)
  step_time = {'n': len(logs), 'ratio': math.exp(sum(logs) / len(logs)),
               'low': math.exp(interval['low']) if interval else None,
               'high': math.exp(interval['high']) if interval else None} if logs else None
  judged = [r for r in rows if r['verdict'] is not None]
  by_verdict = {v: [r['words'] for r in judged if r['verdict'] == v]
                for v in (EQUIVALENT, NOT_EQUIVALENT, INCONCLUSIVE)}
  failures = (f'failed runs: {bf16_only} bf16 only, {float32_only} float32 only '
              f'(sign test p = {p_fail:.3g})')
  if p_fail <= 0.05 or by_verdict[NOT_EQUIVALENT]:
    verdict = NOT_EQUIVALENT
    reason = '; '.join(([f'bf16 fails more often: {failures}'] if p_fail <= 0.05
                        else []) + ([f'outside the margin: '
                                     f'{", ".join(by_verdict[NOT_EQUIVALENT])}']
                                    if by_verdict[NOT_EQUIVALENT] else []))
  elif by_verdict[INCONCLUSIVE]:
    verdict = INCONCLUSIVE
    short = [r['words'] for r in judged if r['n'] < MIN_PAIRS]
    crossing = [w for w in by_verdict[INCONCLUSIVE] if w not in short]
    reason = '; '.join(
        ([f'fewer than {MIN_PAIRS} pairs: {", ".join(short)}'] if short else []) +
        ([f'intervals that cross a margin: {", ".join(crossing)}'] if crossing else []))
  else:
    verdict, reason = EQUIVALENT, 'every interval inside its margin'
  if discordant and p_fail > 0.05:
    reason += f'; {failures}'
  return {'verdict': verdict, 'reason': reason, 'pairs': len(both_ok),
          'failures': {'bf16_only': bf16_only, 'float32_only': float32_only,
                       'p': p_fail},
          'rows': rows, 'step_time': step_time}
