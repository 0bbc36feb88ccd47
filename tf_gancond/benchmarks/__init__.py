"""Speed measurements; each script prints ratios measured in one run."""

import statistics
import time


def time_train_step(config, strategy, steps, repeats, warmup=5):
  """Median seconds per GANTrainer iteration for `config` under `strategy`.

  Includes what the training loop does per step (fetching the scalars). Imports
  TensorFlow lazily: a caller may first split the CPU into logical devices.
  """
  import tensorflow as tf
  from tf_gancond import data as data_lib
  from tf_gancond import train
  tf.keras.utils.set_random_seed(config.seed)
  trainer = train.GANTrainer(config, strategy)
  iterator = iter(strategy.experimental_distribute_dataset(
      data_lib.make_dataset(config)))
  for _ in range(warmup):  # Tracing, and the first pass over the data cache.
    {k: v.numpy() for k, v in trainer.train_step(iterator).items()}
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      {k: v.numpy() for k, v in trainer.train_step(iterator).items()}
    times.append((time.perf_counter() - start) / steps)
  return statistics.median(times)
