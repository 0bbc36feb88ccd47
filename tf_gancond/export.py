"""Generator SavedModels: the contract that probes and outside tools load.

Contract (also in BUILD.md):
  * `tf.saved_model.load(path).signatures['serving_default']` takes
    `z`: float32 [None, n_z] (and, for class-conditional generators, `labels`:
    int32 [None]) and returns {'images': float32 [None, H, W, C] in [-1, 1]}.
  * The loaded object is also callable: `obj(z)` (conditional: `obj(z, labels)`)
    returns the images tensor. BatchNorm runs in inference mode (moving averages),
    except in a generator trained with g_bn_always_batch_stats (O6), which normalises
    each batch with its own statistics, as its metadata says.
  * `obj.latent_dim` and `obj.num_classes` are int constants (tf.Variable),
    `obj.image_shape` an int32 [3] variable.
  * A file `tf_gancond.json` beside `saved_model.pb` records the step, dataset and
    the resolved config fields that built it.
Writes are atomic: the model goes to a temporary sibling directory that is swapped
into place only when complete (`runlog.replace_folder`), so a crash never leaves a
half-written export; an earlier export at the path is whole at the path, or (without
Linux's atomic exchange) at `<path>.replaced`. A
generator with a NaN or Inf weight is never exported (NonFiniteWeightsError).
"""

import json
import os
import shutil

import tensorflow as tf

from tf_gancond import runlog

METADATA_FILE = 'tf_gancond.json'


class NonFiniteWeightsError(ValueError):
  """A generator weight holds NaN or Inf; nothing was written."""


class ExportedGenerator(tf.Module):
  """Wraps a Keras generator with the explicit signature of the contract."""

  def __init__(self, generator, latent_dim, image_shape, num_classes=0):
    super().__init__(name='exported_generator')
    self.generator = generator
    self.latent_dim = tf.Variable(latent_dim, trainable=False, dtype=tf.int32)
    self.num_classes = tf.Variable(num_classes, trainable=False, dtype=tf.int32)
    self.image_shape = tf.Variable(list(image_shape), trainable=False, dtype=tf.int32)
    z_spec = tf.TensorSpec([None, latent_dim], tf.float32, name='z')
    if num_classes:
      label_spec = tf.TensorSpec([None], tf.int32, name='labels')
      self.__call__ = tf.function(self._generate_conditional,
                                  input_signature=[z_spec, label_spec])
      self.serving = tf.function(
          lambda z, labels: {'images': self._generate_conditional(z, labels)},
          input_signature=[z_spec, label_spec])
    else:
      self.__call__ = tf.function(self._generate, input_signature=[z_spec])
      self.serving = tf.function(lambda z: {'images': self._generate(z)},
                                 input_signature=[z_spec])

  def _generate(self, z):
    return self.generator(z, training=False)

  def _generate_conditional(self, z, labels):
    return self.generator(z, labels=labels, training=False)


def export_generator(generator, path, latent_dim, image_shape, num_classes=0,
                     metadata=None):
  """Saves `generator` as a SavedModel at `path` (atomically); returns `path`.

  Raises NonFiniteWeightsError, before writing anything, when a weight (BatchNorm
  statistics included) is not finite.
  """
  bad = [v.name for v in generator.variables
         if v.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(v)))]
  if bad:
    raise NonFiniteWeightsError(
        f'non-finite generator weight {bad[0]}' +
        (f' (and {len(bad) - 1} more)' if len(bad) > 1 else '') +
        f'; not exported to {path!r}')
  module = ExportedGenerator(generator, latent_dim, image_shape, num_classes)
  tmp = path.rstrip('/') + '.tmp'
  if os.path.exists(tmp):
    shutil.rmtree(tmp)
  tf.saved_model.save(module, tmp, signatures={'serving_default': module.serving})
  with open(os.path.join(tmp, METADATA_FILE), 'w') as f:
    json.dump(dict(metadata or {}, latent_dim=int(latent_dim),
                   image_shape=[int(s) for s in image_shape],
                   num_classes=int(num_classes)), f, indent=1, sort_keys=True)
  runlog.replace_folder(tmp, path)  # A kill never leaves `path` without an export.
  return path


def load_generator(path):
  """Loads a generator SavedModel; returns (callable z -> images, latent_dim).

  Works for any SavedModel with the contract's `serving_default` signature, not
  only ones written here. Raises ValueError (one line) when the contract is unmet.
  Loading a SavedModel runs the TensorFlow graph stored in it: load only
  directories you trust.
  """
  if not os.path.isdir(path) or not os.path.exists(
      os.path.join(path, 'saved_model.pb')):
    raise ValueError(f'saved_model={path!r} is not a SavedModel directory '
                     '(no saved_model.pb)')
  obj = tf.saved_model.load(path)
  sig = getattr(obj, 'signatures', {}).get('serving_default')
  if sig is None:
    raise ValueError(f'saved_model={path!r} has no serving_default signature; '
                     'expected z: float32 [None, n_z] -> images')
  inputs = sig.structured_input_signature[1]
  if 'z' not in inputs or inputs['z'].shape.rank != 2 or inputs['z'].shape[1] is None:
    raise ValueError(f'saved_model={path!r}: serving_default must take z of shape '
                     f'[None, n_z]; it takes {inputs}')
  latent_dim = int(inputs['z'].shape[1])
  if 'images' not in sig.structured_outputs:
    raise ValueError(f'saved_model={path!r}: serving_default must return '
                     f"{{'images': ...}}; it returns {list(sig.structured_outputs)}")

  if set(inputs) == {'z'}:
    def generate(z):
      return sig(z=z)['images']
  else:
    def generate(z, labels=None):
      if labels is None:
        labels = tf.zeros([tf.shape(z)[0]], tf.int32)
      return sig(z=z, labels=labels)['images']
  # The signature holds only weak references to the variables: keep the loaded
  # object alive as long as the function is.
  generate.saved_model = obj
  return generate, latent_dim
