"""Stateless random streams keyed by (seed, step, sub-step, purpose).

Every random draw of a training step takes its seed from `stream_seed`, so a draw
is a pure function of its keys: the same on 1 or N replicas, the same after a
resume, and unrelated to every other draw of the run.
"""

import tensorflow as tf


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

_Q_PERCENTILES = (5, 25, 50, 75, 95)
