"""O5: Jacobian Clamping (docs/experiments.md#o5).

[O] Sec. 4, Algorithm 1, with λ_max = 20, λ_min = 1, ε = 1: "For CIFAR-10, 9 out of
10 runs using Jacobian Clamping fell into the 'good cluster'", on MNIST and STL-10
all did. Rows: the JC runs' settings, and the JC runs placed good by the threshold
of the unregularized runs' cluster split (shared.cluster_split); beside them, the
share of each run's logged intervals whose median Q lies in [λ_min, λ_max].
"""

import numpy as np

from tf_gancond import stats
from tf_gancond.report import fmt
from tf_gancond.report import plots
from tf_gancond.report import records
from tf_gancond.report import shared
from tf_gancond.report.checks import base

SETTINGS = {'jc_lambda_max': 20.0, 'jc_lambda_min': 1.0, 'jc_epsilon': 1.0}
GOOD = {'mnist': (10, 10), 'cifar10': (9, 10), 'stl10': (10, 10)}  # Good of runs.


def analyse(ctx):
  """{'q': {setting: {cluster or 'unclustered': {'runs', 'mean_share_in_range',
  'excluded'}}}}: per run with an end point, the share of logged intervals whose
  median Q lies in [lambda_min, lambda_max]; the mean over the runs of a group."""
  out = {}
  for s in ctx.settings:
    for cluster in ('good', 'bad', None):
      shares = []
      for r in ctx.group(s):
        if r.cluster != cluster or not r.counted:
          continue
        q = [t['q_p50'] for t in r.train if records.is_number(t.get('q_p50'))]
        if q:
          lo, hi = r.jc_lambdas
          shares.append(float(np.mean([lo <= v <= hi for v in q])))
      if shares:
        out.setdefault(s, {})[cluster or 'unclustered'] = {
            'runs': len(shares), 'mean_share_in_range': float(np.mean(shares)),
            'excluded': shared.count([r.outcome for r in ctx.group(s)
                                      if not r.counted])}
  return {'q': out}


def settings_row(ctx):
  """A property of the JC arm, not a verdict: how many JC runs have the paper's
  λ_max, λ_min and ε, and the other settings with their runs (λ from Q, the
  paper's own procedure for a new dataset, differs by design)."""
  check = 'O5 JC settings (lambda_max, lambda_min, epsilon)'
  target = ' / '.join(f'{v:g}' for v in SETTINGS.values())
  rule = (f'{base.SETTING}, not judged: the number of JC runs with these settings; '
          'the note names the others.')
  jc = [r for r in ctx.group(records.JACOBIAN_CLAMPING) if r.config]
  if not jc:
    return base.row('o5_settings', check, target, rule, note='no JC runs')
  wrong = {}  # {other settings: names of their runs}, in the order of the runs.
  for r in jc:
    if any(r.config.get(k) != v for k, v in SETTINGS.items()):
      settings = ', '.join(f'{k}={r.config.get(k)}' for k in SETTINGS)
      wrong.setdefault(settings, []).append(r.name)
  good = len(jc) - sum(map(len, wrong.values()))
  return base.row('o5_settings', check, target, rule, good, None, len(jc),
                  base.SETTING, '; '.join(f'{settings}: ' + (
                      ', '.join(names) if len(names) <= 3 else
                      f'{len(names)} runs ({names[0]} to {names[-1]})')
                            for settings, names in wrong.items()))


def good_row(ctx):
  clusters, dataset = ctx.clusters, ctx.dataset
  check = 'O5 JC runs in the good cluster'
  target_dataset = base.STAND_INS.get(dataset, dataset)
  a, b = GOOD.get(target_dataset, (10, 10))
  rule = (f'PASS: at least ceil({a}/{b} n) of the n JC runs placed are good (the '
          f'paper: {", ".join(f"{d} {x} of {y}" for d, (x, y) in GOOD.items())}); '
          f'FAIL: fewer; INCONCLUSIVE: the unregularized runs are not two clusters '
          f'(O2\'s test), or n < {base.MIN_RUNS}.')
  target = f'{a} of {b}'
  if not ctx.group(records.JACOBIAN_CLAMPING):
    return base.row('o5_good', check, target, rule, note='no JC runs')
  if target_dataset not in GOOD:
    return base.row('o5_good', check, target, rule, note=f'the targets are for '
                    f'{", ".join(GOOD)}; this sweep is {dataset}')
  stand_in = dataset if target_dataset != dataset else None
  if not clusters.get('separated'):
    return dict(base.row('o5_good', check, target, rule, verdict=stats.INCONCLUSIVE,
                         note=base.no_clusters_note(clusters, 'no good cluster')),
                stand_in=stand_in)
  v = clusters['placed'][records.JACOBIAN_CLAMPING]
  n, need = v['runs'], -(-a * v['runs'] // b)
  return dict(base.row('o5_good', check, target, rule, v['good'], None, n,
                       stats.verdict(v['good'], v['good'], need, n, n),
                       f'bad {v["bad"]}' + (
                           f'; excluded: {fmt.counts(v["excluded"])}'
                           if v['excluded'] else '')), stand_in=stand_in)


def rows(ctx):
  return [settings_row(ctx), good_row(ctx)]


def drawn_lambdas(lambda_min, lambda_max, highest_q):
  """The clamp bounds that fig_q draws on its log axis: lambda_min only if > 0 (0
  clamps nothing and has no log), lambda_max only within 10x of the highest Q p95
  plotted (a bound set far away to switch the clamp off would squash the Q lines)."""
  drawn = [lambda_min] if lambda_min > 0 else []
  if highest_q is None or lambda_max <= 10 * highest_q:
    drawn.append(lambda_max)
  return drawn


def fig_q(ctx, output):
  """Q of Algorithm 1 against step: median per run with its 5-95 percentile band."""
  with_q = [s for s in ctx.settings if any(
      records.is_number(t.get('q_p50')) for r in ctx.group(s) for t in r.train)]
  if not with_q:
    return None, {}
  plt = plots.pyplot()
  fig, axes = plt.subplots(1, len(with_q), squeeze=False, sharey=True,
                           figsize=(4.2 * len(with_q), 3.2))
  for j, s in enumerate(with_q):
    ax = axes[0][j]
    group = ctx.group(s)
    for r in group:
      logged = [t for t in r.train if records.is_number(t.get('q_p50'))]
      if not logged:
        continue
      x = [t['step'] for t in logged]
      ax.plot(x, [t['q_p50'] for t in logged], color=plots.color(r), lw=1)
      if all(records.is_number(t.get('q_p5')) and records.is_number(t.get('q_p95'))
             for t in logged):
        ax.fill_between(x, [t['q_p5'] for t in logged], [t['q_p95'] for t in logged],
                        color=plots.color(r), alpha=0.08, lw=0)
    highest_q = max((t['q_p95'] for r in group for t in r.train
                     if records.is_number(t.get('q_p95'))), default=None)
    drawn = drawn_lambdas(*group[0].jc_lambdas, highest_q)
    for v in drawn:
      ax.axhline(v, color='black', ls='--', lw=0.8)
    ax.set_yscale('log')
    ax.set_title(f'{s} (dashed: lambda_min, lambda_max)' if drawn else s, fontsize=9)
    ax.set_xlabel('generator step')
    ax.grid(alpha=0.3, which='both')
  axes[0][0].set_ylabel('Q (median, 5-95% band)')
  plots.cluster_legend(axes[0][0], ctx.runs)
  fig.tight_layout()
  return plots.save(fig, output, 'fig_q_over_time.png'), {}


def section(ctx):
  q = ctx.analysis['q']
  if not q:
    return []
  lines = ['### Q inside [λmin, λmax]', '',
           'Mean over runs of the share of logged intervals whose median Q lies in '
           '[λmin, λmax] (the paper chose λ so that good unregularized runs have Q '
           '"mostly lying between those two values").', '',
           '| setting | cluster | runs | share in range | excluded |',
           '|---|---|---|---|---|']
  for s, per in q.items():
    for cluster, v in per.items():
      lines.append(f'| {s} | {cluster} | {v["runs"]} | '
                   f'{fmt.num(v["mean_share_in_range"], 2)} | '
                   f'{fmt.counts(v["excluded"])} |')
  return lines + ['']


CHECK = base.Check(
    id='o5', anchor='o5', source='[O] Sec. 4, Algorithm 1, Figs 1/5/6 right',
    dataset=None,
    quote='For CIFAR-10, 9 out of 10 runs using Jacobian Clamping fell into the '
          '\'good cluster\'',
    statistic='the JC runs\' λ_max, λ_min, ε; the JC runs placed good by the '
              'unregularized runs\' cluster threshold',
    plain={'o5_settings': 'Jacobian Clamping\'s λ_max, λ_min, ε',
           'o5_good': 'Jacobian Clamping puts runs in the good cluster'},
    rows=rows, analyse=analyse, section=section,
    paper_steps={'mnist': base.MNIST_STEPS}, min_runs=base.ODENA_RUNS,
    judged_runs=lambda ctx: ctx.unregularized + ctx.group(records.JACOBIAN_CLAMPING),
    figures=(base.Figure(
        'q', 'Q over time', 'Q (Algorithm 1) over training',
        'Q of Algorithm 1 (||G(z)-G(z\')|| / ||z-z\'||) per logged interval: median '
        'line and 5-95 percentile band per run; dashed: λmin and λmax (not drawn: a '
        'λmin of 0, or a λmax over 10x every Q, which switch the clamp off). Records '
        'with q_num_samples measure every setting alike; in older records a '
        'baseline\'s percentiles come from one batch and a JC run\'s from every '
        'batch of its interval, so the baseline\'s scatter far more.',
        'no Q statistics recorded', fig_q),))
