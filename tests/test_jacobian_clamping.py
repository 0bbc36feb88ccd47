"""Jacobian Clamping (Odena et al. 2018, Algorithm 1) against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from tf_gancond import regularizers


def _pairs(q_values):
  """x - x' with norm q, z - z' with norm 1, per example: Q = q exactly."""
  b = len(q_values)
  z = tf.zeros([b, 3])
  z_prime = tf.constant([[0.6, 0.8, 0.0]] * b)  # ||dz|| = 1
  x = tf.zeros([b, 2, 2, 1])
  dx = np.zeros([b, 2, 2, 1], np.float32)
  dx[:, 0, 0, 0] = q_values  # ||dx|| = q
  return x, x + dx, z, z_prime


def test_penalty_below_inside_above():
  x, xp, z, zp = _pairs([0.5, 5.0, 30.0])
  penalty, q = regularizers.jacobian_clamping_penalty(x, xp, z, zp, 1.0, 20.0)
  np.testing.assert_allclose(q.numpy(), [0.5, 5.0, 30.0], rtol=1e-6)
  # (0.5 - 1)^2 = 0.25; inside: 0; (30 - 20)^2 = 100; batch mean.
  np.testing.assert_allclose(float(penalty), (0.25 + 0.0 + 100.0) / 3, rtol=1e-6)


@pytest.mark.parametrize('q,expected', [(1.0, 0.0), (20.0, 0.0), (0.0, 1.0),
                                        (21.5, 2.25)])
def test_penalty_edges(q, expected):
  x, xp, z, zp = _pairs([q])
  penalty, _ = regularizers.jacobian_clamping_penalty(x, xp, z, zp, 1.0, 20.0)
  np.testing.assert_allclose(float(penalty), expected, atol=1e-6)


@pytest.mark.parametrize('lambda_min,lambda_max,expected', [
    (4.0, 20.0, (5 / np.sqrt(2) - 4) ** 2),   # Q below lambda_min.
    (1.0, 20.0, 0.0),                         # Q inside.
    (1.0, 2.0, (5 / np.sqrt(2) - 2) ** 2),    # Q above lambda_max.
])
def test_batch_norm_mode_uses_whole_batch_norms(lambda_min, lambda_max, expected):
  x, xp, z, zp = _pairs([3.0, 4.0])
  penalty, q = regularizers.jacobian_clamping_penalty(x, xp, z, zp, lambda_min,
                                                      lambda_max, norm='batch')
  # ||dX||_F = sqrt(3^2 + 4^2) = 5, ||dZ||_F = sqrt(2): Q = 5 / sqrt(2) = 3.5355
  # (per example it would be [3, 4]).
  np.testing.assert_allclose(q.numpy(), [5 / np.sqrt(2)], rtol=1e-6)
  np.testing.assert_allclose(float(penalty), expected, rtol=1e-5, atol=1e-6)


def test_perturbation_has_norm_epsilon_along_the_direction():
  z = tf.random.stateless_normal([50, 64], seed=[3, 0])
  direction = tf.random.stateless_normal([50, 64], seed=[4, 0])
  for eps in (1.0, 0.25):
    dz = regularizers.jacobian_clamping_perturb(z, direction, eps) - z
    np.testing.assert_allclose(tf.norm(dz, axis=1).numpy(), eps, rtol=1e-5)
    cosine = tf.reduce_sum(dz * direction, 1) / (eps * tf.norm(direction, axis=1))
    np.testing.assert_allclose(cosine.numpy(), 1.0, rtol=1e-5)


def test_train_step_perturbs_z_by_epsilon():
  """The trainer's z' (the code the step runs) is z moved by jc_epsilon per row."""
  from tf_gancond import config as config_lib
  from tf_gancond import train
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', g_base_channels=8, d_base_channels=4, latent_dim=5,
                jacobian_clamping=True, jc_epsilon=0.3))
  trainer = train.GANTrainer(config_lib.resolve(c), tf.distribute.get_strategy())
  z = tf.random.stateless_normal([6, 5], seed=[1, 1])
  (jc,) = trainer.regularizers.g_penalties
  z_prime = jc.extra_z(z, tf.constant(7, tf.int64))
  np.testing.assert_allclose(tf.norm(z_prime - z, axis=1).numpy(), 0.3, rtol=1e-5)
  other = jc.extra_z(z, tf.constant(8, tf.int64))
  assert not np.allclose(z_prime.numpy(), other.numpy())  # A new direction each step.


def test_gradient_penalty_of_a_linear_critic():
  """D(x) = <w, x> has input gradient w everywhere: penalty (||w|| - 1)^2 exactly."""
  w = tf.constant(np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1) / 10)
  critic = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])
  real = tf.random.stateless_normal([3, 2, 2, 1], seed=[0, 1])
  fake = tf.random.stateless_normal([3, 2, 2, 1], seed=[0, 2])
  alpha = tf.constant([0.0, 0.5, 1.0], shape=[3, 1, 1, 1])
  penalty, norms = regularizers.gradient_penalty(critic, real, fake, alpha)
  norm_w = np.sqrt(0.01 + 0.04 + 0.09 + 0.16)
  np.testing.assert_allclose(norms.numpy(), norm_w, rtol=1e-6)
  np.testing.assert_allclose(float(penalty), (norm_w - 1) ** 2, rtol=1e-5)


def test_penalty_gradient_pushes_q_into_range():
  """d penalty / d x' is nonzero outside [lambda_min, lambda_max] only."""
  for q, should_move in ((0.5, True), (5.0, False), (30.0, True)):
    x, xp, z, zp = _pairs([q])
    with tf.GradientTape() as tape:
      tape.watch(xp)
      penalty, _ = regularizers.jacobian_clamping_penalty(x, xp, z, zp, 1.0, 20.0)
    grad = tape.gradient(penalty, xp).numpy()
    assert (np.abs(grad).max() > 0) == should_move


def test_unknown_norm_mode():
  x, xp, z, zp = _pairs([1.0])
  with pytest.raises(ValueError, match="jc_norm='frobenius'"):
    regularizers.jacobian_clamping_penalty(x, xp, z, zp, 1.0, 20.0, norm='frobenius')


def _linear_critic_step(weight):
  """A DStep whose critic is D(x) = <w, x>: input gradient w everywhere."""
  from tf_gancond import rng
  w = tf.constant(np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1) / 10)
  real = tf.random.stateless_normal([3, 2, 2, 1], seed=[0, 1])
  fake = tf.random.stateless_normal([3, 2, 2, 1], seed=[0, 2])
  critic = lambda x, purpose: tf.reduce_sum(x * w, axis=[1, 2, 3])  # noqa: E731
  d = regularizers.DStep(real, fake, None, tf.constant(5, tf.int64), 1, critic)
  return regularizers.GradientPenalty(weight, rng.ReplicaStreams(0, 1), 3), d


def test_gradient_penalty_object_as_the_step_calls_it():
  """The step's term is weight * (||w|| - 1)^2 for a linear critic, whatever alpha."""
  penalty, d = _linear_critic_step(10.0)
  term, metrics = penalty(d)
  norm_w = np.sqrt(0.01 + 0.04 + 0.09 + 0.16)
  np.testing.assert_allclose(float(term), 10.0 * (norm_w - 1) ** 2, rtol=1e-5)
  np.testing.assert_allclose(float(metrics['gradient_penalty']), (norm_w - 1) ** 2,
                             rtol=1e-5)
  np.testing.assert_allclose(float(metrics['d_input_grad_norm']), norm_w, rtol=1e-6)


def test_jacobian_clamping_object_as_the_step_calls_it():
  """Its term is Algorithm 1's penalty of (z, z') and (G(z), G(z')), weight 1."""
  from tf_gancond import config as config_lib
  from tf_gancond import rng
  c = config_lib.get_config()
  c.update(dict(latent_dim=3, jc_lambda_min=1.0, jc_lambda_max=20.0))
  jc = regularizers.JacobianClamping(c, rng.ReplicaStreams(0, 1))
  x, xp, z, zp = _pairs([0.5, 30.0])
  g = regularizers.GStep(z, x, None, tf.constant(0, tf.int64), {jc: (zp, xp)})
  term, metrics = jc(g)
  np.testing.assert_allclose(float(term), ((1 - 0.5) ** 2 + (30 - 20) ** 2) / 2,
                             rtol=1e-5)
  np.testing.assert_allclose(metrics['q'].numpy(), [0.5, 30.0], rtol=1e-5)


def test_instance_noise_is_the_annealed_global_draw():
  """x + sigma(t) eps with eps the (step, sub-step, purpose) stream of the global
  batch, sigma(t) = sigma0 (1 - t / train_steps)."""
  from tf_gancond import config as config_lib
  from tf_gancond import rng
  c = config_lib.get_config()
  c.update(dict(instance_noise=0.5, train_steps=10))
  noise = regularizers.InstanceNoise(c, rng.ReplicaStreams(3, 1))
  x = tf.ones([2, 4, 4, 1])
  step = tf.constant(6, tf.int64)
  out = noise(x, step, 2, rng.Stream.NOISE_REAL)
  eps = tf.random.stateless_normal([2, 4, 4, 1], seed=rng.stream_seed(
      3, step, 2, rng.Stream.NOISE_REAL))
  np.testing.assert_allclose(out.numpy(), (x + 0.2 * eps).numpy(), rtol=1e-6)
  assert [float(regularizers.instance_noise_sigma(c, t)) for t in (0, 5, 10, 12)] == [
      0.5, 0.25, 0.0, 0.0]
