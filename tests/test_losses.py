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
  d = losses.get_loss('non_saturating').discriminator(tf.constant(REAL), tf.constant(FAKE))
  assert abs(float(d) - 1.9814271) < 1e-6


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


CLASS_LOGITS = [[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]
LABELS = [0, 2]
# Softmax cross-entropy by hand: log-sum-exp minus the label's logit, averaged.
CE = (math.log(math.exp(2) + 1 + math.exp(-1)) - 2.0 +
      math.log(2 * math.exp(0.5) + math.exp(3)) - 3.0) / 2


@pytest.mark.parametrize('name', sorted(GOLDEN))
def test_acgan_head_adds_weighted_cross_entropy(name):
  """With a class head, L_D adds 1.0 CE on real images and L_G 0.1 CE (igul222)."""
  loss = losses.get_loss(name, acgan_d_weight=1.0, acgan_g_weight=0.1)
  heads = lambda logits: (tf.constant(logits), tf.constant(CLASS_LOGITS))  # noqa: E731
  labels = tf.constant(LABELS)
  d, d_metrics = loss.d_loss(heads(REAL), heads(FAKE), labels)
  g, g_metrics = loss.g_loss(heads(FAKE), labels)
  np.testing.assert_allclose(float(d), GOLDEN[name][0] + CE, rtol=1e-6)
  np.testing.assert_allclose(float(g), GOLDEN[name][1] + 0.1 * CE, rtol=1e-6)
  np.testing.assert_allclose(float(d_metrics['d_loss']), GOLDEN[name][0], rtol=1e-6)
  np.testing.assert_allclose(float(d_metrics['d_acgan_loss']), CE, rtol=1e-6)
  np.testing.assert_allclose(float(g_metrics['g_acgan_loss']), CE, rtol=1e-6)
  assert float(d_metrics['d_accuracy']) == 0.75  # Real 2/2 above 0, fake 1/2 below.


@pytest.mark.parametrize('name', sorted(GOLDEN))
def test_without_a_class_head_the_loss_is_the_adversarial_term(name):
  loss = losses.get_loss(name)
  d, d_metrics = loss.d_loss(tf.constant(REAL), tf.constant(FAKE), None)
  g, _ = loss.g_loss(tf.constant(FAKE), None)
  np.testing.assert_allclose([float(d), float(g)], GOLDEN[name], rtol=1e-6)
  assert 'd_acgan_loss' not in d_metrics
  np.testing.assert_allclose(float(d_metrics['d_real_logit']), 1.25)
  np.testing.assert_allclose(float(d_metrics['d_fake_logit']), 1.0)
