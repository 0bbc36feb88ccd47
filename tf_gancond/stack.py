"""The TensorFlow stack this process runs on: the one place the two stacks differ.

Two stacks are tested (BUILD.md "Two stacks"):
  * faithful: TensorFlow 2.15.1, whose `tf.keras` is Keras 2 (constraints/faithful.txt);
  * modern: the newest TensorFlow, with Keras 2 served by the `tf-keras` package
    because `tf_gancond/__init__.py` sets TF_USE_LEGACY_KERAS=1 before TensorFlow is
    imported (constraints/modern.txt).
The model code is Keras 2 code on both. What differs is handled here and nowhere else.
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
  """Raises KerasVersionError (one line) unless `tf.keras` is Keras 2."""
  keras = _keras_distribution()
  version = distribution_version(keras)
  if not version.startswith('2.'):
    raise KerasVersionError(
        f'tf.keras is {keras} {version} (TensorFlow {tf.__version__}); tf_gancond needs '
        'Keras 2: import tf_gancond before tensorflow, or set TF_USE_LEGACY_KERAS=1, '
        'with the tf-keras package installed')


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
