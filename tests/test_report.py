"""The sweep report on synthetic per-run files with known statistics."""

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tf_gancond import config as config_lib
from tf_gancond import report
from tf_gancond import runlog
from tf_gancond import stats

# Final mean log-cond per seed. Baseline seed 9 diverges at step 250 (after finite
# probes); JC seed 9 ends with ln cond = inf (after finite probes of 12.5); JC seed 10
# failed (sweep_status.json).
BASELINE_LC = [13.0, 13.5, 14.0, 14.5, 15.0, 19.0, 19.5, 20.0, 20.5]
JC_LC = [12.0, 12.2, 12.4, 12.6, 12.8, 13.0, 13.2, 13.4, 13.6]
# Classifier scores: decreasing in log-cond except seeds 2 and 3 (one discordant
# pair); JC seed 9 has the lowest score, so with its ln cond ranked worst the JC
# Spearman rho is exactly -1 over 10 runs.
BASELINE_CS = [8.0, 7.6, 7.0, 7.2, 6.5, 3.0, 2.8, 2.5, 2.0]
JC_CS = [8.8, 8.7, 8.6, 8.5, 8.4, 8.3, 8.2, 8.1, 8.0, 7.0]
# Spearman rho of BASELINE_LC vs BASELINE_CS by hand: rank differences
# d = (-8, -6, -3, -3, 0, 2, 4, 6, 8), sum d^2 = 238, rho = 1 - 6*238/(9*80) = -59/60.
BASELINE_RHO = -59.0 / 60.0
FULL = 23440  # The paper's run length: checks judge only runs this long.
PROBE_STEPS = tuple(range(0, FULL + 1, FULL // 5))  # 0, 4688, ..., 23440.


def _min_class(setting, lc):
  # Baseline: linear in log-cond (Pearson -1); JC: constant 36.
  return 90.0 - 4.0 * lc if setting == 'baseline' else 36.0


def _write_run(workdir, setting, seed, final_lc, score=None, state='finished',
               reason=None, probes=PROBE_STEPS, dataset='mnist', last_step=FULL,
               final=None, score_settings=None, evals=(), end_lc=None, z_spread=1.0,
               probe_seed=None):
  """A run directory as train.py writes it.

  Probes: ln cond 2 at step 0, then final_lc; end_lc (if given) at the last probe
  and in the final record. Each probe's 8 per-z values are its mean + z_spread *
  linspace(-1, 1, 8). score: the final classifier score (Frechet distance
  100 - 10 * score). final: extra fields of the final record.
  """
  os.makedirs(workdir)
  c = config_lib.get_config()
  c.experiment = setting if setting in ('memorize', 'vae') else 'gan'
  c.dataset = dataset
  c.seed = seed
  c.jacobian_clamping = setting == 'jacobian_clamping'
  c.train_steps = FULL
  if probe_seed is not None:
    c.probe_seed = probe_seed
  c.workdir = str(workdir)
  runlog.atomic_write_text(os.path.join(workdir, runlog.CONFIG_FILE),
                           config_lib.to_text(config_lib.resolve(c)))
  log = runlog.RunLog(str(workdir))
  rng = np.random.default_rng(seed)
  for step in range(last_step // 10, last_step + 1, last_step // 10):
    q = 2.0 + rng.random() if setting == 'jacobian_clamping' else 30.0 + rng.random()
    log.append('train', step, d_loss=0.5, q_mean=q, q_p5=q / 2, q_p50=q, q_p95=2 * q)
  for step in probes:
    lc = 2.0 if step == 0 else final_lc
    if end_lc is not None and step == probes[-1]:
      lc = end_lc
    per_z = lc + z_spread * np.linspace(-1.0, 1.0, 8)  # Mean exactly lc.
    sv = np.exp(-np.arange(8.0)) * (1 + min(lc, 30.0) / 10)
    log.append('probe', step, mean_log_cond=float(per_z.mean()), log_cond=per_z,
               avg_jacobian_singular_values=sv)
  settings = dict(num_samples=1000, splits=10, real_split='test', classifier='fake')
  settings.update(score_settings or {})
  for step, value in evals:
    log.append('eval', step, classifier_score=value, **settings)
  if state == 'finished':
    record = dict(final or {})
    if probes:
      record['mean_log_cond'] = final_lc if end_lc is None else end_lc
    if score is not None:
      record.update(classifier_score=score, classifier_score_std=0.1,
                    frechet_distance=100.0 - 10 * score, **settings,
                    min_class_count=_min_class(setting, final_lc),
                    class_histogram=[36] * 10, missing_modes_num_samples=360)
    log.append('final', last_step, **record)
  log.set_status(state, last_step, **({'reason': reason} if reason else {}))


@pytest.fixture
def sweep_dir(tmp_path):
  d = tmp_path / 'sweep'
  manifest = []

  def add(setting, seed, lc, score, **kwargs):
    name = f'{setting}_seed{seed}'
    _write_run(d / name, setting, seed, lc, score, **kwargs)
    manifest.append({'name': name, 'setting': setting, 'seed': seed})

  for seed, (lc, cs) in enumerate(zip(BASELINE_LC, BASELINE_CS)):
    add('baseline', seed, lc, cs)
  add('baseline', 9, 14.0, None, state='diverged', probes=(0, 100, 200),
      last_step=250, reason='non-finite d_loss at step 250')
  for seed, (lc, cs) in enumerate(zip(JC_LC, JC_CS)):
    add('jacobian_clamping', seed, lc, cs)
  add('jacobian_clamping', 9, 12.5, JC_CS[9], end_lc=float('inf'))
  add('jacobian_clamping', 10, 12.0, None, state='running', probes=(0,),
      last_step=100)
  (d / 'sweep.json').write_text(json.dumps({'sweep': 'synthetic', 'runs': manifest}))
  (d / 'sweep_status.json').write_text(json.dumps({'runs': {
      'jacobian_clamping_seed10': {'state': 'failed', 'reason': 'exit code 1'}}}))
  return d


def _analysis(out_dir):
  with open(os.path.join(out_dir, report.ANALYSIS_FILE)) as f:
    return json.load(f)


def _checks(out_dir):
  """{check: row} of report.json."""
  with open(os.path.join(out_dir, report.JSON_FILE)) as f:
    rows = json.load(f)
  # One row per check: a repeated name would be lost in the dict returned below.
  assert rows and len({row['check'] for row in rows}) == len(rows)
  for row in rows:
    assert set(row) == {'id', 'check', 'target', 'rule', 'measured', 'ci_low',
                        'ci_high', 'ci_method', 'n', 'verdict', 'note', 'family',
                        'stand_in'}, row
  return {row['check']: row for row in rows}


def _table(text, header_start):
  """{first cell: {column: cell}} of the Markdown table whose header starts so."""
  lines = text.splitlines()
  start = next(i for i, l in enumerate(lines) if l.startswith('| ' + header_start))
  header = [c.strip() for c in lines[start].strip('|').split('|')]
  rows = {}
  for line in lines[start + 2:]:
    if not line.startswith('|'):
      break
    cells = [c.strip() for c in line.strip('|').split('|')]
    rows[cells[0] if header[0] != 'setting' else ' / '.join(cells[:2])] = dict(
        zip(header, cells))
  return rows


def test_records_a_resume_wrote_twice_count_once(tmp_path):
  """A run killed after its last checkpoint re-makes the closing probe at the same
  step on the resume: the report reads each (kind, step) once, the last written."""
  workdir = tmp_path / 'run'
  _write_run(workdir, 'baseline', 0, 10.0, end_lc=12.0)
  runlog.RunLog(str(workdir)).append(
      'probe', FULL, mean_log_cond=12.0, log_cond=12.0 + np.linspace(-1.0, 1.0, 8))
  run = report.RunData('baseline_seed0', str(workdir))
  assert [p['step'] for p in run.probes] == list(PROBE_STEPS)
  # The 3 probes of the second half (step >= FULL / 2): (10 + 10 + 12) / 3, not with
  # 12 twice.
  assert report.late_log_cond(run) == pytest.approx(32.0 / 3)


def test_a_run_known_only_from_its_sweep_state_has_its_step(tmp_path):
  """A committed part holds no folder for a run still running when it was collected:
  the run's step and length come from the state collect recorded, not 0 and none."""
  run = report.RunData('baseline_seed1', str(tmp_path / 'not_collected'),
                       sweep_state={'state': 'running', 'step': 1000,
                                    'train_steps': FULL})
  assert (run.state, run.step, run.train_steps) == ('running', 1000, FULL)
  # A run with a folder: its own records, not a sweep state written earlier.
  workdir = tmp_path / 'run'
  _write_run(workdir, 'baseline', 0, 10.0, state='running', probes=(0, 250),
             last_step=500)
  run = report.RunData('baseline_seed0', str(workdir),
                       sweep_state={'state': 'running', 'step': 1000})
  assert run.step == 500


def test_o5_within_run_sd_is_the_spread_about_the_runs_own_trend(tmp_path):
  """"Intra-run variance" is fluctuation, not improvement: a score that rises
  steadily after the early window has none; one that alternates has the sd of its
  residuals about its own least-squares line (ddof 2), against numpy's float64 fit.
  Evaluations in the early window (before 30 % of the steps) are not read."""
  from tf_gancond.report.checks import o5_mnist
  steps = range(7500, FULL + 1, 2500)  # 7,500 to 22,500: after 30 % of 23,440.
  rising = [(2500, 1.0)] + [(s, 7.0 + s / 10000) for s in steps]
  _write_run(tmp_path / 'rising', 'jacobian_clamping', 0, 10.0, score=9.0,
             evals=rising)
  run = report.RunData('jacobian_clamping_seed0', str(tmp_path / 'rising'))
  assert o5_mnist.within_run_sd(run, 'classifier_score') == pytest.approx(0, abs=1e-9)
  alternating = [(s, 7.0 + 0.1 * (-1) ** i) for i, s in enumerate(steps)]
  _write_run(tmp_path / 'alternating', 'baseline', 0, 10.0, score=7.0,
             evals=alternating)
  run = report.RunData('baseline_seed0', str(tmp_path / 'alternating'))
  x, y = np.asarray(alternating, dtype=np.float64).T
  residuals = y - np.polyval(np.polyfit(x, y, 1), x)
  expected = np.sqrt(np.sum(residuals ** 2) / (len(y) - 2))
  assert o5_mnist.within_run_sd(run, 'classifier_score') == pytest.approx(expected)
  _write_run(tmp_path / 'three', 'baseline', 0, 10.0, score=7.0,
             evals=alternating[:3])  # A line through 3 points leaves one.
  run = report.RunData('baseline_seed0', str(tmp_path / 'three'))
  assert o5_mnist.within_run_sd(run, 'classifier_score') is None


def test_a_later_final_record_without_scores_keeps_the_runs_scores(tmp_path):
  """A finished run whose folder holds a second 'start' and a 'final' at the same
  step without scores (its closing step made again without a final evaluation): the
  run's final values are those of both records, the earlier scores kept. A run
  extended afterwards takes its values from its new final step alone."""
  workdir = tmp_path / 'run'
  _write_run(workdir, 'baseline', 0, 10.0, score=7.0)
  log = runlog.RunLog(str(workdir))
  log.append('start', FULL)
  log.append('probe', FULL, mean_log_cond=10.0, log_cond=10.0 + np.linspace(-1, 1, 8))
  log.append('final', FULL, mean_log_cond=10.0)
  run = report.RunData('baseline_seed0', str(workdir))
  assert run.final_scores == {'classifier_score': 7.0, 'frechet_distance': 30.0}
  assert run.min_class_count == _min_class('baseline', 10.0)
  assert run.final_log_cond == 10.0 and run.outcome == 'ok'
  assert run.score_settings('classifier_score') == ('fake', 1000, None)
  log.append('start', FULL)
  log.append('final', FULL + 100, mean_log_cond=11.0, classifier_score=6.0)
  run = report.RunData('baseline_seed0', str(workdir))
  assert run.final_scores == {'classifier_score': 6.0}
  assert run.final_log_cond == 11.0 and run.min_class_count is None


def test_report_statistics_have_the_known_answers(sweep_dir):
  path = report.write_report(str(sweep_dir))
  out = _analysis(sweep_dir / 'report')
  assert path == str(sweep_dir / 'report' / report.REPORT_FILE)
  assert out['score_keys'] == ['classifier_score', 'frechet_distance']
  base = out['settings']['baseline']
  assert base['runs'] == 10 and base['finished'] == 9
  assert base['final_log_cond']['n'] == 9
  assert base['final_log_cond']['mean'] == pytest.approx(np.mean(BASELINE_LC))
  assert base['final_log_cond']['var'] == pytest.approx(np.var(BASELINE_LC, ddof=1))
  ci = base['final_log_cond']['ci_mean']
  low, high = scipy_stats.t.interval(0.95, 8, loc=np.mean(BASELINE_LC),
                                     scale=scipy_stats.sem(BASELINE_LC))
  assert (ci['low'], ci['high']) == pytest.approx((low, high), abs=1e-9)
  # The Spearman interval over the 9 finished baseline runs: one discordant pair
  # makes rho = -59/60; resamples without it give -1, resamples that weigh it more
  # give rho above -59/60, so the interval has width and brackets the estimate.
  rho = out['spearman']['baseline']['classifier_score']
  assert rho['n'] == 9
  assert rho['rho'] == pytest.approx(BASELINE_RHO, abs=1e-12)
  assert rho['ci']['low'] == -1.0
  assert BASELINE_RHO < rho['ci']['high'] < 0
  fd = out['spearman']['baseline']['frechet_distance']
  assert fd['rho'] == pytest.approx(-BASELINE_RHO, abs=1e-12)
  assert fd['ci']['low'] == pytest.approx(-rho['ci']['high'], abs=1e-12)
  # Q: baseline medians (~30) lie outside [1, 20], JC medians (~2.5) inside.
  shares = {s: [v['mean_share_in_range'] for v in per.values()]
            for s, per in out['q'].items()}
  assert shares == {'baseline': [0.0] * len(shares['baseline']),
                    'jacobian_clamping': [1.0] * len(shares['jacobian_clamping'])}


def test_bfloat16_runs_change_no_check_of_the_papers(sweep_dir, tmp_path):
  before = _checks(os.path.dirname(report.write_report(str(sweep_dir),
                                                       str(tmp_path / 'before'))))
  manifest = json.loads((sweep_dir / 'sweep.json').read_text())
  for seed in range(5):  # bf16 baselines far from every float32 run.
    name = f'baseline_bf16_seed{seed}'
    _write_run(sweep_dir / name, 'baseline', 20 + seed, 30.0 + seed, 1.0 + seed)
    config = sweep_dir / name / runlog.CONFIG_FILE
    config.write_text(config.read_text().replace("precision: 'float32'",
                                                 "precision: 'bfloat16'"))
    manifest['runs'].append({'name': name, 'setting': 'baseline', 'seed': 20 + seed})
  (sweep_dir / 'sweep.json').write_text(json.dumps(manifest))
  out = os.path.dirname(report.write_report(str(sweep_dir), str(tmp_path / 'after')))
  assert _checks(out) == before
  settings = {r['name']: r['setting'] for r in _analysis(out)['runs']}
  assert settings['baseline_bf16_seed0'] == 'baseline_bfloat16'
  assert settings['baseline_seed0'] == 'baseline'


def test_unfinished_runs_of_a_bfloat16_sweep_are_bfloat16_arms(tmp_path):
  """A run of a bf16 sweep not yet started (no config.txt) takes its precision from
  the manifest, so no check of the papers counts it as a float32 baseline."""
  sweep = tmp_path / 'bf16'
  _write_run(sweep / 'baseline_seed0', 'baseline', 0, 13.0, 8.5)
  config = sweep / 'baseline_seed0' / runlog.CONFIG_FILE
  config.write_text(config.read_text().replace("precision: 'float32'",
                                               "precision: 'bfloat16'"))
  (sweep / 'sweep.json').write_text(json.dumps({
      'sweep': 'o2_mnist', 'extra': {'precision': 'bfloat16'},
      'runs': [{'name': f'baseline_seed{s}', 'setting': 'baseline', 'seed': s,
                'overrides': {'seed': s}} for s in range(4)]}))
  _, runs = report.load_sweep(str(sweep))
  assert {r.name: r.setting for r in runs} == {
      f'baseline_seed{s}': 'baseline_bfloat16' for s in range(4)}
  out = os.path.dirname(report.write_report(str(sweep), str(tmp_path / 'out')))
  assert _checks(out)['O2 MNIST cluster split (good / bad)']['verdict'] == 'NOT RUN'


def test_last_non_finite_values_and_unfinished_states_are_shown(sweep_dir):
  report.write_report(str(sweep_dir))
  text = (sweep_dir / 'report' / report.REPORT_FILE).read_text()
  runs = _table(text, 'run |')
  # JC seed 9: probes of 12.5 up to step 400, then inf: never shown as 12.5.
  assert runs['jacobian_clamping_seed9']['final log-cond'] == 'non-finite'
  assert runs['jacobian_clamping_seed9']['classifier score'] == '7.000'
  assert runs['baseline_seed9']['state'] == 'diverged'
  assert runs['baseline_seed9']['final log-cond'] == 'diverged'  # Not 14.00.
  assert runs['baseline_seed9']['classifier score'] == 'diverged'
  assert runs['jacobian_clamping_seed10']['state'] == 'failed'
  assert runs['jacobian_clamping_seed10']['final log-cond'] == 'failed'
  assert runs['baseline_seed0']['final log-cond'] == '13.00'
  out = {r['name']: r for r in _analysis(sweep_dir / 'report')['runs']}
  assert out['jacobian_clamping_seed9']['final_log_cond'] == 'inf'
  assert out['jacobian_clamping_seed9']['outcome'] == 'non-finite'
  assert out['baseline_seed9']['final_log_cond'] is None
  assert out['baseline_seed9']['outcome'] == 'diverged'
  assert out['jacobian_clamping_seed10']['outcome'] == 'failed'


def test_non_finite_runs_rank_worst_and_every_statistic_counts_exclusions(sweep_dir):
  report.write_report(str(sweep_dir))
  out = _analysis(sweep_dir / 'report')
  # JC seed 9 (ln cond inf, lowest score) ranked worst: rho = -1 over 10 runs; at
  # its last finite value 12.5 it would rank 4th and rho would be above -1.
  jc = out['spearman']['jacobian_clamping']['classifier_score']
  assert jc['n'] == 10 and jc['rho'] == pytest.approx(-1.0, abs=1e-12)
  assert jc['excluded'] == {'failed': 1}
  assert jc['ranked_worst'] == {'non-finite': 1}
  base = out['spearman']['baseline']['classifier_score']
  assert base['excluded'] == {'diverged': 1} and base['ranked_worst'] == {}
  settings = out['settings']
  assert settings['baseline']['final_log_cond']['excluded'] == {'diverged': 1}
  assert settings['jacobian_clamping']['final_log_cond']['n'] == 9
  assert settings['jacobian_clamping']['final_log_cond']['excluded'] == {
      'failed': 1, 'non-finite': 1}
  assert settings['jacobian_clamping']['classifier_score']['n'] == 10
  assert settings['jacobian_clamping']['classifier_score']['excluded'] == {'failed': 1}
  text = (sweep_dir / 'report' / report.REPORT_FILE).read_text()
  per_setting = _table(text, 'setting | quantity')
  assert per_setting['jacobian_clamping / final log cond']['excluded'] == (
      '1 failed, 1 non-finite')
  assert per_setting['baseline / classifier score']['excluded'] == '1 diverged'
  spearman = _table(text, 'runs | score')
  assert spearman['baseline']['excluded'] == '1 diverged'


def test_jc_runs_are_compared_with_their_baseline_twin_of_the_same_seed(sweep_dir):
  report.write_report(str(sweep_dir))
  paired = _analysis(sweep_dir / 'report')['paired']
  assert paired['setting'] == 'jacobian_clamping' and paired['against'] == 'baseline'
  lc, cs, fd, min_class = (paired['quantities'][k] for k in (
      'final_log_cond', 'classifier_score', 'frechet_distance', 'min_class_count'))
  # Seeds 0-8 pair; seed 9: JC's ln cond is inf, its score finite but the baseline
  # twin diverged; seed 10: the JC run failed (and has no twin).
  lc_d = np.subtract(JC_LC, BASELINE_LC)
  assert lc['n'] == 9 and lc['mean'] == pytest.approx(lc_d.mean())
  assert lc['std'] == pytest.approx(lc_d.std(ddof=1))
  low, high = scipy_stats.t.interval(0.95, 8, loc=lc_d.mean(),
                                     scale=scipy_stats.sem(lc_d))
  assert (lc['ci_mean']['low'], lc['ci_mean']['high']) == pytest.approx((low, high))
  assert lc['excluded'] == {'failed': 1, 'non-finite': 1}
  cs_d = np.subtract(JC_CS[:9], BASELINE_CS)
  assert cs['n'] == 9 and cs['mean'] == pytest.approx(cs_d.mean())
  assert cs['excluded'] == {'baseline twin diverged': 1, 'failed': 1}
  assert fd['mean'] == pytest.approx(-10 * cs_d.mean())  # FD = 100 - 10 CS.
  assert min_class['mean'] == pytest.approx(np.mean(36.0 - (90.0 - 4.0 * np.array(
      BASELINE_LC))))
  text = (sweep_dir / 'report' / report.REPORT_FILE).read_text()
  rows = _table(text, 'quantity | pairs')
  assert rows['final log cond']['pairs'] == '9'
  assert rows['final log cond']['mean d ± std'].startswith(f'{lc_d.mean():.3f} ± ')
  assert rows['classifier score']['excluded'] == '1 baseline twin diverged, 1 failed'


def test_pairs_need_one_run_of_each_setting_per_seed(tmp_path):
  d = tmp_path / 'sweep'
  _write_run(d / 'baseline_seed0', 'baseline', 0, 13.0, 5.0)
  _write_run(d / 'baseline_seed0_again', 'baseline', 0, 14.0, 5.0)
  _write_run(d / 'jacobian_clamping_seed0', 'jacobian_clamping', 0, 12.0, 6.0)
  _write_run(d / 'jacobian_clamping_seed1', 'jacobian_clamping', 1, 12.0, 6.0)
  _write_run(d / 'baseline_seed2', 'baseline', 2, 13.0, 5.0)
  _write_run(d / 'jacobian_clamping_seed2', 'jacobian_clamping', 2, 12.0, 6.0)
  _write_run(d / 'jacobian_clamping_seed2_again', 'jacobian_clamping', 2, 12.5, 6.0)
  _write_run(d / 'baseline_seed3', 'baseline', 3, 13.0, 5.0)
  _write_run(d / 'jacobian_clamping_seed3', 'jacobian_clamping', 3, 11.0, 6.0)
  # A memorize run beside them: its columns are not paired quantities.
  _write_run(d / 'memorize_seed0', 'memorize', 0, 5.0,
             final={'memorized_z_classifier_score': 4.0})
  report.write_report(str(d))
  paired = _analysis(d / 'report')['paired']['quantities']
  assert not [k for k in paired if k.startswith('memorized_z_')]
  lc = paired['final_log_cond']
  assert lc['n'] == 1 and lc['mean'] == -2.0  # Seed 3 only.
  assert lc['excluded'] == {'2 baseline runs of its seed': 1, 'no baseline run of '
                            'its seed': 1, '2 jacobian_clamping runs of its seed': 2}


def test_runs_without_a_seed_are_not_paired(sweep_dir):
  config_path = sweep_dir / 'jacobian_clamping_seed0' / runlog.CONFIG_FILE
  config_path.write_text('\n'.join(l for l in config_path.read_text().splitlines()
                                   if not l.startswith('seed')))
  manifest = json.loads((sweep_dir / 'sweep.json').read_text())
  for run in manifest['runs']:
    run.pop('seed')
  (sweep_dir / 'sweep.json').write_text(json.dumps(manifest))
  (sweep_dir / 'jacobian_clamping_seed0').rename(sweep_dir / 'jacobian_clamping_x')
  report.write_report(str(sweep_dir))
  lc = _analysis(sweep_dir / 'report')['paired']['quantities']['final_log_cond']
  assert lc['n'] == 8 and lc['excluded']['no seed'] == 1


def test_no_pairs_without_both_settings(tmp_path):
  d = tmp_path / 'sweep'
  _write_run(d / 'baseline_seed0', 'baseline', 0, 13.0, 5.0)
  report.write_report(str(d))
  assert _analysis(d / 'report')['paired'] == {}
  assert 'paired by seed' not in (d / 'report' / report.REPORT_FILE).read_text()


def test_nan_score_and_collapsed_generator_are_labelled(tmp_path):
  d = tmp_path / 'sweep'
  _write_run(d / 'baseline_seed0', 'baseline', 0, 13.0, float('nan'),
             evals=[(250, 5.0)])
  _write_run(d / 'baseline_seed1', 'baseline', 1, 14.0, 1.1)
  _write_run(d / 'baseline_seed2', 'baseline', 2, 15.0, 6.0)
  _write_run(d / 'baseline_seed3', 'baseline', 3, 16.0, 5.0, probes=())
  report.write_report(str(d))
  text = (d / 'report' / report.REPORT_FILE).read_text()
  runs = _table(text, 'run |')
  assert runs['baseline_seed0']['final log-cond'] == 'non-finite'
  assert runs['baseline_seed0']['classifier score'] == 'non-finite'  # Not 5.000.
  assert runs['baseline_seed1']['final log-cond'] == 'collapsed'
  assert runs['baseline_seed1']['classifier score'] == '1.100'
  assert 'classifier_score 1.100 < 1.5' in runs['baseline_seed1']['note']
  assert runs['baseline_seed2']['final log-cond'] == '15.00'
  out = {r['name']: r for r in _analysis(d / 'report')['runs']}
  assert out['baseline_seed0']['final_scores']['classifier_score'] == 'nan'
  assert [out[f'baseline_seed{i}']['outcome'] for i in range(4)] == [
      'non-finite', 'collapsed', 'ok', 'ok']
  rho = _analysis(d / 'report')['spearman']['baseline']['classifier_score']
  assert rho['n'] == 3 and rho['excluded'] == {'not recorded': 1}  # No probe.
  assert rho['ranked_worst'] == {'collapsed': 1, 'non-finite': 1}


def test_clusters_split_the_unregularized_runs_and_place_jc_runs(sweep_dir):
  report.write_report(str(sweep_dir))
  out = _analysis(sweep_dir / 'report')
  c = out['clusters']
  # 2-means over the 9 finite baseline values: 13..15 | 19..20.5, threshold 17;
  # within-cluster SS 2.5 + 1.25 of a total 695 / 9, so the gain 1 - 3.75 * 9 /
  # 695 = 0.951 lies beyond every one of the 2000 samples of 9 from one Gaussian:
  # p = 1 / 2001, the smallest the test gives.
  assert c['n'] == 10 and c['n_tested'] == 9
  assert c['threshold'] == pytest.approx(17.0)
  assert c['gap'] == pytest.approx(4.0)
  assert c['pooled_std'] == pytest.approx(math.sqrt(3.75 / 7))
  assert c['between_fraction'] == pytest.approx(1 - 3.75 * 9 / 695)
  assert c['p'] == pytest.approx(1 / 2001)
  assert c['separated'] is True
  assert c['good'] == [f'baseline_seed{i}' for i in range(5)]
  assert c['bad'] == [f'baseline_seed{i}' for i in range(5, 10)]  # 9 diverged.
  assert c['ranked_worst'] == {'diverged': 1}
  assert c['placed']['jacobian_clamping'] == {'good': 9, 'bad': 1, 'runs': 10,
                                             'excluded': {'failed': 1}}
  runs = {r['name']: r['cluster'] for r in out['runs']}
  assert runs['jacobian_clamping_seed9'] == 'bad'  # inf, not its earlier 12.5.
  assert runs['jacobian_clamping_seed10'] is None
  text = (sweep_dir / 'report' / report.REPORT_FILE).read_text()
  assert 'p = 0.0005 over 9 finite values: two clusters' in text
  # O2: k = round(0.4 n) over the 9 baseline runs with scores; O4 over baseline only
  # (the JC runs' constant class count would pull r above -1).
  assert out['top_k']['classifier_score'] == {
      'n': 9, 'k': 4, 'overlap': 4, 'excluded': {'diverged': 1}, 'ranked_worst': {}}
  assert 'k = round(0.4 × 9) = 4' in text
  o4 = out['o4_pearson']
  assert o4['n'] == 9 and o4['r'] == pytest.approx(-1.0, abs=1e-12)
  assert o4['excluded'] == {'diverged': 1}


def test_jc_runs_are_placed_by_the_baseline_threshold(tmp_path):
  d = tmp_path / 'sweep'
  for seed, lc in enumerate([10.0, 10.5, 11.0, 20.0, 20.5, 21.0]):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, lc)
  for seed, lc in enumerate([14.2, 14.6, 15.0, 15.8, 16.2, 16.6]):
    _write_run(d / f'jacobian_clamping_seed{seed}', 'jacobian_clamping', seed, lc)
  report.write_report(str(d))
  c = _analysis(d / 'report')['clusters']
  assert c['threshold'] == pytest.approx(15.5) and c['n'] == 6
  assert c['placed']['jacobian_clamping'] == {'good': 3, 'bad': 3, 'runs': 6,
                                             'excluded': {}}


def test_noise_is_not_split_into_clusters(tmp_path):
  d = tmp_path / 'sweep'
  for seed, lc in enumerate([10.0, 11.0, 12.0, 13.0, 14.0]):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, lc)
  _write_run(d / 'jacobian_clamping_seed0', 'jacobian_clamping', 0, 9.0)
  report.write_report(str(d))
  out = _analysis(d / 'report')
  # Evenly spaced: gain 1 - 2.5 / 10 = 0.75, which one Gaussian often reaches.
  c = out['clusters']
  assert c['between_fraction'] == pytest.approx(0.75) and c['p'] > 0.05
  assert c['separated'] is False
  assert 'good' not in c and 'placed' not in c
  assert all(r['cluster'] is None for r in out['runs'])
  text = (d / 'report' / report.REPORT_FILE).read_text()
  assert 'over 5 finite values: not clustered' in text
  assert _table(text, 'run |')['baseline_seed0']['cluster'] == '-'
  checks = _checks(d / 'report')
  split = checks['O2 MNIST cluster split (good / bad)']
  # No evidence of two clusters is not evidence of one: INCONCLUSIVE, not FAIL.
  assert split['verdict'] == 'INCONCLUSIVE' and split['n'] == 5
  assert split['note'].startswith('n = 5 < 10; not clustered: p = ')
  jc = checks['O5 JC runs in the good cluster']
  assert jc['verdict'] == 'INCONCLUSIVE' and 'not clustered' in jc['note']


def test_three_runs_are_never_called_clusters(tmp_path):
  """Three runs, two close and one far (the README job's baselines): however far,
  fewer than 4 values are no clusters, and every run is drawn as not clustered."""
  d = tmp_path / 'sweep'
  for seed, lc in enumerate([10.0, 10.01, 10.13]):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, lc)
  _write_run(d / 'jacobian_clamping_seed0', 'jacobian_clamping', 0, 9.0)
  report.write_report(str(d), num_resamples=200)
  out = _analysis(d / 'report')
  assert out['clusters']['n_tested'] == 3 and out['clusters']['separated'] is False
  assert all(r['cluster'] is None for r in out['runs'])
  # The rows that need clusters say why there are none: too few runs, not a test.
  checks = _checks(d / 'report')
  for row in ('O5 JC runs in the good cluster',
              'O5 largest singular value of E_z[J_z], good cluster below bad'):
    assert checks[row]['verdict'] == 'INCONCLUSIVE'
    assert checks[row]['note'].startswith(
        'fewer than 4 unregularized runs to split'), row


# sd (ddof 1) of linspace(-1, 1, 8): its squares sum to 2 (49 + 25 + 9 + 1) / 49 =
# 24 / 7, so the variance is 24 / 49; the standard error of a mean of 8 such values
# is sqrt(24 / 49 / 8) = sqrt(3) / 7 per unit of z_spread.
SE_PER_SPREAD = math.sqrt(3.0) / 7.0


def _noise_sweep(d, own_z):
  """Baselines 0.2 nats apart (variance 0.1) whose per-z values spread 1, 1, 2, 2, 3
  times linspace(-1, 1, 8); JC runs 1 nat apart spreading 0.5 each."""
  for seed, (lc, spread) in enumerate(zip(NOISE_LC, NOISE_SPREADS)):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, lc, 7.0, z_spread=spread,
               probe_seed=seed if own_z else None)
  for seed, lc in enumerate([10.0, 11.0, 12.0, 13.0]):
    _write_run(d / f'jacobian_clamping_seed{seed}', 'jacobian_clamping', seed, lc,
               7.0, z_spread=0.5, probe_seed=seed if own_z else None)
  report.write_report(str(d))
  return _analysis(d / 'report')['log_cond_noise']


NOISE_LC, NOISE_SPREADS = [10.0, 10.2, 10.4, 10.6, 10.8], [1.0, 1.0, 2.0, 2.0, 3.0]


def test_log_cond_noise_of_runs_on_their_own_z_is_the_mean_squared_se(tmp_path):
  noise = _noise_sweep(tmp_path / 'sweep', own_z=True)
  se = [SE_PER_SPREAD * s for s in NOISE_SPREADS]
  base = noise['baseline']
  assert base['n'] == 5 and base['num_z'] == [8] and base['z_shared'] is False
  assert base['se_median'] == pytest.approx(SE_PER_SPREAD * 2.0)
  assert (base['se_min'], base['se_max']) == pytest.approx((se[0], se[-1]))
  assert base['noise_var'] == pytest.approx(np.mean(np.square(se)))
  assert base['between_var'] == pytest.approx(0.1)
  # (1 + 1 + 4 + 4 + 9) / 5 * 3 / 49 / 0.1 = 2.33: other z alone would spread these
  # runs more than they are spread.
  assert base['noise_share'] == pytest.approx(19 / 5 * 3 / 49 / 0.1)
  assert noise['jacobian_clamping']['noise_share'] == pytest.approx(
      (SE_PER_SPREAD * 0.5) ** 2 / (5 / 3))
  text = (tmp_path / 'sweep' / 'report' / report.REPORT_FILE).read_text()
  rows = _table(text, 'setting | runs | z per run')
  assert rows['baseline / 5']['noise share'] == '2.33'
  assert rows['baseline / 5']['shared z'] == 'no'
  assert rows['jacobian_clamping / 4']['noise share'] == '0.00918'
  checks = _checks(tmp_path / 'sweep' / 'report')
  for check in ('O2 MNIST cluster split (good / bad)',
                'O4 r(final log-cond, least-sampled class count)'):
    assert 'z-sampling noise share 2.33' in checks[check]['note'], check


def test_log_cond_noise_on_shared_z_leaves_out_what_all_runs_share(tmp_path):
  noise = _noise_sweep(tmp_path / 'sweep', own_z=False)
  base = noise['baseline']
  assert base['z_shared'] is True
  # On the same z every run's deviations are s_i * linspace: only the part of s_i
  # away from their mean 1.8 differs between runs. Interaction SS = sum (s_i - 1.8)^2
  # * 24 / 7 = 2.8 * 24 / 7 = 9.6; MS = 9.6 / (4 * 7); noise var = MS / 8 = 3 / 70.
  assert base['noise_var'] == pytest.approx(3 / 70)
  assert base['noise_share'] == pytest.approx(3 / 7)
  # JC: one pattern, one size: nothing differs between runs.
  assert noise['jacobian_clamping']['noise_var'] == pytest.approx(0.0, abs=1e-12)
  checks = _checks(tmp_path / 'sweep' / 'report')
  assert 'z-sampling noise share 0.429' in checks[
      'O4 r(final log-cond, least-sampled class count)']['note']


def test_log_cond_noise_leaves_out_runs_without_a_finite_final_probe(sweep_dir):
  report.write_report(str(sweep_dir))
  noise = _analysis(sweep_dir / 'report')['log_cond_noise']
  # Baseline seed 9 diverged and JC seed 9 ended at inf: no standard error.
  assert noise['baseline']['n'] == 9 and noise['jacobian_clamping']['n'] == 9
  assert noise['baseline']['between_var'] == pytest.approx(
      np.var(BASELINE_LC, ddof=1))
  assert noise['baseline']['se_median'] == pytest.approx(SE_PER_SPREAD)


def test_the_final_per_z_log_cond_is_read_from_a_final_probe_over_more_z(tmp_path):
  """A run with final_probe_num_z: its standard error comes from the final probe's
  N z, not the 8 of the probe batch."""
  per_z = 10.0 + np.linspace(-1.0, 1.0, 32)
  runs = []
  for seed in (0, 1):
    workdir = tmp_path / f'baseline_seed{seed}'
    _write_run(workdir, 'baseline', seed, 10.0)
    runlog.RunLog(str(workdir)).append('final_probe', PROBE_STEPS[-1],
                                       mean_log_cond=float(per_z.mean()), log_cond=per_z)
    runs.append(report.RunData(f'baseline_seed{seed}', str(workdir)))
  np.testing.assert_array_equal(runs[0].final_per_z_log_cond, per_z)
  noise = report.log_cond_noise(runs)
  assert noise['num_z'] == [32]
  assert noise['se_median'] == pytest.approx(np.std(per_z, ddof=1) / np.sqrt(32))


def test_scorecard_opens_the_report_and_goes_to_report_json(sweep_dir):
  report.write_report(str(sweep_dir))
  text = (sweep_dir / 'report' / report.REPORT_FILE).read_text()
  sections = [l for l in text.splitlines() if l.startswith('## ')]
  assert sections[0] == '## Checks'
  checks = _checks(sweep_dir / 'report')
  o1 = checks['O1 MNIST ln cond(M_z) after the initial rise']
  # Per run, the 3 probes of the second half hold 3 copies of lc + linspace(-1, 1,
  # 8): 24 values whose 10th percentile sits at position 0.1 * 23 = 2.3 of the
  # sorted values, between the third -1 and the first -5/7: -1 + 0.3 * 2/7 =
  # -32/35; the 90th at +32/35. Over the 9 finished runs, mean +- 32/35 with the t
  # interval of BASELINE_LC.
  mean = np.mean(BASELINE_LC)
  assert o1['measured'] == f'{mean - 32 / 35:.2f}–{mean + 32 / 35:.2f}'
  assert o1['n'] == 9
  low, high = scipy_stats.t.interval(0.95, 8, loc=mean,
                                     scale=scipy_stats.sem(BASELINE_LC))
  assert (o1['ci_low'], o1['ci_high']) == pytest.approx((low - 32 / 35,
                                                         high + 32 / 35))
  assert 12 < low - 32 / 35 and high + 32 / 35 < 20
  assert o1['verdict'] == 'PASS' and o1['ci_method'].startswith('Student t')
  assert o1['note'].startswith(f'runs of {FULL} steps; mean over z and runs '
                               f'{mean:.2f}; p10 CI ')
  assert o1['note'].endswith('excluded: 1 diverged')
  split = checks['O2 MNIST cluster split (good / bad)']
  assert (split['measured'], split['n'], split['verdict']) == (5, 10, 'PASS')
  assert split['ci_low'] is None and split['ci_high'] is None
  top = checks['O2 lowest-log-cond runs that have the best classifier score']
  # 9 finished runs, fewer than the paper's 10: the rule alone passes them.
  assert (top['measured'], top['n'], top['verdict']) == (4, 9, 'INCONCLUSIVE')
  assert top['note'].startswith('n = 9 < 10; by the rule alone PASS; ')
  assert top['target'] == '4 of 4 (of 10 runs)'
  assert checks['O4 samples per model']['measured'] == 360
  assert checks['O4 samples per model']['verdict'] == 'SETTING'
  r = checks['O4 r(final log-cond, least-sampled class count)']
  assert r['measured'] == pytest.approx(-1.0) and r['n'] == 9
  # r = -1 (up to rounding): Fisher z's interval is [-1, -1], inside [-1, -0.502].
  assert (r['ci_low'], r['ci_high']) == pytest.approx((-1.0, -1.0))
  assert r['ci_method'] == 'Fisher z'
  assert r['verdict'] == 'INCONCLUSIVE'
  assert r['note'].startswith('n = 9 < 10; by the rule alone PASS')
  settings = checks['O5 JC settings (lambda_max, lambda_min, epsilon)']
  assert (settings['measured'], settings['n'], settings['verdict']) == (
      11, 11, 'SETTING')
  jc = checks['O5 JC runs in the good cluster']
  # 9 of 10: the non-finite run is bad; MNIST's target is 10 of 10.
  assert (jc['measured'], jc['n'], jc['verdict']) == (9, 10, 'FAIL')
  assert 'excluded: 1 failed' in jc['note']
  for key in ('CS', 'FD'):
    assert checks[f'O7 {key}, memorized z over random z']['verdict'] == 'NOT RUN'
  table = _table(text, 'check |')
  assert table['O5 JC runs in the good cluster']['verdict'] == 'FAIL'
  assert table['O2 MNIST cluster split (good / bad)']['measured'] == '5'
  assert 'PASS: the 95% CIs of the mean over runs of the p10 and of the p90' in text


def test_scorecard_of_another_dataset_is_not_run(tmp_path):
  d = tmp_path / 'sweep'
  for seed, (lc, cs) in enumerate(zip(BASELINE_LC[:4] + BASELINE_LC[-2:],
                                      BASELINE_CS[:4] + BASELINE_CS[-2:])):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, lc, cs,
               dataset='cifar10')
  report.write_report(str(d))
  checks = _checks(d / 'report')
  assert {row['verdict'] for row in checks.values()} == {'NOT RUN'}
  o1 = checks['O1 MNIST ln cond(M_z) after the initial rise']
  assert o1['measured'] is None and o1['ci_low'] is None
  assert o1['note'].startswith('the target is for mnist; this sweep is cifar10: ')
  assert checks['O5 JC runs in the good cluster']['note'] == 'no JC runs'


def test_fashion_mnist_is_judged_against_mnist_targets_and_says_so(tmp_path):
  """Fashion-MNIST stands in for MNIST (the evidence campaign): verdicts, each row
  marked in report.json, and report.md says so once, not in every row."""
  d = tmp_path / 'sweep'
  for seed, (lc, cs) in enumerate(zip(BASELINE_LC, BASELINE_CS)):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, lc, cs,
               dataset='fashion_mnist')
  report.write_report(str(d))
  checks = _checks(d / 'report')
  o1 = checks['O1 MNIST ln cond(M_z) after the initial rise']
  assert o1['verdict'] != 'NOT RUN' and o1['measured'] is not None
  assert o1['stand_in'] == 'fashion_mnist' and 'stand-in' not in o1['note']
  text = (d / 'report' / 'report.md').read_text()
  assert text.count('fashion_mnist values of mnist targets are judged on a stand-in') == 1
  split = [row for name, row in checks.items() if name.startswith('O2') and
           'split' in name]
  assert split and all(row['verdict'] != 'NOT RUN' for row in split)


def _memorize_sweep(d, values):
  for seed in range(len(values['memorized_z_classifier_score'])):
    final = {k: v[seed] for k, v in values.items()}
    for prefix in ('memorized_z_', 'random_z_'):
      final.update({prefix + 'num_samples': 10000, prefix + 'classifier': 'fake'})
    _write_run(d / f'memorize_seed{seed}', 'memorize', seed, 8.0, final=final)
  report.write_report(str(d), num_resamples=200)
  return _checks(d / 'report')


# CS on memorized z over CS on random z: 2.2, 2.25, 2.225, 2.21, 2.24 (mean 2.225);
# FD: 60/180, 61/200, 59/240, 62/280, 58/300 (mean 0.260).
O7_VALUES = {'memorized_z_classifier_score': [4.40, 4.50, 4.45, 4.42, 4.48],
             'random_z_classifier_score': [2.0] * 5,
             'memorized_z_frechet_distance': [60.0, 61.0, 59.0, 62.0, 58.0],
             'random_z_frechet_distance': [180.0, 200.0, 240.0, 280.0, 300.0]}


def test_o7_judges_the_ratio_of_memorized_to_random_z(tmp_path):
  """The paper's scores come from its own MNIST classifier: the check judges the
  ratio (4.95 / 2.22 = 2.23, 118 / 240 = 0.492, each +- 10%), not the values."""
  # Each run twice: the paper's 10 runs.
  checks = _memorize_sweep(tmp_path / 'sweep', {k: v * 2 for k, v in O7_VALUES.items()})
  cs = checks['O7 CS, memorized z over random z']
  # Mean 2.225, sd 0.0194: t interval about [2.211, 2.239], inside [2.007, 2.453],
  # though the memorized-z CS, 4.45, lies below 4.95 - 10%.
  assert cs['measured'] == pytest.approx(2.225) and cs['n'] == 10
  assert 2.007 < cs['ci_low'] < 2.225 < cs['ci_high'] < 2.453
  assert cs['verdict'] == 'PASS'
  assert 'mean memorized z 4.45; mean random z 2' in cs['note']
  fd = checks['O7 FD, memorized z over random z']
  ratios = [60 / 180, 61 / 200, 59 / 240, 62 / 280, 58 / 300]
  assert fd['measured'] == pytest.approx(sum(ratios) / 5)
  assert fd['ci_high'] < 118 / 240 * 0.9 and fd['verdict'] == 'FAIL'
  # Five runs, half the paper's: what the rule alone says, not judged.
  checks = _memorize_sweep(tmp_path / 'five', O7_VALUES)
  cs = checks['O7 CS, memorized z over random z']
  assert (cs['n'], cs['verdict']) == (5, 'INCONCLUSIVE')
  assert cs['note'].startswith('n = 5 < 10; by the rule alone PASS')
  assert checks['O1 MNIST ln cond(M_z) after the initial rise']['verdict'] == 'NOT RUN'


def test_o7_with_three_runs_is_inconclusive(tmp_path):
  checks = _memorize_sweep(tmp_path / 'sweep',
                           {k: v[:3] for k, v in O7_VALUES.items()})
  row = checks['O7 CS, memorized z over random z']
  assert row['n'] == 3 and row['ci_low'] is None
  assert row['verdict'] == 'INCONCLUSIVE'


def test_o5_settings_row_names_each_other_setting_once(tmp_path):
  """JC runs with lambda from Q (the paper's Sec. 5 procedure) are counted apart: the
  row states a setting of the arm and judges nothing; the note gives each other
  setting once, with its runs."""
  d = tmp_path / 'sweep'
  for seed in range(5):
    _write_run(d / f'jacobian_clamping_seed{seed}', 'jacobian_clamping', seed, 12.0)
    config_path = d / f'jacobian_clamping_seed{seed}' / 'config.txt'
    text = config_path.read_text()
    for key, value in (('jc_lambda_min', 1.34), ('jc_lambda_max', 7.06)):
      text = re.sub(rf'^{key}: .*$', f'{key}: {value}', text, flags=re.M)
    config_path.write_text(text)
  _write_run(d / 'jacobian_clamping_seed5', 'jacobian_clamping', 5, 12.0)
  report.write_report(str(d), num_resamples=200)
  row = _checks(d / 'report')['O5 JC settings (lambda_max, lambda_min, epsilon)']
  assert (row['measured'], row['n'], row['verdict']) == (1, 6, 'SETTING')
  assert row['note'] == ('jc_lambda_max=7.06, jc_lambda_min=1.34, jc_epsilon=1.0: 5 '
                         'runs (jacobian_clamping_seed0 to jacobian_clamping_seed4)')


def _spectra_sweep(tmp_path, levels):
  """Runs whose final E_z[J_z] singular values are exp(level - 0.25 i), i < 8: one
  curve shifted by each run's level, so its mean ln sigma_i is level - 0.875 and the
  between-run sd of every ln sigma_i is the sd of the levels."""
  d = tmp_path / 'o3'
  for setting, values in levels.items():
    for seed, level in enumerate(values):
      sv = np.exp(level - 0.25 * np.arange(8.0))
      _write_run(d / f'{setting}_seed{seed}', setting, seed, 8.0,
                 final={'avg_jacobian_singular_values': sv})
  report.write_report(str(d), num_resamples=200)
  return _checks(d / 'report'), d


O3_BELOW = "O3 VAE sensitivity below the GANs' (mean ln σ_i of E_z[J_z])"
O3_SPREAD = 'O3 run-to-run spread of ln σ_i of E_z[J_z], VAE / GAN'


# GAN levels 0.4 apart (sd sqrt(0.8 / 3)); VAE levels 0.02 apart (sd sqrt(0.002 / 3)):
# the spread ratio is sqrt(0.002 / 0.8) = 0.05.
GAN_LEVELS = [-1.1, -0.7, -0.3, 0.1]
VAE_LEVELS = [-3.03, -3.01, -2.99, -2.97]


def test_o3_scorecard_vae_below_and_alike(tmp_path):
  checks, d = _spectra_sweep(tmp_path, {'gan': GAN_LEVELS, 'vae': VAE_LEVELS})
  below = checks[O3_BELOW]
  assert below['measured'] == pytest.approx(-3.0 - (-0.5)) and below['n'] == 8
  # Every VAE below every GAN, 4 + 4 runs: exact one-sided p = 1 / C(8, 4) = 1/70;
  # the paper's 10 + 10 runs for a verdict.
  assert below['verdict'] == 'INCONCLUSIVE' and 'p = 0.0143' in below['note']
  assert below['note'].startswith('n = 8 < 20; 4 VAE and 4 GAN runs, fewer than 10 of '
                                  'either; by the rule alone PASS')
  spread = checks[O3_SPREAD]
  assert spread['measured'] == pytest.approx(0.05) and spread['n'] == 8
  # F(3, 3)'s 95% quantile is 9.28 (tables): the ratio's bound is 1 / sqrt(9.28).
  assert '0.328' in spread['rule']
  assert spread['note'].startswith('n = 8 < 20; 4 VAE and 4 GAN runs, fewer than 10 '
                                   'of either; by the rule alone PASS')
  text = (d / 'report' / report.REPORT_FILE).read_text()
  assert _table(text, 'check |')[O3_SPREAD]['verdict'] == 'INCONCLUSIVE'
  # Fig. 3: a panel per setting and one with both, 4.2 inches each at 90 dpi.
  from matplotlib import image
  figure = image.imread(str(d / 'report' / 'fig3_avg_jacobian_spectra.png'))
  assert figure.shape[1] == round(3 * 4.2 * 90)


def test_o3_with_three_runs_of_each_is_inconclusive(tmp_path):
  """3 + 3 runs: every VAE below every GAN gives p = 1 / C(6, 3) = 0.05, but fewer
  than the paper's 10 runs of either is not judged; the note says what the rule
  alone says."""
  checks, _ = _spectra_sweep(tmp_path, {'gan': GAN_LEVELS[:3],
                                        'vae': VAE_LEVELS[:3]})
  for check in (O3_BELOW, O3_SPREAD):
    assert checks[check]['verdict'] == 'INCONCLUSIVE'
    assert checks[check]['note'].startswith(
        'n = 6 < 20; 3 VAE and 3 GAN runs, fewer than 10 of either; by the rule alone '
        'PASS')
  assert 'p = 0.05' in checks[O3_BELOW]['note']


def test_o3_scorecard_fails_and_is_inconclusive(tmp_path):
  checks, _ = _spectra_sweep(tmp_path, {'gan': [-1.0, -1.01, -0.99, -1.0],
                                        'vae': [-0.5, -0.9, -0.1, -0.5]})
  # 4 + 4 runs, fewer than the paper's 10 + 10: each row says what its rule alone
  # gives.
  def alone(row):
    return checks[row]['note'].split('by the rule alone ')[1].split(';')[0]
  assert alone(O3_BELOW) == 'FAIL'   # VAE mean -0.5 above GAN -1.0.
  assert alone(O3_SPREAD) == 'FAIL'  # VAE spread 40x the GANs'.
  checks, _ = _spectra_sweep(tmp_path / 'b', {'gan': GAN_LEVELS,
                                              'vae': [-1.2, -0.8, -0.4, 0.0]})
  # Below on average but 1 + 2 + 3 = 6 pairs out of order: of the 70 orders, 24
  # have U <= 6, p = 0.343 > 0.05.
  assert checks[O3_BELOW]['verdict'] == 'INCONCLUSIVE'
  assert 'p = 0.343' in checks[O3_BELOW]['note']
  assert checks[O3_SPREAD]['measured'] == pytest.approx(1.0)
  assert alone(O3_SPREAD) == 'FAIL'  # As much spread: at least 1.
  checks, _ = _spectra_sweep(tmp_path / 'c', {'gan': GAN_LEVELS,
                                              'vae': [-3.3, -3.1, -2.9, -2.7]})
  # Half the GANs' spread: below 1 but above the F-test bound 0.328. Its rule too
  # leaves it open, so no "by the rule alone": the run counts, then the rule's note.
  assert checks[O3_SPREAD]['measured'] == pytest.approx(0.5)
  assert checks[O3_SPREAD]['verdict'] == 'INCONCLUSIVE'
  assert 'by the rule alone' not in checks[O3_SPREAD]['note']
  assert checks[O3_SPREAD]['note'].endswith(
      '4 VAE and 4 GAN runs, fewer than 10 of either; spread: VAE 0.258, GAN 0.516 '
      'nats')


def test_o3_scorecard_without_vae_runs_is_not_run(sweep_dir):
  report.write_report(str(sweep_dir), num_resamples=200)
  checks = _checks(sweep_dir / 'report')
  for check in (O3_BELOW, O3_SPREAD):
    assert checks[check]['verdict'] == 'NOT RUN'
    assert checks[check]['note'] == 'no VAE runs'


# A1/A2 runs against the generator of each step: (iterations to D accuracy 1 or
# None, final running-average D cost, minimax and -log D gradient ratio last/first).
FROZEN = {938: (12, 1e-4, 1e-5, 30.0), 9375: (35, 2e-4, 3e-4, 12.0),
          23440: (80, 5e-4, 2e-3, 4.0)}
NOISE = (None, 0.3, 0.5, 1.2)  # A3: constant instance noise; no target, not judged.


def _write_frozen_run(workdir, g_step, values, instance_noise=0.0):
  os.makedirs(workdir)
  c = config_lib.get_config()
  c.experiment = 'frozen_generator'
  c.dataset = 'fashion_mnist'
  c.train_steps = 4000  # The paper's 4,000 D iterations.
  c.instance_noise = instance_noise
  c.generator_saved_model = f'/campaign/o1/saved_models/step_{g_step:08d}'
  c.workdir = str(workdir)
  runlog.atomic_write_text(os.path.join(workdir, runlog.CONFIG_FILE),
                           config_lib.to_text(config_lib.resolve(c)))
  to_one, cost, minimax, nonsaturating = values
  log = runlog.RunLog(str(workdir))
  for step in range(100, 4001, 100):
    log.append('train', step, d_cost_avg=cost * 4000 / step,
               d_accuracy_avg=1.0 if to_one and step >= to_one else 0.9,
               grad_norm_minimax=minimax ** (step / 4000),
               grad_norm_nonsaturating=nonsaturating ** (step / 4000))
  log.append('final', 4000, iterations_to_accuracy_1=to_one, final_d_cost_avg=cost,
             grad_norm_minimax_ratio=minimax, grad_norm_nonsaturating_ratio=nonsaturating)
  log.set_status('finished', 4000)


def _frozen_sweep(tmp_path, frozen=FROZEN):
  d = tmp_path / 'a1_a2'
  for g_step, values in frozen.items():
    _write_frozen_run(d / f'frozen_g_{g_step}', g_step, values)
    _write_frozen_run(d / f'noise_{g_step}', g_step, NOISE, instance_noise=0.1)
  return d


def test_a1_a2_scorecard_and_section(tmp_path):
  d = _frozen_sweep(tmp_path)
  path = report.write_report(str(d), num_resamples=200)
  checks = _checks(os.path.dirname(path))
  a1_fast = checks['A1 iterations to D accuracy 1']
  assert (a1_fast['measured'], a1_fast['n'], a1_fast['verdict']) == (12, 3, 'PASS')
  a1_cost = checks['A1 D cost (running average) at the end']
  assert (a1_cost['measured'], a1_cost['verdict']) == (5e-4, 'PASS')
  a2_minimax = checks['A2 original-cost gradient norm, last / first']
  assert (a2_minimax['measured'], a2_minimax['verdict']) == (1e-5, 'PASS')
  a2_log_d = checks['A2 -log D gradient norm, last / first']
  assert (a2_log_d['measured'], a2_log_d['verdict']) == (4.0, 'PASS')
  text = open(path).read()
  section = _table(text, 'run | G (step) |')
  assert len(section) == 6
  assert section['frozen_g_938'] == {
      'run': 'frozen_g_938', 'G (step)': '938', 'instance noise': '0',
      'iterations to D accuracy 1': '12', 'final D cost': '0.0001',
      'original-cost gradient last / first': '1e-05',
      '-log D gradient last / first': '30'}
  assert section['noise_23440']['iterations to D accuracy 1'] == 'never'
  assert section['noise_23440']['instance noise'] == '0.1'
  assert _analysis(os.path.dirname(path))['figures']['a1_a2'] == 'a1_a2.png'
  with open(os.path.join(os.path.dirname(path), 'a1_a2.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert '](a1_a2.png)' in text


@pytest.mark.parametrize('changes,check', [
    ({938: (60, 1e-4, 1e-5, 30.0), 9375: (55, 2e-4, 3e-4, 12.0)},
     'A1 iterations to D accuracy 1'),                    # None under 50.
    ({938: (None, 1e-4, 1e-5, 30.0), 9375: (None, 2e-4, 3e-4, 12.0)},
     'A1 iterations to D accuracy 1'),                    # Never, or 80.
    ({23440: (80, 0.05, 2e-3, 4.0)}, 'A1 D cost (running average) at the end'),
    ({9375: (35, 2e-4, 1.5, 12.0)}, 'A2 original-cost gradient norm, last / first'),
    ({938: (12, 1e-4, 2e-2, 30.0), 9375: (35, 2e-4, 5e-3, 12.0)},
     'A2 original-cost gradient norm, last / first'),     # Smallest 2e-3 > 1e-3.
    ({23440: (80, 5e-4, 2e-3, 0.8)}, 'A2 -log D gradient norm, last / first'),
])
def test_a1_a2_rows_fail_by_their_rules(tmp_path, changes, check):
  d = _frozen_sweep(tmp_path, {**FROZEN, **changes})
  checks = _checks(os.path.dirname(report.write_report(str(d), num_resamples=200)))
  assert checks[check]['verdict'] == 'FAIL'
  assert all(row['verdict'] == 'PASS' for name, row in checks.items()
             if name.startswith('A') and name != check)


def test_a1_a2_with_fewer_generators_than_the_paper_is_inconclusive(tmp_path):
  """The paper trains a D against each of 3 generators: one G is n = 1 < 3, and its
  rows say what the rule alone would say."""
  d = _frozen_sweep(tmp_path, {938: FROZEN[938]})
  checks = _checks(os.path.dirname(report.write_report(str(d), num_resamples=200)))
  row = checks['A1 iterations to D accuracy 1']
  assert (row['measured'], row['n'], row['verdict']) == (12, 1, 'INCONCLUSIVE')
  assert row['note'] == 'n = 1 < 3; by the rule alone PASS; G at step 938: 12'


def test_o2_top_k_with_one_scored_run_says_so(tmp_path):
  d = tmp_path / 'one'
  _write_run(d / 'baseline_seed0', 'baseline', 0, 10.0, 7.4)
  checks = _checks(os.path.dirname(report.write_report(str(d), num_resamples=200)))
  row = checks['O2 lowest-log-cond runs that have the best scores']
  assert row['verdict'] == 'NOT RUN'
  assert row['note'] == 'fewer than 2 finished unregularized runs with scores'
  split = checks['O2 MNIST cluster split (good / bad)']
  assert split['verdict'] == 'INCONCLUSIVE'
  assert 'holds 30–70% of the unregularized runs;' in split['rule']  # Not "1–0 of 1".


def test_o2_top_k_target_is_the_papers_and_the_note_names_k(tmp_path):
  """The paper's claim is 4 of its 10 runs; with 8 runs k = round(0.4 * 8) = 3,
  which the note names, while the target and the n a verdict needs stay the
  paper's. Lowest log-cond: seeds
  0-2; best scores: seeds 5-7, so the overlap is 0."""
  d = tmp_path / 'eight'
  for seed in range(8):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, 10.0 + seed, 7.0 + seed / 10)
  checks = _checks(os.path.dirname(report.write_report(str(d), num_resamples=200)))
  row = checks['O2 lowest-log-cond runs that have the best classifier score']
  assert row['target'] == '4 of 4 (of 10 runs)'
  # Fewer runs than the paper's 10 judge nothing; the note says what the rule alone
  # gives.
  assert (row['measured'], row['n'], row['verdict']) == (0, 8, 'INCONCLUSIVE')
  assert row['note'].startswith('n = 8 < 10; by the rule alone FAIL; 0 of the k = 3 '
                                'lowest-log-cond runs (round(0.4 n), n = 8)')
  assert row['rule'].endswith("PASS or FAIL also needs n ≥ 10, the paper's n.")


def test_a1_a2_rows_are_not_run_without_frozen_runs(sweep_dir):
  checks = _checks(os.path.dirname(report.write_report(str(sweep_dir),
                                                       num_resamples=200)))
  for name in ('A1 iterations to D accuracy 1', 'A2 -log D gradient norm, last / first'):
    assert checks[name]['verdict'] == 'NOT RUN'
    assert checks[name]['note'] == 'no runs of a fresh D against a frozen G'


def test_scores_of_other_classifiers_or_sample_counts_are_not_pooled(tmp_path):
  d = tmp_path / 'sweep'
  same = {'classifier_fingerprint': 'aaa111', 'classifier': '/cache/one',
          'num_samples': 5000}
  runs = [same] * 4 + [
      dict(same, classifier='/elsewhere/one'),   # Same fingerprint: pooled.
      dict(same, classifier_fingerprint='bbb222'),
      {'classifier': 'fake', 'num_samples': 5000},  # No fingerprint: its identity.
      dict(same, num_samples=1000)]
  for seed, settings in enumerate(runs):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, 13.0 + seed,
               8.0 - 0.5 * seed, score_settings=settings)
  report.write_report(str(d))
  out = _analysis(d / 'report')
  columns = {c: v['runs'] for c, v in out['score_columns'].items()
             if v['key'] == 'classifier_score'}
  assert columns == {
      'classifier_score (classifier aaa111, N=5000)': [
          f'baseline_seed{i}' for i in range(5)],
      'classifier_score (classifier bbb222, N=5000)': ['baseline_seed5'],
      'classifier_score (classifier fake, N=5000)': ['baseline_seed6'],
      'classifier_score (classifier aaa111, N=1000)': ['baseline_seed7']}
  summary = out['settings']['baseline']['classifier_score (classifier aaa111, N=5000)']
  assert summary['n'] == 5 and summary['mean'] == pytest.approx(7.0)
  assert 'classifier_score' not in out['settings']['baseline']
  top = out['top_k']['classifier_score (classifier aaa111, N=5000)']
  assert top['n'] == 5 and top['k'] == 2
  assert top['excluded'] == {'other classifier or N': 3}
  text = (d / 'report' / report.REPORT_FILE).read_text()
  assert ('Not pooled: classifier score comes from 4 groups of runs whose classifier '
          '(fingerprint, else identity) or sample count differ') in text
  # One classifier and one sample count: one column, named by its key.
  d2 = tmp_path / 'one'
  for seed in range(2):
    _write_run(d2 / f'baseline_seed{seed}', 'baseline', seed, 13.0, 8.0,
               score_settings=same)
  report.write_report(str(d2))
  assert _analysis(d2 / 'report')['score_keys'] == ['classifier_score',
                                                    'frechet_distance']
  assert 'Not pooled' not in (d2 / 'report' / report.REPORT_FILE).read_text()


def test_distances_on_other_classifier_layers_are_not_pooled(tmp_path):
  """FD on the logits and on pool_3 are other units: two columns. The classifier
  score does not depend on the layer: one column. A record with no fd_layer was
  made on pool_3."""
  d = tmp_path / 'sweep'
  same = {'classifier_fingerprint': 'aaa111', 'classifier': '/c', 'num_samples': 5000}
  layers = [{'fd_layer': 'logits'}] * 3 + [{'fd_layer': 'pool_3'}, {}]
  for seed, layer in enumerate(layers):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, 13.0 + seed,
               8.0 - 0.5 * seed, score_settings=dict(same, **layer))
  report.write_report(str(d))
  columns = {c: (v['fd_layer'], v['runs'])
             for c, v in _analysis(d / 'report')['score_columns'].items()}
  assert columns == {
      'classifier_score': (None, [f'baseline_seed{i}' for i in range(5)]),
      'frechet_distance (classifier aaa111, N=5000, logits)': (
          'logits', ['baseline_seed0', 'baseline_seed1', 'baseline_seed2']),
      'frechet_distance (classifier aaa111, N=5000, pool_3)': (
          'pool_3', ['baseline_seed3', 'baseline_seed4'])}


def test_report_renders_every_figure_it_lists(sweep_dir):
  report.write_report(str(sweep_dir), str(sweep_dir / 'out'))
  text = (sweep_dir / 'out' / report.REPORT_FILE).read_text()
  figures = _analysis(sweep_dir / 'out')['figures']
  assert set(figures) == {'over_time', 'per_z', 'spectra', 'q', 'scatter', 'o4'}
  for name in figures.values():
    assert name, figures
    with open(sweep_dir / 'out' / name, 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert f']({name})' in text
  assert 'for one run (baseline_seed0)' in text
  assert 'exact 1-D 2-means' in text
  assert 'non-finite d_loss at step 250' in text
  assert 'No scores recorded' not in text


def test_report_without_scores_says_so(tmp_path):
  d = tmp_path / 'sweep'
  for seed, lc in enumerate([13.0, 19.0]):
    _write_run(d / f'baseline_seed{seed}', 'baseline', seed, lc)
  report.write_report(str(d))
  text = (d / 'report' / report.REPORT_FILE).read_text()
  figures = _analysis(d / 'report')['figures']
  assert 'No scores recorded' in text
  assert 'No least-sampled class counts recorded' in text
  assert figures['scatter'] is None and figures['o4'] is None
  assert figures['over_time'] and figures['spectra']
  assert 'n < 4' in text  # Two runs: no interval.


def test_report_of_a_single_run_directory(tmp_path):
  _write_run(tmp_path / 'one', 'jacobian_clamping', 0, 12.0)
  report.write_report(str(tmp_path / 'one'), str(tmp_path / 'r'))
  out = _analysis(tmp_path / 'r')
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
  result = _cli(f'--sweep_dir={sweep_dir}', '--cluster_method=gap', '--bootstrap=200',
                '--collapse_score=1.2')
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == f'report: {sweep_dir}/report/{report.REPORT_FILE}'
  text = (sweep_dir / 'report' / report.REPORT_FILE).read_text()
  assert 'largest gap' in text and '200 resamples' in text
  assert 'score is below 1.2;' in text
  assert _checks(sweep_dir / 'report')['O4 samples per model']['verdict'] == 'SETTING'


def test_q_figure_draws_only_the_clamp_bounds_that_act():
  assert report.drawn_lambdas(1.0, 20.0, 8.6) == [1.0, 20.0]
  # The clamp switched off: lambda = (0, 1e9).
  assert report.drawn_lambdas(0.0, 1e9, 8.6) == []
  assert report.drawn_lambdas(1.34, 7.06, None) == [1.34, 7.06]
