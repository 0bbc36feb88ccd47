"""O4: missing modes (docs/experiments.md#o4).

[O] Sec. 3: the authors "drew 360 samples from each of the 10 models", and the
correlation between mean log-cond and the size of the least-sampled class "was
-0.86". Rows: the sample count each unregularized run records
(`missing_modes_num_samples`), and the Pearson r of final log-cond with the
least-sampled class count (`min_class_count`) over the unregularized runs.
"""

import math

import numpy as np

from tf_gancond import stats
from tf_gancond.report import fmt
from tf_gancond.report import plots
from tf_gancond.report import records
from tf_gancond.report import shared
from tf_gancond.report.checks import base

PAPER_R, SAMPLES = -0.86, 360


def fisher_ci(r, n):
  """The 95% interval of a Pearson r from n pairs by Fisher z (stats.
  fisher_interval), {'low', 'high', 'method'}; [r, r] for |r| = 1, where z is
  infinite; None for n < base.MIN_RUNS or an undefined r. A percentile bootstrap
  of r from 10 runs covers less than it says: at r = -0.55 it excluded 0 where
  Fisher z gives [-0.88, +0.12]."""
  if n < base.MIN_RUNS or not math.isfinite(r):
    return None
  low, high = (r, r) if abs(r) == 1 else stats.fisher_interval(r, n)
  return {'low': low, 'high': high, 'method': 'Fisher z'}


def analyse(ctx):
  """{'o4_pearson': {'n', 'r', 'ci' (fisher_ci), 'excluded'}} ({} for fewer than 2
  runs)."""
  pairs, excluded = shared.finite_rows(
      ctx.unregularized, (lambda r: r.final_log_cond, True),
      (lambda r: r.min_class_count, False))
  if len(pairs) < 2:
    return {'o4_pearson': {}}
  x, y = np.array(pairs).T
  r = stats.pearson(x, y)
  return {'o4_pearson': {'n': len(pairs), 'r': r, 'excluded': excluded,
                         'ci': fisher_ci(r, len(pairs))}}


def samples_row(ctx):
  """A property of the runs, not a verdict: the samples each unregularized run
  classified for its least-sampled class count."""
  check, target = 'O4 samples per model', str(SAMPLES)
  rule = (f'{base.SETTING}, not judged: the samples each unregularized run '
          f'classified (the paper: {SAMPLES}).')
  counts = [records.as_float(r.final.get('missing_modes_num_samples'))
            for r in ctx.unregularized if r.state == 'finished']
  counts = [int(c) for c in counts if c is not None]
  if not counts:
    return base.row('o4_samples', check, target, rule,
                    note='no least-sampled class counts recorded')
  low, high = min(counts), max(counts)
  return base.row('o4_samples', check, target, rule, low if low == high else None,
                  None, len(counts), base.SETTING,
                  '' if low == high else f'from {low} to {high}')


def r_row(ctx):
  o4 = ctx.analysis['o4_pearson']
  check, target = 'O4 r(final log-cond, least-sampled class count)', str(PAPER_R)
  region = (-1.0, stats.fisher_interval(PAPER_R, base.ODENA_RUNS)[1])
  rule = base.interval_rule(*region, f' (r at least as negative as the top of the '
                            f'paper\'s own 95% interval, Fisher z for r = {PAPER_R} '
                            f'from {base.ODENA_RUNS} runs)')
  if not o4:
    return base.row('o4_r', check, target, rule, note='fewer than 2 unregularized '
                    'runs with a least-sampled class count')
  ci = (o4['ci']['low'], o4['ci']['high']) if o4['ci'] else None
  return base.row('o4_r', check, target, rule, o4['r'], ci, o4['n'],
                  stats.verdict(*(ci or (None, None)), *region, o4['n']),
                  base.excluded_note(o4['excluded']), ci_method='Fisher z')


def rows(ctx):
  return [samples_row(ctx), base.with_note(r_row(ctx), base.noise_notes(ctx))]


def fig_o4(ctx, output):
  """O4: final log-cond against the least-sampled class count."""
  pts = [r for r in ctx.runs if records.is_number(r.min_class_count) and
         records.is_number(r.final_log_cond)]
  if len(pts) < 2:
    return None, {}
  plt = plots.pyplot()
  markers = plots.markers(ctx.settings)
  fig, ax = plt.subplots(figsize=(5, 3.6))
  for s in ctx.settings:
    group = [r for r in pts if r.setting == s]
    if group:
      ax.scatter([r.final_log_cond for r in group], [r.min_class_count for r in group],
                 marker=markers[s], label=s, alpha=0.8)
  ax.set_xlabel('final mean ln cond(M_z)')
  ax.set_ylabel('samples in least-sampled class')
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  return plots.save(fig, output, 'fig_o4_min_class_count.png'), {}


def section(ctx):
  lines = ['### O4: final log-cond vs least-sampled class count (Pearson)', '']
  v = ctx.analysis['o4_pearson']
  if not v:
    return lines + ['No least-sampled class counts recorded (`min_class_count` in the '
                    'final record; it needs the final evaluation).', '']
  return lines + [
      f'Over the unregularized runs (paper: r = {PAPER_R} over the {base.ODENA_RUNS} '
      'unregularized MNIST runs).', '',
      '| n | Pearson r | 95% CI (Fisher z) | excluded |', '|---|---|---|---|',
      f'| {v["n"]} | {fmt.num(v["r"])} | {fmt.ci(v["ci"])} | '
      f'{fmt.counts(v["excluded"])} |', '']


CHECK = base.Check(
    id='o4', anchor='o4', source='[O] Sec. 3, "Conditioning is Related to Missing '
    'Modes"', dataset='mnist',
    quote='drew 360 samples from each of the 10 models ... was -0.86',
    statistic='the sample count of each unregularized run; Pearson r of final '
              'log-cond with the least-sampled class count over those runs',
    plain={'o4_samples': 'Samples per model for the class counts',
           'o4_r': 'Worse-conditioned runs miss more of a class: r(final ln '
                   'cond, count of the least-sampled class)'},
    rows=rows, analyse=analyse, section=section,
    paper_steps={'mnist': base.MNIST_STEPS}, min_runs=base.ODENA_RUNS,
    figures=(base.Figure(
        'o4', 'O4', 'log-cond against least-sampled class',
        'O4: final log-cond against the number of samples in the least-sampled '
        'class.', 'no least-sampled class counts recorded (final evaluation off)',
        fig_o4),))
