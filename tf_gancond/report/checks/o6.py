"""O6: Jacobian Clamping on the class-conditional WGAN-GP of CIFAR-10
(docs/experiments.md#o6).

[O] Sec. 4 and Fig. 7, on igul222's WGAN-GP with "5 trials for each setting" of JC
{off, on} x critic steps {5, 1}: with 1 critic step "the baseline model 'collapses'
but the model with Jacobian Clamping does not"; with 5, JC "performs slightly worse
in terms of Inception Score"; JC with 1 critic step "more than halves the wall-clock
time". The cells are the settings `{baseline, jacobian_clamping}_ncritic{5, 1}` of
the sweep o6_cifar_wgangp_jc (launch/sweeps.py). Three rows:

  o6_collapse   at n_critic 1, collapsed baseline runs against collapsed JC runs;
  o6_ncritic5   at n_critic 5, the final IS of JC minus the baseline's, by seed;
  o6_wallclock  the training wall-clock to a fixed IS, JC at n_critic 1 over the
                baseline at n_critic 5.

A run's training wall-clock at step s (wall_seconds) is the sum of the interval times
of its train records up to s (the loop times its steps and what runs between them)
less the `eval_seconds` of the evaluations before s: evaluations cost the same per
curve point in every cell and would pull the ratio towards 1; probes and checkpoints
stay in. Time a killed run lost after its last checkpoint is not counted.
"""

import bisect
import math

import numpy as np

from tf_gancond import stats
from tf_gancond.report import fmt
from tf_gancond.report import plots
from tf_gancond.report import records
from tf_gancond.report.checks import base

PAPER_TRIALS = 5  # "5 trials for each setting".
PAPER_STEPS = 100000  # igul222's generator iterations.
IS_KEY = records.INCEPTION_SCORE
CELLS = tuple(f'{setting}_ncritic{n}' for n in (5, 1)
              for setting in ('baseline', records.JACOBIAN_CLAMPING))
BASELINE_5, JC_5, BASELINE_1, JC_1 = CELLS
# "Slightly worse": the package's reading is a mean IS loss of at most 1.
SLIGHTLY_WORSE = (-1.0, 0.0)
# The fixed IS of the wall-clock row: this fraction of the baseline at n_critic 5's
# mean final IS, the package's reading of the paper's "similar" score.
SIMILAR_IS_FRACTION = 0.9
WALLCLOCK_REGION = (0.0, 0.5)  # "more than halves the wall-clock time".
# A run's end point counts as collapsed when the report ranks it worst
# (records.RANKED_WORST: diverged, non-finite, or an IS below --collapse_score), or
# when its final IS is below this fraction of the baseline at n_critic 5's mean: a
# collapsed class-conditional G keeps some IS from its labels, above the MNIST-sized
# --collapse_score (the package's reading of the paper's "collapses").
COLLAPSE_FRACTION = 0.5


def final_is(run):
  """The run's final IS, None when it did not finish or has none."""
  return run.final_value(IS_KEY)


def wall_seconds(run):
  """[(step, seconds of training up to it)] at each train record, in step order:
  the summed interval times less the evaluations' eval_seconds before that step."""
  evals = sorted((r.get('step', 0), records.as_float(r.get('eval_seconds')) or 0.0)
                 for r in run.evals)
  out, total, last, i = [], 0.0, 0, 0
  for record in sorted(run.train, key=lambda r: r.get('step', 0)):
    step, step_time = record.get('step', 0), records.as_float(record.get('step_time'))
    if step_time is None or not math.isfinite(step_time):
      continue
    total += step_time * (step - last)
    last = step
    while i < len(evals) and evals[i][0] < step:  # Evaluations before this record.
      total -= evals[i][1]
      i += 1
    out.append((step, total))
  return out


def curve(run):
  """[(step, wall-clock seconds, IS)] of the run's eval records: the seconds of the
  last train record at or before each."""
  clock = wall_seconds(run)
  steps = [s for s, _ in clock]
  out = []
  for record in run.evals:
    value = records.as_float(record.get(IS_KEY))
    step = record.get('step', 0)
    at = bisect.bisect_right(steps, step)
    if value is not None and math.isfinite(value) and at:
      out.append((step, clock[at - 1][1], value))
  return sorted(out)


def seconds_to(run, threshold):
  """Wall-clock seconds to the run's first eval with IS >= threshold; None if never."""
  return next((seconds for _, seconds, value in curve(run) if value >= threshold), None)


def last_eval_is(run):
  """The IS of the run's last eval record (the curve's sample count), or None."""
  points = curve(run)
  return points[-1][2] if run.state == 'finished' and points else None


def is_collapsed(run, collapse_is):
  """Whether the run's end point is collapsed (COLLAPSE_FRACTION)."""
  value = final_is(run)
  return run.outcome in records.RANKED_WORST or (
      collapse_is is not None and value is not None and value < collapse_is)


def analyse(ctx):
  """{'o6': {cell: {'runs', 'collapsed', 'counted', 'final_is'}, 'collapse_is',
  'threshold', 'seconds_to_threshold' ({cell: {run: seconds or None}})}}; {} without
  O6 runs. The wall-clock threshold is SIMILAR_IS_FRACTION of the baseline at
  n_critic 5's mean last curve IS, so that it compares with the curves' points."""
  if not any(ctx.group(c) for c in CELLS):
    return {'o6': {}}
  base_final = [v for v in map(final_is, ctx.group(BASELINE_5)) if v is not None]
  collapse_is = COLLAPSE_FRACTION * float(np.mean(base_final)) if base_final else None
  out = {'collapse_is': collapse_is}
  for cell in CELLS:
    group = ctx.group(cell)
    counted = [r for r in group if r.counted]
    out[cell] = {'runs': len(group), 'counted': len(counted),
                 'collapsed': sum(is_collapsed(r, collapse_is) for r in counted),
                 'final_is': {r.name: final_is(r) for r in group}}
  base_curve = [v for v in map(last_eval_is, ctx.group(BASELINE_5)) if v is not None]
  threshold = SIMILAR_IS_FRACTION * float(np.mean(base_curve)) if base_curve else None
  out['threshold'] = threshold
  out['seconds_to_threshold'] = {
      cell: {r.name: seconds_to(r, threshold) for r in ctx.group(cell) if r.counted}
      for cell in (BASELINE_5, JC_1)
  } if threshold is not None else {}
  return {'o6': out}


def collapse_row(ctx):
  check = 'O6 n_critic 1: the baseline collapses, JC does not'
  target = 'baseline collapses, JC does not (5 trials each)'
  rule = ('PASS: no JC run at n_critic 1 collapsed, and the baseline\'s collapses are '
          'more frequent by a one-sided exact Fisher test at p ≤ 0.05 (with 5 + 5 '
          'runs: 4 or 5 baseline collapses); FAIL: the baseline collapsed no more often '
          'than JC; INCONCLUSIVE: otherwise, or fewer than 5 runs in a cell. Collapsed: '
          f'diverged, non-finite, or a final IS below {COLLAPSE_FRACTION:g} × the '
          'baseline at n_critic 5\'s mean final IS or below the report\'s '
          '--collapse_score.')
  v = ctx.analysis['o6']
  if not v or not (v[BASELINE_1]['counted'] and v[JC_1]['counted']):
    return base.row('o6_collapse', check, target, rule,
                    note='no finished runs of both n_critic 1 cells')
  b, j = v[BASELINE_1], v[JC_1]
  p = stats.count_test_greater(b['collapsed'], b['counted'], j['collapsed'],
                               j['counted'])
  verdict = (stats.FAIL if b['collapsed'] / b['counted'] <= j['collapsed'] / j['counted']
             else stats.PASS if j['collapsed'] == 0 and p <= 0.05
             else stats.INCONCLUSIVE)
  return base.row('o6_collapse', check, target, rule, b['collapsed'], None,
                  min(b['counted'], j['counted']), verdict,
                  f'collapsed: baseline {b["collapsed"]} of {b["counted"]}, JC '
                  f'{j["collapsed"]} of {j["counted"]}; p = {p:.3g}')


def ncritic5_row(ctx):
  check = 'O6 n_critic 5: JC\'s final IS slightly below the baseline\'s'
  target = '"slightly worse"'
  rule = base.interval_rule(*SLIGHTLY_WORSE, ' (the mean IS of JC minus the baseline '
                            'of the same seed; "slightly": by at most 1)') + (
      ' A JC run that diverged or ended non-finite keeps the row from PASS.')
  v = ctx.analysis['o6']
  if not v:
    return base.row('o6_ncritic5', check, target, rule, note='no O6 runs')
  jc = {r.seed: final_is(r) for r in ctx.group(JC_5) if final_is(r) is not None}
  baseline = {r.seed: final_is(r) for r in ctx.group(BASELINE_5)
              if final_is(r) is not None}
  seeds = sorted(set(jc) & set(baseline))
  if not seeds:
    return base.row('o6_ncritic5', check, target, rule,
                    note='no seed with finished runs in both n_critic 5 cells')
  row = base.mean_check('o6_ncritic5', check, target, SLIGHTLY_WORSE,
                        [jc[s] - baseline[s] for s in seeds], {})
  notes = []
  unpaired = len(set(jc) ^ set(baseline))
  if unpaired:
    notes.append(f'{unpaired} finished run(s) without a twin of the same seed')
  failed = [r for r in ctx.group(JC_5) if r.outcome in ('diverged', 'non-finite')]
  if failed:
    notes.append(f'{len(failed)} JC run(s) diverged or ended non-finite')
    if row['verdict'] == stats.PASS:
      row = dict(row, verdict=stats.INCONCLUSIVE)
  notes.append(f'baseline mean final IS {np.mean([baseline[s] for s in seeds]):.3g} '
               '(Gulrajani et al.: 8.42 ± 0.10 with OpenAI\'s Inception graph; not '
               'judged)')
  return base.with_note(row, notes)


def wallclock_row(ctx):
  check = ('O6 wall-clock to a similar IS: JC at n_critic 1 over the baseline at '
           'n_critic 5')
  target = '< 0.5 ("more than halves")'
  rule = (base.interval_rule(*WALLCLOCK_REGION, ' (the ratio of geometric mean '
                             'training times, evaluations excluded, to the first IS '
                             f'at or above {SIMILAR_IS_FRACTION:g} × the baseline at '
                             'n_critic 5\'s mean IS at its last curve point)') +
          ' FAIL also when no JC run at n_critic 1 reaches that IS; a JC run that '
          'never reaches it keeps the row from PASS.')
  v = ctx.analysis['o6']
  seconds = v.get('seconds_to_threshold') if v else None
  if not seconds or not seconds[BASELINE_5] or not seconds[JC_1]:
    return base.row('o6_wallclock', check, target, rule,
                    note='no finished runs of both cells with an IS curve')
  reached = {c: [s for s in seconds[c].values() if s is not None]
             for c in (BASELINE_5, JC_1)}
  never = {c: len(seconds[c]) - len(reached[c]) for c in reached}
  note = (f'IS threshold {v["threshold"]:.3g}; never reached it: baseline@5 '
          f'{never[BASELINE_5]} of {len(seconds[BASELINE_5])}, JC@1 {never[JC_1]} of '
          f'{len(seconds[JC_1])}')
  n = min(len(r) for r in reached.values())
  if not reached[BASELINE_5]:
    return base.row('o6_wallclock', check, target, rule, verdict=stats.INCONCLUSIVE,
                    note=note)
  if not reached[JC_1]:
    return base.row('o6_wallclock', check, target, rule, n=len(seconds[JC_1]),
                    verdict=stats.FAIL, note=note)
  logs = {c: np.log(reached[c]) for c in reached}
  ratio = float(math.exp(logs[JC_1].mean() - logs[BASELINE_5].mean()))
  interval = stats.welch_interval(logs[JC_1], logs[BASELINE_5])
  ci = (math.exp(interval[0]), math.exp(interval[1])) if interval else None
  verdict = stats.verdict(*(ci or (None, None)), *WALLCLOCK_REGION, n)
  if verdict == stats.PASS and never[JC_1]:
    verdict = stats.INCONCLUSIVE
  return base.row('o6_wallclock', check, target, rule, ratio, ci, n, verdict, note,
                  ci_method='Welch t on ln seconds')


def rows(ctx):
  return [collapse_row(ctx), ncritic5_row(ctx), wallclock_row(ctx)]


def fig_o6(ctx, output):
  """IS against generator iterations and against training wall-clock, per cell."""
  cells = [c for c in CELLS if any(curve(r) for r in ctx.group(c))]
  if not cells:
    return None, {}
  plt = plots.pyplot()
  colors = dict(zip(CELLS, ('tab:blue', 'tab:orange', 'tab:green', 'tab:red')))
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
  for cell in cells:
    for i, run in enumerate(ctx.group(cell)):
      points = curve(run)
      if not points:
        continue
      steps, seconds, values = zip(*points)
      label = cell if i == 0 else None
      axes[0].plot(steps, values, color=colors[cell], alpha=0.7, label=label)
      axes[1].plot(np.asarray(seconds) / 3600, values, color=colors[cell], alpha=0.7)
  threshold = ctx.analysis['o6'].get('threshold')
  for ax in axes:
    if threshold is not None:
      ax.axhline(threshold, color='gray', ls=':', lw=1)
    ax.grid(alpha=0.3)
  axes[0].set_xlabel('generator iterations')
  axes[1].set_xlabel('training wall-clock (hours)')
  axes[0].set_ylabel('Inception Score')
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  return plots.save(fig, output, 'fig_o6_is_curves.png'), {}


def section(ctx):
  v = ctx.analysis['o6']
  if not v:
    return []
  lines = ['### O6: JC × n_critic on the conditional WGAN-GP', '',
           '| cell | runs | collapsed of counted | mean final IS |',
           '|---|---|---|---|']
  for cell in CELLS:
    c = v[cell]
    values = [x for x in c['final_is'].values() if x is not None]
    lines.append(f'| {cell} | {c["runs"]} | {c["collapsed"]} of {c["counted"]} | '
                 f'{fmt.num(float(np.mean(values))) if values else "-"} |')
  return lines + ['']


def _o6_runs(ctx):
  return [r for c in CELLS for r in ctx.group(c)]


CHECK = base.Check(
    id='o6', anchor='o6', source='[O] Sec. 4, Fig. 7', dataset='cifar10',
    quote='the baseline model \'collapses\' but the model with Jacobian Clamping '
          'does not',
    statistic='per cell of JC {off, on} × n_critic {5, 1}: collapsed runs, final IS, '
              'and training wall-clock to a fixed IS',
    plain={'o6_collapse': 'With 1 critic step the baseline collapses and JC does not',
           'o6_ncritic5': 'With 5 critic steps JC scores slightly lower',
           'o6_wallclock': 'JC with 1 critic step reaches a similar IS in under half '
                           'the baseline\'s wall-clock'},
    rows=rows, analyse=analyse, section=section, min_runs=PAPER_TRIALS,
    paper_steps={'cifar10': PAPER_STEPS}, judged_runs=_o6_runs,
    figures=(base.Figure(
        'o6', 'Fig. O6', 'IS against iterations and wall-clock',
        'O6 ([O] Fig. 7): Inception Score of each run against generator iterations '
        '(left) and training wall-clock (right); dotted: the IS of the wall-clock '
        'row.', 'no IS curves recorded', fig_o6, always=False),))
