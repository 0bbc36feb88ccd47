"""DCGAN generator and discriminator (Radford et al. 2015; sizes from
docs/experiments.md#o1, #o2).

Generator: z [B, n_z] -> Dense -> reshape [s, s, C] -> BN -> ReLU ->
(5x5 stride-2 transposed conv -> BN -> ReLU) x (n-1) -> 5x5 stride-2 transposed
conv -> tanh, images [B, H, W, c] in [-1, 1]. The stem s = H / 2^n:
28x28: 7x7x256 -> 14x14x128 -> 28x28x1 (docs/experiments.md#o1);
32x32: 4x4x512 -> 32 and 48x48: 6x6x512 -> 48 (docs/experiments.md#o2);
64x64: 4x4x512 -> 64 (dcgan.torch shape).

Discriminator: (5x5 stride-2 conv, 64, 128, 256, ... filters) with BN on all but the
first, LeakyReLU 0.2, then one logit [B]. BN after the reshape is per channel, as
in DCGAN-tensorflow and dcgan.torch. Weights ~ N(0, 0.02) (Radford et al.).

BatchNorm constants are those of dcgan.torch, the PyTorch DCGAN example and
DCGAN-tensorflow: moving-average momentum 0.9 in Keras terms (PyTorch's momentum 0.1)
and epsilon 1e-5, not Keras's 0.99 and 1e-3. They set the moving statistics that
every inference-mode probe, sample, score and export uses.

`sync_batch_norm=True` (used when the strategy has more than one replica) makes
every BatchNorm compute its batch statistics over the global batch (all-reduced
sums across replicas), so N replicas train as one device on the global batch
does; the default per-device (fused) BatchNorm is faster on one device.

`policy`: None (float32) or a Keras mixed policy ('mixed_bfloat16', config
precision=bfloat16): variables and optimizer state in float32, each layer computing
in bf16 (8 mantissa bits). Two tensors stay float32 whatever the policy:
  * G's output: the last conv's bf16 sum goes through tanh in float32, so D, the
    gradient penalty and Jacobian Clamping's Q and penalty (norms of a difference of
    two nearby images, and their ratio) compute in float32. The images still carry
    the bf16 rounding of G's layers (z itself is rounded to bf16 by the first
    Dense): a training step's Q, and the Q records, of a bf16 run are
    measurements of the bf16 G;
  * D's logit: its Dense layer computes in float32, so every loss (a log-sigmoid
    that bf16 would round near 0 and 1) and its gradient start in float32.
BatchNorm keeps float32 moving statistics and scale under the mixed policy (Keras).
"""

import tensorflow as tf

def _init():
  """A fresh N(0, 0.02) initializer per layer (one shared instance repeats its values)."""
  return tf.keras.initializers.RandomNormal(stddev=0.02)


BN_MOMENTUM = 0.9  # Keras convention: moving = 0.9 moving + 0.1 batch (PyTorch 0.1).
BN_EPSILON = 1e-5  # PyTorch / torch7 BatchNorm default, used by dcgan.torch.


def _batch_norm(sync, momentum, epsilon, policy):
  """Keras BatchNormalization; `sync`: statistics over all replicas' batches."""
  return tf.keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon,
                                            synchronized=sync, dtype=policy)


def num_upsamplings(image_size):
  """Stride-2 steps from the stem to `image_size` (28->2, 32->3, 48->3, 64->4)."""
  return {28: 2, 32: 3, 48: 3, 64: 4}[image_size]


class DCGANGenerator(tf.keras.Model):
  """z [B, latent_dim] float32 -> images [B, size, size, channels] in [-1, 1]."""

  def __init__(self, image_size, channels, latent_dim, base_channels=256,
               name='generator', sync_batch_norm=False, bn_momentum=BN_MOMENTUM,
               bn_epsilon=BN_EPSILON, policy=None):
    super().__init__(name=name)
    self.latent_dim = latent_dim
    self.image_size = image_size
    self.channels = channels
    n_up = num_upsamplings(image_size)
    self.stem_size = image_size // 2**n_up
    self.stem_channels = base_channels
    self.dense = tf.keras.layers.Dense(
        self.stem_size**2 * base_channels, use_bias=False, kernel_initializer=_init(),
        dtype=policy)
    bn = (sync_batch_norm, bn_momentum, bn_epsilon, policy)
    self.stem_bn = _batch_norm(*bn)
    self.ups, self.bns = [], []
    width = base_channels
    for _ in range(n_up - 1):
      width //= 2
      self.ups.append(tf.keras.layers.Conv2DTranspose(
          width, 5, strides=2, padding='same', use_bias=False,
          kernel_initializer=_init(), dtype=policy))
      self.bns.append(_batch_norm(*bn))
    self.out = tf.keras.layers.Conv2DTranspose(
        channels, 5, strides=2, padding='same', kernel_initializer=_init(),
        dtype=policy)

  def call(self, z, labels=None, training=False):
    del labels  # Unconditional.
    h = self.dense(z)
    h = tf.reshape(h, [-1, self.stem_size, self.stem_size, self.stem_channels])
    h = tf.nn.relu(self.stem_bn(h, training=training))
    for up, bn in zip(self.ups, self.bns):
      h = tf.nn.relu(bn(up(h), training=training))
    # float32 images under any policy (module docstring); a no-op in float32.
    return tf.tanh(tf.cast(self.out(h), tf.float32))


class DCGANDiscriminator(tf.keras.Model):
  """images [B, size, size, c] -> logits [B] (no BN on the input layer)."""

  def __init__(self, image_size, base_channels=64, name='discriminator',
               sync_batch_norm=False, bn_momentum=BN_MOMENTUM, bn_epsilon=BN_EPSILON,
               policy=None):
    super().__init__(name=name)
    n_down = num_upsamplings(image_size) + 1
    self.convs, self.bns = [], []
    for i in range(n_down):
      self.convs.append(tf.keras.layers.Conv2D(
          base_channels * 2**i, 5, strides=2, padding='same', use_bias=(i == 0),
          kernel_initializer=_init(), dtype=policy))
      self.bns.append(_batch_norm(sync_batch_norm, bn_momentum, bn_epsilon, policy)
                      if i > 0 else None)
    self.flatten = tf.keras.layers.Flatten(dtype=policy)
    # float32 logits under any policy (module docstring).
    self.logit = tf.keras.layers.Dense(1, kernel_initializer=_init(), dtype='float32')

  def call(self, x, labels=None, training=False):
    del labels  # Unconditional.
    h = x
    for conv, bn in zip(self.convs, self.bns):
      h = conv(h)
      if bn is not None:
        h = bn(h, training=training)
      h = tf.nn.leaky_relu(h, alpha=0.2)
    return tf.squeeze(self.logit(self.flatten(h)), axis=-1)
