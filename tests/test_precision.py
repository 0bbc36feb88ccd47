"""precision=bfloat16: what stays float32, probes on float32 weights, resume, and the
report's arms and equivalence rule (docs/experiments.md#bf16)."""

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from scipy import stats as scipy_stats

from tf_gancond import config as config_lib
from tf_gancond import export
from tf_gancond import models
from tf_gancond import probes
from tf_gancond import results
from tf_gancond import runlog
from tf_gancond import train
from tf_gancond.report import precision
from tf_gancond.report import records


def _run(config):
  with tfds.testing.mock_data(num_examples=32):
    return train.train_and_evaluate(config)


def _bf16(config, **overrides):
  config.precision = 'bfloat16'
  config.update(overrides)
  return config_lib.validate(config)


def test_bfloat16_computes_in_bf16_and_keeps_float32_where_it_must(tiny_config):
  c = _bf16(tiny_config, jacobian_clamping=True, gradient_penalty=10.0)
  trainer = train.GANTrainer(c, tf.distribute.get_strategy())
  g, d = trainer.generator, trainer.discriminator
  assert g.ups[0].compute_dtype == 'bfloat16' and d.convs[1].compute_dtype == 'bfloat16'
  assert {v.dtype for v in g.variables + d.variables} == {tf.float32}
  z = tf.random.normal([4, c.latent_dim])
  images = g(z, training=True)
  assert images.dtype == tf.float32  # tanh on the float32 cast of the last conv.
  assert d(images, training=True).dtype == tf.float32  # The logit layer is float32.
  with tfds.testing.mock_data(num_examples=32):
    iterator = trainer.make_iterator(c, 0)
  out = trainer.train_step(iterator)
  for key in ('d_loss', 'g_loss', 'jc_penalty', 'q', 'gradient_penalty',
              'd_input_grad_norm', 'g_grad_norm', 'd_grad_norm'):
    assert out[key].dtype == tf.float32, key
  assert {v.dtype for v in trainer.g_optimizer.variables if v.dtype.is_floating} == {
      tf.float32}  # Adam's moments; its iteration count is int64.
  # The float32 twin computes in float32 on the trained variables.
  twin = trainer.float32_generator()
  assert twin.ups[0].compute_dtype == 'float32'
  for a, b in zip(twin.variables, g.variables):
    np.testing.assert_array_equal(a.numpy(), tf.convert_to_tensor(b).numpy())


def test_bfloat16_and_float32_runs_of_a_seed_start_from_the_same_weights(tiny_config):
  # What pairs a bf16 run with its float32 twin: the same initial G and D (and the
  # same z and data streams, keyed by seed and step).
  weights = {}
  for name in ('float32', 'bfloat16'):
    c = config_lib.validate(dict_copy(tiny_config, precision=name))
    tf.keras.utils.set_random_seed(c.seed)  # As loop.run does before the trainer.
    trainer = train.GANTrainer(c, tf.distribute.get_strategy())
    weights[name] = [tf.convert_to_tensor(v).numpy() for v in
                     trainer.generator.variables + trainer.discriminator.variables]
  assert len(weights['float32']) == len(weights['bfloat16'])
  for a, b in zip(weights['float32'], weights['bfloat16']):
    np.testing.assert_array_equal(a, b)


def test_bfloat16_with_r_w_gradient_clamps_and_batch_statistics_probes(tiny_config):
  c = _bf16(tiny_config, rw_lambda=0.1, grad_clamp_g_ratio=1.5, grad_clamp_d_ratio=4.0,
            probe_bn_mode='batch_stats')
  _run(c)
  record = runlog.read_records(c.workdir, 'train')[-1]
  for key in ('rw_mean', 'g_grad_sigma_ratio', 'd_grad_sigma_ratio'):
    assert np.isfinite(record[key]) and record[key] > 0, key
  # The batch-statistics probe ran on the float32 G: the same numbers from a float32
  # G restored from the run's last checkpoint.
  probe = runlog.read_records(c.workdir, 'probe')[-1]
  assert probe['bn_mode'] == 'batch_stats' and probe['step'] == c.train_steps
  _, g, _, _ = models.restore_run_gan(c.workdir)
  z = probes.fixed_probe_z(c.latent_dim, c.probe_num_z, c.probe_seed)
  with probes.held_batch_statistics(g, z) as generate:
    again = probes.probe_generator(generate, z)
  np.testing.assert_allclose(again['log_cond'], probe['log_cond'], rtol=1e-6)


def dict_copy(config, **overrides):
  copy = config.copy_and_resolve_references()
  copy.update(overrides)
  return copy


def test_float32_default_builds_float32_layers_and_no_twin(tiny_config):
  trainer = train.GANTrainer(tiny_config, tf.distribute.get_strategy())
  assert trainer.generator.ups[0].compute_dtype == 'float32'
  assert trainer.float32_generator() is trainer.generator


def test_probe_of_a_bfloat16_run_equals_the_probe_of_its_float32_export(tiny_config):
  c = _bf16(tiny_config)
  _run(c)
  status = runlog.read_status(c.workdir)
  record = runlog.read_records(c.workdir, 'probe')[-1]
  assert record['step'] == c.train_steps == status['step']
  generate, _ = export.load_generator(status['final_saved_model'])
  z = probes.fixed_probe_z(c.latent_dim, c.probe_num_z, c.probe_seed)
  exported = probes.probe_generator(generate, z)
  np.testing.assert_allclose(exported['log_cond'], record['log_cond'], rtol=1e-6)
  # The export computes in float32: its images differ from the bf16 model's.
  _, g, _, _ = models.restore_run_gan(c.workdir)
  assert g.ups[0].compute_dtype == 'float32'
  mixed = models.build_gan(c)[0]
  for a, b in zip(mixed.variables, g.variables):
    a.assign(b)
  images = generate(z).numpy()
  np.testing.assert_allclose(images, g(z, training=False).numpy(), rtol=1e-5,
                             atol=1e-9)
  # bf16 keeps 8 mantissa bits: relative errors of about 2^-9, not float32's 2^-24.
  relative = np.max(np.abs(images - mixed(z, training=False).numpy())) / np.max(
      np.abs(images))
  assert relative > 1e-3
  with open(os.path.join(status['final_saved_model'], export.METADATA_FILE)) as f:
    meta = json.load(f)
  assert meta['precision'] == 'bfloat16'
  assert runlog.read_records(c.workdir, 'start')[0]['precision'] == 'bfloat16'
  assert "precision: 'bfloat16'" in open(os.path.join(c.workdir, 'config.txt')).read()


def test_resume_refuses_a_change_of_precision(tiny_config):
  c = tiny_config
  c.probe_every = 0
  _run(c)
  config_path = os.path.join(c.workdir, 'config.txt')
  before = open(config_path).read()
  c.train_steps = 6
  with pytest.raises(config_lib.ConfigError,
                     match="precision='float32' -> 'bfloat16'"):
    _run(_bf16(c))
  assert open(config_path).read() == before
  # A run made before the setting existed (no precision in config.txt) was float32.
  with open(config_path, 'w') as f:
    f.write(''.join(line for line in before.splitlines(True)
                    if not line.startswith('precision:')))
  with pytest.raises(config_lib.ConfigError, match="precision='float32' -> 'bfloat16'"):
    _run(c)
  c.precision = 'float32'
  _run(c)
  assert runlog.read_status(c.workdir)['step'] == 6


@pytest.mark.parametrize('overrides, message', [
    (dict(precision='float16'), "precision='float16' is not allowed; choose one of: "
     'float32, bfloat16'),
    (dict(precision='bfloat16', architecture='resnet_wgangp', dataset='cifar10'),
     "precision='bfloat16' is built for experiment=gan with architecture=dcgan only"),
    (dict(precision='bfloat16', experiment='vae'),
     "precision='bfloat16' is built for experiment=gan with architecture=dcgan only"),
])
def test_bad_precision_is_refused_with_what_is_allowed(overrides, message):
  c = config_lib.get_config()
  c.update(overrides)
  with pytest.raises(config_lib.ConfigError, match=message.replace('(', r'\(')):
    config_lib.validate(c)


# ----- the report: arms and the equivalence rule -----

def _write_run(folder, name, precision_value, seed):
  run_dir = os.path.join(folder, name)
  os.makedirs(run_dir)
  c = config_lib.get_config()
  c.precision, c.seed = precision_value, seed
  runlog.atomic_write_text(os.path.join(run_dir, runlog.CONFIG_FILE),
                           config_lib.to_text(c))
  return run_dir


def test_bfloat16_runs_are_an_arm_of_their_own(tmp_path):
  _write_run(tmp_path, 'baseline_seed0', 'float32', 0)
  _write_run(tmp_path, 'bf16_seed0', 'bfloat16', 0)
  runs = {r.name: r for r in records.load_sweep(str(tmp_path))[1]}
  assert runs['baseline_seed0'].setting == 'baseline'
  assert runs['bf16_seed0'].setting == 'baseline_bfloat16'
  assert records.settings_of(runs.values()) == ['baseline', 'baseline_bfloat16']
  # A sweep manifest's setting name gets the suffix too.
  named = records.RunData('x', os.path.join(tmp_path, 'bf16_seed0'), setting='baseline')
  assert named.setting == 'baseline_bfloat16'


def _pair_runs(deltas, key='final_log_cond', failed_seeds=(), missing_seeds=()):
  """float32 and bf16 analysis.json run entries whose `key` differs by `deltas`; the
  bf16 runs of `failed_seeds` diverged, those of `missing_seeds` lack `key`."""
  base = {'final_log_cond': 12.0, 'final_log_cond_p10': 11.0,
          'final_log_cond_p90': 13.0, 'min_class_count': 30.0,
          'median_step_time': 0.4}
  scores = {'classifier_score': 8.5, 'frechet_distance': 20.0}
  f32, bf16 = [], []
  for seed, delta in enumerate(deltas):
    common = dict(seed=seed, state='finished', outcome='ok')
    f32.append(dict(base, setting='baseline', precision='float32',
                    final_scores=dict(scores), **common))
    run = dict(base, setting='baseline_bfloat16', precision='bfloat16',
               final_scores=dict(scores), median_step_time=0.25, **common)
    target = run['final_scores'] if key in scores else run
    target[key] += delta
    if seed in missing_seeds:
      del target[key]
    if seed in failed_seeds:
      run.update(state='diverged', outcome='diverged')
    bf16.append(run)
  return f32, bf16


def test_equivalence_interval_is_the_paired_student_t_interval():
  deltas = [0.01 * k for k in range(-4, 6)]  # Mean 0.005, sd sqrt(55/6) / 100.
  f32, bf16 = _pair_runs(deltas)
  result = precision.compare(f32, bf16)
  row = result['rows'][0]
  half = scipy_stats.t.ppf(0.975, 9) * math.sqrt(55 / 6) / 100 / math.sqrt(10)
  assert row['n'] == 10 and row['mean'] == pytest.approx(0.005)
  assert (row['low'], row['high']) == pytest.approx((0.005 - half, 0.005 + half))
  assert row['verdict'] == precision.EQUIVALENT
  assert result['step_time']['ratio'] == pytest.approx(0.625)
  assert result['verdict'] == precision.EQUIVALENT and result['pairs'] == 10


@pytest.mark.parametrize('deltas, key, failed, missing, verdict, reason', [
    ([0.5] * 5 + [0.6] * 5, 'final_log_cond', (), (), precision.NOT_EQUIVALENT,
     'outside the margin: ln cond: mean over z'),
    ([0.0, 0.2] * 5, 'classifier_score', (), (), precision.INCONCLUSIVE,
     'intervals that cross a margin: classifier score'),
    ([0.0] * 9, 'final_log_cond', (), (), precision.INCONCLUSIVE,
     'fewer than 10 pairs: ln cond: mean over z'),
    # A quantity with fewer values than pairs (scores missing) is not judged enough.
    ([0.0] * 12, 'frechet_distance', (), (0, 1, 2), precision.INCONCLUSIVE,
     'fewer than 10 pairs: Fréchet distance (logits)'),
    # One bf16 failure: its pair drops out (9 left); the sign test has p = 0.5.
    ([0.0] * 10, 'final_log_cond', (9,), (), precision.INCONCLUSIVE,
     'failed runs: 1 bf16 only, 0 float32 only (sign test p = 0.5)'),
    # Five of 15, all bf16's: p = 2^-5 = 0.03125.
    ([0.0] * 15, 'final_log_cond', (0, 1, 2, 3, 4), (), precision.NOT_EQUIVALENT,
     'bf16 fails more often: failed runs: 5 bf16 only, 0 float32 only (sign test '
     'p = 0.0312)'),
    ([3.0, -3.0] * 5, 'min_class_count', (), (), precision.EQUIVALENT,
     'every interval inside its margin'),
])
def test_equivalence_verdicts(deltas, key, failed, missing, verdict, reason):
  f32, bf16 = _pair_runs(deltas, key, failed, missing)
  result = precision.compare(f32, bf16)
  assert result['verdict'] == verdict
  assert reason in result['reason']


def test_results_page_shows_the_bf16_section_once_both_parts_exist():
  f32, bf16 = _pair_runs([0.01 * k for k in range(-4, 6)])
  part = lambda name, runs: results.Part(name, {}, [], {}, 'mnist', 5000, 10, {},  # noqa
                                         runs)
  assert results._precision_lines([part(results.CHOICE_REFERENCE, f32)]) == []
  lines = results._precision_lines([part(results.CHOICE_REFERENCE, f32),
                                    part(results.PRECISION_PART, bf16)])
  text = '\n'.join(lines)
  assert lines[0] == '## bf16 against float32'
  assert '| ln cond: mean over z | 10 | +0.005 [' in text
  assert ('| seconds per step, bf16 / float32 (geometric mean) | 10 | 0.625 [0.625, '
          '0.625] |') in text
  assert 'Verdict: **EQUIVALENT**' in text


def test_a_finished_run_made_before_the_setting_is_finished_at_its_settings(tiny_config):
  c = tiny_config
  c.probe_every = 0
  first = _run(c)
  config_path = os.path.join(c.workdir, 'config.txt')
  with open(config_path) as f:
    text = f.read()
  with open(config_path, 'w') as f:
    f.write(''.join(line for line in text.splitlines(True)
                    if not line.startswith('precision:')))
  records_before = runlog.read_records(c.workdir)
  assert _run(c) == first  # Nothing to do: no records added, the same results.
  assert runlog.read_records(c.workdir) == records_before


def test_runs_of_other_lengths_are_not_paired():
  f32, bf16 = _pair_runs([0.0] * 10)
  for run in f32:
    run['step'] = 5000
  for run in bf16:
    run['step'] = 5000
  bf16[0]['step'] = 300  # A shorter bf16 run is no twin of a 5,000-step one.
  assert [b['seed'] for _, b in precision.pairs(f32, bf16)] == list(range(1, 10))
  bf16[0].update(state='diverged', outcome='diverged')  # A divergence pairs at any step.
  assert len(precision.pairs(f32, bf16)) == 10
