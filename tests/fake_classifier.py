"""Tiny fake classifiers saved as SavedModels, standing in for Inception / MNIST nets.

Like TF-GAN's own tests (a `tf.Module` returning {'logits', 'pool_3'} saved to a temp
dir), but with outputs that are known functions of the input, so a test can compute
the expected scores in numpy from the same images:
  * `save_linear`: logits = flat(x) @ W_l, pool_3 = tanh(flat(x) @ W_f), with fixed
    random W (feature width small, so FID's sqrtm is instant).
  * `save_class_code`: reads a class code from pixel (0, 0, 0): logits_k =
    -SHARPNESS (x000 - code(k))^2, where `code(k) = -0.9 + 0.2 k`; `class_code_images`
    makes images that carry a given class.
  * `save_shape_probe`: no static input shape (as TF-GAN's fake Inception); pool_3
    reports the height, width and channels it was given, to check resizing.
"""

import numpy as np
import tensorflow as tf

# Codes 0.2 apart: the nearest wrong class is >= 40 logits lower, so p(y|x) is one-hot.
SHARPNESS = 1000.0


def linear_weights(input_dim, num_classes=10, feature_dim=6, seed=0):
  rng = np.random.default_rng(seed)
  # 1/sqrt(input_dim) keeps the logits and tanh inputs O(1).
  w_logits = rng.standard_normal((input_dim, num_classes)) / np.sqrt(input_dim)
  w_features = rng.standard_normal((input_dim, feature_dim)) / np.sqrt(input_dim)
  return w_logits.astype(np.float32), w_features.astype(np.float32)


def linear_reference(images, w_logits, w_features):
  """float64 numpy (logits, features) of `save_linear`'s module."""
  flat = np.asarray(images, np.float64).reshape(len(images), -1)
  return flat @ w_logits.astype(np.float64), np.tanh(flat @ w_features.astype(np.float64))


class _Linear(tf.Module):

  def __init__(self, w_logits, w_features, image_shape):
    super().__init__()
    self.w_logits = tf.Variable(w_logits, trainable=False)
    self.w_features = tf.Variable(w_features, trainable=False)
    spec = tf.TensorSpec([None] + list(image_shape), tf.float32)
    self.__call__ = tf.function(self._call, input_signature=[spec])

  def _call(self, x):
    flat = tf.reshape(x, [tf.shape(x)[0], -1])
    return {'logits': flat @ self.w_logits,
            'pool_3': tf.tanh(flat @ self.w_features)}


class _LinearLogitsOnly(_Linear):
  """The linear fake returning its logits alone, as TF-GAN's MNIST module does."""

  def _call(self, x):
    return super()._call(x)['logits']


def save_linear(path, image_shape, num_classes=10, feature_dim=6, seed=0,
                logits_only=False):
  """Saves the linear fake; returns (path, w_logits, w_features)."""
  w_l, w_f = linear_weights(int(np.prod(image_shape)), num_classes, feature_dim, seed)
  module = (_LinearLogitsOnly if logits_only else _Linear)(w_l, w_f, image_shape)
  tf.saved_model.save(module, str(path), signatures={'serving_default': module.__call__})
  return str(path), w_l, w_f


def class_code(k):
  return -0.9 + 0.2 * k


def class_code_images(classes, image_shape):
  """Images [N, *image_shape] with pixel (0, 0, 0) = code(class), zeros elsewhere."""
  images = np.zeros((len(classes),) + tuple(image_shape), np.float32)
  images[:, 0, 0, 0] = [class_code(k) for k in classes]
  return images


class _ClassCode(tf.Module):

  def __init__(self, image_shape, num_classes):
    super().__init__()
    self.codes = tf.constant([class_code(k) for k in range(num_classes)], tf.float32)
    spec = tf.TensorSpec([None] + list(image_shape), tf.float32)
    self.__call__ = tf.function(self._call, input_signature=[spec])

  def _call(self, x):
    v = x[:, 0, 0, 0:1]
    logits = -SHARPNESS * tf.square(v - self.codes[None, :])
    return {'logits': logits, 'pool_3': tf.reshape(x[:, :2, :2, :], [tf.shape(x)[0], -1])}


def save_class_code(path, image_shape, num_classes=10):
  module = _ClassCode(image_shape, num_classes)
  tf.saved_model.save(module, str(path), signatures={'serving_default': module.__call__})
  return str(path)


class _ShapeProbe(tf.Module):

  @tf.function(input_signature=[tf.TensorSpec(shape=None, dtype=tf.float32)])
  def __call__(self, x):
    b = tf.shape(x)[0]
    hwc = tf.cast(tf.shape(x)[1:4], tf.float32)
    return {'logits': tf.zeros([b, 4]), 'pool_3': tf.tile(hwc[None, :], [b, 1])}


def save_shape_probe(path):
  tf.saved_model.save(_ShapeProbe(), str(path))
  return str(path)


class _WrongOutputs(tf.Module):

  @tf.function(input_signature=[tf.TensorSpec(shape=None, dtype=tf.float32)])
  def __call__(self, x):
    return {'probabilities': tf.zeros([tf.shape(x)[0], 10])}


def save_wrong_outputs(path):
  tf.saved_model.save(_WrongOutputs(), str(path))
  return str(path)
