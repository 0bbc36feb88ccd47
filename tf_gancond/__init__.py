"""tf_gancond: GAN generator conditioning and Lipschitz-constraint experiments."""

__version__ = '0.1.0'
