"""Builds the generator / discriminator pair named by `config.architecture`."""

from tf_gancond import config as config_lib
from tf_gancond.models import dcgan


def image_shape(config):
  """(H, W, C) of the images of `config.dataset`."""
  size = config_lib.IMAGE_SIZE[config.dataset]
  return (size, size, config_lib.IMAGE_CHANNELS[config.dataset])


# Keras dtype policy per config precision (models/dcgan.py); None = float32.
KERAS_POLICY = {'float32': None, 'bfloat16': 'mixed_bfloat16'}


def build_gan(config, sync_batch_norm=False, precision=None):
  """Returns (generator, discriminator), built (weights created) for `config`.

  Both are Keras models: `generator(z, labels=None, training=...)` maps float32
  z [B, n_z] to images [B, H, W, C] in [-1, 1]; `discriminator(x, labels=None,
  training=...)` maps images to logits [B]. Call inside `strategy.scope()`.
  `sync_batch_norm`: DCGAN BatchNorm statistics over all replicas (pass
  `strategy.num_replicas_in_sync > 1`); the ResNets' conditional BN ignores it.
  `precision`: config.precision when None; 'float32' builds float32 models of a
  bf16-trained run (their variables are float32 either way, so checkpoints load).
  """
  h, _, c = image_shape(config)
  precision = precision or config.precision  # config.validate allows bf16 for dcgan only.
  if config.architecture == 'dcgan':
    bn = dict(sync_batch_norm=sync_batch_norm, bn_momentum=config.bn_momentum,
              bn_epsilon=config.bn_epsilon, policy=KERAS_POLICY[precision])
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


def restore_run_gan(workdir, step=None):
  """(config, generator, discriminator, step) of a training run's checkpoint.

  Builds the models that `<workdir>/config.txt` (the resolved config the run wrote)
  describes and restores `<workdir>/checkpoints/ckpt-<step>` (default: the newest)
  into them. Raises ValueError (one line) for a folder that holds no GAN run, or no
  such checkpoint.
  """
  import os
  import tensorflow as tf
  from tf_gancond import runlog
  saved = runlog.read_config(workdir)
  if not saved:
    raise ValueError(f'run={workdir!r} has no readable {runlog.CONFIG_FILE}; give a '
                     'training run directory')
  if saved.get('experiment', 'gan') != 'gan':
    raise ValueError(f'run={workdir!r} is a {saved["experiment"]!r} run, not a GAN')
  config = config_lib.get_config()
  config.update({k: v for k, v in saved.items() if k in config})
  directory = os.path.join(workdir, 'checkpoints')
  path = (tf.train.latest_checkpoint(directory) if step is None else
          os.path.join(directory, f'ckpt-{step}'))
  if path is None or not tf.io.gfile.exists(path + '.index'):
    raise ValueError(f'run={workdir!r} has no checkpoint '
                     f'{"under checkpoints/" if step is None else f"ckpt-{step}"}')
  g, d = build_gan(config, precision='float32')  # Probes run in float32.
  restored_step = tf.Variable(0, dtype=tf.int64)
  tf.train.Checkpoint(step=restored_step, generator=g, discriminator=d).restore(
      path).expect_partial()
  return config, g, d, int(restored_step.numpy())
