"""Distributed benchmark: steps/sec with MirroredStrategy against the default strategy.

  python -m tf_gancond.benchmarks.distributed [--batch_sizes=64 --steps=30]

On a machine without a GPU the CPU is split into `--logical_cpus` logical
devices (before TensorFlow initialises them) and `distribute.make_strategy(
'mirrored')` runs one replica on each; both logical devices share the same CPU
cores and thread pools, so no speed-up is expected: this is a correctness and
overhead check (the equivalence itself is tested in tests/test_distributed.py).
With GPUs, 'mirrored' uses every local GPU. The model is the 28x28 DCGAN of
docs/experiments.md#o1 with the widths of the flags, fed synthetic in-memory data (no
input cost), with global batch `--batch_sizes` (each: steps/s, images/s, mirrored /
default ratio). Every figure includes fetching the step's scalars, as the training loop
does.
"""

import os

from absl import app
from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # noqa: E402

flags.DEFINE_integer('steps', 30, 'Timed steps per repeat.')
flags.DEFINE_integer('repeats', 3, 'Repeats per variant (median reported).')
flags.DEFINE_list('batch_sizes', ['64'], 'Global batch sizes to time.')
flags.DEFINE_integer('logical_cpus', 2, 'Logical CPU devices when there is no GPU.')
flags.DEFINE_integer('g_base_channels', 64,
                     'Generator width (docs/experiments.md#o1: 256).')
flags.DEFINE_integer('d_base_channels', 32,
                     'Discriminator width (docs/experiments.md#o1: 64).')
flags.DEFINE_bool('jacobian_clamping', False, 'Time the Jacobian Clamping step.')
FLAGS = flags.FLAGS


def _split_cpu(n):
  """n logical CPU devices (only possible before TensorFlow initialises devices)."""
  if tf.config.list_physical_devices('GPU') or n < 2:
    return
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def _config(batch_size):
  from tf_gancond import config as config_lib
  c = config_lib.get_config()
  c.update(dict(dataset='fashion_mnist', batch_size=batch_size, synthetic_data=True,
                g_base_channels=FLAGS.g_base_channels,
                d_base_channels=FLAGS.d_base_channels, probe_every=0,
                jacobian_clamping=FLAGS.jacobian_clamping))
  return config_lib.validate(config_lib.resolve(c))


def time_strategy(config, strategy, steps, repeats):
  """Median seconds per train step of GANTrainer under `strategy`."""
  from tf_gancond import benchmarks
  return benchmarks.time_train_step(config, strategy, steps, repeats, warmup=3)


def run_benchmark():
  """Prints and returns {batch: (default s/step, mirrored s/step)}."""
  _split_cpu(FLAGS.logical_cpus)
  from tf_gancond import distribute
  mirrored = distribute.make_strategy('mirrored')
  devices = [d.split('/')[-1] for d in mirrored.extended.worker_devices]
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores '
        f'(load average {os.getloadavg()[0]:.2f}), mirrored over {devices}; '
        f'G/D widths {FLAGS.g_base_channels}/{FLAGS.d_base_channels}, '
        f'{FLAGS.steps} steps x {FLAGS.repeats} repeats (median)')
  results = {}
  for batch in (int(b) for b in FLAGS.batch_sizes):
    config = _config(batch)
    one = time_strategy(config, tf.distribute.get_strategy(), FLAGS.steps,
                        FLAGS.repeats)
    two = time_strategy(config, mirrored, FLAGS.steps, FLAGS.repeats)
    results[batch] = (one, two)
    for name, seconds in (('default', one), (f'mirrored x{len(devices)}', two)):
      print(f'batch {batch:4d} {name:14s} {1 / seconds:8.2f} steps/s '
            f'{batch / seconds:9.0f} images/s')
    print(f'batch {batch:4d} mirrored / default steps/s: {one / two:.3f}')
  return results


def main(argv):
  del argv
  run_benchmark()  # (app.run would print a returned value and exit with 1.)


if __name__ == '__main__':
  app.run(main)
