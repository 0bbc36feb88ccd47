"""The TensorFlow stack this process runs on, and the checks that it is as tested.

Two stacks are tested (BUILD.md "Two stacks"):
  * faithful: TensorFlow 2.15.1, whose `tf.keras` is its own keras 2.15.0
    (constraints/faithful.txt);
  * modern: the newest TensorFlow, with Keras 2 served by the `tf-keras` package
    because `tf_gancond/__init__.py` sets TF_USE_LEGACY_KERAS=1 before TensorFlow is
    used (constraints/modern.txt).
The model code is Keras 2 code on both. The differences live in three places: the
environment variable, decided in `tf_gancond/__init__.py` before TensorFlow is
imported; this module, which names the stack and checks `tf.keras` after; and
`scores._import_tfgan_eval`, which imports TF-GAN's eval modules on either.
"""

import importlib.metadata

import tensorflow as tf

TF_VERSION = tuple(int(part) for part in tf.__version__.split('.')[:2])
# TF 2.16 removed tf.estimator (TF-GAN's package import) and made tf.keras Keras 3.
TF_AT_LEAST_2_16 = TF_VERSION >= (2, 16)
NAME = 'modern' if TF_AT_LEAST_2_16 else 'faithful'


class KerasVersionError(ImportError):
  """tf.keras is Keras 3: the package's models are Keras 2 code."""


def _keras_distribution():
  """The distribution that serves `tf.keras`: 'keras' (TF 2.15) or 'tf-keras'."""
  return 'tf-keras' if tf.keras.__name__.startswith('tf_keras') else 'keras'


def check_keras_2():
  """Raises KerasVersionError unless `tf.keras` is this stack's Keras 2: TF 2.15's
  own keras on the faithful stack, tf-keras on the modern one."""
  keras = _keras_distribution()
  version = distribution_version(keras)
  expected = 'tf-keras' if TF_AT_LEAST_2_16 else 'keras'
  if keras != expected or not version.startswith('2.'):
    raise KerasVersionError(
        f'tf.keras is {keras} {version} (TensorFlow {tf.__version__}); tf_gancond needs '
        f'{expected} 2.x here: import tf_gancond before using tf.keras (it sets '
        'TF_USE_LEGACY_KERAS as this TensorFlow needs), with tf-keras installed')


def distribution_version(name):
  """The installed version of distribution `name`, or 'not installed'."""
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return 'not installed'


def versions():
  """{'stack', 'tensorflow', 'keras'}: recorded with every run start."""
  keras = _keras_distribution()
  return {'stack': NAME, 'tensorflow': tf.__version__,
          'keras': f'{keras} {distribution_version(keras)}'}


check_keras_2()
