"""Jacobian benchmark: the probe against reverse mode and the forward-mode floor.

  python -m tf_gancond.benchmarks.jacobian [--batch=64 --repeats=3]

On the generator of docs/experiments.md#o1 (28x28 DCGAN, n_z 64, 256 base channels;
BatchNorm in inference mode) and one batch of z, times in one run (median of repeats
after a warm-up):
  * probe: `probes.jacobian` (pfor-vectorised JVPs);
  * probe, tiled: the same JVPs on the batch tiled n_z times (the fallback);
  * ForwardAccumulator: `tf.autodiff.ForwardAccumulator` vectorised over the n_z
    basis tangents with the Keras model traced inline (the only setting where it
    is right: through a called tf.function or a loaded SavedModel it loses the
    fused-BatchNorm tangent, see `probes`); for comparison only;
  * batch_jacobian: `tape.batch_jacobian(..., experimental_use_pfor=False)`, one
    reverse pass per output (with pfor: --pfor_reverse);
  * n_z forward passes: G on the batch n_z times, the cost floor of forward mode.
Prints the times and the ratios the issue targets: probe / batch_jacobian <= 1/4
and probe / (n_z forward passes) <= 2.0, and the 1-minute load average (the CPU
may be shared: compare ratios from one run, not times across runs).
"""

import os
import statistics
import time

from absl import app
from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_gancond import config as config_lib  # noqa: E402
from tf_gancond import models  # noqa: E402
from tf_gancond import probes  # noqa: E402

flags.DEFINE_integer('batch', 64, 'z per batch.')
flags.DEFINE_integer('repeats', 3, 'Timed repeats (median).')
flags.DEFINE_bool('pfor_reverse', False, 'Also time batch_jacobian with pfor.')
FLAGS = flags.FLAGS


def _median_time(fn, repeats):
  """(median seconds over `repeats` calls after one warm-up call, its result)."""
  result = fn()  # Warm-up (tracing).
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times), result


def main(argv):
  del argv
  c = config_lib.resolve(config_lib.get_config())
  g, _ = models.build_gan(c)
  generate = tf.function(lambda z: g(z, training=False))
  z = tf.constant(probes.fixed_probe_z(c.latent_dim, FLAGS.batch))
  n_z = c.latent_dim

  def batch_jacobian(use_pfor):
    @tf.function
    def fn():
      with tf.GradientTape() as tape:
        tape.watch(z)
        out = tf.reshape(generate(z), [FLAGS.batch, -1])
      return tape.batch_jacobian(out, z, experimental_use_pfor=use_pfor)
    return fn

  @tf.function
  def forward_passes():
    return [generate(z) for _ in range(n_z)]

  @tf.function
  def forward_accumulator():
    def column(k):  # J e_k for every row; g traced inline (not `generate`).
      tangent = tf.tile(tf.one_hot(k, n_z)[None], [FLAGS.batch, 1])
      with tf.autodiff.ForwardAccumulator(z, tangent) as acc:
        out = g(z, training=False)
      return acc.jvp(out)
    columns = tf.vectorized_map(column, tf.range(n_z), fallback_to_while_loop=False)
    return tf.transpose(tf.reshape(columns, [n_z, FLAGS.batch, -1]), [1, 2, 0])

  load_before = os.getloadavg()[0]
  timed = {
      'probe (pfor JVPs)': _median_time(
          lambda: probes.jacobian(generate, z).numpy(), FLAGS.repeats),
      'probe, tiled fallback': _median_time(
          lambda: probes.jacobian(generate, z, vectorize=False).numpy(), FLAGS.repeats),
      'ForwardAccumulator (inline)': _median_time(
          lambda: forward_accumulator().numpy(), FLAGS.repeats),
      'n_z forward passes': _median_time(
          lambda: [x.numpy() for x in forward_passes()], FLAGS.repeats),
      'batch_jacobian (no pfor)': _median_time(
          lambda: batch_jacobian(False)().numpy(), max(1, FLAGS.repeats - 2)),
  }
  if FLAGS.pfor_reverse:
    timed['batch_jacobian (pfor)'] = _median_time(
        lambda: batch_jacobian(True)().numpy(), 1)
  results = {name: seconds for name, (seconds, _) in timed.items()}
  reference = timed['batch_jacobian (no pfor)'][1]
  print(f'28x28 DCGAN, n_z={n_z}, batch {FLAGS.batch}, {os.cpu_count()} CPUs, '
        f'TensorFlow {tf.__version__}; load average {load_before:.1f} before, '
        f'{os.getloadavg()[0]:.1f} after')
  for name in ('probe (pfor JVPs)', 'probe, tiled fallback', 'ForwardAccumulator (inline)'):
    error = np.abs(timed[name][1] - reference).max()
    print(f'max |J - J_batch_jacobian| {name}: {error:.2e} '
          f'(max |J| {np.abs(reference).max():.2e})')
  for name, seconds in results.items():
    print(f'{name:28s} {seconds:8.3f} s')
  probe = results['probe (pfor JVPs)']
  print(f'probe / batch_jacobian:      {probe / results["batch_jacobian (no pfor)"]:.3f}'
        '  (target <= 0.25)')
  print(f'probe / n_z forward passes:  {probe / results["n_z forward passes"]:.3f}'
        '  (target <= 2.0)')
  print(f'tiled / pfor probe:          {results["probe, tiled fallback"] / probe:.3f}')
  print(f'ForwardAccumulator / probe:  '
        f'{results["ForwardAccumulator (inline)"] / probe:.3f}')


if __name__ == '__main__':
  app.run(main)
