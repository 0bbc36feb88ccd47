"""S0-S5: the Inception Scores of Sargent's thesis, setting by setting
(docs/experiments.md#s0 to #s5).

[S] Ch. 5 trains the SN-GAN ResNet of Miyato et al. on CIFAR-10 (S0, IS 7.97) and
variants of it, one run each: a Toeplitz-normalized D with gain k (S1, Fig. 5.5), the
r(W) penalty in G (S2, Fig. 5.6), spectral gradient clamping in G or D (S3, Figs
5.7/5.8), other losses and sizes (S4, Fig. 5.9). S5's runs are settings of these.

A run's setting is read from its config (thesis_setting), not from its sweep, so
the runs of every S sweep, of S5's, and single runs are judged alike. One row per
setting with a number in the thesis: the final IS (50k samples) against the thesis'
value ± TOLERANCE, or, for the values below 1.5 that the thesis reports for
collapsed models (1.18, and 0.99, which no exact IS can be), against collapse. The
thesis' Inception implementation is not stated; the package's is TF-GAN's, so
values are judged within the tolerance, not to the digit. A further row: the
standard loss below the hinge baseline ("hinge beat" it; no number), and the D
gradient's sigma0 / sigma1 of S3, "on the order of 30" early and "around 3" later.
"""

import math

import numpy as np

from tf_gancond import stats
from tf_gancond.report import fmt
from tf_gancond.report import records
from tf_gancond.report.checks import base

ARCHITECTURE = 'resnet_sngan'  # The S0 model every S run derives from.
THESIS_STEPS = 50000  # "50,000 total generator updates".
IS_KEY = records.INCEPTION_SCORE
# The thesis' one run per setting has about +-0.1-0.3 IS of seed noise
# (docs/experiments.md#s5, "one run per setting"); 0.5 also admits a
# different Inception implementation's offset.
TOLERANCE = 0.5
COLLAPSE_IS = 1.5  # Thesis values below this are collapsed models (IS 1.18, 0.99).
S1_K = {1.0: 2.62, 2.0: 7.34, 4.0: 5.77, 8.0: 3.05}
S2_LAMBDA = {0.1: 7.95, 1.0: 1.18, 10.0: 0.99}
S3_G_RATIO = {1.05: 3.782, 1.5: 7.82, 2.0: 7.94}
S3_D_RATIO = {4.0: 3.84, 15.0: 7.92, 30.0: 7.95}
S0_IS = 7.97
S4_IS = {'wgan_gp_sn': 7.08, 'sn_4x': 7.56, 'no_sn': 3.28}
# S3: the D gradient's sigma0 / sigma1 ("on the order of 30" early, "around 3"
# later): the median of the first and of the last tenth of the train records,
# within these regions (a factor ~3 either way of the thesis' words).
SIGMA_RATIO_KEY = 'd_grad_sigma_ratio'
SIGMA_EARLY, SIGMA_LATE = (10.0, 100.0), (1.0, 10.0)
TENTH = 0.1


def _number(config, key, default=0.0):
  value = records.as_float(config.get(key))
  return default if value is None else value


def thesis_setting(config):
  """(row id, words, thesis IS or None) of an S run's config; None for a config that
  is not the S0 model or a variant the thesis reports."""
  if config.get('architecture') != ARCHITECTURE:
    return None
  norm, loss = config.get('d_normalization'), config.get('loss')
  gp, batch = _number(config, 'gradient_penalty'), _number(config, 'batch_size', 64)
  k, rw = _number(config, 'toeplitz_k', 1.0), _number(config, 'rw_lambda')
  g_ratio, d_ratio = (_number(config, 'grad_clamp_g_ratio'),
                      _number(config, 'grad_clamp_d_ratio'))
  if norm == 'toeplitz':
    return f's1:k={k:g}', f'S1 Toeplitz D, k = {k:g}', S1_K.get(k)
  if rw > 0:
    return f's2:lambda={rw:g}', f'S2 r(W) penalty, λ = {rw:g}', S2_LAMBDA.get(rw)
  if g_ratio > 0:
    return (f's3_g:r={g_ratio:g}', f'S3 gradient clamp in G, r = {g_ratio:g}',
            S3_G_RATIO.get(g_ratio))
  if d_ratio > 0:
    return (f's3_d:r={d_ratio:g}', f'S3 gradient clamp in D, r = {d_ratio:g}',
            S3_D_RATIO.get(d_ratio))
  if loss == 'wasserstein' and gp > 0 and norm == 'spectral':
    return 's4:wgan_gp_sn', 'S4 WGAN loss + GP + SN', S4_IS['wgan_gp_sn']
  if batch > 64:
    return 's4:sn_4x', f'S4 SN-GAN, D batch {batch:g}', S4_IS['sn_4x']
  if norm == 'none' and loss == 'hinge':
    return 's4:no_sn', 'S4 no SN ("RESNET")', S4_IS['no_sn']
  if loss == 'non_saturating' and norm == 'spectral':
    return 's4:standard_loss', 'S4 standard loss', None
  if loss == 'hinge' and norm == 'spectral' and gp == 0:
    return 's0', 'S0 SN-GAN baseline', S0_IS
  return None


# A run that diverged or ended non-finite counts as this IS: a generator of one
# class, the least an IS can be; so it fails a setting the thesis reports as good
# and meets one it reports as collapsed.
FAILED_RUN_IS = 1.0


def final_is(run):
  """The run's final IS; FAILED_RUN_IS for a diverged or non-finite end; None
  without an end point."""
  if run.outcome in ('diverged', 'non-finite'):
    return FAILED_RUN_IS
  return run.final_value(IS_KEY)


def s_runs(ctx):
  return [r for r in ctx.runs if thesis_setting(r.config)]


def analyse(ctx):
  """{'s0_s5': {row id: {'words', 'thesis', 'final_is' ({run: IS or None})}}}."""
  out = {}
  for run in s_runs(ctx):
    id_, words, thesis = thesis_setting(run.config)
    entry = out.setdefault(id_, {'words': words, 'thesis': thesis, 'final_is': {}})
    entry['final_is'][run.name] = final_is(run)
  return {'s0_s5': out}


def region(thesis):
  return (0.0, COLLAPSE_IS) if thesis < COLLAPSE_IS else (thesis - TOLERANCE,
                                                           thesis + TOLERANCE)


def is_rule(thesis):
  """The rule of an IS row, in words."""
  where = (f'below {COLLAPSE_IS:g} (collapsed)' if thesis < COLLAPSE_IS else
           f'within ± {TOLERANCE:g} of {thesis:g}')
  return (f'PASS: the final IS (the mean of the runs; from {stats.MIN_BOOTSTRAP_N} '
          f'runs on, its Student t 95% CI) lies {where}; FAIL: it lies outside; '
          'INCONCLUSIVE: a CI straddles an edge. A run that diverged or ended '
          f'non-finite counts as IS {FAILED_RUN_IS:g}.')


def is_row(id_, entry):
  thesis, values = entry['thesis'], [v for v in entry['final_is'].values()
                                     if v is not None]
  low, high = region(thesis)
  target = f'{thesis:g}' + (' (collapsed)' if thesis < COLLAPSE_IS else '')
  rule = is_rule(thesis)
  family = id_.partition(':')[0]
  check = entry['words'] + ': final IS'
  missing = len(entry['final_is']) - len(values)
  note = f'{missing} run(s) without an end point' if missing else ''
  if not values:
    return base.row(id_, check, target, rule, note=note or 'no finished run',
                    family=family)
  interval = stats.mean_interval(values)  # None below 4 runs: the mean is judged.
  ci = (interval['low'], interval['high']) if interval else None
  measured = float(np.mean(values))
  verdict = stats.verdict(*(ci or (measured, measured)), low, high, len(values),
                          min_n=1)
  return base.row(id_, check, target, rule, measured, ci, len(values), verdict, note,
                  family=family, ci_method='Student t')


def standard_loss_row(analysis):
  check = 'S4 standard loss below the hinge baseline: final IS'
  target = 'hinge beat it (no number)'
  rule = ('PASS: the standard loss\'s mean final IS is below the S0 baseline\'s of the '
          'same report; FAIL: it is not.')
  standard, hinge = (
      [v for v in analysis.get(key, {}).get('final_is', {}).values() if v is not None]
      for key in ('s4:standard_loss', 's0'))
  if not standard or not hinge:
    return base.row('s4:standard_loss', check, target, rule, family='s4',
                    note='needs finished standard-loss and S0 baseline runs')
  difference = float(np.mean(standard) - np.mean(hinge))
  return base.row('s4:standard_loss', check, target, rule, difference, None,
                  min(len(standard), len(hinge)),
                  stats.PASS if difference < 0 else stats.FAIL,
                  f'standard minus hinge; hinge mean {np.mean(hinge):.3g}',
                  family='s4')


def sigma_ratio(run):
  """(early, late) medians of the run's D-gradient sigma0 / sigma1 over the first
  and the last tenth of its train records; None without 10 records."""
  values = [records.as_float(r.get(SIGMA_RATIO_KEY)) for r in run.train]
  values = [v for v in values if v is not None and math.isfinite(v)]
  if len(values) < 10:
    return None
  tenth = max(1, int(len(values) * TENTH))
  return float(np.median(values[:tenth])), float(np.median(values[-tenth:]))


def sigma_ratio_row(ctx):
  check = 'S3 D-gradient σ0/σ1, early then late'
  target = '"on the order of 30", then "around 3"'
  rule = (f'PASS: in every finished D-clamp run the median of the first tenth of its '
          f'records lies in [{SIGMA_EARLY[0]:g}, {SIGMA_EARLY[1]:g}] and of the last '
          f'tenth in [{SIGMA_LATE[0]:g}, {SIGMA_LATE[1]:g}]; FAIL: in some run it lies '
          'outside; INCONCLUSIVE: a run has fewer than 10 records of it.')
  clamped = [r for r in s_runs(ctx) if r.state == 'finished' and
             _number(r.config, 'grad_clamp_d_ratio') > 0]
  if not clamped:
    return base.row('s3_sigma', check, target, rule, note='no finished D-clamp run')
  found = {r.name: sigma_ratio(r) for r in clamped}
  short = [name for name, v in found.items() if v is None]
  found = {name: v for name, v in found.items() if v}
  if not found:
    return base.row('s3_sigma', check, target, rule, n=0, verdict=stats.INCONCLUSIVE,
                    note=f'no run has 10 records of {SIGMA_RATIO_KEY}')
  inside = all(SIGMA_EARLY[0] <= early <= SIGMA_EARLY[1] and
               SIGMA_LATE[0] <= late <= SIGMA_LATE[1] for early, late in found.values())
  early = float(np.median([e for e, _ in found.values()]))
  late = float(np.median([lt for _, lt in found.values()]))
  verdict = (stats.FAIL if not inside else
             stats.INCONCLUSIVE if short else stats.PASS)
  note = f'median over runs: early {fmt.num(early)}, late {fmt.num(late)}'
  if short:
    note += f'; {len(short)} run(s) with fewer than 10 records'
  return base.row('s3_sigma', check, target, rule, late, None, len(found), verdict,
                  note)


def rows(ctx):
  analysis = ctx.analysis['s0_s5']
  judged = [is_row(id_, entry) for id_, entry in sorted(analysis.items())
            if entry['thesis'] is not None]
  if not analysis:
    judged = [base.row('s0', 'S0 SN-GAN baseline: final IS', f'{S0_IS:g}',
                       is_rule(S0_IS),
                       note='no S runs (the SN-GAN ResNet on CIFAR-10)')]
  return judged + [standard_loss_row(analysis), sigma_ratio_row(ctx)]


def section(ctx):
  analysis = ctx.analysis['s0_s5']
  if not analysis:
    return []
  lines = ['### S0-S5: final IS by setting', '',
           '| setting | thesis | runs | final IS |', '|---|---|---|---|']
  for id_, entry in sorted(analysis.items()):
    values = [fmt.num(v) for v in entry['final_is'].values()]
    thesis = '-' if entry['thesis'] is None else f'{entry["thesis"]:g}'
    lines.append(f'| {entry["words"]} | {thesis} | {len(values)} | '
                 f'{", ".join(values)} |')
  return lines + ['']


CHECK = base.Check(
    id='s0_s5', anchor='s0', source='[S] Ch. 5, Figs 5.5-5.9', dataset='cifar10',
    quote='SN-GAN (baseline) 7.97',
    statistic='per S setting (read from each run\'s config), the final IS on 50k '
              'samples; for D clamping, the D gradient\'s σ0/σ1 early and late',
    plain={'s0': 'The SN-GAN baseline\'s IS (the S1-S4 settings\' in rows of their '
                 'own)', 's1': 'Toeplitz-normalized D: IS by k',
           's2': 'r(W) penalty in G: IS by λ', 's3_g': 'Gradient clamping in G: IS by r',
           's3_d': 'Gradient clamping in D: IS by r',
           's4': 'Other models against the SN-GAN baseline: IS',
           's3_sigma': 'The D gradient\'s σ0/σ1 falls from ~30 to ~3'},
    rows=rows, analyse=analyse, section=section, min_runs=1,
    paper_steps={'cifar10': THESIS_STEPS}, judged_runs=s_runs)
