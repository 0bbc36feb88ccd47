"""The largest singular value of E_z[J_z], good cluster against bad
(docs/experiments.md#o5).

[O-A] Sec. A, on the MNIST runs of [O] Fig. 1: "the largest singular values for the
'well behaved' runs are distinctly lower than those for the 'poorly behaved' ones".
Per unregularized run placed in a cluster (shared.cluster_split), ln sigma_max of
the average Jacobian E_z[J_z] at the end (RunData.spectrum: the final record's, else
the last probe's); the good runs against the bad by a one-sided exact Mann-Whitney
test. Where the unregularized runs are not two clusters (O2's calibrated test),
there are no 'well behaved' runs to compare, and the verdict is INCONCLUSIVE.
"""

import math

import numpy as np

from tf_gancond import stats
from tf_gancond.report import fmt
from tf_gancond.report import shared
from tf_gancond.report.checks import base

ALPHA = 0.05  # One-sided level; 4 + 4 runs reach it with one pair out of order.


def log_largest(run):
  """ln sigma_max of the run's E_z[J_z] at the end; None without a finite one."""
  sv = run.spectrum
  if sv is None or not np.all(np.isfinite(sv)) or np.max(sv) <= 0:
    return None
  return float(np.log(np.max(sv)))


def analyse(ctx):
  """{'largest_sv': {'good', 'bad' ({run: ln sigma_max}), 'excluded'}} over the
  unregularized runs placed in a cluster; {} when they are not clustered."""
  if not ctx.clusters.get('separated'):
    return {'largest_sv': {}}
  out = {'good': {}, 'bad': {}}
  left_out = []
  for r in ctx.unregularized:
    if r.cluster is None:
      continue
    v = log_largest(r)
    if v is None:
      left_out.append(shared.missing(r) if r.state != 'finished' else
                      'no finite spectrum')
    else:
      out[r.cluster][r.name] = v
  out['excluded'] = shared.count(left_out)
  return {'largest_sv': out}


def rows(ctx):
  check = 'O5 largest singular value of E_z[J_z], good cluster below bad'
  target = 'distinctly lower'
  rule = (f'PASS: a one-sided exact Mann-Whitney test puts the good runs\' ln σ_max '
          f'below the bad runs\' at p ≤ {ALPHA:g} (with 4 + 4 runs: at most one pair '
          'out of order); FAIL: the good mean is at or above the bad mean; '
          'INCONCLUSIVE: otherwise, the runs are not two clusters, or fewer than '
          f'{base.MIN_RUNS} runs in either cluster.')
  if not ctx.unregularized:
    return [base.row('largest_sv', check, target, rule, note='no unregularized runs')]
  v = ctx.analysis['largest_sv']
  if not v:
    return [base.row('largest_sv', check, target, rule, verdict=stats.INCONCLUSIVE,
                     note=base.no_clusters_note(
                         ctx.clusters, 'no well and poorly behaved runs to compare'))]
  good, bad = list(v['good'].values()), list(v['bad'].values())
  n = len(good) + len(bad)
  excluded = base.excluded_note(v['excluded'])
  if min(len(good), len(bad)) < base.MIN_RUNS:
    return [base.with_note(base.row(
        'largest_sv', check, target, rule, n=n, verdict=stats.INCONCLUSIVE,
        note=f'{len(good)} good and {len(bad)} bad runs'), [excluded] if excluded
        else [])]
  p = stats.rank_test_less(good, bad)
  difference = float(np.mean(good) - np.mean(bad))
  verdict = (stats.FAIL if difference >= 0 else
             stats.PASS if p <= ALPHA else stats.INCONCLUSIVE)
  note = (f'mean ln σ_max: good {fmt.num(np.mean(good))}, bad {fmt.num(np.mean(bad))} '
          f'(σ_max ratio {math.exp(difference):.3g}); p = {p:.3g}')
  return [base.with_note(base.row('largest_sv', check, target, rule, difference,
                                  None, n, verdict, note),
                         [excluded] if excluded else [])]


CHECK = base.Check(
    id='largest_sv', anchor='o5', source='[O-A] Sec. A', dataset='mnist',
    quote='the largest singular values for the \'well behaved\' runs are distinctly '
          'lower than those for the \'poorly behaved\' ones',
    statistic='per unregularized run placed in a cluster, ln σ_max of E_z[J_z] at '
              'the end; the good runs\' mean minus the bad runs\'',
    plain={'largest_sv': 'Well-behaved runs have a lower largest singular '
                         'value of E_z[J_z]'},
    rows=rows, analyse=analyse, paper_steps={'mnist': base.MNIST_STEPS},
    min_runs=base.ODENA_RUNS)
