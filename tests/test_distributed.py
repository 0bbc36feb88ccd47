"""MirroredStrategy on 2 logical CPU devices trains exactly like one device.

The CPU is split into two logical devices (`tf.config.set_logical_device_configuration`),
which must happen before TensorFlow initialises its devices, so the comparison
runs in a child process: this file run as a script (`--child`). The child builds
a trainer under the default strategy and one under `distribute.make_strategy(
'mirrored')` (2 replicas), gives both the same initial weights, runs a few train
steps on the same mock-TFDS batches and reports the largest weight and loss
differences; the test asserts they are float32 round-off. As a control, the same
run with per-replica (unsynchronised) BatchNorm must differ: this shows the test
can see a wrong global batch.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

STEPS = 3
# Moving variances differ by more than float32 round-off: one device's fused
# BatchNorm stores the batch variance times n/(n-1) (Bessel), synchronised BatchNorm
# the biased one. Per step the gap is (1 - momentum) var / (n - 1), largest in D's
# last BN (n = 8 examples x 4 x 4 = 128): 3 steps x 0.1 / 127 = 2.4e-3 of var.
MOVING_VARIANCE_RTOL = 3 * (1 - 0.9) / (8 * 4 * 4 - 1)
# Adam moves each weight by about lr = 2e-4 per step: 1e-5 is 5% of one update,
# above the float32 round-off left after ADAM_EPSILON (below; ~3e-6, and 1.5e-6 in
# BN moving variances, which synchronised BN computes as E[x^2] - E[x]^2) and far
# below a real difference (per-replica BatchNorm statistics: ~6e-4).
ATOL = 1e-5
# Adam's update lr m / (sqrt(v) + eps) has slope lr / eps = 2000 at gradients near
# 0 with Keras' eps = 1e-7: gradient round-off of 1e-8 (the two strategies sum in
# different orders) becomes a 2e-5 weight difference by step 3. eps = 1e-3 (slope
# 0.2) lets the comparison see the strategies' arithmetic, not that amplification.
ADAM_EPSILON = 1e-3

CASES = {
    # Without JC, the update that reuses G(z) of the D step (n_critic = 1).
    'dcgan': {},
    # With JC, fresh z for the D and the G step, and WGAN-GP's alpha: every
    # stateless draw that is sliced per replica.
    'wgan_gp_fresh_z_jc': {'loss': 'wasserstein', 'gradient_penalty': 10.0,
                           'g_step_reuses_fake': False, 'jacobian_clamping': True},
}


def _child_config(overrides, workdir):
  from tf_gancond import config as config_lib
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', batch_size=8, train_steps=STEPS, g_base_channels=16,
                d_base_channels=8, latent_dim=8, probe_every=0, shuffle_buffer=16,
                workdir=workdir))
  c.update(overrides)
  return config_lib.validate(config_lib.resolve(c))


def _child_run(config, strategy, init_weights, sync_override=None):
  """(losses per step, all G/D weights, weight names, trainer) after STEPS steps
  from `init_weights`."""
  import tensorflow as tf
  from tf_gancond import data as data_lib
  from tf_gancond import models
  from tf_gancond import train
  build = models.build_gan
  if sync_override is not None:
    train.models.build_gan = lambda c, sync_batch_norm: build(
        c, sync_batch_norm=sync_override)
  try:
    trainer = train.GANTrainer(config, strategy)
  finally:
    train.models.build_gan = build
  trainer.g_optimizer.epsilon = trainer.d_optimizer.epsilon = ADAM_EPSILON
  nets = (trainer.generator, trainer.discriminator)
  if init_weights is not None:
    for net, weights in zip(nets, init_weights):
      net.set_weights(weights)
  iterator = iter(strategy.experimental_distribute_dataset(
      data_lib.make_dataset(config)))
  metrics, start = [], time.perf_counter()
  for _ in range(STEPS):
    out = trainer.train_step(iterator)
    metrics.append({k: v.numpy() for k, v in out.items()})
  tf.debugging.assert_equal(trainer.step, tf.constant(STEPS, tf.int64))
  print(f'{config.loss} {strategy.num_replicas_in_sync} replicas: '
        f'{time.perf_counter() - start:.1f} s', file=sys.stderr)
  names = [v.name for net in nets for v in net.weights]
  return metrics, [net.get_weights() for net in nets], names, trainer


def _q_of(trainer):
  """Q [2 g_batch_size] of the trainer's G (measure_q, outside strategy.run as the
  loop's records call it) on fixed z, z'."""
  c = trainer.config
  rng = np.random.default_rng(0)
  z = rng.standard_normal((2 * c.g_batch_size, c.latent_dim)).astype(np.float32)
  z_prime = z + 0.3 * rng.standard_normal(z.shape).astype(np.float32)
  return trainer.measure_q(z, z_prime).numpy()


def _metric_diffs(one, two):
  """{name: largest |difference| relative to max(|value|, 1e-3)} over the steps."""
  # 1e-3 floor: a metric that is ~0 (d_accuracy at 0.5 +- 0) is compared absolutely.
  return {k: max(float(np.max(np.abs(a[k] - b[k]) / np.maximum(np.abs(a[k]), 1e-3)))
                 for a, b in zip(one, two)) for k in one[0]}


def _max_diff(a, b):
  """Largest |x - y| / max(|x|, 1): relative for weights above 1 (BN variances)."""
  return max(float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1.0)))
             for x, y in zip(a, b))


def _child(workdir):
  import tensorflow as tf
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  import tensorflow_datasets as tfds
  from tf_gancond import distribute
  mirrored = distribute.make_strategy('mirrored')
  report = {'replicas': mirrored.num_replicas_in_sync}
  with tfds.testing.mock_data(num_examples=32):
    for name, overrides in CASES.items():
      config = _child_config(overrides, workdir)
      init = _initial_weights(config)
      one_metrics, one_weights, names, one = _child_run(
          config, tf.distribute.get_strategy(), init)
      two_metrics, two_weights, _, two = _child_run(config, mirrored, init)
      q_one, q_two = _q_of(one), _q_of(two)
      one_all, two_all = one_weights[0] + one_weights[1], two_weights[0] + two_weights[1]
      variance = ['moving_variance' in n for n in names]
      pick = lambda ws, want: [w for w, v in zip(ws, variance) if v == want]  # noqa: E731
      report[name] = {
          'weights': _max_diff(pick(one_all, False), pick(two_all, False)),
          'moving_variances': _max_diff(pick(one_all, True), pick(two_all, True)),
          'metrics': _metric_diffs(one_metrics, two_metrics),
          'q': float(np.max(np.abs(q_one - q_two) / q_one)),
          'moved': _max_diff(init[0] + init[1], one_all)}
      if name == 'dcgan':
        _, unsync, _, _ = _child_run(config, mirrored, init, sync_override=False)
        report['unsynchronised_bn_weights'] = _max_diff(
            pick(one_all, False), pick(unsync[0] + unsync[1], False))
    # A global batch that the replicas cannot share evenly is refused up front.
    from tf_gancond import config as config_lib
    from tf_gancond import train
    config = _child_config({'batch_size': 7, 'strategy': 'mirrored'}, workdir + '_odd')
    try:
      train.train_and_evaluate(config)
    except config_lib.ConfigError as e:
      report['odd_batch_error'] = str(e)
    report['odd_batch_wrote'] = os.path.exists(workdir + '_odd')
    report['bf16_probe_vs_export'] = _bf16_probe_against_export(mirrored, workdir)
  print('RESULT ' + json.dumps(report))


def _bf16_probe_against_export(strategy, workdir):
  """Largest relative differences of a precision=bfloat16 run under `strategy`:
  'probe', between its last probe (its float32 twin of G, given the mirrored
  variables) and the probe of its float32 SavedModel on the same z; 'images', between
  that SavedModel's images and those of a float32 G restored from the run's last
  checkpoint (a stale twin would differ)."""
  from tf_gancond import export
  from tf_gancond import models
  from tf_gancond import probes
  from tf_gancond import runlog
  from tf_gancond import train
  config = _child_config({'precision': 'bfloat16', 'strategy': 'mirrored',
                          'probe_every': STEPS, 'probe_num_z': 4, 'log_every': 1},
                         workdir + '_bf16')
  train.train_and_evaluate(config, strategy)
  record = runlog.read_records(config.workdir, 'probe')[-1]
  generate, _ = export.load_generator(
      runlog.read_status(config.workdir)['final_saved_model'])
  z = probes.fixed_probe_z(config.latent_dim, config.probe_num_z, config.probe_seed)
  exported = probes.probe_generator(generate, z)['log_cond']
  images = generate(z).numpy()
  _, g, _, _ = models.restore_run_gan(config.workdir)
  return {'probe': float(np.max(np.abs(exported - np.asarray(record['log_cond'])) /
                                np.abs(exported))),
          'images': float(np.max(np.abs(images - g(z, training=False).numpy())) /
                          np.max(np.abs(images)))}


def _initial_weights(config):
  """Fresh G and D weights (the same for both strategies)."""
  import tensorflow as tf
  from tf_gancond import models
  tf.keras.utils.set_random_seed(1)
  return [net.get_weights() for net in models.build_gan(config)]


def _run_child(tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  proc = subprocess.run([sys.executable, __file__, '--child', str(tmp_path / 'run')],
                        capture_output=True, text=True, timeout=240, env=env)
  lines = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')]
  assert proc.returncode == 0 and lines, proc.stderr[-3000:]
  return json.loads(lines[-1][len('RESULT '):])


@pytest.fixture(scope='module')
def report(tmp_path_factory):
  return _run_child(tmp_path_factory.mktemp('distributed'))


def test_mirrored_uses_two_logical_cpu_devices(report):
  assert report['replicas'] == 2


@pytest.mark.parametrize('case', sorted(CASES))
def test_mirrored_matches_one_device(report, case):
  r = report[case]
  assert r['moved'] > 10 * ATOL, r  # The steps did change the weights.
  assert r['weights'] < ATOL, r  # Trainable weights and moving means.
  assert r['moving_variances'] < MOVING_VARIANCE_RTOL, r
  # Losses, logits, gradient norms (of the global-batch loss), penalties, Q [B].
  assert {'d_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm'} <= set(r['metrics'])
  assert max(r['metrics'].values()) < 1e-4, r
  # Q of the records, measured outside strategy.run with synchronised BatchNorm.
  assert r['q'] < 1e-4, r


def test_batch_not_divisible_by_replicas_is_refused(report):
  assert report['odd_batch_error'] == (
      "batch_size=7 must be a multiple of the 2 replicas of strategy='mirrored' "
      '(it is the global batch)')
  assert not report['odd_batch_wrote']


def test_bfloat16_probe_under_mirrored_equals_its_float32_export(report):
  assert report['bf16_probe_vs_export']['probe'] < 1e-6, report
  assert report['bf16_probe_vs_export']['images'] < 1e-6, report


def test_unsynchronised_batch_norm_would_differ(report):
  # Per-replica statistics over 4 of the 8 examples: a visibly different update.
  assert report['unsynchronised_bn_weights'] > 10 * ATOL, report


if __name__ == '__main__':
  if sys.argv[1:2] == ['--child']:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _child(sys.argv[2])
