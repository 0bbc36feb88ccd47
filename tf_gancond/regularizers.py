"""Regularizers added to a GAN loss: Jacobian Clamping and the gradient penalty.

Each works on the current batch and returns its penalty plus the statistics that
the train step logs.
"""

import tensorflow as tf


def jacobian_clamping_perturb(z, direction, epsilon):
  """z' = z + eps * d / ||d|| per row (Odena et al. 2018, Algorithm 1).

  Args:
    z: float32 [B, n_z].
    direction: d [B, n_z], drawn N(0, I) by the caller (a stateless stream in the
      train step), so that the perturbation is uniform on the sphere of radius eps.
    epsilon: norm of each perturbation (paper: 1).
  Returns:
    z' [B, n_z] with ||z'_i - z_i|| = epsilon for every row i.
  """
  return z + epsilon * tf.math.l2_normalize(direction, axis=-1)


def jacobian_clamping_penalty(x, x_prime, z, z_prime, lambda_min, lambda_max,
                              norm='per_example'):
  """Jacobian Clamping penalty (Odena et al. 2018, Algorithm 1).

    Q = ||G(z) - G(z')|| / ||z - z'||
    L = (max(Q, lambda_max) - lambda_max)^2 + (min(Q, lambda_min) - lambda_min)^2

  Args:
    x, x_prime: G(z), G(z') [B, ...].
    z, z_prime: [B, n_z].
    norm: 'per_example' (Q in R^B, L averaged over the batch; SPEC O5 reading) or
      'batch' (one Q from whole-batch Frobenius norms, as some public copies do).
  Returns:
    (penalty scalar, Q [B] or [1]).
  """
  dx = tf.reshape(x - x_prime, [tf.shape(x)[0], -1])
  dz = z - z_prime
  if norm == 'per_example':
    q = tf.norm(dx, axis=-1) / tf.norm(dz, axis=-1)
  elif norm == 'batch':
    q = tf.reshape(tf.norm(dx) / tf.norm(dz), [1])
  else:
    raise ValueError(f'jc_norm={norm!r} is not known; choose per_example or batch')
  l_max = tf.square(tf.maximum(q, lambda_max) - lambda_max)
  l_min = tf.square(tf.minimum(q, lambda_min) - lambda_min)
  return tf.reduce_mean(l_max + l_min), q


def gradient_penalty(critic, real, fake, alpha):
  """WGAN-GP: mean_i (||grad_x D(x_hat_i)||_2 - 1)^2, x_hat = real + alpha (fake - real).

  Gulrajani et al. 2017: one alpha ~ U[0, 1] per example, drawn by the caller.
  Args:
    critic: images [B, H, W, C] -> critic values [B].
    real, fake: [B, H, W, C].
    alpha: [B, 1, 1, 1] in [0, 1].
  Returns:
    (penalty scalar, input-gradient norms [B]).
  """
  x_hat = real + alpha * (fake - real)
  with tf.GradientTape() as tape:
    tape.watch(x_hat)
    values = critic(x_hat)
  grads = tape.gradient(values, x_hat)
  # 1e-12 inside the sqrt keeps its gradient finite where the input gradient is 0.
  norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
  return tf.reduce_mean(tf.square(norms - 1.0)), norms
