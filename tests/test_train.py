"""End-to-end training on mock data: files written, SavedModel contract, resume."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_gancond import export
from tf_gancond import runlog
from tf_gancond import train


def _event_tags(workdir):
  tags = set()
  for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.add(value.tag)
  return tags


def _run(config):
  with tfds.testing.mock_data(num_examples=32):
    return train.train_and_evaluate(config)


def test_end_to_end_writes_every_file(tiny_config):
  c = tiny_config
  c.probe_every = 0
  _run(c)
  w = c.workdir
  assert os.path.exists(os.path.join(w, 'config.txt'))
  assert 'dataset: ' in open(os.path.join(w, 'config.txt')).read()
  assert glob.glob(os.path.join(w, 'checkpoints', 'ckpt-4.index'))
  tags = _event_tags(w)
  for tag in ('train/d_loss', 'train/g_loss', 'train/g_grad_norm', 'train/d_grad_norm',
              'train/steps_per_sec', 'train/q_mean', 'train/q'):
    assert tag in tags, tag
  status = runlog.read_status(w)
  assert status['state'] == 'finished' and status['step'] == 4
  steps = [r['step'] for r in runlog.read_records(w, 'train')]
  assert steps == [2, 4]
  generate, latent_dim = export.load_generator(status['final_saved_model'])
  assert latent_dim == c.latent_dim
  images = generate(tf.random.normal([5, latent_dim])).numpy()
  assert images.shape == (5, 28, 28, 1)
  assert np.all(np.abs(images) <= 1.0)


def test_exported_generator_matches_keras_inference(tiny_config):
  c = tiny_config
  c.probe_every = 0
  c.train_steps = 2
  c = c
  with tfds.testing.mock_data(num_examples=32):
    trainer = train.GANTrainer(c, tf.distribute.get_strategy())
  path = os.path.join(c.workdir, 'g')
  export.export_generator(trainer.generator, path, c.latent_dim, (28, 28, 1))
  generate, _ = export.load_generator(path)
  z = tf.random.normal([3, c.latent_dim])
  np.testing.assert_allclose(generate(z).numpy(),
                             trainer.generator(z, training=False).numpy(), atol=1e-5)
  meta = json.load(open(os.path.join(path, export.METADATA_FILE)))
  assert meta['latent_dim'] == c.latent_dim and meta['image_shape'] == [28, 28, 1]


def test_resume_continues_at_saved_step(tiny_config):
  c = tiny_config
  c.probe_every = 0
  _run(c)
  c.train_steps = 8
  _run(c)
  steps = [r['step'] for r in runlog.read_records(c.workdir, 'train')]
  assert steps == [2, 4, 6, 8]
  assert runlog.read_status(c.workdir)['step'] == 8


def test_resume_after_crash_drops_records_past_checkpoint(tiny_config):
  c = tiny_config
  c.probe_every = 0
  _run(c)
  # A crash after step 4's checkpoint would have left later records and a cut line.
  with open(os.path.join(c.workdir, 'metrics.jsonl'), 'a') as f:
    f.write(json.dumps({'kind': 'train', 'step': 6}) + '\n{"kind": "tr')
  c.train_steps = 6
  _run(c)
  steps = [r['step'] for r in runlog.read_records(c.workdir, 'train')]
  assert steps == [2, 4, 6]


def test_jacobian_clamping_run_logs_q_and_penalty(tiny_config):
  c = tiny_config
  c.probe_every = 0
  c.jacobian_clamping = True
  _run(c)
  tags = _event_tags(c.workdir)
  assert {'train/jc_penalty', 'train/q_mean', 'train/q_p95', 'train/q'} <= tags
  record = runlog.read_records(c.workdir, 'train')[-1]
  assert record['q_p5'] <= record['q_p50'] <= record['q_p95']


def _check_measure_q(trainer, num_classes=0):
  """measure_q over 3 batches against a float64 reference of each batch's Q from G in
  training mode on [z_b; z'_b] (BatchNorm over those 2B rows, as in a JC step), with
  each batch's own labels; BatchNorm's moving statistics left as they were."""
  c, g = trainer.config, trainer.generator
  b = c.g_batch_size
  rng = np.random.default_rng(0)
  z = rng.standard_normal((3 * b, c.latent_dim)).astype(np.float32)
  z_prime = z + 0.3 * rng.standard_normal(z.shape).astype(np.float32)
  labels = (np.repeat(np.arange(3, dtype=np.int32), b) % num_classes
            if num_classes else None)  # One class per batch: a mix-up shows.
  g(tf.constant(z), labels=labels, training=True)  # Builds G.
  for v in g.trainable_variables:  # Per-class BatchNorm gains differ from their start.
    v.assign_add(0.1 * tf.random.stateless_normal(v.shape, seed=[1, 2]))
  moving = [v for v in g.variables if 'moving_' in v.name]
  g(tf.constant(z), labels=labels, training=True)  # Move the statistics off their start.
  before = [v.numpy() for v in moving]
  q = trainer.measure_q(tf.constant(z), tf.constant(z_prime), labels).numpy()
  for v, value in zip(moving, before):
    np.testing.assert_array_equal(v.numpy(), value)
  expected = []
  for rows in np.split(np.arange(3 * b), 3):
    both = None if labels is None else np.concatenate([labels[rows]] * 2)
    x = g(tf.constant(np.concatenate([z[rows], z_prime[rows]])), labels=both,
          training=True)
    x = x.numpy().astype(np.float64).reshape(2 * b, -1)
    dz = z[rows].astype(np.float64) - z_prime[rows]
    expected.append(np.linalg.norm(x[:b] - x[b:], axis=1) / np.linalg.norm(dz, axis=1))
  np.testing.assert_allclose(q, np.concatenate(expected), rtol=1e-4)


def test_q_is_measured_batch_by_batch_as_a_jc_step_sees_it(tiny_config):
  _check_measure_q(train.GANTrainer(tiny_config, tf.distribute.get_strategy()))


def test_q_of_a_conditional_generator_keeps_each_batch_labels(tmp_path):
  from tf_gancond import config as config_lib
  path = os.path.join(os.path.dirname(__file__), '..', 'configs', 'o6_cifar_wgangp_jc.py')
  c = config_lib.load_config_file(path)
  c.update(dict(batch_size=4, g_batch_size=4, g_base_channels=8, d_base_channels=8,
                latent_dim=4, workdir=str(tmp_path / 'run')))
  c = config_lib.validate(config_lib.resolve(c))
  trainer = train.GANTrainer(c, tf.distribute.get_strategy())
  _check_measure_q(trainer, num_classes=trainer.num_classes)


@pytest.mark.parametrize('jacobian_clamping', [False, True])
def test_q_statistics_come_from_one_measurement_in_every_setting(tiny_config,
                                                                 jacobian_clamping):
  """A train record's Q percentiles come from q_num_batches x g_batch_size fresh
  pairs measured at the interval's end, with and without JC, so the settings'
  percentiles have the same sampling error; a JC record adds the share of its
  steps' Q that the clamp acted on (outside [lambda_min, lambda_max])."""
  import types
  c = tiny_config
  c.q_num_batches = 3
  c.jacobian_clamping = jacobian_clamping
  trainer = train.GANTrainer(c, tf.distribute.get_strategy())
  trainer.start(types.SimpleNamespace(step=0))
  step_q = {'q': np.array([0.5, 2.0, 2.0, 30.0] * 2, np.float32)}
  interval = [dict(d_loss=np.float32(step), **(step_q if jacobian_clamping else {}))
              for step in (1.0, 2.0)]
  record, histograms = trainer.summarize(interval)
  n = 3 * c.g_batch_size
  assert record['q_num_samples'] == n and histograms['q'].shape == (n,)
  assert record['d_loss'] == 1.5
  np.testing.assert_allclose(record['q_p95'], np.percentile(histograms['q'], 95))
  np.testing.assert_allclose(record['q_mean'], histograms['q'].mean(), rtol=1e-6)
  if jacobian_clamping:
    assert record['jc_clamped_share'] == 0.5  # 0.5 < 1 and 30 > 20, of 0.5, 2, 2, 30.
  else:
    assert 'jc_clamped_share' not in record


@pytest.mark.parametrize('loss', ['minimax', 'wasserstein', 'hinge'])
def test_every_loss_trains_one_step(tiny_config, loss):
  c = tiny_config
  c.probe_every = 0
  c.loss = loss
  c.train_steps = 2
  if loss == 'wasserstein':
    c.gradient_penalty = 10.0
    c.n_critic = 2
  final = _run(c)
  assert final == {}  # No probes and no scores asked for: no end results invented.
  record = runlog.read_records(c.workdir, 'train')[-1]
  assert np.isfinite(record['g_loss'])
  real, fake, d_loss = record['d_real_logit'], record['d_fake_logit'], record['d_loss']
  softplus = lambda x: np.logaddexp(0.0, x)  # noqa: E731
  # The named loss is the one trained: each D loss against its logits. The logged
  # values are batch (and interval) means, and the convex losses are bounded below
  # by their value at the mean logits (Jensen); the Wasserstein loss is linear.
  if loss == 'wasserstein':
    np.testing.assert_allclose(d_loss, fake - real, rtol=1e-5, atol=1e-6)
  elif loss == 'hinge':
    assert d_loss >= max(0, 1 - real) + max(0, 1 + fake) - 1e-6
    assert d_loss != pytest.approx(fake - real)
  else:
    assert d_loss >= softplus(-real) + softplus(fake) - 1e-6
  # The two G losses on one D differ in sign: -log D(G(z)) > 0 and log(1 - D(G(z))) < 0.
  if loss == 'non_saturating':
    assert record['g_loss'] > 0
  elif loss == 'minimax':
    assert record['g_loss'] < 0


def test_workdir_with_other_settings_is_refused(tiny_config):
  c = tiny_config
  c.probe_every = 0
  _run(c)
  before = open(os.path.join(c.workdir, 'config.txt')).read()
  c.loss = 'hinge'
  with pytest.raises(ValueError, match="loss='non_saturating' -> 'hinge'"):
    _run(c)
  assert open(os.path.join(c.workdir, 'config.txt')).read() == before


def test_lipschitz_hooks_run_and_log(tiny_config):
  """S2 r(W) penalty and S3 gradient clamps in both nets log their statistics."""
  c = tiny_config
  c.probe_every = 0
  c.train_steps = 2
  c.rw_lambda = 0.1
  c.grad_clamp_g_ratio = 1.5
  c.grad_clamp_d_ratio = 4.0
  _run(c)
  record = runlog.read_records(c.workdir, 'train')[-1]
  for key in ('rw_mean', 'g_grad_sigma_ratio', 'd_grad_sigma_ratio'):
    assert np.isfinite(record[key]) and record[key] > 0, key


def test_power_iteration_vectors_are_checked_finite_with_the_weights(tiny_config):
  """The loop's finite check before a checkpoint or export covers trainer.variables;
  the r(W) and spectral-clamp vectors are among them."""
  c = tiny_config
  c.rw_lambda = 0.1
  c.grad_clamp_g_ratio = 1.5
  c.grad_clamp_d_ratio = 4.0
  trainer = train.GANTrainer(c, tf.distribute.get_strategy())
  state = trainer.power_iteration_state
  assert sorted(state) == ['d_gradients_0', 'g_gradients_0', 'g_penalties_0']
  vectors = list(state['g_penalties_0'].u) + [
      v for name in ('g_gradients_0', 'd_gradients_0')
      for per_kernel in state[name].vectors for v in per_kernel]
  assert len(vectors) == 3 + 4 * 3 + 4 * 3  # u per G kernel; u0 v0 u1 v1 per clamped.
  assert {id(v) for v in vectors} <= {id(v) for v in trainer.variables}


def test_scores_during_and_after_training(tiny_config):
  """eval records carry the scores and their settings; final has missing modes."""
  import fake_classifier
  c = tiny_config
  c.probe_every = 0
  c.classifier, _, _ = fake_classifier.save_linear(
      os.path.join(os.path.dirname(c.workdir), 'clf'), (28, 28, 1))
  c.eval_every = 2
  c.eval_num_samples = 20
  c.final_eval_num_samples = 30
  c.eval_splits = 2
  c.num_missing_mode_samples = 40
  _run(c)
  evals = runlog.read_records(c.workdir, 'eval')
  assert [r['step'] for r in evals] == [2, 4]
  assert evals[0]['num_samples'] == 20 and evals[-1]['num_samples'] == 30
  for r in evals:
    assert r['splits'] == 2 and r['real_split'] == 'test' and r['classifier'] == c.classifier
    assert 1.0 <= r['classifier_score'] <= 10.0 and r['frechet_distance'] >= 0
  final = runlog.read_records(c.workdir, 'final')[-1]
  assert sum(final['class_histogram']) == 40
  assert final['min_class_count'] == min(final['class_histogram'])


def test_missing_classifier_stops_before_training(tiny_config):
  from tf_gancond import scores
  c = tiny_config
  c.probe_every = 0
  c.final_eval = True
  c.classifier = os.path.join(os.path.dirname(c.workdir), 'no_such_classifier')
  with pytest.raises(scores.ClassifierUnavailableError, match='no_such_classifier'):
    _run(c)
  assert not os.path.exists(os.path.join(c.workdir, 'checkpoints'))


def test_probes_during_training_write_events_and_records(tiny_config):
  """The fixed probe batch at step 0 and every probe_every steps
  (docs/experiments.md#o1)."""
  c = tiny_config
  c.jacobian_clamping = True
  _run(c)
  probes_ = runlog.read_records(c.workdir, 'probe')
  assert [r['step'] for r in probes_] == [0, 2, 4]
  for r in probes_:
    assert len(r['log_cond']) == c.probe_num_z
    np.testing.assert_allclose(r['mean_log_cond'], np.mean(r['log_cond']))
    assert len(r['avg_jacobian_singular_values']) == c.latent_dim
  tags = _event_tags(c.workdir)
  assert {'probe/mean_log_cond', 'probe/log_cond', 'probe/avg_jacobian_spectrum',
          'samples', 'train/q', 'train/jc_penalty'} <= tags
  assert runlog.read_records(c.workdir, 'final')[-1]['mean_log_cond'] == probes_[-1][
      'mean_log_cond']


def test_a_final_probe_over_more_z_extends_the_probe_batch(tiny_config):
  """final_probe_num_z: the final log-cond is the mean over that many z, the probe
  batch first, so its first probe_num_z values are the last probe's."""
  c = tiny_config
  c.final_probe_num_z = 3 * c.probe_num_z
  _run(c)
  last_probe = runlog.read_records(c.workdir, 'probe')[-1]
  final_probe, = runlog.read_records(c.workdir, 'final_probe')
  assert final_probe['step'] == last_probe['step'] == c.train_steps
  assert len(final_probe['log_cond']) == 3 * c.probe_num_z
  np.testing.assert_allclose(final_probe['log_cond'][:c.probe_num_z],
                             last_probe['log_cond'], rtol=1e-5)
  assert np.std(final_probe['log_cond'][c.probe_num_z:]) > 0  # Other z, not copies.
  final = runlog.read_records(c.workdir, 'final')[-1]
  np.testing.assert_allclose(final['mean_log_cond'], np.mean(final_probe['log_cond']))
  np.testing.assert_allclose(final_probe['mean_log_cond'],
                             np.mean(final_probe['log_cond']))
  assert 'probe/final_mean_log_cond' in _event_tags(c.workdir)


def test_every_start_records_the_package_commit(tiny_config):
  """Provenance: a 'start' record per start and resume, with the commit run under."""
  import subprocess
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  head = subprocess.run(['git', '-C', root, 'rev-parse', 'HEAD'], capture_output=True,
                        text=True).stdout.strip()
  c = tiny_config
  c.train_steps, c.probe_every = 2, 0
  _run(c)
  c.train_steps = 4
  _run(c)
  starts = runlog.read_records(c.workdir, 'start')
  assert [r['step'] for r in starts] == [0, 2]
  assert all(r['commit'] == head and r['tensorflow'] == tf.__version__
             for r in starts)


@pytest.mark.parametrize('experiment, folder', [
    ('gan', 'mnist_non_saturating_seed3'),
    ('vae', 'mnist_vae_seed3'),
    ('memorize', 'mnist_memorize_seed3'),
    ('frozen_generator', 'mnist_frozen_generator_seed3'),
    ('frozen_g', 'mnist_frozen_generator_seed3')])
def test_each_experiment_has_its_own_default_run_folder(experiment, folder):
  """Without --workdir, a VAE, memorize or frozen-G run does not write into the
  GAN run folder of the same dataset and seed."""
  from tf_gancond import config as config_lib
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', experiment=experiment, seed=3, workdir=''))
  assert config_lib.resolve(c).workdir == os.path.join('runs', folder)
