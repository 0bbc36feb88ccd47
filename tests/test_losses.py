"""Golden numbers for every GAN loss and the regularizers' hand-computable cases."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_gancond import losses


def softplus(x):
  return math.log1p(math.exp(x))


REAL = [0.5, 2.0]
FAKE = [-1.0, 3.0]
# Expected values from the definitions, in float64 by hand:
BCE_D = (softplus(-0.5) + softplus(-2.0)) / 2 + (softplus(-1.0) + softplus(3.0)) / 2
GOLDEN = {
    'non_saturating': (BCE_D, (softplus(1.0) + softplus(-3.0)) / 2),
    'minimax': (BCE_D, -(softplus(-1.0) + softplus(3.0)) / 2),
    'wasserstein': (1.0 - 1.25, -1.0),
    'hinge': ((0.5 + 0.0) / 2 + (0.0 + 4.0) / 2, -1.0),
}


@pytest.mark.parametrize('name', sorted(GOLDEN))
def test_loss_golden_numbers(name):
  loss = losses.get_loss(name)
  d = loss.discriminator(tf.constant(REAL), tf.constant(FAKE))
  g = loss.generator(tf.constant(FAKE))
  np.testing.assert_allclose(float(d), GOLDEN[name][0], rtol=1e-6)
  np.testing.assert_allclose(float(g), GOLDEN[name][1], rtol=1e-6)


def test_bce_hand_value():
  # 1.98142... = (0.474077 + 0.126928)/2 + (0.313262 + 3.048587)/2.
  assert abs(GOLDEN['non_saturating'][0] - 1.9814271) < 1e-6


@pytest.mark.parametrize('name', sorted(GOLDEN))
def test_losses_finite_for_extreme_logits(name):
  loss = losses.get_loss(name)
  big = tf.constant([1e4, -1e4])
  assert np.isfinite(float(loss.discriminator(big, -big)))
  assert np.isfinite(float(loss.generator(big)))


def test_saturating_losses_match_log_sigmoid_forms():
  logits = tf.constant([-3.0, -0.2, 0.7, 4.0], tf.float64)
  d = tf.sigmoid(logits).numpy()
  np.testing.assert_allclose(float(losses.non_saturating_generator(logits)),
                             np.mean(-np.log(d)), rtol=1e-12)
  np.testing.assert_allclose(float(losses.minimax_generator(logits)),
                             np.mean(np.log(1 - d)), rtol=1e-12)


def test_unknown_loss_names_the_choices():
  with pytest.raises(ValueError, match=r"loss='bogus'.*non_saturating"):
    losses.get_loss('bogus')
