"""Each check of tf_gancond/report/checks/ on synthetic runs with hand-known answers."""

import json
import os

import numpy as np
import pytest

from tf_gancond import config as config_lib
from tf_gancond import report
from tf_gancond import runlog
from tf_gancond.report import checks as checks_lib

FULL = 23440  # 25 epochs of MNIST at batch 64: the length of [O]'s runs.


def _write_run(workdir, seed, final_lc, log_sigma_max=0.0, setting='baseline',
               steps=FULL, dataset='mnist', **final):
  """A finished GAN run: probes at 0, steps / 2 and steps whose 8 per-z ln cond are
  final_lc + linspace(-1, 1, 8) after step 0 (2 at step 0), and whose E_z[J_z]
  singular values are exp(log_sigma_max - i), i < 8; `final`: more fields of the
  final record."""
  os.makedirs(workdir)
  c = config_lib.get_config()
  c.dataset, c.seed, c.train_steps = dataset, seed, steps
  c.jacobian_clamping = setting == 'jacobian_clamping'
  c.workdir = str(workdir)
  runlog.atomic_write_text(os.path.join(workdir, runlog.CONFIG_FILE),
                           config_lib.to_text(config_lib.resolve(c)))
  log = runlog.RunLog(str(workdir))
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
  assert row['verdict'] == 'PASS'
  assert 'p = 0.0143' in row['note'] and f'ratio {np.exp(-1.0):.3g}' in row['note']


def test_largest_singular_value_of_good_runs_above_bad_fails(tmp_path):
  log_sigma = [1.0, 1.1, 1.2, 1.3, 0.0, 0.1, 0.2, 0.3]
  row = _checks(tmp_path / 's', list(zip(CLUSTERED_LC, log_sigma)))['largest_sv']
  assert row['measured'] == pytest.approx(1.0) and row['verdict'] == 'FAIL'


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
  assert r['verdict'] == 'FAIL'


def test_o4_correlation_of_three_runs_is_inconclusive(tmp_path):
  """r = -1 from 3 runs: no interval below 4 runs, so no verdict either way."""
  rows = _checks(tmp_path / 's', [(10.0 + i, 0.0) for i in range(3)],
                 finals=[{'min_class_count': c} for c in (30.0, 20.0, 10.0)])
  r = rows['o4_r']
  assert r['measured'] == pytest.approx(-1.0) and r['n'] == 3
  assert r['ci_low'] is None and r['ci_method'] is None
  assert r['verdict'] == 'INCONCLUSIVE'
