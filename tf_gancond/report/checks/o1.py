"""O1: per-z conditioning during MNIST training (docs/experiments.md#o1).

[O] Sec. 3, Fig. 2: for a fixed batch of z, M_z "quickly becomes poorly conditioned
everywhere", "with the log-condition-number ranging from around 12 to around 20".
Per unregularized run, the mean over the probes of its second half of the probe
batch's mean ln cond (late_log_cond); the mean over runs, with its Student t
interval, against [12, 20].
"""

import numpy as np

from tf_gancond.report import plots
from tf_gancond.report import records
from tf_gancond.report import shared
from tf_gancond.report.checks import base

RANGE = (12.0, 20.0)  # "from around 12 to around 20".


def late_log_cond(run):
  """O1's "after the initial rise": the mean of the probes' mean log-cond over the
  second half of the run (probe step >= last step / 2); inf or nan if any of them
  is; None without such probes."""
  late = [records.as_float(p.get('mean_log_cond')) for p in run.probes
          if p.get('step', 0) >= run.step / 2]
  late = [v for v in late if v is not None]
  return float(np.mean(late)) if late else None


def rows(ctx):
  check, target = 'O1 MNIST ln cond(M_z) after the initial rise', '~12–20'
  unregularized = ctx.unregularized
  if not any(r.probes for r in unregularized):
    return [base.row('o1', check, target, base.interval_rule(*RANGE),
                     note='no probes of unregularized runs')]
  values, excluded = shared.finite_rows(unregularized, (late_log_cond, True))
  row = base.mean_check('o1', check, target, RANGE, [v for v, in values], excluded,
                        ' (mean over runs of each run\'s mean log-cond over the '
                        'probes of its second half)')
  lengths = sorted({r.step for r in unregularized
                    if shared.finite_rows([r], (late_log_cond, True))[0]})
  if lengths:
    note = f'runs of {", ".join(map(str, lengths))} steps'
    row['note'] = note + (f'; {row["note"]}' if row['note'] else '')
  return [row]


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
    statistic='per unregularized run, the mean over the probes of its second half '
              'of the probe batch\'s mean ln cond(M_z); the mean over runs',
    rows=rows,
    figures=(base.Figure(
        'per_z', 'Fig. 2', 'per-z ln cond(M_z) of one run',
        'Fig. 2 shape: ln cond(M_z) of each probe z for one run ({run}); black: '
        'the mean over z.',
        'no run with two or more probes recorded', fig_per_z),))
