"""The GAN train step's random streams and updates, observed eagerly."""

import contextlib

import numpy as np
import pytest
import tensorflow as tf

from tf_gancond import config as config_lib
from tf_gancond import data as data_lib
from tf_gancond import train


def _config(**overrides):
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', batch_size=4, g_base_channels=8, d_base_channels=4,
                latent_dim=4, synthetic_data=True, train_steps=10, probe_every=0))
  c.update(overrides)
  return config_lib.validate(config_lib.resolve(c))


@contextlib.contextmanager
def _eager():
  tf.config.run_functions_eagerly(True)
  try:
    yield
  finally:
    tf.config.run_functions_eagerly(False)


@contextlib.contextmanager
def _recorded_stateless_seeds(monkeypatch):
  """Yields a list that collects the seed of every stateless normal/uniform draw."""
  seeds = []
  for name in ('stateless_normal', 'stateless_uniform'):
    original = getattr(tf.random, name)

    def wrapped(shape, seed, *args, _original=original, **kwargs):
      seeds.append(tuple(np.asarray(seed).tolist()))
      return _original(shape, seed, *args, **kwargs)
    monkeypatch.setattr(tf.random, name, wrapped)
  yield seeds


@pytest.mark.parametrize('overrides', [
    # WGAN-GP with 3 critic steps: z per critic step, alpha per critic step, G's z,
    # JC's perturbation and instance noise on every D input.
    dict(loss='wasserstein', gradient_penalty=10.0, n_critic=3, jacobian_clamping=True,
         instance_noise=0.1),
    # DCGAN's reused G(z) path with JC.
    dict(jacobian_clamping=True, instance_noise=0.1),
])
def test_no_two_draws_of_a_run_share_a_stream(monkeypatch, overrides):
  """Every random draw of a run has its own (step, sub-step, purpose) stream."""
  config = _config(**overrides)
  trainer = train.GANTrainer(config, tf.distribute.get_strategy())
  iterator = iter(data_lib.make_dataset(config))
  with _eager(), _recorded_stateless_seeds(monkeypatch) as seeds:
    for _ in range(4):
      trainer.train_step(iterator)
  per_step = 3 * 4 + 2 if config.n_critic == 3 else 4  # z, alpha, 2-3 noises per D step.
  assert len(seeds) >= 4 * per_step
  assert len(set(seeds)) == len(seeds)


def test_critic_steps_see_distinct_z_and_alpha(monkeypatch):
  """z and alpha of critic step k of iteration s differ from every other draw's."""
  config = _config(loss='wasserstein', gradient_penalty=10.0, n_critic=5)
  trainer = train.GANTrainer(config, tf.distribute.get_strategy())
  values = []
  for name in ('stateless_normal', 'stateless_uniform'):
    original = getattr(tf.random, name)

    def wrapped(shape, seed, *args, _original=original, **kwargs):
      out = _original(shape, seed, *args, **kwargs)
      values.append(out.numpy().tobytes())
      return out
    monkeypatch.setattr(tf.random, name, wrapped)
  iterator = iter(data_lib.make_dataset(config))
  with _eager():
    for _ in range(3):
      trainer.train_step(iterator)
  assert len(values) == 3 * (5 * 2 + 1)  # Per iteration: 5 x (z, alpha), G's z.
  assert len(set(values)) == len(values)


def test_n_critic_updates_d_k_times_and_g_once_per_iteration():
  config = _config(loss='wasserstein', gradient_penalty=10.0, n_critic=3)
  trainer = train.GANTrainer(config, tf.distribute.get_strategy())
  iterator = iter(data_lib.make_dataset(config))
  d_before = [v.numpy().copy() for v in trainer.discriminator.trainable_variables]
  g_before = [v.numpy().copy() for v in trainer.generator.trainable_variables]
  for _ in range(2):
    trainer.train_step(iterator)
  assert int(trainer.d_optimizer.iterations) == 2 * 3
  assert int(trainer.g_optimizer.iterations) == 2
  assert int(trainer.step) == 2
  for before, v in zip(d_before + g_before, trainer.discriminator.trainable_variables +
                       trainer.generator.trainable_variables):
    # (D's output bias has zero gradient under the Wasserstein loss: it cancels.)
    if 'kernel' in v.name:
      assert np.abs(v.numpy() - before).max() > 0


@pytest.mark.parametrize('reuse,passes', [(True, 1), (False, 2)])
def test_reused_fake_runs_g_once_and_updates_g_through_it(reuse, passes):
  """dcgan.torch: the G step back-propagates through the D step's G(z)."""
  config = _config(g_step_reuses_fake=reuse)
  trainer = train.GANTrainer(config, tf.distribute.get_strategy())
  calls = []
  generator_call = trainer.generator.call

  def counted(*args, **kwargs):
    calls.append(1)
    return generator_call(*args, **kwargs)
  trainer.generator.call = counted
  iterator = iter(data_lib.make_dataset(config))
  g_before = [v.numpy().copy() for v in trainer.generator.trainable_variables]
  try:
    with _eager():
      trainer.train_step(iterator)
  finally:
    del trainer.generator.call
  assert len(calls) == passes
  assert int(trainer.g_optimizer.iterations) == 1
  assert int(trainer.d_optimizer.iterations) == 1
  assert all(np.abs(v.numpy() - b).max() > 0
             for v, b in zip(trainer.generator.trainable_variables, g_before))


@pytest.mark.parametrize('loss', ['non_saturating', 'minimax', 'wasserstein', 'hinge'])
def test_every_loss_with_every_regularizer_takes_a_finite_step(loss):
  """Each loss family with all penalties and gradient transforms of the config at
  once: one step, every statistic they log present and finite."""
  config = _config(loss=loss, gradient_penalty=10.0, jacobian_clamping=True,
                   rw_lambda=0.1, grad_clamp_g_ratio=1.5, grad_clamp_d_ratio=4.0,
                   instance_noise=0.1, g_step_reuses_fake=False)
  trainer = train.GANTrainer(config, tf.distribute.get_strategy())
  out = trainer.train_step(iter(data_lib.make_dataset(config)))
  assert {'d_loss', 'g_loss', 'gradient_penalty', 'd_input_grad_norm', 'jc_penalty',
          'q', 'rw_mean', 'g_grad_sigma_ratio', 'd_grad_sigma_ratio'} <= set(out)
  assert all(np.all(np.isfinite(v.numpy())) for v in out.values())
