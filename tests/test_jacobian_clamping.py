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


def test_perturbation_has_norm_epsilon_per_row():
  z = tf.random.normal([50, 64], seed=3)
  for eps in (1.0, 0.25):
    z_prime = regularizers.jacobian_clamping_perturb(z, eps, seed=4)
    np.testing.assert_allclose(tf.norm(z_prime - z, axis=1).numpy(), eps, rtol=1e-5)


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
