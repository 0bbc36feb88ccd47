"""tf_gancond: GAN generator conditioning and Lipschitz-constraint experiments."""

import importlib.metadata
import os

# oneDNN kernels: TF 2.15 turns them on by default only on some x86 CPUs; measured
# here (AMD EPYC, 2 cores) they make the DCGAN train step 1.3x faster (0.41 s vs
# 0.52 s, tf_gancond.benchmarks.train_step). Read when TensorFlow is first imported,
# so it must be set before that; a user's own setting wins.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
# Keras 2 on every stack. TensorFlow 2.16+ makes `tf.keras` Keras 3 unless
# TF_USE_LEGACY_KERAS=1 is set before `tf.keras` is first used; it then serves the
# `tf-keras` package. TF 2.15 honours it too and would swap its own keras 2.15.0 for
# tf-keras 2.15.1, so there it is removed (a modern parent process or a shell may have
# set it): the faithful stack stays as pinned. `tf_gancond.stack` checks the result.
def _installed_tensorflow():
  """(major, minor) of the installed TensorFlow, read without importing it."""
  for name in ('tensorflow', 'tensorflow-cpu', 'tensorflow-macos', 'tensorflow-intel'):
    try:
      return tuple(int(p) for p in importlib.metadata.version(name).split('.')[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
      continue
  return None


if (_installed_tensorflow() or (2, 16)) >= (2, 16):
  os.environ['TF_USE_LEGACY_KERAS'] = '1'
else:
  os.environ.pop('TF_USE_LEGACY_KERAS', None)

__version__ = '0.1.0'
