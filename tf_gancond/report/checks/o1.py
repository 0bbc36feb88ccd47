"""O1: per-z conditioning during MNIST training (docs/experiments.md#o1).

[O] Sec. 3, Fig. 2: for a fixed batch of z, M_z "quickly becomes poorly conditioned
everywhere", "with the log-condition-number ranging from around 12 to around 20".
The range is the spread over z in Fig. 2, so the check reads the per-z values after
the initial rise: per unregularized run, the 10th and 90th percentiles of ln
cond(M_z) of every probe z over the probes of the second half of the run, pooled
(late_range); over runs, the mean of each, with its Student t interval, against
[12, 20]. The mean over z (late_log_cond) is shown beside it.
"""

import math

import numpy as np

from tf_gancond import stats
from tf_gancond.report import plots
from tf_gancond.report import records
from tf_gancond.report import shared
from tf_gancond.report.checks import base

RANGE = (12.0, 20.0)  # "from around 12 to around 20".
PERCENTILES = (10, 90)  # The spread over z without its few extreme z.


def late_log_cond(run):
  """O1's "after the initial rise": the mean of the probes' mean log-cond over the
  second half of the run (probe step >= last step / 2); inf or nan if any of them
  is; None without such probes."""
  late = [records.as_float(p.get('mean_log_cond')) for p in run.probes
          if p.get('step', 0) >= run.step / 2]
  late = [v for v in late if v is not None]
  return float(np.mean(late)) if late else None


def late_range(run):
  """(p10, p90) over z and probes of the run's per-z ln cond(M_z) from the probes of
  its second half, pooled (PERCENTILES); inf or nan where a value is; None without
  per-z values there."""
  late = [records.as_float(v) for p in run.probes
          if p.get('step', 0) >= run.step / 2 and isinstance(p.get('log_cond'), list)
          for v in p['log_cond']]
  late = np.asarray([v for v in late if v is not None], np.float64)
  if not late.size:
    return None
  if not np.all(np.isfinite(late)):
    return (math.nan, math.nan)
  return tuple(float(v) for v in np.percentile(late, PERCENTILES))


def _late_percentile(i):
  """run -> late_range(run)[i], None without per-z values."""
  def value_of(run):
    spread = late_range(run)
    return None if spread is None else spread[i]
  return value_of


def rows(ctx):
  check, target = 'O1 MNIST ln cond(M_z) after the initial rise', '~12–20'
  rule = (f'PASS: the 95% CIs of the mean over runs of the p{PERCENTILES[0]} and of '
          f'the p{PERCENTILES[1]} of per-z ln cond(M_z) (each run\'s probes of its '
          f'second half, pooled) lie inside [{RANGE[0]:g}, {RANGE[1]:g}]; FAIL: '
          f'the p{PERCENTILES[1]} CI lies below {RANGE[0]:g} or the '
          f'p{PERCENTILES[0]} CI above {RANGE[1]:g}; INCONCLUSIVE: otherwise, or '
          f'n < {base.MIN_RUNS}.')
  unregularized = ctx.unregularized
  if not any(r.probes for r in unregularized):
    return [base.row('o1', check, target, rule,
                     note='no probes of unregularized runs')]
  columns = ((_late_percentile(0), True), (_late_percentile(1), True))
  values, excluded = shared.finite_rows(unregularized, *columns)
  means, _ = shared.finite_rows(unregularized, (late_log_cond, True))
  low, high = (np.array(values).T if values else ([], []))
  ci_low, ci_high = stats.mean_interval(low), stats.mean_interval(high)
  ci = (ci_low['low'], ci_high['high']) if ci_low else None
  measured = (f'{np.mean(low):.2f}–{np.mean(high):.2f}' if values else None)
  notes = []
  lengths = sorted({r.step for r in unregularized
                    if shared.finite_rows([r], *columns)[0]})
  if lengths:
    notes.append(f'runs of {", ".join(map(str, lengths))} steps')
  if means:
    notes.append(f'mean over z and runs {np.mean(means):.2f}')
  if ci_low:
    notes.append(f'p{PERCENTILES[0]} CI [{ci_low["low"]:.2f}, {ci_low["high"]:.2f}], '
                 f'p{PERCENTILES[1]} CI [{ci_high["low"]:.2f}, {ci_high["high"]:.2f}]')
  notes += [base.excluded_note(excluded)] if excluded else []
  return [base.row('o1', check, target, rule, measured, ci, len(values),
                   stats.verdict(*(ci or (None, None)), *RANGE, len(values)),
                   '; '.join(notes), ci_method='Student t of the mean p10 and p90')]


def fig2_run(runs):
  """The run shown in Fig. 2: the first baseline (or first) run with 2+ probes."""
  candidates = [r for r in runs if len(r.probes) >= 2 and
                isinstance(r.probes[-1].get('log_cond'), list)]
  candidates.sort(key=lambda r: (r.setting not in records.UNREGULARIZED, r.setting,
                                 r.seed if r.seed is not None else 0, r.name))
  return candidates[0] if candidates else None


def fig_per_z(ctx, output):
  """Fig. 2: ln cond(M_z) for each probe z against step, for one run."""
  run = fig2_run(ctx.runs)
  if run is None:
    return None, {}
  probes = [p for p in run.probes if isinstance(p.get('log_cond'), list)]
  steps = [p['step'] for p in probes]
  width = min(len(p['log_cond']) for p in probes)
  values = np.array([p['log_cond'][:width] for p in probes], np.float64)
  plt = plots.pyplot()
  fig, ax = plt.subplots(figsize=(6, 3.6))
  ax.plot(steps, values, color='tab:purple', lw=0.6, alpha=0.35)
  ax.plot(steps, values.mean(axis=1), color='black', lw=2, label='mean over z')
  ax.set_xlabel('generator step')
  ax.set_ylabel('ln cond(M_z)')
  ax.set_title(f'{run.name}: {width} probe z')
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  return plots.save(fig, output, 'fig2_per_z_log_cond.png'), {'run': run.name}


CHECK = base.Check(
    id='o1', anchor='o1', source='[O] Sec. 3, Fig. 2', dataset='mnist',
    quote='with the log-condition-number ranging from around 12 to around 20',
    statistic='per unregularized run, the 10th and 90th percentiles of per-z ln '
              'cond(M_z) over the probes of its second half; the mean of each over '
              'runs',
    plain={'o1': 'G\'s Jacobian becomes ill-conditioned at every z: the spread of '
                 'ln cond(M_z) over z after the initial rise'},
    rows=rows, paper_steps={'mnist': base.MNIST_STEPS},
    figures=(base.Figure(
        'per_z', 'Fig. 2', 'per-z ln cond(M_z) of one run',
        'Fig. 2 shape: ln cond(M_z) of each probe z for one run ({run}); black: '
        'the mean over z.',
        'no run with two or more probes recorded', fig_per_z),))
