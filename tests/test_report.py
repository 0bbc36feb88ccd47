"""The sweep report on synthetic per-run files with known statistics."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tf_gancond import config as config_lib
from tf_gancond import report
from tf_gancond import runlog

# Final mean log-cond per run: baseline in two clusters, JC all low.
BASELINE_LC = [13.0, 14.0, 19.0, 20.0]
JC_LC = [12.0, 12.2, 12.5, 12.8]
# Scores strictly decreasing in log-cond over all 8 runs (Spearman exactly -1),
# distances strictly increasing (+1), min class count linear in log-cond (Pearson -1).
SCORE = {13.0: 8.0, 14.0: 7.5, 19.0: 3.0, 20.0: 2.0,
         12.0: 8.8, 12.2: 8.6, 12.5: 8.4, 12.8: 8.2}


def _min_class(lc):
  return 60.0 - 3.0 * lc


def _write_run(workdir, setting, seed, final_lc, scores=True, state='finished',
               reason=None, probes=True):
  os.makedirs(workdir)
  c = config_lib.get_config()
  c.seed = seed
  c.jacobian_clamping = setting == 'jacobian_clamping'
  c.train_steps = 500
  c.workdir = str(workdir)
  runlog.atomic_write_text(os.path.join(workdir, runlog.CONFIG_FILE),
                           config_lib.to_text(config_lib.resolve(c)))
  log = runlog.RunLog(str(workdir))
  rng = np.random.default_rng(seed)
  for step in range(50, 501, 50):
    q = 2.0 + rng.random() if setting == 'jacobian_clamping' else 30.0 + rng.random()
    log.append('train', step, d_loss=0.5, q_mean=q, q_p5=q / 2, q_p50=q, q_p95=2 * q)
  if probes:
    for step, lc in ((0, 2.0), (250, (2.0 + final_lc) / 2), (500, final_lc)):
      per_z = lc + np.linspace(-1.0, 1.0, 8)  # Mean exactly lc.
      sv = np.exp(-np.arange(8.0)) * (1 + lc / 10)
      log.append('probe', step, mean_log_cond=float(per_z.mean()), log_cond=per_z,
                 avg_jacobian_singular_values=sv)
  if scores:
    score = SCORE[final_lc]
    for step in (250, 500):
      log.append('eval', step, classifier_score=score - (500 - step) / 1000,
                 frechet_distance=100.0 - 10 * score, num_samples=1000, splits=10,
                 classifier='fake')
    log.append('final', 500, mean_log_cond=final_lc, classifier_score=score,
               classifier_score_std=0.1, frechet_distance=100.0 - 10 * score,
               min_class_count=_min_class(final_lc), class_counts=[36] * 10)
  log.set_status(state, 500 if state == 'finished' else 120,
                 **({'reason': reason} if reason else {}))


@pytest.fixture
def sweep_dir(tmp_path):
  d = tmp_path / 'sweep'
  manifest = []
  for setting, values in (('baseline', BASELINE_LC), ('jacobian_clamping', JC_LC)):
    for seed, lc in enumerate(values):
      name = f'{setting}_seed{seed}'
      _write_run(d / name, setting, seed, lc)
      manifest.append({'name': name, 'setting': setting, 'seed': seed})
  # Not in the manifest: found by its directory; diverged before any probe.
  _write_run(d / 'baseline_seed9', 'baseline', 9, None, scores=False, probes=False,
             state='diverged', reason='non-finite d_loss at step 120')
  (d / 'sweep.json').write_text(json.dumps({'sweep': 'synthetic', 'runs': manifest}))
  return d


def test_report_statistics_have_the_known_answers(sweep_dir):
  path = report.write_report(str(sweep_dir))
  out = json.load(open(sweep_dir / 'report' / report.JSON_FILE))
  assert path == str(sweep_dir / 'report' / report.REPORT_FILE)
  assert out['score_keys'] == ['classifier_score', 'frechet_distance']
  pooled = out['spearman']['all GAN runs']
  assert pooled['classifier_score']['rho'] == -1.0
  assert pooled['frechet_distance']['rho'] == 1.0
  assert pooled['classifier_score']['n'] == 8
  assert pooled['classifier_score']['ci']['low'] == -1.0  # Every resample is -1.
  assert out['o4_pearson']['all GAN runs']['r'] == pytest.approx(-1.0, abs=1e-12)
  clusters = out['clusters']['all GAN runs']
  assert sorted(clusters['high']) == ['baseline_seed2', 'baseline_seed3']
  assert len(clusters['low']) == 6
  assert clusters['threshold'] == pytest.approx(16.5)
  lc = np.array(BASELINE_LC + JC_LC)
  low, high = lc[lc < 16.5], lc[lc > 16.5]
  within = np.sum((low - low.mean()) ** 2) + np.sum((high - high.mean()) ** 2)
  assert clusters['between_fraction'] == pytest.approx(
      1 - within / np.sum((lc - lc.mean()) ** 2))
  assert clusters['good_by_setting'] == {'baseline': 2, 'jacobian_clamping': 4}
  assert out['top_k']['baseline']['classifier_score'] == {'k': 2, 'overlap': 2}
  base = out['settings']['baseline']
  assert base['runs'] == 5 and base['finished'] == 4
  assert base['final_log_cond']['n'] == 4
  assert base['final_log_cond']['mean'] == pytest.approx(np.mean(BASELINE_LC))
  assert base['final_log_cond']['var'] == pytest.approx(np.var(BASELINE_LC, ddof=1))
  ci = base['final_log_cond']['ci_mean']
  assert min(BASELINE_LC) <= ci['low'] < np.mean(BASELINE_LC) < ci['high'] <= max(
      BASELINE_LC)
  # Q: baseline medians (~30) lie outside [1, 20], JC medians (~2.5) inside.
  assert out['q']['baseline']['good']['mean_share_in_range'] == 0.0
  assert out['q']['jacobian_clamping']['good']['mean_share_in_range'] == 1.0
  runs = {r['name']: r for r in out['runs']}
  assert runs['baseline_seed9']['state'] == 'diverged'
  assert runs['baseline_seed9']['final_log_cond'] is None


def test_report_renders_every_figure_it_lists(sweep_dir):
  report.write_report(str(sweep_dir), str(sweep_dir / 'out'))
  text = (sweep_dir / 'out' / report.REPORT_FILE).read_text()
  figures = json.load(open(sweep_dir / 'out' / report.JSON_FILE))['figures']
  assert set(figures) == {'over_time', 'per_z', 'spectra', 'q', 'scatter', 'o4'}
  for name in figures.values():
    assert name, figures
    with open(sweep_dir / 'out' / name, 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert f']({name})' in text
  assert 'for one run (baseline_seed0)' in text
  assert '| all GAN runs | classifier score | 8 | -1.000 | [-1.000, -1.000] |' in text
  assert 'exact 1-D 2-means' in text
  assert 'non-finite d_loss at step 120' in text
  assert 'No scores recorded' not in text


def test_report_without_scores_says_so(tmp_path):
  d = tmp_path / 'sweep'
  for seed, lc in enumerate([13.0, 19.0]):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, lc, scores=False)
  report.write_report(str(d))
  text = (d / 'report' / report.REPORT_FILE).read_text()
  figures = json.load(open(d / 'report' / report.JSON_FILE))['figures']
  assert 'No scores recorded' in text
  assert 'No least-sampled class counts recorded' in text
  assert figures['scatter'] is None and figures['o4'] is None
  assert figures['over_time'] and figures['spectra']
  assert 'n < 4' in text  # Two runs: no bootstrap interval.


def test_report_of_a_single_run_directory(tmp_path):
  _write_run(tmp_path / 'one', 'jacobian_clamping', 0, 12.0)
  report.write_report(str(tmp_path / 'one'), str(tmp_path / 'r'))
  out = json.load(open(tmp_path / 'r' / report.JSON_FILE))
  assert [r['setting'] for r in out['runs']] == ['jacobian_clamping']
  assert out['clusters'] == {}


def _cli(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, '-m', 'tf_gancond.report', *args],
                        capture_output=True, text=True, env=env, timeout=120)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
  (tmp_path / 'empty').mkdir()
  (tmp_path / 'file').write_text('x')
  for args, message in (([f'--sweep_dir={tmp_path}/missing'], 'does not exist'),
                        ([f'--sweep_dir={tmp_path}/empty'], 'holds no runs'),
                        ([f'--sweep_dir={tmp_path}/file'], 'not a directory'),
                        ([], '--sweep_dir is required')):
    result = _cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_cli_writes_the_report(sweep_dir):
  result = _cli(f'--sweep_dir={sweep_dir}', '--cluster_method=gap', '--bootstrap=200')
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == f'report: {sweep_dir}/report/{report.REPORT_FILE}'
  text = (sweep_dir / 'report' / report.REPORT_FILE).read_text()
  assert 'largest gap' in text and '200 resamples' in text
