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


def _first_step_gradients(**overrides):
  """The gradients G's and D's optimizers receive in the first step of a run with
  these settings, float64 numpy lists {'g': [...], 'd': [...]} (the first call each),
  with the trainer and the step's outputs. Weights start from one seed."""
  config = _config(**overrides)
  tf.keras.utils.set_random_seed(config.seed)
  trainer = train.GANTrainer(config, tf.distribute.get_strategy())
  received = {'g': [], 'd': []}
  for key, optimizer in (('g', trainer.g_optimizer), ('d', trainer.d_optimizer)):
    apply_gradients = optimizer.apply_gradients

    def recording(grads_and_vars, *args, _apply=apply_gradients, _key=key, **kwargs):
      grads_and_vars = list(grads_and_vars)
      received[_key].append([g.numpy().astype(np.float64) for g, _ in grads_and_vars])
      return _apply(grads_and_vars, *args, **kwargs)
    optimizer.apply_gradients = recording
  with _eager():
    out = trainer.train_step(iter(data_lib.make_dataset(config)))
  return {k: v[0] for k, v in received.items()}, trainer, out


def _assert_lists_close(a, b, atol):
  for x, y in zip(a, b, strict=True):
    np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def _largest_difference(a, b):
  return max(np.abs(x - y).max() for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize('net,setting,weights', [
    ('d', 'gradient_penalty', (5.0, 10.0)),
    ('g', 'rw_lambda', (0.05, 0.1)),
])
def test_a_weighted_penalty_adds_its_weighted_gradient_to_the_update(net, setting,
                                                                    weights):
  """grad(L + w P) is linear in w: the update at 2w minus the one at w equals the one
  at w minus the one without the penalty, and that difference is not zero."""
  overrides = dict(loss='wasserstein') if setting == 'gradient_penalty' else {}
  without, _, _ = _first_step_gradients(**overrides)
  once, _, _ = _first_step_gradients(**overrides, **{setting: weights[0]})
  twice, _, _ = _first_step_gradients(**overrides, **{setting: weights[1]})
  step = [b - a for a, b in zip(without[net], once[net])]
  assert _largest_difference(once[net], without[net]) > 1e-4
  # Updates are float32 sums: their rounding stays far below 1e-5 of the largest entry.
  float32_rounding = 1e-5 * max(np.abs(g).max() for g in twice[net])
  _assert_lists_close([c - b for b, c in zip(once[net], twice[net])], step,
                      atol=float32_rounding)
  if net == 'g':  # D's step comes first, and a G penalty leaves it alone.
    _assert_lists_close(once['d'], without['d'], atol=0)


def test_jacobian_clamping_reaches_the_g_update_only_where_q_leaves_its_range():
  """Two lambda ranges that hold every Q give one G update (the penalty is 0); a
  range that Q leaves adds the penalty's gradient and changes it."""
  inert, _, inert_out = _first_step_gradients(jacobian_clamping=True, jc_lambda_min=0.0,
                                              jc_lambda_max=1e9)
  also_inert, _, _ = _first_step_gradients(jacobian_clamping=True, jc_lambda_min=1e-9,
                                           jc_lambda_max=1e8)
  engaged, _, engaged_out = _first_step_gradients(jacobian_clamping=True,
                                                  jc_lambda_min=1e8, jc_lambda_max=1e9)
  assert float(inert_out['jc_penalty']) == 0.0
  assert float(engaged_out['jc_penalty']) > 0.0
  _assert_lists_close(also_inert['g'], inert['g'], atol=0)
  assert _largest_difference(engaged['g'], inert['g']) > 1e-4
  _assert_lists_close(engaged['d'], inert['d'], atol=0)  # D's step comes first.


def test_spectral_clamp_hands_the_optimizer_the_clamped_gradient():
  """Each clamped kernel's gradient reaches the optimizer as A - max(0, s0 - r s1)
  u0 v0^T, from the clamp's own power-step vectors (lipschitz.SpectralGradientClamp),
  so that u0^T A' v0 <= r s1; every other gradient arrives as it was."""
  ratio = 1.5
  raw, _, _ = _first_step_gradients(g_step_reuses_fake=False)
  clamped, trainer, _ = _first_step_gradients(g_step_reuses_fake=False,
                                              grad_clamp_g_ratio=ratio)
  clamp = trainer.regularizers.g_gradients[0].clamp
  _assert_lists_close(clamped['d'], raw['d'], atol=0)
  removed = 0
  for i, (a, a_clamped) in enumerate(zip(raw['g'], clamped['g'])):
    if i not in clamp.index:
      np.testing.assert_array_equal(a_clamped, a)
      continue
    u0, v0, u1, v1 = (v.numpy().astype(np.float64)
                      for v in clamp.vectors[clamp.index.index(i)])
    a = a.reshape(-1, a.shape[-1])
    sigma0 = u0 @ a @ v0
    sigma1 = u1 @ (a - sigma0 * np.outer(u0, v0)) @ v1
    excess = max(0.0, sigma0 - ratio * sigma1)
    expected = a - excess * np.outer(u0, v0)
    np.testing.assert_allclose(a_clamped.reshape(a.shape), expected, rtol=0,
                               atol=1e-5 * np.abs(a).max())
    assert u0 @ a_clamped.reshape(a.shape) @ v0 <= ratio * sigma1 * (1 + 1e-4)
    removed += excess > 0
  assert removed > 0  # At initialisation sigma0 / sigma1 is far above 1.5.


@pytest.mark.parametrize('reuse_fake', [True, False])
def test_g_steps_two_updates_g_twice_per_iteration_and_d_once(reuse_fake):
  """g_steps=2 (DCGAN-tensorflow): D's update is that of g_steps=1 (its weights; its
  BatchNorm statistics also see the second G step's fakes), G's optimizer counts two
  updates per iteration, and the second moves G on from the first."""
  def one_iteration(g_steps):
    tf.keras.utils.set_random_seed(0)
    config = _config(g_steps=g_steps, g_step_reuses_fake=reuse_fake)
    trainer = train.GANTrainer(config, tf.distribute.get_strategy())
    trainer.train_step(iter(data_lib.make_dataset(config)))
    return trainer

  once, twice = one_iteration(1), one_iteration(2)
  assert int(once.g_optimizer.iterations) == 1
  assert int(twice.g_optimizer.iterations) == 2
  assert int(twice.d_optimizer.iterations) == 1
  for a, b in zip(once.discriminator.trainable_weights,
                  twice.discriminator.trainable_weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  moved = [np.abs(a.numpy() - b.numpy()).max()
           for a, b in zip(once.generator.trainable_weights,
                           twice.generator.trainable_weights)]
  assert max(moved) > 1e-6


def test_g_steps_with_jacobian_clamping_is_refused():
  with pytest.raises(config_lib.ConfigError, match='g_steps=2 needs jacobian_clamping'):
    _config(g_steps=2, jacobian_clamping=True)
