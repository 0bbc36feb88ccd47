"""Generators and discriminators, built by name from a config (`build_gan`)."""

from tf_gancond import stack  # noqa: F401  Refuses a tf.keras that is Keras 3, at import.

from tf_gancond.models.dcgan import DCGANDiscriminator, DCGANGenerator
from tf_gancond.models.registry import build_gan, image_shape, restore_run_gan

__all__ = ['DCGANGenerator', 'DCGANDiscriminator', 'build_gan', 'image_shape',
           'restore_run_gan']
