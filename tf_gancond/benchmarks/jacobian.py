"""Jacobian benchmark: the probe against reverse mode and the forward-mode floor.

  python -m tf_gancond.benchmarks.jacobian [--batch=64 --repeats=3]

On the SPEC O1 generator (28x28 DCGAN, n_z 64, 256 base channels; BatchNorm in
inference mode) and one batch of z, times in one run (median of repeats after a
warm-up):
  * probe: `probes.jacobian` (pfor-vectorised JVPs);
  * probe, tiled: the same JVPs on the batch tiled n_z times (the fallback);
  * batch_jacobian: `tape.batch_jacobian(..., experimental_use_pfor=False)`, one
    reverse pass per output (with pfor: --pfor_reverse);
  * n_z forward passes: G on the batch n_z times, the cost floor of forward mode.
Prints the times and the ratios the issue targets: probe / batch_jacobian <= 1/4
and probe / (n_z forward passes) <= 2.0.
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
  fn()  # Warm-up (tracing).
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


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

  results = {
      'probe (pfor JVPs)': _median_time(
          lambda: probes.jacobian(generate, z).numpy(), FLAGS.repeats),
      'probe, tiled fallback': _median_time(
          lambda: probes.jacobian(generate, z, vectorize=False).numpy(), FLAGS.repeats),
      'n_z forward passes': _median_time(
          lambda: [x.numpy() for x in forward_passes()], FLAGS.repeats),
      'batch_jacobian (no pfor)': _median_time(
          lambda: batch_jacobian(False)().numpy(), max(1, FLAGS.repeats - 2)),
  }
  if FLAGS.pfor_reverse:
    results['batch_jacobian (pfor)'] = _median_time(
        lambda: batch_jacobian(True)().numpy(), 1)
  reference = batch_jacobian(False)().numpy()
  error = np.abs(probes.jacobian(generate, z).numpy() - reference).max()
  print(f'28x28 DCGAN, n_z={n_z}, batch {FLAGS.batch}, {os.cpu_count()} CPUs, '
        f'TensorFlow {tf.__version__}; max |J_probe - J_reverse| = {error:.2e}')
  for name, seconds in results.items():
    print(f'{name:28s} {seconds:8.3f} s')
  probe = results['probe (pfor JVPs)']
  print(f'probe / batch_jacobian:      {probe / results["batch_jacobian (no pfor)"]:.3f}'
        '  (target <= 0.25)')
  print(f'probe / n_z forward passes:  {probe / results["n_z forward passes"]:.3f}'
        '  (target <= 2.0)')
  print(f'tiled / pfor probe:          {results["probe, tiled fallback"] / probe:.3f}')


if __name__ == '__main__':
  app.run(main)
