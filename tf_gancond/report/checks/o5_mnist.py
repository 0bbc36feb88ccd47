"""O5 on MNIST: what Jacobian Clamping does to conditioning and to the scores
(docs/experiments.md#o5).

[O] Sec. 4, on the ten MNIST runs with JC (Fig. 1 right): "the runs using Jacobian
Clamping all show condition numbers that stop growing early in training. The runs
using Jacobian Clamping have scores similar to the best scores achieved by runs
without. The scores also show lower intra-run variance". Rows:

  o5_growth           per JC run, its mean ln cond at the end (the probes of the last
                      tenth of its steps) minus early in training (the probes at
                      20-30 % of its steps); the mean over runs below GROWTH_LIMIT.
  o5_best:<score>     the JC runs' mean final score over the mean of the k best
                      unregularized runs' (k = round(0.4 n), O2's "4 runs"), within
                      SIMILAR of 1. Scores of a classifier other than the paper's are
                      judged by this ratio only; the absolute values are in the note.
  o5_spread:<score>   the sd of the JC runs' final scores over the unregularized
                      runs' sd, by a one-sided F-test. "Intra-run variance" is read as
                      the spread between the runs of a setting, the bundle of curves
                      of Fig. 1 (its end points).
"""

import math

import numpy as np

from tf_gancond import stats
from tf_gancond.report import fmt
from tf_gancond.report import records
from tf_gancond.report import shared
from tf_gancond.report.checks import base

EARLY = (0.2, 0.3)   # Fractions of a run's steps: its probes "early in training".
LATE = 0.9           # From this fraction of a run's steps on: its end.
GROWTH_LIMIT = 0.5   # Nats: "stopped growing" if the mean grows by less after EARLY.
SIMILAR = 0.10       # "Similar to the best scores": the ratio within 1 -+ this.
ALPHA = 0.05         # One-sided level of the F-test of the spread.


def growth(run):
  """The run's mean ln cond over its probes in the last tenth of its steps minus
  over those at 20-30 % of them; None for an unfinished run or without probes
  in either window."""
  if run.state != 'finished':
    return None
  steps = run.train_steps or run.step
  values = {p.get('step', 0): records.as_float(p.get('mean_log_cond'))
            for p in run.probes}
  early = [v for s, v in values.items() if v is not None and
           EARLY[0] * steps <= s <= EARLY[1] * steps]
  late = [v for s, v in values.items() if v is not None and s >= LATE * steps]
  if not early or not late:
    return None
  return float(np.mean(late) - np.mean(early))


def _jc(ctx):
  return ctx.group(records.JACOBIAN_CLAMPING)


def growth_row(ctx):
  check = 'O5 JC runs\' ln cond stops growing early'
  target = '"stop growing early in training"'
  rule = (f'PASS: the Student t 95% CI of the JC runs\' mean growth of ln cond, from '
          f'{EARLY[0]:.0%}-{EARLY[1]:.0%} of each run\'s steps to its last tenth, lies '
          f'below {GROWTH_LIMIT:g} nats; FAIL: it lies above; INCONCLUSIVE: it '
          'straddles, or n < 4.')
  jc = _jc(ctx)
  if not jc:
    return base.row('o5_growth', check, target, rule, note='no JC runs')
  values, excluded = shared.finite_rows(jc, (growth, True))
  values = [v for v, in values]
  if not values:
    return base.row('o5_growth', check, target, rule,
                    note='no finished JC run with probes early and at the end')
  interval = stats.mean_interval(values)
  ci = (interval['low'], interval['high']) if interval else None
  verdict = stats.verdict(*(ci or (None, None)), -math.inf, GROWTH_LIMIT, len(values))
  baseline = [v for v in map(growth, ctx.unregularized) if v is not None]
  notes = [base.excluded_note(excluded)] if excluded else []
  if baseline:
    notes.append(f'unregularized runs: mean growth {fmt.num(float(np.mean(baseline)))} '
                 f'over {len(baseline)}')
  return base.row('o5_growth', check, target, rule, float(np.mean(values)), ci,
                  len(values), verdict, '; '.join(notes), ci_method='Student t')


def _finals(runs, column):
  """The finite final values of score `column` of `runs`."""
  values = [shared.score_of(r, column) for r in runs]
  return [v for v in values if isinstance(v, float) and math.isfinite(v)]


def score_rows(ctx):
  """o5_best and o5_spread per score column (KID left out, as in O2)."""
  out = []
  jc_runs = _jc(ctx)
  for column in ctx.score_names:
    if ctx.columns[column]['key'] == 'kid':
      continue
    label = fmt.label(column)
    jc, baseline = _finals(jc_runs, column), _finals(ctx.unregularized, column)
    lower = records.lower_is_better(ctx.columns[column]['key'])
    best_check = f'O5 JC runs\' {label} over the best unregularized runs\''
    best_rule = (f'PASS: the JC runs\' mean final score over the mean of the k = '
                 f'round(0.4 n) best unregularized runs lies within 1 ± {SIMILAR:g} '
                 '(its Student t 95% CI, the best runs\' mean held fixed); FAIL: '
                 'outside; INCONCLUSIVE: it straddles an edge, or n < 4. A ratio: the '
                 'paper\'s classifier is not this one.')
    spread_check = f'O5 JC runs\' {label}: less spread between runs'
    spread_rule = (f'PASS: a one-sided F-test puts the JC runs\' sd below the '
                   f'unregularized runs\' at p ≤ {ALPHA:g}; FAIL: the JC sd is at '
                   'least as large; INCONCLUSIVE: otherwise, or fewer than 4 of '
                   'either.')
    if not jc or not baseline:
      note = 'no JC runs' if not jc_runs else 'needs final scores of both settings'
      out += [base.row(f'o5_best:{column}', best_check, f'similar (1 ± {SIMILAR:g})',
                       best_rule, note=note, family='o5_best'),
              base.row(f'o5_spread:{column}', spread_check, 'lower', spread_rule,
                       note=note, family='o5_spread')]
      continue
    k = max(1, stats.top_k_size(len(baseline)))
    best = float(np.mean(sorted(baseline, reverse=not lower)[:k]))
    interval = stats.mean_interval(jc)
    ci = (interval['low'] / best, interval['high'] / best) if interval else None
    ratio = float(np.mean(jc)) / best
    out.append(base.row(
        f'o5_best:{column}', best_check, f'similar (1 ± {SIMILAR:g})', best_rule,
        ratio, ci, len(jc), stats.verdict(*(ci or (None, None)), 1 - SIMILAR,
                                          1 + SIMILAR, len(jc)),
        f'JC mean {fmt.num(float(np.mean(jc)))}, mean of the {k} best unregularized '
        f'{fmt.num(best)}', family='o5_best', ci_method='Student t'))
    n = min(len(jc), len(baseline))
    if n < base.MIN_RUNS:
      out.append(base.row(f'o5_spread:{column}', spread_check, 'lower', spread_rule,
                          n=n, verdict=stats.INCONCLUSIVE, family='o5_spread',
                          note=f'{len(jc)} JC and {len(baseline)} unregularized runs'))
      continue
    sd_jc, sd_base = np.std(jc, ddof=1), np.std(baseline, ddof=1)
    sd_ratio = float(sd_jc / sd_base) if sd_base > 0 else math.inf
    bound = stats.sd_ratio_bound(len(jc), len(baseline), ALPHA)
    verdict = (stats.FAIL if sd_ratio >= 1 else
               stats.PASS if sd_ratio < bound else stats.INCONCLUSIVE)
    out.append(base.row(
        f'o5_spread:{column}', spread_check, 'lower', spread_rule, sd_ratio, None, n,
        verdict, f'sd JC {fmt.num(float(sd_jc))}, unregularized '
        f'{fmt.num(float(sd_base))}; significant below a ratio of {bound:.3g}',
        family='o5_spread'))
  return out


def rows(ctx):
  return [growth_row(ctx)] + score_rows(ctx)


CHECK = base.Check(
    id='o5_mnist', anchor='o5', source='[O] Sec. 4, Fig. 1 right', dataset='mnist',
    quote='the runs using Jacobian Clamping all show condition numbers that stop '
          'growing early in training',
    statistic='per JC run, the growth of its mean ln cond after 20-30 % of training; '
              'the JC runs\' final scores against the best unregularized runs\' and '
              'their spread against the unregularized runs\'',
    plain={'o5_growth': 'With Jacobian Clamping ln cond stops growing early',
           'o5_best': 'With Jacobian Clamping the scores are similar to the best runs '
                      'without',
           'o5_spread': 'With Jacobian Clamping the scores vary less between runs'},
    rows=rows, paper_steps={'mnist': base.MNIST_STEPS},
    judged_runs=lambda ctx: ctx.unregularized + ctx.group(records.JACOBIAN_CLAMPING))
