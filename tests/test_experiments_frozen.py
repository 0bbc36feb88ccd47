"""A1/A2/A3: a fresh D against a frozen G; generator gradient norms; instance noise."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_gancond import config as config_lib
from tf_gancond import export
from tf_gancond import models
from tf_gancond import regularizers
from tf_gancond import rng
from tf_gancond import runlog
from tf_gancond.experiments import frozen_generator as fg


class NearConstantGenerator(tf.keras.Model):
  """images = tanh(W z + b), b = -2, W ~ N(0, 0.02): nearly constant (about -0.96),
  far from the mock data (uniform noise in [-1, 1]), so D separates them."""

  def __init__(self, latent_dim):
    super().__init__()
    self.latent_dim = latent_dim
    self.dense = tf.keras.layers.Dense(
        28 * 28, kernel_initializer=tf.keras.initializers.RandomNormal(stddev=0.02),
        bias_initializer=tf.keras.initializers.Constant(-2.0))

  def call(self, z, training=False):
    return tf.tanh(tf.reshape(self.dense(z), [-1, 28, 28, 1]))


@pytest.fixture
def fg_config(tiny_config):
  c = tiny_config
  c.experiment = 'frozen_generator'
  c.running_average_window = 5
  c.checkpoint_every = 1000
  c.log_every = 1000
  return c


def _run(config, workdir, generator=None):
  with tfds.testing.mock_data(num_examples=32):
    return fg.run(config, workdir, generator=generator)


def _near_constant(latent_dim, seed=0):
  tf.keras.utils.set_random_seed(seed)
  g = NearConstantGenerator(latent_dim)
  g(tf.zeros([1, latent_dim]))
  return g


def test_noise_schedule(fg_config):
  c = fg_config
  c.train_steps, c.instance_noise = 10, 0.5
  c.instance_noise_anneal_steps = -1  # Linear to 0 over train_steps.
  assert [float(regularizers.instance_noise_sigma(c, t)) for t in (0, 5, 10, 12)] == [
      0.5, 0.25, 0.0, 0.0]
  c.instance_noise_anneal_steps = 4
  assert float(regularizers.instance_noise_sigma(c, 1)) == pytest.approx(0.375)
  assert float(regularizers.instance_noise_sigma(c, 6)) == 0.0
  c.instance_noise_anneal_steps = 0  # Constant.
  assert float(regularizers.instance_noise_sigma(c, 1000)) == 0.5


@pytest.mark.parametrize('sigma', [0.0, 0.7])
def test_gradient_norms_match_a_direct_tape(fg_config, sigma):
  c = fg_config
  c.instance_noise = sigma
  c.instance_noise_anneal_steps = 0
  tf.keras.utils.set_random_seed(1)
  g, d = models.build_gan(c)
  exp = fg.FrozenGeneratorExperiment(c, fg.load_frozen_generator(c, g), d)
  z = tf.random.normal([6, c.latent_dim], seed=2)
  step = tf.constant(3, tf.int64)
  got = [float(v) for v in exp.generator_gradient_norms(z, step)]
  norms = []
  for loss in ('minimax', 'nonsaturating'):
    with tf.GradientTape() as tape:
      x = g(z, training=False)
      if sigma:  # A3: the same noise draw, inside the gradient path.
        x += sigma * rng.normal(tf.shape(x), c.seed, step, rng.Stream.NOISE_G)
      p = tf.cast(tf.sigmoid(d(x, training=True)), tf.float64)
      # Direct (non-softplus) forms, in float64: E log(1 - D) and E -log D.
      value = tf.reduce_mean(tf.math.log(1 - p) if loss == 'minimax' else
                             -tf.math.log(p))
    grads = tape.gradient(value, g.trainable_variables)
    norms.append(np.sqrt(sum(np.sum(np.square(gr.numpy().astype(np.float64)))
                             for gr in grads)))
  assert min(norms) > 0
  np.testing.assert_allclose(got, norms, rtol=1e-4)


def test_saved_model_and_checkpoint_generators_expose_theta(fg_config, tmp_path):
  c = fg_config
  tf.keras.utils.set_random_seed(4)
  g, d = models.build_gan(c)
  path = export.export_generator(g, str(tmp_path / 'g'), c.latent_dim, (28, 28, 1))
  ckpt_dir = str(tmp_path / 'run' / 'checkpoints')
  tf.train.CheckpointManager(tf.train.Checkpoint(generator=g, discriminator=d),
                             ckpt_dir, max_to_keep=1).save(checkpoint_number=7)
  z = tf.random.normal([5, c.latent_dim], seed=5)
  c.generator_saved_model = path
  from_sm = fg.load_frozen_generator(c)
  c.generator_saved_model = ''
  c.generator_checkpoint = str(tmp_path / 'run')
  tf.keras.utils.set_random_seed(99)  # The rebuilt G must get its weights from disk.
  from_ckpt = fg.load_frozen_generator(c)
  keras = fg.load_frozen_generator(c, g)
  assert len(from_sm.variables) == len(g.trainable_variables) == len(from_ckpt.variables)
  assert from_ckpt.source.endswith('ckpt-7')
  for frozen in (from_sm, from_ckpt):
    np.testing.assert_allclose(frozen.generate(z).numpy(), g(z).numpy(), atol=1e-6)
  # Same D, same z: the same gradient norms w.r.t. theta from all three sources.
  norms = [fg.FrozenGeneratorExperiment(c, f, d).generator_gradient_norms(
      z, tf.constant(0, tf.int64)) for f in (keras, from_sm, from_ckpt)]
  np.testing.assert_allclose(np.array(norms[1:], np.float64),
                             np.array([norms[0]] * 2, np.float64), rtol=1e-5)


def test_bad_generator_sources(fg_config, tmp_path):
  c = fg_config
  c.generator_saved_model = str(tmp_path / 'missing')
  with pytest.raises(config_lib.ConfigError, match='generator_saved_model'):
    fg.load_frozen_generator(c)
  c.generator_checkpoint = str(tmp_path)
  with pytest.raises(config_lib.ConfigError, match='not both'):
    fg.load_frozen_generator(c)
  c.generator_saved_model = ''
  with pytest.raises(config_lib.ConfigError, match='holds no checkpoint'):
    fg.load_frozen_generator(c)
  c.generator_checkpoint = ''
  c2 = config_lib.get_config()
  c2.update(dict(c))
  c2.dataset, c2.latent_dim = 'cifar10', 8
  g32, _ = models.build_gan(config_lib.resolve(c2))
  with pytest.raises(config_lib.ConfigError, match='shape'):
    _run(c, str(tmp_path / 'w'), generator=g32)


def test_run_writes_files_and_resumes(fg_config, tmp_path):
  c = fg_config
  c.train_steps = 3
  workdir = str(tmp_path / 'fg')
  _run(c, workdir)  # Fresh random DCGAN G.
  assert glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))
  assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))
  c.train_steps = 5
  final = _run(c, workdir)
  train = runlog.read_records(workdir, 'train')
  assert [r['step'] for r in train] == [1, 2, 3, 4, 5]  # One record per iteration.
  for key in ('d_cost', 'd_accuracy', 'd_cost_avg', 'd_accuracy_avg',
              'grad_norm_minimax', 'grad_norm_nonsaturating'):
    assert all(np.isfinite(r[key]) for r in train), key
  # The running average over the window spans the resume.
  assert train[4]['d_cost_avg'] == pytest.approx(
      np.mean([r['d_cost'] for r in train]), rel=1e-6)
  assert final['generator_source'] == 'random_init'
  assert runlog.read_records(workdir, 'final')[-1]['step'] == 5


def test_separable_generator_minimax_gradient_vanishes(fg_config, tmp_path):
  """A1/A2 in miniature: D accuracy reaches 1 quickly; the original-cost gradient
  decays by orders of magnitude while the -log D gradient does not."""
  c = fg_config
  c.train_steps = 80
  final = _run(c, str(tmp_path / 'fg'), generator=_near_constant(c.latent_dim))
  assert final['iterations_to_accuracy_1'] is not None
  assert final['iterations_to_accuracy_1'] <= 40
  assert final['final_d_accuracy_avg'] == 1.0
  assert final['grad_norm_minimax_ratio'] < 0.05
  assert final['grad_norm_nonsaturating_ratio'] > 0.3
  assert final['grad_norm_nonsaturating_last'] > 20 * final['grad_norm_minimax_last']


def test_instance_noise_keeps_d_cost_and_gradient_up(fg_config, tmp_path):
  """A3: with constant noise on D's inputs the same D ends with a higher cost and a
  larger original-cost gradient than without noise."""
  c = fg_config
  c.train_steps = 60
  clean = _run(c, str(tmp_path / 'clean'), generator=_near_constant(c.latent_dim))
  c.instance_noise, c.instance_noise_anneal_steps = 2.0, 0
  noisy = _run(c, str(tmp_path / 'noisy'), generator=_near_constant(c.latent_dim))
  assert noisy['final_d_cost_avg'] > 1.5 * clean['final_d_cost_avg']
  assert noisy['grad_norm_minimax_last'] > 1.5 * clean['grad_norm_minimax_last']


def _load_config_module(name):
  import importlib.util
  path = os.path.join(os.path.dirname(__file__), '..', 'configs', name)
  spec = importlib.util.spec_from_file_location(name[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module, path


def test_config_file_validates():
  module, _ = _load_config_module('a1_a2_frozen_generator.py')
  c = module.get_config()
  assert (c.experiment, c.train_steps, c.batch_size, c.d_lr, c.beta1) == (
      'frozen_generator', 4000, 64, 2e-4, 0.5)  # docs/experiments.md#a1.
  config_lib.validate(config_lib.resolve(c))


def test_launcher_dispatches_to_the_experiment(tmp_path):
  from tf_gancond import launch
  _, path = _load_config_module('a1_a2_frozen_generator.py')
  c = launch.build_config(path, {
      'dataset': 'mnist', 'train_steps': '2', 'batch_size': '4', 'd_base_channels': '4',
      'g_base_channels': '8', 'latent_dim': '4', 'workdir': str(tmp_path / 'a1')}, {})
  with tfds.testing.mock_data(num_examples=8):
    final = launch.run_config(c)
  assert final['generator_source'] == 'random_init'
  assert len(runlog.read_records(str(tmp_path / 'a1'), 'train')) == 2
