"""Stateless random streams keyed by (seed, step, sub-step, purpose).

Every random draw of a training step takes its seed from `stream_seed`, so a draw
is a pure function of its keys: the same on 1 or N replicas, the same after a
resume, and unrelated to every other draw of the run.
"""

import enum

import tensorflow as tf


class Stream(enum.IntEnum):
  """What a draw is for: the purpose key of `stream_seed`."""
  D_Z = 1           # z of a critic step's fakes.
  G_Z = 2           # z of the generator step.
  JC_DIRECTION = 3  # Jacobian Clamping's perturbation direction.
  GP_ALPHA = 4      # WGAN-GP interpolation weights.
  G_LABELS = 5      # class labels of the generator step.
  NOISE_REAL = 6    # instance noise on D's real input,
  NOISE_FAKE = 7    # on its fake input,
  NOISE_G = 8       # on the fakes of the G step,
  NOISE_GP = 9      # on the gradient-penalty interpolates.
  VAE_EPS = 10      # reparameterisation noise of a VAE train step,
  VAE_EVAL_EPS = 11  # of a held-out -ELBO batch.


def stream_seed(seed, step, sub_step, purpose):
  """Seed [2] int64 of the stream keyed by (seed, step, sub_step, purpose).

  Each key is folded in by `stateless_fold_in` (a Philox hash of seed and key), so
  distinct key tuples give unrelated streams; an arithmetic salt such as
  step*16 + purpose + 16*sub_step would map (step, k) and (step + 1, k - 1) to one.
  """
  out = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
  for key in (step, sub_step, int(purpose)):
    out = tf.random.experimental.stateless_fold_in(out, tf.cast(key, tf.int64))
  return out


def normal(shape, seed, step, purpose, sub_step=0):
  """N(0, 1) draw of `shape` from the stream (seed, step, sub_step, purpose)."""
  return tf.random.stateless_normal(shape, seed=stream_seed(seed, step, sub_step,
                                                            purpose))


class ReplicaStreams:
  """Draws for the global batch, of which each replica keeps its own rows.

  `normal(global_rows, ...)` draws [global_rows, ...] and returns this replica's
  slice [global_rows / replicas, ...]: N replicas together see exactly the draw
  of one device.
  """

  def __init__(self, seed, num_replicas):
    self.seed = seed
    self.num_replicas = num_replicas

  def normal(self, global_rows, shape, step, purpose, sub_step=0):
    """N(0, 1) [global_rows / replicas, *shape]."""
    full = normal([global_rows, *shape], self.seed, step, purpose, sub_step)
    return self._replica_slice(full, global_rows)

  def uniform(self, global_rows, shape, step, purpose, sub_step=0, maxval=1.0,
              dtype=tf.float32):
    """U[0, maxval) [global_rows / replicas, *shape] (integers for an int dtype)."""
    seed = stream_seed(self.seed, step, sub_step, purpose)
    full = tf.random.stateless_uniform([global_rows, *shape], seed=seed, minval=0,
                                       maxval=maxval, dtype=dtype)
    return self._replica_slice(full, global_rows)

  def _replica_slice(self, full, global_rows):
    if self.num_replicas == 1:
      return full
    local = global_rows // self.num_replicas
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    return full[replica * local:(replica + 1) * local]
