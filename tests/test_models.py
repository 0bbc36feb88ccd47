"""Shapes and value ranges of the DCGAN models for every dataset size."""

import numpy as np
import pytest
import tensorflow as tf

from tf_gancond import config as config_lib
from tf_gancond import models


@pytest.mark.parametrize('dataset,size,channels,stem', [
    ('mnist', 28, 1, 7), ('cifar10', 32, 3, 4), ('stl10', 48, 3, 6),
    ('lsun_bedroom', 64, 3, 4)])
def test_dcgan_shapes_and_range(dataset, size, channels, stem):
  c = config_lib.get_config()
  c.dataset = dataset
  c.g_base_channels = 32
  c.d_base_channels = 8
  c = config_lib.resolve(c)
  g, d = models.build_gan(c)
  assert g.stem_size == stem
  z = tf.random.normal([3, c.latent_dim])
  x = g(z, training=True)
  assert x.shape == (3, size, size, channels)
  assert np.all(np.abs(x.numpy()) <= 1.0)
  logits = d(x, training=True)
  assert logits.shape == (3,)


def test_spec_latent_sizes():
  for dataset, n_z in [('mnist', 64), ('fashion_mnist', 64), ('cifar10', 100),
                       ('stl10', 100)]:
    c = config_lib.get_config()
    c.dataset = dataset
    assert config_lib.resolve(c).latent_dim == n_z


def test_o1_architecture_sizes():
  """G dense to 7x7x256, 14x14x128, 28x28x1; D filters 64, 128, 256
  (docs/experiments.md#o1)."""
  c = config_lib.resolve(config_lib.get_config())
  g, d = models.build_gan(c)
  assert g.dense.units == 7 * 7 * 256
  assert [u.filters for u in g.ups] == [128]
  assert [conv.filters for conv in d.convs] == [64, 128, 256]
  assert all(conv.kernel_size == (5, 5) for conv in d.convs)
  # BN everywhere except the G output and the D input (Radford et al.).
  assert d.bns[0] is None and all(bn is not None for bn in d.bns[1:])


def test_initialization_std():
  c = config_lib.resolve(config_lib.get_config())
  g, _ = models.build_gan(c)
  assert abs(np.std(g.dense.kernel.numpy()) - 0.02) < 0.001


def _batch_norms(model):
  return [l for l in model.submodules
          if isinstance(l, tf.keras.layers.BatchNormalization)]


def test_dcgan_batch_norm_follows_dcgan_torch_by_default():
  """dcgan.torch / DCGAN-tensorflow BN: PyTorch momentum 0.1 = Keras 0.9, eps 1e-5."""
  g, d = models.build_gan(config_lib.resolve(config_lib.get_config()))
  norms = _batch_norms(g) + _batch_norms(d)
  assert len(norms) == 2 + 2  # G: stem + 1 upsampling; D: on all but the first conv.
  assert all(bn.momentum == 0.9 and bn.epsilon == 1e-5 for bn in norms)


def test_dcgan_batch_norm_fields_reach_every_layer():
  c = config_lib.get_config()
  c.bn_momentum, c.bn_epsilon = 0.5, 1e-3
  g, d = models.build_gan(config_lib.resolve(c))
  assert all(bn.momentum == 0.5 and bn.epsilon == 1e-3
             for bn in _batch_norms(g) + _batch_norms(d))


def test_dcgan_moving_mean_moves_by_one_minus_momentum():
  """One training call moves the moving mean 10 % of the way to the batch mean."""
  c = config_lib.resolve(config_lib.get_config())
  g, _ = models.build_gan(c)
  z = tf.random.stateless_normal([16, c.latent_dim], seed=[1, 2])
  h = tf.reshape(g.dense(z), [-1, g.stem_size, g.stem_size, g.stem_channels])
  batch_mean = tf.reduce_mean(h, axis=[0, 1, 2]).numpy()
  g(z, training=True)
  np.testing.assert_allclose(g.stem_bn.moving_mean.numpy(), 0.1 * batch_mean,
                             rtol=1e-4, atol=1e-7)
