"""Each check of tf_gancond/report/checks/ on synthetic runs with hand-known answers."""

import json
import os
import re

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tf_gancond import config as config_lib
from tf_gancond import report
from tf_gancond import runlog
from tf_gancond.report import checks as checks_lib

FULL = 23440  # 25 epochs of MNIST at batch 64: the length of [O]'s runs.


def _start_run(workdir, config, **fields):
  """A run folder with config.txt: `config` with `fields` and this workdir, resolved
  as the launcher writes it; returns the run's RunLog."""
  os.makedirs(workdir)
  config.update(dict(fields, workdir=str(workdir)))
  runlog.atomic_write_text(os.path.join(workdir, runlog.CONFIG_FILE),
                           config_lib.to_text(config_lib.resolve(config)))
  return runlog.RunLog(str(workdir))


def _write_run(workdir, seed, final_lc, log_sigma_max=0.0, setting='baseline',
               steps=FULL, dataset='mnist', **final):
  """A finished GAN run: probes at 0, steps / 2 and steps whose 8 per-z ln cond are
  final_lc + linspace(-1, 1, 8) after step 0 (2 at step 0), and whose E_z[J_z]
  singular values are exp(log_sigma_max - i), i < 8; `final`: more fields of the
  final record."""
  log = _start_run(workdir, config_lib.get_config(), dataset=dataset, seed=seed,
                   train_steps=steps,
                   jacobian_clamping=setting == 'jacobian_clamping')
  sv = np.exp(log_sigma_max - np.arange(8.0))
  for step in (0, steps // 2, steps):
    per_z = (2.0 if step == 0 else final_lc) + np.linspace(-1.0, 1.0, 8)
    log.append('probe', step, mean_log_cond=float(per_z.mean()), log_cond=per_z,
               avg_jacobian_singular_values=sv)
  log.append('final', steps, mean_log_cond=final_lc, **final)
  log.set_status('finished', steps)


def _checks(sweep, runs, finals=None, **kwargs):
  """{row id: row} of the report of `runs` ([(final ln cond, ln sigma_max)]) with
  `finals` ([{final record field: value}] per run)."""
  for seed, (lc, log_sigma_max) in enumerate(runs):
    _write_run(sweep / f'baseline_seed{seed}', seed, lc, log_sigma_max,
               **kwargs, **(finals[seed] if finals else {}))
  path = report.write_report(str(sweep), num_resamples=200)
  with open(os.path.join(os.path.dirname(path), report.JSON_FILE)) as f:
    return {row['id']: row for row in json.load(f)}


def _by_rule(row):
  """The row's verdict under its own rule. The one rule over every check turns a
  PASS or FAIL of fewer runs than the paper's (these tests' 5 or 8 of [O]'s 10)
  into INCONCLUSIVE and names it, which each test asserts once."""
  found = re.search(r'by the rule alone (PASS|FAIL|INCONCLUSIVE)', row['note'] or '')
  return found.group(1) if found else row['verdict']


def test_the_registry_is_the_table_of_contents():
  """Every module of checks/ is registered once; ids are unique."""
  folder = os.path.dirname(checks_lib.__file__)
  modules = {f[:-3] for f in os.listdir(folder)
             if f.endswith('.py') and f not in ('__init__.py', 'base.py')}
  assert set(checks_lib.MODULES) == modules
  assert len(checks_lib.MODULES) == len(modules)
  assert len({c.id for c in checks_lib.CHECKS}) == len(checks_lib.CHECKS)


# Good cluster: final ln cond 10-11.5, bad: 20-21.5 (4 + 4 runs, two clusters).
CLUSTERED_LC = [10.0, 10.5, 11.0, 11.5, 20.0, 20.5, 21.0, 21.5]


def test_largest_singular_value_of_good_runs_below_bad(tmp_path):
  # ln sigma_max: good 0, 0.1, 0.2, 0.3; bad 1, 1.1, 1.2, 1.3. Every good run below
  # every bad one: exact one-sided p = 1 / C(8, 4) = 1 / 70.
  log_sigma = [0.0, 0.1, 0.2, 0.3, 1.0, 1.1, 1.2, 1.3]
  row = _checks(tmp_path / 's', list(zip(CLUSTERED_LC, log_sigma)))['largest_sv']
  assert row['measured'] == pytest.approx(-1.0) and row['n'] == 8
  assert _by_rule(row) == 'PASS' and row['verdict'] == 'INCONCLUSIVE'
  assert row['note'].startswith('n = 8 < 10; by the rule alone PASS')
  assert 'p = 0.0143' in row['note'] and f'ratio {np.exp(-1.0):.3g}' in row['note']


def test_largest_singular_value_of_good_runs_above_bad_fails(tmp_path):
  log_sigma = [1.0, 1.1, 1.2, 1.3, 0.0, 0.1, 0.2, 0.3]
  row = _checks(tmp_path / 's', list(zip(CLUSTERED_LC, log_sigma)))['largest_sv']
  assert row['measured'] == pytest.approx(1.0) and _by_rule(row) == 'FAIL'


def test_largest_singular_value_without_clusters_is_inconclusive(tmp_path):
  """Evenly spread final ln cond: no good and bad runs to compare."""
  lc = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0]
  log_sigma = [0.0, 0.1, 0.2, 0.3, 1.0, 1.1, 1.2, 1.3]
  row = _checks(tmp_path / 's', list(zip(lc, log_sigma)))['largest_sv']
  assert row['verdict'] == 'INCONCLUSIVE' and row['measured'] is None
  assert row['note'].startswith('the unregularized runs are not clustered')


def test_largest_singular_value_with_overlapping_clusters_is_inconclusive(tmp_path):
  # Good below bad on average but one good run (1.05) above two bad ones (0.3,
  # 1.0): U = 2, and of the C(8, 4) = 70 orders 1 + 1 + 2 have U <= 2: p = 4 / 70.
  log_sigma = [0.0, 0.1, 0.2, 1.05, 1.1, 1.2, 0.3, 1.0]
  row = _checks(tmp_path / 's', list(zip(CLUSTERED_LC, log_sigma)))['largest_sv']
  assert row['measured'] == pytest.approx((1.35 - 3.6) / 4)
  assert row['verdict'] == 'INCONCLUSIVE' and 'p = 0.0571' in row['note']


# Per-z ln cond 9.0-9.8 + linspace(-1, 1, 8): the p90 lies far below 12.
LOW_LC = [(9.0, 0.0), (9.2, 0.0), (9.4, 0.0), (9.6, 0.0), (9.8, 0.0)]


def test_o1_fails_at_the_papers_length(tmp_path):
  # Per run, the 2 probes of the second half: 16 values, 2 copies of lc +
  # linspace(-1, 1, 8); the 90th percentile sits at position 13.5 of 15, halfway
  # between 5/7 and 1: lc + 6/7. Mean over runs 9.4 + 6/7 = 10.26 < 12.
  row = _checks(tmp_path / 's', LOW_LC)['o1']
  assert row['measured'] == f'{9.4 - 6 / 7:.2f}–{9.4 + 6 / 7:.2f}'
  assert row['ci_high'] < 12 and row['verdict'] == 'FAIL'


def test_a_check_of_shorter_runs_than_the_papers_is_inconclusive(tmp_path):
  """The same runs at 5,000 steps: O1's rule alone says FAIL, the one rule over
  every check says INCONCLUSIVE, and why."""
  row = _checks(tmp_path / 's', LOW_LC, steps=5000)['o1']
  assert row['verdict'] == 'INCONCLUSIVE'
  assert row['note'].startswith('runs at 21 % of the paper\'s length (5000 of 23440 '
                                'steps); by the rule alone FAIL; runs of 5000 steps')


def test_o4_correlation_interval_is_fisher_z(tmp_path):
  """Final ln cond 10..14 against least-sampled class counts 20, 10, 40, 30, 50: r =
  0.8 (ranks 1..5 against 2, 1, 4, 3, 5: sum of products of deviations 8, of
  squares 10); Fisher z: tanh(atanh(0.8) -+ 1.96 / sqrt(2)) = [-0.280, 0.986], above
  the paper's region [-1, -0.502]: FAIL."""
  counts = [20.0, 10.0, 40.0, 30.0, 50.0]
  rows = _checks(tmp_path / 's', [(10.0 + i, 0.0) for i in range(5)],
                 finals=[{'min_class_count': c} for c in counts])
  r = rows['o4_r']
  assert r['measured'] == pytest.approx(0.8) and r['ci_method'] == 'Fisher z'
  assert (r['ci_low'], r['ci_high']) == pytest.approx((-0.2796, 0.9862), abs=1e-4)
  assert _by_rule(r) == 'FAIL' and r['note'].startswith('n = 5 < 10')


def test_o4_correlation_of_three_runs_is_inconclusive(tmp_path):
  """r = -1 from 3 runs: no interval below 4 runs, so no verdict either way."""
  rows = _checks(tmp_path / 's', [(10.0 + i, 0.0) for i in range(3)],
                 finals=[{'min_class_count': c} for c in (30.0, 20.0, 10.0)])
  r = rows['o4_r']
  assert r['measured'] == pytest.approx(-1.0) and r['n'] == 3
  assert r['ci_low'] is None and r['ci_method'] is None
  assert r['verdict'] == 'INCONCLUSIVE'


def test_a_row_its_rule_leaves_open_still_names_what_else_it_lacks(tmp_path):
  """Three runs at 5,000 of the paper's 23,440 steps: O4's rule gives no verdict
  (no interval below 4 runs), and its caveat also names the paper's n and length,
  so a reader sees every reason the row is open; at full length and n = 10 the
  caveat is the rule's own."""
  finals = [{'min_class_count': c} for c in (30.0, 20.0, 10.0)]
  r = _checks(tmp_path / 's', [(10.0 + i, 0.0) for i in range(3)], finals=finals,
              steps=5000)['o4_r']
  assert r['verdict'] == 'INCONCLUSIVE'
  assert r['note'].startswith("n = 3 < 10; runs at 21 % of the paper's length (5000 "
                              'of 23440 steps)')
  assert 'by the rule alone' not in r['note']  # Its rule too leaves it open.
  lc = [10.0 + 0.1 * i for i in range(10)]
  r = _checks(tmp_path / 'full', [(x, 0.0) for x in lc], finals=[
      {'min_class_count': 30.0} for _ in lc])['o4_r']
  assert 'by the rule alone' not in (r['note'] or '') and 'n = 10' not in (r['note'] or '')


def _o5_sweep(sweep, baselines, jcs, steps=FULL, diverged=()):
  """Runs of [(early ln cond, final ln cond, classifier score, within-run
  amplitude)] per setting: probes at 0, a quarter (early) and the end of `steps`;
  evaluations at 0.4, 0.6, 0.8 and 1 of `steps` at the final score + amplitude x
  (1, -1, 1, -1) (about their least-squares line: residuals amplitude x (0.4, -1.2,
  1.2, -0.4), sd amplitude x sqrt(3.2 / 2) = 1.265 amplitude), and a Frechet
  distance of 30 - the
  score. The JC seeds of `diverged` diverge at the end instead."""
  for setting, runs in (('baseline', baselines), ('jacobian_clamping', jcs)):
    for seed, (early, final, cs, amplitude) in enumerate(runs):
      log = _start_run(sweep / f'{setting}_seed{seed}', config_lib.get_config(),
                       dataset='mnist', seed=seed, train_steps=steps,
                       jacobian_clamping=setting == 'jacobian_clamping')
      for step, lc in ((0, 2.0), (steps // 4, early), (steps, final)):
        log.append('probe', step, mean_log_cond=lc, log_cond=[lc] * 4)
      for i, fraction in enumerate((0.4, 0.6, 0.8, 1.0)):
        value = cs + amplitude * (-1) ** i
        log.append('eval', int(fraction * steps), classifier_score=value,
                   frechet_distance=30.0 - value)
      if setting == 'jacobian_clamping' and seed in diverged:
        log.set_status('diverged', steps, reason='non-finite g_loss')
        continue
      log.append('final', steps, mean_log_cond=final, classifier_score=cs,
                 frechet_distance=30.0 - cs)
      log.set_status('finished', steps)
  path = report.write_report(str(sweep), num_resamples=400)
  with open(os.path.join(os.path.dirname(path), report.JSON_FILE)) as f:
    return {row['id']: row for row in json.load(f)}


# Unregularized: ln cond grows 4 nats after the first quarter; CS 8.0 ... 8.8;
# within-run amplitude 0.3.
O5_BASELINES = [(10.0, 14.0, 8.0 + 0.2 * i, 0.3) for i in range(5)]
# JC: grows 0.05 ... 0.45 nats; CS 8.5, 8.6, 8.7, 8.6, 8.6; amplitude 0.05.
O5_JC = [(10.0, 10.05 + 0.1 * i, cs, 0.05) for i, cs in enumerate(
    [8.5, 8.6, 8.7, 8.6, 8.6])]


def test_o5_mnist_rows_on_runs_that_reproduce_fig_1_right(tmp_path):
  rows = _o5_sweep(tmp_path / 's', O5_BASELINES, O5_JC)
  # Growth 0.05 ... 0.45: mean 0.25, sd 0.158, t(0.975, 4) = 2.776: [0.054, 0.446],
  # below 0.5, and every run below it.
  growth = rows['o5_growth']
  assert growth['measured'] == pytest.approx(0.25) and growth['n'] == 5
  assert (growth['ci_low'], growth['ci_high']) == pytest.approx((0.0537, 0.4463),
                                                                abs=1e-4)
  assert _by_rule(growth) == 'PASS' and 'mean growth 4.000 over 5' in growth['note']
  assert growth['verdict'] == 'INCONCLUSIVE' and growth['note'].startswith('n = 5 < 10')
  # k = round(0.4 x 5) = 2 best baselines: CS 8.8 and 8.6, mean 8.7; JC mean 8.6.
  best = rows['o5_best:classifier_score']
  assert best['measured'] == pytest.approx(8.6 / 8.7) and best['n'] == 5
  assert 0.9 < best['ci_low'] <= best['measured'] <= best['ci_high'] < 1.1
  assert _by_rule(best) == 'PASS' and 'mean of the 2 best unregularized 8.700' in (
      best['note'])
  # Frechet distance 30 - CS, lower is better: the 2 best are 21.2 and 21.4 (the
  # highest CS), mean 21.3; JC mean 21.4.
  fd = rows['o5_best:frechet_distance']
  assert fd['measured'] == pytest.approx(21.4 / 21.3)
  # sd 0.0707 against 0.3162: ratio 0.2236, below sqrt(F(0.05; 4, 4)) = 0.3956.
  spread = rows['o5_spread:classifier_score']
  assert spread['measured'] == pytest.approx(np.sqrt(0.005 / 0.1))
  assert _by_rule(spread) == 'PASS' and spread['ci_method'] == 'F'
  f = scipy_stats.f
  assert (spread['ci_low'], spread['ci_high']) == pytest.approx(
      (spread['measured'] / np.sqrt(f.ppf(0.975, 4, 4)),
       spread['measured'] / np.sqrt(f.ppf(0.025, 4, 4))))
  # Within-run sd about each run's line 0.05 x 1.265 against 0.3 x 1.265 in every
  # run: each JC run below each unregularized one, p = 1 / C(10, 5).
  within = rows['o5_within:classifier_score']
  assert within['measured'] == pytest.approx(0.05 / 0.3)
  assert _by_rule(within) == 'PASS' and 'p = 0.00397' in within['note']


def test_o5_mnist_fails_where_jc_keeps_growing_and_scores_worse(tmp_path):
  # CS 4.0, 5.5, 7.0, 4.5, 6.5: mean 5.5, sd 1.275, 4.03 x the baselines' sd, above
  # sqrt(F(0.95; 4, 4)) = 2.527; within-run amplitude 0.6, twice the baselines'.
  jc = [(10.0, 13.0 + 0.1 * i, cs, 0.6) for i, cs in enumerate(
      [4.0, 5.5, 7.0, 4.5, 6.5])]
  rows = _o5_sweep(tmp_path / 's', O5_BASELINES, jc)
  assert rows['o5_growth']['ci_low'] > 0.5 and _by_rule(rows['o5_growth']) == 'FAIL'
  assert rows['o5_best:classifier_score']['ci_high'] < 0.9
  assert _by_rule(rows['o5_best:classifier_score']) == 'FAIL'
  assert rows['o5_spread:classifier_score']['measured'] == pytest.approx(
      np.sqrt(1.625 / 0.1))
  assert _by_rule(rows['o5_spread:classifier_score']) == 'FAIL'
  assert _by_rule(rows['o5_within:classifier_score']) == 'FAIL'


def test_o5_mnist_growth_needs_every_jc_run_below_the_limit(tmp_path):
  # Growth 0.05, 0.05, 0.05, 0.05, 0.6: mean 0.16, CI [-0.15, 0.47] below 0.5, but
  # one run grew by more ("all ... stop growing").
  jc = [(10.0, 10.05, 8.6, 0.05)] * 4 + [(10.0, 10.6, 8.6, 0.05)]
  growth = _o5_sweep(tmp_path / 's', O5_BASELINES, jc)['o5_growth']
  assert growth['ci_high'] < 0.5 and growth['verdict'] == 'INCONCLUSIVE'
  assert growth['note'].startswith('n = 5 < 10; 1 of 5 JC runs grew by 0.5 or more')


def test_o5_mnist_a_larger_spread_that_no_test_tells_apart_is_inconclusive(tmp_path):
  # CS sd 0.396 against 0.316: ratio 1.25, between the two F bounds.
  jc = [(10.0, 10.2, cs, 0.05) for cs in [8.0, 8.5, 9.0, 8.2, 8.8]]
  rows = _o5_sweep(tmp_path / 's', O5_BASELINES, jc)
  spread = rows['o5_spread:classifier_score']
  assert 1 < spread['measured'] < 2.527 and spread['verdict'] == 'INCONCLUSIVE'


def test_o5_mnist_a_diverged_jc_run_keeps_every_row_from_pass(tmp_path):
  rows = _o5_sweep(tmp_path / 's', O5_BASELINES, O5_JC + [O5_JC[0]], diverged=(5,))
  for key in ('o5_growth', 'o5_best:classifier_score', 'o5_spread:classifier_score',
              'o5_within:classifier_score'):
    assert rows[key]['verdict'] == 'INCONCLUSIVE', key
    assert '1 JC run(s) diverged or ended non-finite' in rows[key]['note'], key
  assert 'JC excluded: 1 diverged' in rows['o5_best:classifier_score']['note']


def test_o5_mnist_rows_of_short_runs_or_three_runs_are_inconclusive(tmp_path):
  short = _o5_sweep(tmp_path / 'short', O5_BASELINES, O5_JC, steps=5000)
  assert {short[k]['verdict'] for k in ('o5_growth', 'o5_best:classifier_score',
                                        'o5_spread:classifier_score')} == {
      'INCONCLUSIVE'}
  assert 'runs at 21 % of the paper' in short['o5_growth']['note']
  three = _o5_sweep(tmp_path / 'three', O5_BASELINES, O5_JC[:3])
  for key in ('o5_growth', 'o5_best:classifier_score', 'o5_spread:classifier_score',
              'o5_within:classifier_score'):
    assert three[key]['verdict'] == 'INCONCLUSIVE', key


# ---------------------------------------------------------------------------
# O6 and S0-S5: CIFAR-10 runs, judged on synthetic records.

O6_STEPS = 100000  # igul222's generator iterations.
CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'configs')


def _write_cifar_run(workdir, seed, config_file, overrides, steps, final_is,
                     curve=(), step_time=1.0, train=None, diverged=False):
  """A finished CIFAR-10 run of configs/<config_file> with `overrides`: train records
  at each step of `curve` ([(step, IS)]) with `step_time` seconds per step, an eval
  record of that IS at each, and the final IS. `train`: [{field: value}] of more
  train records, at steps 1, 2, ... `diverged`: stopped by non-finite losses at the
  end, with no final record."""
  log = _start_run(workdir, config_lib.load_config_file(
      os.path.join(CONFIGS, config_file)), **overrides, seed=seed, train_steps=steps)
  for i, fields in enumerate(train or []):
    log.append('train', i + 1, **fields)
  for step, value in curve:
    log.append('train', step, step_time=step_time)
    log.append('eval', step, inception_score=value)
  if diverged:
    log.set_status('diverged', steps, reason='non-finite d_loss')
    return
  log.append('final', steps, inception_score=final_is)
  log.set_status('finished', steps)


def _sweep_report(sweep, runs):
  """{row id: row} of the report of `runs` ([(name, setting, seed)], already written
  under `sweep`), with a sweep.json naming their settings."""
  manifest = {'sweep': 'synthetic', 'runs': [
      {'name': name, 'setting': setting, 'seed': seed} for name, setting, seed in runs]}
  with open(sweep / 'sweep.json', 'w') as f:
    json.dump(manifest, f)
  path = report.write_report(str(sweep), num_resamples=200)
  with open(os.path.join(os.path.dirname(path), report.JSON_FILE)) as f:
    return {row['id']: row for row in json.load(f)}


def _o6_sweep(sweep, seeds=5, steps=O6_STEPS, baseline1_is=1.2, jc5_minus=None,
              jc1_never=(), jc5_diverged=()):
  """The O6 grid: baseline@5 ends at IS 8.0 + 0.1 seed (mean 8.2 over 5 seeds, its
  last curve point) and passes the wall-clock threshold 0.9 x 8.2 = 7.38 at 3/4 of
  the run, at 1 s per step; JC@1 passes it at the same step at 0.3 (1 + 0.01 seed) s
  per step, except the seeds of `jc1_never`, whose IS stays at 7; JC@5 ends at the
  baseline's IS + jc5_minus[seed], or diverges for the seeds of `jc5_diverged`;
  baseline@1 ends at baseline1_is (collapsed below 0.5 x 8.2 = 4.1)."""
  jc5_minus = jc5_minus or [-0.4, -0.5, -0.6, -0.5, -0.5, -0.5]
  quarter = steps // 4
  runs = []
  for seed in range(seeds):
    end = 8.0 + 0.1 * seed
    cells = {
        'baseline_ncritic5': (False, 5, end, 1.0),
        'jacobian_clamping_ncritic5': (True, 5, end + jc5_minus[seed], 1.0),
        'baseline_ncritic1': (False, 1, baseline1_is, 0.2),
        'jacobian_clamping_ncritic1': (True, 1, 7.0 if seed in jc1_never else 7.9,
                                       0.3 * (1 + 0.01 * seed)),
    }
    for setting, (jc, n_critic, final, step_time) in cells.items():
      top = min(7.5, final) if setting == 'jacobian_clamping_ncritic1' else 7.5
      curve = [(quarter, 3.0), (2 * quarter, 6.0), (3 * quarter, top), (steps, final)]
      name = f'{setting}_seed{seed}'
      _write_cifar_run(sweep / name, seed, 'o6_cifar_wgangp_jc.py',
                       {'jacobian_clamping': jc, 'n_critic': n_critic}, steps, final,
                       curve, step_time, diverged=(
                           setting == 'jacobian_clamping_ncritic5' and
                           seed in jc5_diverged))
      runs.append((name, setting, seed))
  return _sweep_report(sweep, runs)


def test_o6_rows_on_a_grid_that_reproduces_fig_7(tmp_path):
  rows = _o6_sweep(tmp_path / 's')
  # 5 of 5 baseline runs at n_critic 1 below the collapse score 1.5, none of JC's:
  # one-sided Fisher p = 1 / C(10, 5) = 1 / 252.
  collapse = rows['o6_collapse']
  assert collapse['measured'] == 5 and collapse['n'] == 5
  assert collapse['verdict'] == 'PASS' and 'p = 0.00397' in collapse['note']
  # JC@5 minus baseline@5 by seed: -0.4, -0.5, -0.6, -0.5, -0.5; mean -0.5, sd
  # sqrt(0.02 / 4) = 0.0707, t(0.975, 4) = 2.7764: -0.5 -+ 0.0878, inside [-1, 0].
  slightly = rows['o6_ncritic5']
  assert slightly['measured'] == pytest.approx(-0.5)
  assert (slightly['ci_low'], slightly['ci_high']) == pytest.approx(
      (-0.5878, -0.4122), abs=1e-4)
  assert slightly['verdict'] == 'PASS'
  # Both reach 7.38 at step 75,000: 75,000 s for the baseline; 22,500 (1 + 0.01 s)
  # for JC: the ratio of geometric means is 0.3 x the geometric mean of 1.00-1.04.
  wallclock = rows['o6_wallclock']
  expected = 0.3 * np.exp(np.mean(np.log(1 + 0.01 * np.arange(5))))
  assert wallclock['measured'] == pytest.approx(expected)
  assert wallclock['ci_high'] < 0.5 and wallclock['verdict'] == 'PASS'
  assert wallclock['ci_method'] == 'Welch t on ln seconds'
  assert 'IS threshold 7.38' in wallclock['note']


def test_o6_fails_where_the_baseline_does_not_collapse_and_jc_is_much_worse(tmp_path):
  rows = _o6_sweep(tmp_path / 's', baseline1_is=7.0,
                   jc5_minus=[-2.4, -2.5, -2.6, -2.5, -2.5])
  assert rows['o6_collapse']['verdict'] == 'FAIL'
  assert rows['o6_collapse']['measured'] == 0
  assert rows['o6_ncritic5']['ci_high'] < -1 and rows['o6_ncritic5']['verdict'] == 'FAIL'


def test_o6_of_fewer_trials_or_shorter_runs_than_the_papers_is_inconclusive(tmp_path):
  few = _o6_sweep(tmp_path / 'few', seeds=4)
  assert {few[k]['verdict'] for k in ('o6_collapse', 'o6_wallclock')} == {
      'INCONCLUSIVE'}
  assert few['o6_collapse']['note'].startswith('n = 4 < 5; by the rule alone PASS')
  short = _o6_sweep(tmp_path / 'short', steps=5000)
  assert short['o6_collapse']['verdict'] == 'INCONCLUSIVE'
  assert short['o6_collapse']['note'].startswith(
      'runs at 5 % of the paper\'s length (5000 of 100000 steps)')


def test_o6_wall_clock_sums_each_interval_and_leaves_out_the_evaluations():
  """Train records at steps 10, 20, 30 with 1, 2 and 0.5 s per step; evaluations of
  4 s at step 10 and 6 s at step 20 (each after that step's record, so in the next
  interval): 10; 10 + 20 - 4 = 26; 26 + 5 - 6 = 25 s."""
  import types
  from tf_gancond.report.checks import o6
  run = types.SimpleNamespace(
      state='finished',
      train=[{'step': 10, 'step_time': 1.0}, {'step': 20, 'step_time': 2.0},
             {'step': 30, 'step_time': 0.5}],
      evals=[{'step': 10, 'eval_seconds': 4.0, 'inception_score': 2.0},
             {'step': 20, 'eval_seconds': 6.0, 'inception_score': 5.0}])
  assert o6.wall_seconds(run) == [(10, 10.0), (20, 26.0), (30, 25.0)]
  assert o6.curve(run) == [(10, 10.0, 2.0), (20, 26.0, 5.0)]
  assert o6.seconds_to(run, 4.0) == 26.0 and o6.seconds_to(run, 6.0) is None


def test_o6_a_jc_run_that_never_reaches_the_is_keeps_the_wall_clock_from_pass(
    tmp_path):
  some = _o6_sweep(tmp_path / 'some', seeds=6, jc1_never=(5,))['o6_wallclock']
  assert some['verdict'] == 'INCONCLUSIVE' and some['ci_high'] < 0.5
  assert some['n'] == 5 and 'JC@1 1 of 6' in some['note']
  none = _o6_sweep(tmp_path / 'none', jc1_never=range(5))['o6_wallclock']
  assert none['verdict'] == 'FAIL' and 'JC@1 5 of 5' in none['note']


def test_o6_a_diverged_jc_run_at_n_critic_5_keeps_the_row_from_pass(tmp_path):
  row = _o6_sweep(tmp_path / 's', seeds=6, jc5_diverged=(5,))['o6_ncritic5']
  assert row['n'] == 5 and row['ci_high'] < 0 and row['ci_low'] > -1
  assert row['verdict'] == 'INCONCLUSIVE'
  assert '1 finished run(s) without a twin of the same seed' in row['note']
  assert '1 JC run(s) diverged or ended non-finite' in row['note']


S_STEPS = 50000  # "50,000 total generator updates".


def test_every_s_sweep_run_maps_to_its_thesis_setting():
  """The config of each run of the S sweeps (launch/sweeps.py) names the setting
  and the IS of the thesis' tables."""
  from launch import sweeps
  from tf_gancond.report.checks import s0_s5
  expected = {
      's1_toeplitz_k': {'k_1': 2.62, 'k_2': 7.34, 'k_4': 5.77, 'k_8': 3.05},
      's2_rw_penalty': {'lambda_0.1': 7.95, 'lambda_1': 1.18, 'lambda_10': 0.99},
      's3_gradient_clamping': {'g_clamp_1.05': 3.782, 'g_clamp_1.5': 7.82,
                               'g_clamp_2': 7.94, 'd_clamp_4': 3.84,
                               'd_clamp_15': 7.92, 'd_clamp_30': 7.95},
      's4_misc_models': {'baseline': 7.97, 'wgan_gp_sn': 7.08, 'sn_4x': 7.56,
                         'no_sn': 3.28, 'standard_loss': None},
      's5_spectra': {'baseline': 7.97, 'rw_0.1': 7.95, 'd_clamp_15': 7.92,
                     'g_clamp_1.5': 7.82, 'wgan_gp_10': 7.08, 'no_sn': 3.28},
  }
  for sweep, targets in expected.items():
    found = {}
    for run in sweeps.get_sweep(sweep):
      c = config_lib.load_config_file(run.config_path())
      c.update(run.overrides)
      setting = s0_s5.thesis_setting(config_lib.resolve(c).to_dict())
      found[run.setting] = setting[2]
    assert found == targets, sweep
  assert s0_s5.thesis_setting(config_lib.get_config().to_dict()) is None


def test_s_rows_against_the_thesis(tmp_path):
  """S0 at 7.8 lies within 7.97 -+ 0.5; S1 k = 1 at 5.0 lies far above 2.62; S2
  lambda = 10 at 1.1 is collapsed, as the thesis' 0.99; the standard loss 0.3 below
  the hinge baseline; a D clamp whose sigma0 / sigma1 falls from 30 to 3."""
  sweep = tmp_path / 's'
  sigma = [{'d_grad_sigma_ratio': 30.0}] * 2 + [{'d_grad_sigma_ratio': 10.0}] * 16 + [
      {'d_grad_sigma_ratio': 3.0}] * 2
  specs = [('s0', 's0_sngan_baseline.py', {}, 7.8, None),
           ('k1', 's1_toeplitz_k_sweep.py', {'toeplitz_k': 1.0}, 5.0, None),
           ('rw10', 's2_rw_penalty.py', {'rw_lambda': 10.0}, 1.1, None),
           ('standard', 's4_misc_models.py',
            {'loss': 'non_saturating', 'gradient_penalty': 0.0}, 7.5, None),
           ('dclamp15', 's3_gradient_clamping.py',
            {'grad_clamp_g_ratio': 0.0, 'grad_clamp_d_ratio': 15.0}, 7.9, sigma)]
  for name, config_file, overrides, final, train in specs:
    _write_cifar_run(sweep / name, 0, config_file, overrides, S_STEPS, final,
                     train=train)
  rows = _sweep_report(sweep, [(name, name, 0) for name, *_ in specs])
  assert rows['s0']['measured'] == pytest.approx(7.8) and rows['s0']['verdict'] == 'PASS'
  assert rows['s1:k=1']['verdict'] == 'FAIL' and rows['s1:k=1']['family'] == 's1'
  assert rows['s2:lambda=10']['verdict'] == 'PASS'
  assert rows['s3_d:r=15']['verdict'] == 'PASS'
  standard = rows['s4:standard_loss']
  assert standard['measured'] == pytest.approx(-0.3) and standard['verdict'] == 'PASS'
  # 20 records: the first and the last 2 are the tenths; medians 30 and 3.
  assert rows['s3_sigma']['measured'] == pytest.approx(3.0)
  assert rows['s3_sigma']['verdict'] == 'PASS' and 'early 30.000' in rows['s3_sigma'][
      'note']


def test_s_rows_count_a_diverged_run_as_is_1_and_need_every_d_clamp_run(tmp_path):
  """k = 8 diverged: IS 1 lies outside 3.05 -+ 0.5; lambda = 10 diverged: IS 1 is
  collapsed, as the thesis' 0.99; a D-clamp run with 5 records of sigma0 / sigma1
  beside one with 20 in range: INCONCLUSIVE."""
  sweep = tmp_path / 's'
  good = [{'d_grad_sigma_ratio': 30.0}] * 2 + [{'d_grad_sigma_ratio': 3.0}] * 18
  specs = [('k8', 's1_toeplitz_k_sweep.py', {'toeplitz_k': 8.0}, None, True),
           ('rw10', 's2_rw_penalty.py', {'rw_lambda': 10.0}, None, True),
           ('d15', 's3_gradient_clamping.py',
            {'grad_clamp_g_ratio': 0.0, 'grad_clamp_d_ratio': 15.0}, good, False),
           ('d30', 's3_gradient_clamping.py',
            {'grad_clamp_g_ratio': 0.0, 'grad_clamp_d_ratio': 30.0}, good[:5], False)]
  for name, config_file, overrides, train, diverged in specs:
    _write_cifar_run(sweep / name, 0, config_file, overrides, S_STEPS, 7.9,
                     train=train, diverged=diverged)
  rows = _sweep_report(sweep, [(name, name, 0) for name, *_ in specs])
  assert rows['s1:k=8']['measured'] == 1.0 and rows['s1:k=8']['verdict'] == 'FAIL'
  assert rows['s2:lambda=10']['verdict'] == 'PASS'
  assert rows['s2:lambda=10']['rule'].startswith(
      'PASS: the final IS (the mean of the runs; from 4 runs on, its Student t 95% '
      'CI) lies below 1.5 (collapsed)')
  assert 'within ± 0.5 of 7.92' in rows['s3_d:r=15']['rule']
  sigma = rows['s3_sigma']
  assert sigma['verdict'] == 'INCONCLUSIVE' and sigma['n'] == 1
  assert '1 run(s) with fewer than 10 records' in sigma['note']


def test_s_rows_of_shorter_runs_than_the_thesis_are_inconclusive(tmp_path):
  sweep = tmp_path / 's'
  _write_cifar_run(sweep / 's0', 0, 's0_sngan_baseline.py', {}, 5000, 7.8)
  row = _sweep_report(sweep, [('s0', 'baseline', 0)])['s0']
  assert row['verdict'] == 'INCONCLUSIVE'
  assert row['note'].startswith('runs at 10 % of the paper\'s length (5000 of 50000')
