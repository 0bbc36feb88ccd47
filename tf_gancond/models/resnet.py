"""CIFAR-10 ResNet GANs: igul222's WGAN-GP ResNet (docs/experiments.md#o6) and SN-GAN
(docs/experiments.md#s0 to #s4).

Both are 32x32 ResNets with the same block structure (Gulrajani et al. 2017,
`gan_cifar_resnet.py`; Miyato et al. 2018, chainer `resnet_32` / `snresnet_32`):

Generator, z [B, n_z] -> images [B, 32, 32, 3] in [-1, 1]:
  Linear n_z -> 4*4*ch -> reshape [4, 4, ch]
  3 x up-block (4 -> 8 -> 16 -> 32):
      h = Norm -> ReLU -> upsample -> conv3x3 -> Norm -> ReLU -> conv3x3
      out = h + conv1x1(upsample(x))
  Norm -> ReLU -> conv3x3 to 3 -> tanh.
  Upsampling is igul222's depth-to-space of four channel copies (identical to
  nearest-neighbour 2x, chainer's `unpooling_2d` in SN-GAN). Block norms are
  conditional BN (per-class scale/offset) when the model is conditional; the
  final norm is a plain BN (igul222 passes no labels to `Generator.OutputN`).
  igul222 normalizes with batch statistics always (`always_batch_stats`).

Critic / discriminator, images [B, 32, 32, 3] -> logits [B]:
  block 1: h = conv3x3 -> ReLU -> conv3x3 -> meanpool; out = h + conv1x1(meanpool(x))
  block 2: h = ReLU -> conv3x3 -> ReLU -> conv3x3 -> meanpool;
           out = h + meanpool(conv1x1(x))                          (32 -> 16 -> 8)
  blocks 3, 4: h = ReLU -> conv3x3 -> ReLU -> conv3x3; out = h + x
  ReLU -> global pool (igul222: mean; SN-GAN: sum) -> Linear ch -> 1
  (+ Linear ch -> num_classes, the ACGAN head, when `head_classes` > 0; then D
  returns (logits [B], class_logits [B, num_classes])). 8 3x3 + 2 1x1 convs.
  No BN; every conv / linear optionally normalized ('spectral' or 'toeplitz',
  see layers.py). Labels are never fed into the critic's layers.

Init (igul222 lib.ops, chainer GlorotUniform(sqrt 2)): uniform He-style
sqrt(4/(fan_in+fan_out)) for the 3x3 block convs, Glorot for the shortcuts, the
output conv and the linear layers.
"""

import tensorflow as tf

from tf_gancond import config as config_lib
from tf_gancond.models import layers

# BatchNorm epsilons of the reference code: igul222 uses tf.nn.fused_batch_norm's
# 1e-5; chainer's BatchNormalization (SN-GAN) defaults to 2e-5.
WGANGP_BN_EPSILON = 1e-5
SNGAN_BN_EPSILON = 2e-5
# chainer BatchNormalization decay (moving averages; unused with batch stats always).
BN_MOMENTUM = 0.9


def upsample(x):
  """[B, H, W, C] -> [B, 2H, 2W, C]: depth_to_space of 4 channel copies (igul222).

  depth_to_space puts channel (2a+b)*C + c of pixel (i, j) at (2i+a, 2j+b); with
  four copies that channel is c, so each pixel is repeated 2x2 (nearest neighbour).
  """
  return tf.nn.depth_to_space(tf.concat([x, x, x, x], axis=-1), 2)


def mean_pool(x):
  """[B, H, W, C] -> [B, H/2, W/2, C]: mean of each 2x2 window."""
  return tf.nn.avg_pool2d(x, 2, 2, 'VALID')


class UpBlock(tf.keras.layers.Layer):
  """Pre-activation up-block: x [B, H, W, cin] -> [B, 2H, 2W, cout]."""

  def __init__(self, channels, num_classes, always_batch_stats, bn_epsilon, name=None):
    super().__init__(name=name)
    bn = dict(num_classes=num_classes, momentum=BN_MOMENTUM, epsilon=bn_epsilon,
              always_batch_stats=always_batch_stats)
    self.norm1 = layers.ConditionalBatchNorm(name='norm1', **bn)
    self.conv1 = layers.Conv2D(channels, 3, init='he', name='conv1')
    self.norm2 = layers.ConditionalBatchNorm(name='norm2', **bn)
    self.conv2 = layers.Conv2D(channels, 3, init='he', name='conv2')
    self.shortcut = layers.Conv2D(channels, 1, init='glorot', name='shortcut')

  def call(self, x, labels=None, training=False):
    h = tf.nn.relu(self.norm1(x, labels=labels, training=training))
    h = self.conv1(upsample(h))
    h = tf.nn.relu(self.norm2(h, labels=labels, training=training))
    h = self.conv2(h)
    return h + self.shortcut(upsample(x))


class ResNetGenerator(tf.keras.Model):
  """z [B, latent_dim] (+ labels int [B]) -> images [B, 32, 32, 3] in [-1, 1].

  Args:
    channels: width of every block (igul222 DIM_G 128; SN-GAN 256).
    latent_dim: n_z (128 in both references).
    num_classes: > 0 for class-conditional BN in the blocks (O6: 10); 0 = plain BN.
    always_batch_stats: BN uses batch statistics in inference too (igul222).
    bn_epsilon: see WGANGP_BN_EPSILON / SNGAN_BN_EPSILON.
  A conditional generator called with labels=None generates class 0 (the same
  default as export.load_generator), so label-free probes still run.
  """

  def __init__(self, channels, latent_dim, num_classes=0, always_batch_stats=False,
               bn_epsilon=WGANGP_BN_EPSILON, image_size=32, channels_out=3,
               name='generator'):
    super().__init__(name=name)
    if image_size != 32:
      raise ValueError(f'image_size={image_size!r}: the ResNet generators are '
                       'defined for 32x32 (cifar10) only')
    self.latent_dim = latent_dim
    self.num_classes = num_classes
    self.channels = channels
    self.always_batch_stats = always_batch_stats
    self.linear = layers.Dense(4 * 4 * channels, init='glorot', name='linear')
    self.blocks = [UpBlock(channels, num_classes, always_batch_stats, bn_epsilon,
                           name=f'block{i + 1}') for i in range(3)]
    self.out_norm = layers.ConditionalBatchNorm(
        0, momentum=BN_MOMENTUM, epsilon=bn_epsilon,
        always_batch_stats=always_batch_stats, name='out_norm')
    self.out_conv = layers.Conv2D(channels_out, 3, init='glorot', name='out_conv')

  def call(self, z, labels=None, training=False):
    if self.num_classes:
      if labels is None:
        labels = tf.zeros([tf.shape(z)[0]], tf.int32)
      labels = tf.cast(labels, tf.int32)
    else:
      labels = None
    h = tf.reshape(self.linear(z), [-1, 4, 4, self.channels])
    for block in self.blocks:
      h = block(h, labels=labels, training=training)
    h = tf.nn.relu(self.out_norm(h, training=training))
    return tf.tanh(self.out_conv(h))


class DownBlock(tf.keras.layers.Layer):
  """Critic block x [B, H, W, cin] -> [B, H/2, W/2, c] (down) or [B, H, W, c].

  kind 'first': conv-ReLU-conv-pool, shortcut conv1x1(pool(x)) (igul222
  OptimizedResBlockDisc1, chainer OptimizedBlock); 'down': ReLU-conv-ReLU-conv-pool,
  shortcut pool(conv1x1(x)); 'same': ReLU-conv-ReLU-conv, identity shortcut.
  """

  def __init__(self, channels, kind, normalization='none', toeplitz_k=1.0,
               shortcut_k=None, name=None):
    super().__init__(name=name)
    if kind not in ('first', 'down', 'same'):
      raise ValueError(f'kind={kind!r} is not known; choose first, down or same')
    self.kind = kind
    conv = dict(normalization=normalization, toeplitz_k=toeplitz_k)
    self.conv1 = layers.Conv2D(channels, 3, init='he', name='conv1', **conv)
    self.conv2 = layers.Conv2D(channels, 3, init='he', name='conv2', **conv)
    self.shortcut = None
    if kind != 'same':
      sc = dict(conv, toeplitz_k=toeplitz_k if shortcut_k is None else shortcut_k)
      self.shortcut = layers.Conv2D(channels, 1, init='glorot', name='shortcut', **sc)

  def call(self, x, training=False):
    if self.kind == 'first':
      h = self.conv2(tf.nn.relu(self.conv1(x, training=training)), training=training)
      return mean_pool(h) + self.shortcut(mean_pool(x), training=training)
    h = self.conv1(tf.nn.relu(x), training=training)
    h = self.conv2(tf.nn.relu(h), training=training)
    if self.kind == 'down':
      return mean_pool(h) + mean_pool(self.shortcut(x, training=training))
    return h + x


class ResNetDiscriminator(tf.keras.Model):
  """images [B, 32, 32, 3] -> logits [B], or (logits [B], class_logits [B, n]).

  Args:
    channels: width (128 in both references).
    pooling: 'mean' (igul222) or 'sum' (SN-GAN) over the final 8x8 map.
    head_classes: > 0 adds the ACGAN head Linear channels -> head_classes.
    normalization: 'none', 'spectral' (every conv and linear layer) or 'toeplitz'
      (convs by their true operator norm times `toeplitz_k`, linears by SN).
    toeplitz_shortcut_k: k for the two 1x1 shortcut convs (None: `toeplitz_k`).
  """

  def __init__(self, channels, pooling='mean', head_classes=0, normalization='none',
               toeplitz_k=1.0, toeplitz_shortcut_k=None, image_size=32,
               name='discriminator'):
    super().__init__(name=name)
    if image_size != 32:
      raise ValueError(f'image_size={image_size!r}: the ResNet critics are '
                       'defined for 32x32 (cifar10) only')
    if pooling not in ('mean', 'sum'):
      raise ValueError(f'pooling={pooling!r} is not known; choose mean or sum')
    self.pooling = pooling
    self.head_classes = head_classes
    blk = dict(normalization=normalization, toeplitz_k=toeplitz_k,
               shortcut_k=toeplitz_shortcut_k)
    self.blocks = [DownBlock(channels, 'first', name='block1', **blk),
                   DownBlock(channels, 'down', name='block2', **blk),
                   DownBlock(channels, 'same', name='block3', **blk),
                   DownBlock(channels, 'same', name='block4', **blk)]
    self.linear = layers.Dense(1, normalization=normalization, name='linear')
    self.class_head = (layers.Dense(head_classes, normalization=normalization,
                                    name='acgan_head') if head_classes else None)

  def call(self, x, labels=None, training=False):
    del labels  # Not fed into the critic (igul222 ACGAN; unconditional SN-GAN).
    h = x
    for block in self.blocks:
      h = block(h, training=training)
    h = tf.nn.relu(h)
    pool = tf.reduce_sum if self.pooling == 'sum' else tf.reduce_mean
    h = pool(h, axis=[1, 2])
    logits = tf.squeeze(self.linear(h, training=training), axis=-1)
    if self.class_head is None:
      return logits
    return logits, self.class_head(h, training=training)


def build(config):
  """(generator, discriminator) for config.architecture 'resnet_wgangp' / 'resnet_sngan'.

  Widths: config.g_base_channels / d_base_channels (igul222 128/128; SN-GAN
  256/128; the configs in configs/ set them). 'resnet_wgangp' has the ACGAN head
  when config.conditional and mean pooling; 'resnet_sngan' sum pooling and no
  head. config.d_normalization ('none' | 'spectral' | 'toeplitz'), toeplitz_k,
  toeplitz_k_shortcuts and g_bn_always_batch_stats apply to both. The models are
  called once on dummy inputs so their weights exist.
  """
  arch = config.architecture
  if arch not in ('resnet_wgangp', 'resnet_sngan'):
    raise config_lib.ConfigError(f'architecture={arch!r} is not a ResNet; choose '
                                 'resnet_wgangp or resnet_sngan')
  size = config_lib.IMAGE_SIZE[config.dataset]
  channels = config_lib.IMAGE_CHANNELS[config.dataset]
  if size != 32 or channels != 3:
    raise config_lib.ConfigError(
        f'architecture={arch!r} needs 32x32x3 images (cifar10); dataset='
        f'{config.dataset!r} has {size}x{size}x{channels}')
  num_classes = config_lib.NUM_CLASSES[config.dataset] if config.conditional else 0
  wgangp = arch == 'resnet_wgangp'
  g = ResNetGenerator(
      config.g_base_channels, config.latent_dim, num_classes=num_classes,
      always_batch_stats=config.g_bn_always_batch_stats,
      bn_epsilon=WGANGP_BN_EPSILON if wgangp else SNGAN_BN_EPSILON)
  d = ResNetDiscriminator(
      config.d_base_channels, pooling='mean' if wgangp else 'sum',
      head_classes=num_classes if wgangp else 0,
      normalization=config.d_normalization, toeplitz_k=config.toeplitz_k,
      toeplitz_shortcut_k=None if config.toeplitz_k_shortcuts else 1.0)
  labels = tf.zeros([2], tf.int32) if num_classes else None
  g(tf.zeros([2, config.latent_dim]), labels=labels, training=False)
  d(tf.zeros([2, size, size, channels]), training=False)
  return g, d
