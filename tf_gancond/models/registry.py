"""Builds the generator / discriminator pair named by `config.architecture`."""

from tf_gancond import config as config_lib
from tf_gancond.models import dcgan


def image_shape(config):
  """(H, W, C) of the images of `config.dataset`."""
  size = config_lib.IMAGE_SIZE[config.dataset]
  return (size, size, config_lib.IMAGE_CHANNELS[config.dataset])


def build_gan(config, sync_batch_norm=False):
  """Returns (generator, discriminator), built (weights created) for `config`.

  Both are Keras models: `generator(z, labels=None, training=...)` maps float32
  z [B, n_z] to images [B, H, W, C] in [-1, 1]; `discriminator(x, labels=None,
  training=...)` maps images to logits [B]. Call inside `strategy.scope()`.
  `sync_batch_norm`: DCGAN BatchNorm statistics over all replicas (pass
  `strategy.num_replicas_in_sync > 1`); the ResNets' conditional BN ignores it.
  """
  h, _, c = image_shape(config)
  if config.architecture == 'dcgan':
    bn = dict(sync_batch_norm=sync_batch_norm, bn_momentum=config.bn_momentum,
              bn_epsilon=config.bn_epsilon)
    g = dcgan.DCGANGenerator(h, c, config.latent_dim, config.g_base_channels, **bn)
    d = dcgan.DCGANDiscriminator(h, config.d_base_channels, **bn)
  elif config.architecture in ('resnet_wgangp', 'resnet_sngan'):
    # docs/experiments.md#o6, #s0 to #s4.
    from tf_gancond.models import resnet  # Builds its weights.
    return resnet.build(config)
  else:
    raise config_lib.ConfigError(
        f'architecture={config.architecture!r} is not built yet; available: dcgan, resnet_wgangp, resnet_sngan')
  import tensorflow as tf
  g(tf.zeros([1, config.latent_dim]), training=False)
  d(tf.zeros([1, h, h, c]), training=False)
  return g, d
