"""bf16 against float32: is a bfloat16-trained run worth the same as a float32 one?

The rule, stated before its runs (docs/experiments.md#bf16). Each finished bfloat16
run is paired with the float32 run of the same setting and seed (the same config but
for `precision`). Per quantity, d = bf16 value - float32 value, and the mean of d
over the pairs with its 95 % Student t interval (stats.mean_interval). The verdict:

  EQUIVALENT      at least MIN_PAIRS pairs, and every judged quantity's interval lies
                  inside [-margin, +margin];
  NOT EQUIVALENT  a bf16 run diverged, collapsed or ended non-finite where its float32
                  twin did not, or a judged interval lies wholly outside the margin;
  INCONCLUSIVE    otherwise: fewer pairs, or an interval that crosses a margin.

The margins are those of issue 31: 0.2 nats for ln cond (its mean over z and its
10th and 90th percentiles over z), 0.1 for the classifier score, 1 for the Fréchet
distance. The least-sampled class count and the step time are shown, not judged
(the step time as the geometric mean of bf16 / float32 with its interval on the
log ratios).
"""

import collections
import math

from tf_gancond import stats

EQUIVALENT, NOT_EQUIVALENT, INCONCLUSIVE = 'EQUIVALENT', 'NOT EQUIVALENT', 'INCONCLUSIVE'
MIN_PAIRS = 10  # The seeds of the float32 stage it pairs with.
Quantity = collections.namedtuple('Quantity', 'key words margin')
QUANTITIES = (
    Quantity('final_log_cond', 'final ln cond, mean over z', 0.2),
    Quantity('final_log_cond_p10', 'final ln cond, 10th percentile over z', 0.2),
    Quantity('final_log_cond_p90', 'final ln cond, 90th percentile over z', 0.2),
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
  (analysis.json 'runs' entries: finished, or diverged)."""
  ended = lambda r: r.get('state') in ('finished', 'diverged')  # noqa: E731
  twins = {(r.get('setting'), r.get('seed')): r for r in reference_runs
           if r.get('precision', 'float32') == 'float32' and ended(r)}
  return [(twins[(_base_setting(r), r.get('seed'))], r) for r in bf16_runs
          if r.get('precision') == 'bfloat16' and ended(r) and
          (_base_setting(r), r.get('seed')) in twins]


def compare(reference_runs, bf16_runs):
  """{'verdict', 'reason', 'pairs', 'rows', 'step_time'}: rows per QUANTITIES entry
  {'words', 'margin', 'n', 'mean', 'low', 'high', 'deltas'} (low/high None below 2
  pairs); step_time {'n', 'ratio', 'low', 'high'} or None."""
  matched = pairs(reference_runs, bf16_runs)
  worse = [f'seed {b.get("seed")}: {b.get("outcome")}' for f, b in matched
           if b.get('outcome') in BAD_OUTCOMES and f.get('outcome') not in BAD_OUTCOMES]
  both_ok = [(f, b) for f, b in matched if f.get('outcome') == 'ok' and
             b.get('outcome') == 'ok']
  rows = []
  for q in QUANTITIES:
    deltas = [_value(b, q.key) - _value(f, q.key) for f, b in both_ok
              if _value(b, q.key) is not None and _value(f, q.key) is not None]
    interval = stats.mean_interval(deltas)
    rows.append({'words': q.words, 'margin': q.margin, 'n': len(deltas),
                 'mean': sum(deltas) / len(deltas) if deltas else None,
                 'low': interval['low'] if interval else None,
                 'high': interval['high'] if interval else None, 'deltas': deltas})
  logs = [math.log(_value(b, STEP_TIME) / _value(f, STEP_TIME)) for f, b in both_ok
          if _value(b, STEP_TIME) and _value(f, STEP_TIME)]
  interval = stats.mean_interval(logs)
  step_time = {'n': len(logs), 'ratio': math.exp(sum(logs) / len(logs)),
               'low': math.exp(interval['low']) if interval else None,
               'high': math.exp(interval['high']) if interval else None} if logs else None
  judged = [r for r in rows if r['margin'] is not None]
  outside = [r['words'] for r in judged if r['low'] is not None and (
      r['low'] > r['margin'] or r['high'] < -r['margin'])]
  crossing = [r['words'] for r in judged if r['low'] is None or not (
      -r['margin'] <= r['low'] and r['high'] <= r['margin'])]
  if worse or outside:
    verdict = NOT_EQUIVALENT
    reason = '; '.join(([f'bf16 runs that failed where float32 did not: '
                         f'{", ".join(worse)}'] if worse else []) +
                       ([f'outside the margin: {", ".join(outside)}'] if outside else []))
  elif len(both_ok) < MIN_PAIRS:
    verdict = INCONCLUSIVE
    reason = f'{len(both_ok)} pairs, fewer than {MIN_PAIRS}'
  elif crossing:
    verdict = INCONCLUSIVE
    reason = f'intervals that cross a margin: {", ".join(crossing)}'
  else:
    verdict, reason = EQUIVALENT, 'every interval inside its margin'
  return {'verdict': verdict, 'reason': reason, 'pairs': len(both_ok), 'rows': rows,
          'step_time': step_time}
