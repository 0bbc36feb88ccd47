"""`python -m tf_gancond.launch` with the CPU split into 2 logical devices and mock
TFDS data (a test launcher for sweeps of `strategy=mirrored` runs).

  python tests/mirrored_launch.py LAUNCH_FLAGS...

The split must happen before TensorFlow initialises its devices, so it is done here,
before the launcher runs. Each strategy the run makes is reported on stderr as
`replicas: N`, so a test can see the run did train on both devices.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MOCK_EXAMPLES = 16


def main():
  import tensorflow as tf
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  import tensorflow_datasets as tfds
  from tf_gancond import distribute
  from tf_gancond import launch
  make_strategy = distribute.make_strategy

  def reported(name):
    strategy = make_strategy(name)
    print(f'replicas: {strategy.num_replicas_in_sync}', file=sys.stderr, flush=True)
    return strategy
  distribute.make_strategy = reported
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    launch.run()


if __name__ == '__main__':
  main()
