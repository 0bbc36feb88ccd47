"""O5 on MNIST: what Jacobian Clamping does to conditioning and to the scores
(docs/experiments.md#o5).

[O] Sec. 4, on the ten MNIST runs with JC (Fig. 1 right): "the runs using Jacobian
Clamping all show condition numbers that stop growing early in training. The runs
using Jacobian Clamping have scores similar to the best scores achieved by runs
without. The scores also show lower intra-run variance"; and Sec. 1: JC "reduces
inter-run variance of the values for the Inception Score and FID". Rows:

  o5_growth           per JC run, its mean ln cond at the end (the probes of the last
                      tenth of its steps) minus early in training (the probes at
                      20-30 % of its steps); the mean over runs, and every run, below
                      GROWTH_LIMIT.
  o5_best:<score>     the JC runs' mean final score over the mean of the k best
                      unregularized runs' (k = round(0.4 n), O2's "4 runs"), within
                      SIMILAR of 1. Scores of a classifier other than the paper's are
                      judged by this ratio only; the absolute values are in the note.
  o5_spread:<score>   between runs ("inter-run"): the sd of the JC runs' final scores
                      over the unregularized runs', by one-sided F-tests.
  o5_within:<score>   within a run ("intra-run"): per run, the sd of its score at
                      its evaluations after the early window about their line in
                      step (fluctuation, not improvement); JC against
                      unregularized by a one-sided exact Mann-Whitney test.

A JC run that diverged or ended non-finite counts against the claim: it keeps every
row from PASS.
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
GROWTH_LIMIT = 0.5   # Nats: "stopped growing" if it grows by less after EARLY.
SIMILAR = 0.10       # "Similar to the best scores": the ratio within 1 -+ this.
ALPHA = 0.05         # One-sided level of the spread tests.
MIN_EVALS = 4        # Evaluations after EARLY for a within-run sd: a line takes 2.
FAILED = ('diverged', 'non-finite')


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


def within_run_sd(run, key):
  """The fluctuation of the run's `key` over its eval records after 30 % of its
  steps: the sd of its residuals about their least-squares line in step (ddof 2),
  so that steady improvement is not counted; None for an unfinished run or with
  fewer than MIN_EVALS finite values."""
  if run.state != 'finished':
    return None
  steps = run.train_steps or run.step
  points = [(e.get('step', 0), records.as_float(e.get(key))) for e in run.evals
            if e.get('step', 0) > EARLY[1] * steps]
  points = [(s, v) for s, v in points if v is not None and math.isfinite(v)]
  if len(points) < MIN_EVALS:
    return None
  step, value = np.asarray(points, dtype=np.float64).T
  residuals = value - np.polyval(np.polyfit(step, value, 1), step)
  return float(np.sqrt(np.sum(residuals ** 2) / (len(value) - 2)))


def _values(runs, value_of):
  """([finite values], excluded note) of `runs` (shared.finite_rows)."""
  kept, excluded = shared.finite_rows(runs, (value_of, False))
  return [v for v, in kept], base.excluded_note(excluded)


def _blocked(row, failed):
  """The row, no longer PASS when JC runs diverged or ended non-finite."""
  if not failed:
    return row
  row = base.with_note(row, [f'{failed} JC run(s) diverged or ended non-finite'])
  return dict(row, verdict=stats.INCONCLUSIVE) if row['verdict'] == stats.PASS else row


def growth_row(ctx, jc_runs, failed):
  check = 'O5 JC runs\' ln cond stops growing early'
  target = '"stop growing early in training"'
  rule = (f'PASS: the Student t 95% CI of the JC runs\' mean growth of ln cond, from '
          f'{EARLY[0]:.0%}-{EARLY[1]:.0%} of each run\'s steps to its last tenth, lies '
          f'below {GROWTH_LIMIT:g} nats and every run grew by less ("all"); FAIL: the '
          'CI lies above; INCONCLUSIVE: otherwise, or n < 4.')
  if not jc_runs:
    return base.row('o5_growth', check, target, rule, note='no JC runs')
  values, excluded = _values(jc_runs, growth)
  if not values:
    return base.row('o5_growth', check, target, rule,
                    note='no finished JC run with probes early and at the end')
  interval = stats.mean_interval(values)
  ci = (interval['low'], interval['high']) if interval else None
  verdict = stats.verdict(*(ci or (None, None)), -math.inf, GROWTH_LIMIT, len(values))
  grew = sum(v >= GROWTH_LIMIT for v in values)
  if verdict == stats.PASS and grew:
    verdict = stats.INCONCLUSIVE
  baseline, _ = _values(ctx.unregularized, growth)
  notes = [f'{grew} of {len(values)} JC runs grew by {GROWTH_LIMIT:g} or more']
  notes += [excluded] if excluded else []
  if baseline:
    notes.append(f'unregularized runs: mean growth {fmt.num(float(np.mean(baseline)))} '
                 f'over {len(baseline)}')
  return _blocked(base.row('o5_growth', check, target, rule, float(np.mean(values)),
                           ci, len(values), verdict, '; '.join(notes),
                           ci_method='Student t'), failed)


def best_row(ctx, column, jc, baseline, notes):
  label = fmt.label(column)
  lower = records.lower_is_better(ctx.columns[column]['key'])
  check = f'O5 JC runs\' {label} over the best unregularized runs\''
  target = f'similar (1 ± {SIMILAR:g})'
  rule = (f'PASS: the JC runs\' mean final score over the mean of the k = round(0.4 n) '
          f'best unregularized runs lies within 1 ± {SIMILAR:g} (its 95% CI: '
          'percentile bootstrap resampling both groups); FAIL: outside; INCONCLUSIVE: '
          'it straddles an edge, or fewer than 4 runs of either. A ratio: the '
          'paper\'s classifier is not this one. Either way, since JC "didn\'t improve '
          'the best case".')
  id_ = f'o5_best:{column}'
  if not jc or not baseline:
    return base.row(id_, check, target, rule, note='needs final scores of both '
                    'settings', family='o5_best')

  k = max(1, stats.top_k_size(len(baseline)))  # A resample keeps the size.

  def best_mean(y):
    """The mean of the k best of `y`."""
    return float(np.mean(np.sort(y)[:k] if lower else np.sort(y)[::-1][:k]))

  def ratio_of(x, y):
    best = best_mean(y)
    return float(np.mean(x) / best) if best > 0 else math.nan

  best = best_mean(np.asarray(baseline))
  if best <= 0:
    return base.row(id_, check, target, rule, note='the best runs\' mean is not '
                    'positive', family='o5_best')
  ci = stats.two_sample_bootstrap_ci(ratio_of, jc, baseline, ctx.num_resamples,
                                     seed=ctx.seed)
  n = min(len(jc), len(baseline))
  return base.row(id_, check, target, rule, float(np.mean(jc)) / best, ci, n,
                  stats.verdict(*(ci or (None, None)), 1 - SIMILAR, 1 + SIMILAR, n),
                  '; '.join([f'JC mean {fmt.num(float(np.mean(jc)))}, mean of the {k} '
                             f'best unregularized {fmt.num(best)}'] + notes),
                  family='o5_best', ci_method='percentile bootstrap, both groups')


def spread_row(column, jc, baseline, notes):
  check = f'O5 JC runs\' {fmt.label(column)}: less spread between runs'
  rule = (f'PASS: a one-sided F-test puts the JC runs\' sd of the final score below '
          f'the unregularized runs\' at p ≤ {ALPHA:g}; FAIL: above, by the same test; '
          'INCONCLUSIVE: neither, or fewer than 4 runs of either.')
  id_, n = f'o5_spread:{column}', min(len(jc), len(baseline))
  if n < base.MIN_RUNS:
    return base.row(id_, check, 'lower', rule, n=n, family='o5_spread',
                    verdict=stats.INCONCLUSIVE if n else stats.NOT_RUN,
                    note='; '.join([f'{len(jc)} JC and {len(baseline)} unregularized '
                                    'runs'] + notes))
  sd_jc, sd_base = np.std(jc, ddof=1), np.std(baseline, ddof=1)
  if sd_base == 0:
    return base.row(id_, check, 'lower', rule, n=n, verdict=stats.INCONCLUSIVE,
                    note='the unregularized runs do not vary', family='o5_spread')
  ratio = float(sd_jc / sd_base)
  below = stats.sd_ratio_bound(len(jc), len(baseline), ALPHA)
  above = stats.sd_ratio_bound(len(jc), len(baseline), 1 - ALPHA)  # Upper tail.
  verdict = (stats.PASS if ratio < below else stats.FAIL if ratio > above
             else stats.INCONCLUSIVE)
  return base.row(id_, check, 'lower', rule, ratio,
                  stats.sd_ratio_interval(ratio, len(jc), len(baseline)), n, verdict,
                  '; '.join([f'sd JC {fmt.num(float(sd_jc))}, unregularized '
                             f'{fmt.num(float(sd_base))}'] + notes),
                  family='o5_spread', ci_method='F')


def within_row(ctx, column, jc_runs):
  key = ctx.columns[column]['key']
  check = f'O5 JC runs\' {fmt.label(column)}: less fluctuation within a run'
  rule = (f'PASS: a one-sided exact Mann-Whitney test puts the JC runs\' within-run '
          f'sd (about each run\'s least-squares line in step, over its evaluations '
          f'after {EARLY[1]:.0%} of it, at least {MIN_EVALS}) below the '
          f'unregularized runs\' at p ≤ {ALPHA:g}; FAIL: the JC '
          'mean sd is at or above the unregularized; INCONCLUSIVE: otherwise, or '
          'fewer than 4 runs of either.')
  id_ = f'o5_within:{column}'
  jc, _ = _values(jc_runs, lambda r: within_run_sd(r, key))
  baseline, _ = _values(ctx.unregularized, lambda r: within_run_sd(r, key))
  n = min(len(jc), len(baseline))
  if not n:
    return base.row(id_, check, 'lower', rule, family='o5_within',
                    note=f'needs {MIN_EVALS} evaluations after {EARLY[1]:.0%} of '
                         'the runs of both settings')
  ratio = float(np.mean(jc) / np.mean(baseline)) if np.mean(baseline) > 0 else None
  note = f'mean within-run sd: JC {fmt.num(float(np.mean(jc)))}, unregularized ' \
         f'{fmt.num(float(np.mean(baseline)))}'
  if n < base.MIN_RUNS:
    return base.row(id_, check, 'lower', rule, ratio, None, n, stats.INCONCLUSIVE,
                    note, family='o5_within')
  p = stats.rank_test_less(jc, baseline)
  verdict = (stats.FAIL if np.mean(jc) >= np.mean(baseline) else
             stats.PASS if p <= ALPHA else stats.INCONCLUSIVE)
  return base.row(id_, check, 'lower', rule, ratio, None, n, verdict,
                  f'{note}; p = {p:.3g}', family='o5_within')


def rows(ctx):
  jc_runs = ctx.group(records.JACOBIAN_CLAMPING)
  failed = sum(r.outcome in FAILED for r in jc_runs)
  out = [growth_row(ctx, jc_runs, failed)]
  if not jc_runs:
    return out
  for column in ctx.score_names:
    if ctx.columns[column]['key'] == 'kid':  # As in O2: FD and CS only.
      continue
    jc, jc_excluded = _values(jc_runs, lambda r: shared.score_of(r, column))
    baseline, base_excluded = _values(ctx.unregularized,
                                      lambda r: shared.score_of(r, column))
    notes = ([f'JC {jc_excluded}'] if jc_excluded else []) + (
        [f'unregularized {base_excluded}'] if base_excluded else [])
    out += [_blocked(best_row(ctx, column, jc, baseline, notes), failed),
            _blocked(spread_row(column, jc, baseline, notes), failed),
            _blocked(within_row(ctx, column, jc_runs), failed)]
  return out


CHECK = base.Check(
    id='o5_mnist', anchor='o5', source='[O] Secs 1 and 4, Fig. 1 right',
    dataset='mnist',
    quote='the runs using Jacobian Clamping all show condition numbers that stop '
          'growing early in training',
    statistic='per JC run, the growth of its mean ln cond after 20-30 % of training; '
              'the JC runs\' final scores against the best unregularized runs\', and '
              'their spread between and within runs against the unregularized runs\'',
    plain={'o5_growth': 'With Jacobian Clamping ln cond stops growing early',
           'o5_best': 'With Jacobian Clamping the scores are similar to the best runs '
                      'without',
           'o5_spread': 'With Jacobian Clamping the scores vary less between runs',
           'o5_within': 'With Jacobian Clamping the scores fluctuate less within a '
                        'run'},
    rows=rows, paper_steps={'mnist': base.MNIST_STEPS}, min_runs=base.ODENA_RUNS,
    judged_runs=lambda ctx: ctx.unregularized + ctx.group(records.JACOBIAN_CLAMPING))
