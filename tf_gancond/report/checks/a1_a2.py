"""A1/A2: a fresh discriminator against a frozen generator (docs/experiments.md#a1,
docs/experiments.md#a2).

[AB] Sec. 2, Figs 1-3: against a generator frozen after 1, 10 or 25 epochs, D's
error goes "quickly going to 0", its accuracy "goes to 1 in sometimes less than 50
iterations"; the original cost's generator gradient decays, "in the best case 5
orders of magnitude after 4000 discriminator iterations", and the -log D cost's
grows. The rows judge the finished runs without instance noise; A3 (instance noise,
docs/experiments.md#a3) has no target and is shown beside them.
"""

import re

from tf_gancond import stats
from tf_gancond.report import fmt
from tf_gancond.report import plots
from tf_gancond.report import records
from tf_gancond.report.checks import base

FROZEN_EXPERIMENTS = ('frozen_generator', 'frozen_g')
A1_FAST = 50             # Accuracy 1 "in sometimes less than 50 iterations".
A1_COST_NEAR_ZERO = 1e-2  # "The error goes to 0": a final running-average cost below it.
A2_BEST_DECAY = 1e-3      # The paper's best case is 1e-5; PASS within two orders of it.
PAPER_RUNS = 3            # One D per frozen G, after epochs 1, 10 and 25.
PAPER_ITERATIONS = 4000   # D iterations in Figs 1-3.


def frozen_g_runs(runs, instance_noise=False):
  """Finished A1/A2 runs, with (A3) or without instance noise; None: both."""
  return [r for r in runs if r.config.get('experiment') in FROZEN_EXPERIMENTS and
          r.state == 'finished' and r.final and (
              instance_noise is None or
              bool(r.config.get('instance_noise', 0.0)) == instance_noise)]



def generator_step(run):
  """The step of the frozen G, read from its SavedModel path (.../step_00000938)."""
  m = re.search(r'step_(\d+)/*$', run.config.get('generator_saved_model', '') or '')
  return int(m.group(1)) if m else None



def _generator_label(run):
  step = generator_step(run)
  return f'G at step {step}' if step is not None else (
      run.config.get('generator_saved_model') or 'a random G')



def rows(ctx):
  """A1/A2 rows. Each rule is over every finished run without instance noise."""
  frozen = frozen_g_runs(ctx.runs)

  def values(key):
    return [records.as_float(r.final.get(key)) for r in frozen]

  def per_g(key):
    return '; '.join(f'{_generator_label(r)}: '
                     f'{fmt.small(records.as_float(r.final.get(key)))}'
                     for r in sorted(frozen, key=lambda r: generator_step(r) or 0))
  specs = [
      ('a1_fast', 'A1 iterations to D accuracy 1', 'sometimes < 50',
       'iterations_to_accuracy_1', min, lambda v: v is not None and v < A1_FAST,
       f'PASS: the fastest run reaches a running-average D accuracy of 1 in fewer '
       f'than {A1_FAST} iterations; FAIL: no run does (a run that never does counts '
       'as never).', 'any'),
      ('a1_cost', 'A1 D cost (running average) at the end',
       '→ 0, even for the epoch-25 G', 'final_d_cost_avg', max,
       lambda v: v is not None and v < A1_COST_NEAR_ZERO,
       f'PASS: every run ends with a running-average D cost below '
       f'{A1_COST_NEAR_ZERO:g} (a choice for "goes to 0"); FAIL: a run does not.',
       'all'),
      ('a2_minimax', 'A2 original-cost gradient norm, last / first',
       '↓ up to ~10⁻⁵×', 'grad_norm_minimax_ratio', min, None,
       'PASS: every run\'s ratio (mean of the last window over the first) is below 1 '
       f'and the smallest is at most {A2_BEST_DECAY:g} (within two orders of the '
       'paper\'s best case); FAIL: otherwise.', 'decay'),
      ('a2_log_d', 'A2 -log D gradient norm, last / first', 'grows',
       'grad_norm_nonsaturating_ratio', min, lambda v: v is not None and v > 1,
       'PASS: every run\'s ratio is above 1 (the noisiness the paper also reports is '
       'not judged); FAIL: a run\'s is not.', 'all'),
  ]
  rows = []
  for id_, check, target, key, summary, ok, rule, mode in specs:
    if not frozen:
      rows.append(base.row(id_, check, target, rule,
                           note='no runs of a fresh D against a frozen G'))
      continue
    found = values(key)
    present = [v for v in found if v is not None]
    measured = summary(present) if present else None
    if key == 'iterations_to_accuracy_1' and measured is not None:
      measured = int(measured)  # A count of iterations.
    if mode == 'any':
      passed = any(ok(v) for v in found)
    elif mode == 'all':
      passed = all(ok(v) for v in found)
    else:
      passed = all(v is not None and v < 1 for v in found) and (
          measured is not None and measured <= A2_BEST_DECAY)
    rows.append(base.row(id_, check, target, rule, measured, None, len(frozen),
                         stats.PASS if passed else stats.FAIL, per_g(key)))
  return rows


def fig_a1_a2(ctx, output):
  """Figs 1-3 of Arjovsky & Bottou: D's running-average cost and accuracy and both
  generator gradient norms against D iteration, one line per run (dashed: A3)."""
  frozen = frozen_g_runs(ctx.runs, instance_noise=None)
  if not frozen:
    return None, {}
  plt = plots.pyplot()
  panels = (('d_cost_avg', 'D cost (running average)', True),
            ('d_accuracy_avg', 'D accuracy (running average)', False),
            ('grad_norm_minimax', '||grad E log(1 - D(G(z)))||', True),
            ('grad_norm_nonsaturating', '||grad E -log D(G(z))||', True))
  fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
  colors = {}
  for r in sorted(frozen, key=lambda r: generator_step(r) or 0):
    g = generator_step(r)
    color = colors.setdefault(g, f'C{len(colors)}')
    noise = r.config.get('instance_noise', 0.0)
    for ax, (key, title, log) in zip(axes, panels):
      points = [(t['step'], t[key]) for t in r.train
                if records.is_number(t.get(key))]
      if points:
        ax.plot(*zip(*points), color=color, linestyle='--' if noise else '-',
                linewidth=1,
                label=f'G step {g}' + (f', noise {noise:g}' if noise else ''))
  for ax, (key, title, log) in zip(axes, panels):
    ax.set_title(title, fontsize=9)
    ax.set_xlabel('D iteration')
    if log:
      ax.set_yscale('log')
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  return plots.save(fig, output, 'a1_a2.png'), {}


def section(ctx):
  """The A1/A2 section: one row per finished run of a fresh D against a frozen G."""
  frozen = frozen_g_runs(ctx.runs, instance_noise=None)
  if not frozen:
    return []
  lines = ['### A1/A2: a fresh D against a frozen G', '',
           'Final values of each run (Arjovsky & Bottou 2017, Figs 1-3). Gradient '
           'ratios: mean norm over the last running-average window over the mean over '
           'the first. Runs with instance noise are A3, which has no target in the '
           'paper; the checks judge the runs without it.', '']
  header = ['run', 'G (step)', 'instance noise', 'iterations to D accuracy 1',
            'final D cost', 'original-cost gradient last / first',
            '-log D gradient last / first']
  lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in sorted(frozen, key=lambda r: (r.config.get('instance_noise', 0.0),
                                         generator_step(r) or 0, r.name)):
    f = r.final
    cells = [r.name, fmt.num(generator_step(r)),
             f'{r.config.get("instance_noise", 0.0):g}',
             fmt.small(f.get('iterations_to_accuracy_1'))] + [
                 fmt.small(records.as_float(f.get(k))) for k in (
                     'final_d_cost_avg', 'grad_norm_minimax_ratio',
                     'grad_norm_nonsaturating_ratio')]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines + ['']


CHECK = base.Check(
    id='a1_a2', anchor='a1', source='[AB] Sec. 2, Figs 1-3', dataset=None,
    quote='We see the error quickly going to 0, even with very few iterations on '
          'the discriminator',
    statistic='per run of a fresh D against a frozen G: iterations to a '
              'running-average D accuracy of 1, the final running-average D cost, '
              'and each generator gradient norm\'s last window over its first',
    plain={'a1_fast': 'A fresh D against a frozen G soon classifies every batch '
                      'right (D iterations until its accuracy is 1)',
           'a1_cost': 'That D\'s cost goes to 0',
           'a2_minimax': 'G\'s gradient of the original cost vanishes (its norm at '
                         'the end over its start)',
           'a2_log_d': 'G\'s gradient of the -log D cost grows (its norm at the end '
                       'over its start)'},
    rows=rows, section=section, min_runs=PAPER_RUNS,
    paper_steps={None: PAPER_ITERATIONS},
    judged_runs=lambda ctx: frozen_g_runs(ctx.runs),
    figures=(base.Figure(
        'a1_a2', 'A1/A2', 'D cost, accuracy and gradient norms',
        'A1/A2 (Arjovsky & Bottou Figs 1-3): a fresh D against each frozen G: '
        'running-average D cost and accuracy, and the norms of the original-cost '
        'and -log D generator gradients, against D iteration; dashed: with '
        'instance noise (A3).', 'no runs of a fresh D against a frozen G',
        fig_a1_a2, always=False),))
