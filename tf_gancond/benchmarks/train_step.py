"""Train-step benchmark: seconds per DCGAN iteration, measured in one run.

  python -m tf_gancond.benchmarks.train_step [--steps=60 --batch_size=64 --torch]

Times, on the same machine in one process (medians over repeats, after warm-up):
  * the baseline step (28x28 DCGAN of docs/experiments.md#o1, batch 64) fed synthetic
    in-memory data;
  * the same step fed the real Fashion-MNIST TFDS pipeline (if it can be built):
    input-pipeline efficiency = synthetic time / real time (target >= 0.95);
  * the Jacobian Clamping step: JC time / baseline time (target <= 1.5);
  * both steps under precision=bfloat16 (Keras mixed policy): float32 time / bf16
    time, the speed-up (BUILD.md "bfloat16");
  * the step that recomputes G(z) for the G update (g_step_reuses_fake=False);
  * the Q measurement of a train record against the baseline steps it covers;
  * with --torch (needs `pip install torch`), a PyTorch step of the same
    architecture and update (dcgan.torch order), for the TF / PyTorch ratio.
Each figure includes what the training loop does per step (fetching the scalars).
"""

import os
import statistics
import time

from absl import app
from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # noqa: E402

from tf_gancond import config as config_lib  # noqa: E402
from tf_gancond import data as data_lib  # noqa: E402
from tf_gancond import benchmarks  # noqa: E402

flags.DEFINE_integer('steps', 60, 'Timed steps per repeat.')
flags.DEFINE_integer('repeats', 3, 'Repeats per variant (median reported).')
flags.DEFINE_integer('batch_size', 64, 'Batch size.')
flags.DEFINE_bool('torch', False, 'Also time a PyTorch step of the same model.')
flags.DEFINE_bool('real_data', True, 'Also time the real Fashion-MNIST pipeline.')
FLAGS = flags.FLAGS


def _config(**overrides):
  c = config_lib.get_config()
  c.batch_size = FLAGS.batch_size
  c.update(overrides)
  return config_lib.validate(config_lib.resolve(c))


def time_tf(config, steps, repeats):
  """Median seconds per iteration of GANTrainer.train_step on one device."""
  return benchmarks.time_train_step(config, tf.distribute.get_strategy(), steps,
                                    repeats)


def time_q_measurement(config, repeats):
  """Median seconds of the Q measurement of one train record (q_num_batches batches
  of g_batch_size pairs, `GANTrainer.summarize`)."""
  import types
  from tf_gancond import train
  trainer = train.GANTrainer(config, tf.distribute.get_strategy())
  trainer.start(types.SimpleNamespace(step=0))
  interval = [{'d_loss': 0.0}]
  trainer.summarize(interval)  # Tracing.
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    trainer.summarize(interval)
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def time_torch(steps, repeats, batch_size):
  """The same DCGAN (28x28, n_z 64) and dcgan.torch update in PyTorch."""
  import torch
  from torch import nn
  torch.manual_seed(0)
  g = nn.Sequential(
      nn.Linear(64, 7 * 7 * 256, bias=False), nn.Unflatten(1, (256, 7, 7)),
      nn.BatchNorm2d(256), nn.ReLU(),
      nn.ConvTranspose2d(256, 128, 5, 2, 2, output_padding=1, bias=False),
      nn.BatchNorm2d(128), nn.ReLU(),
      nn.ConvTranspose2d(128, 1, 5, 2, 2, output_padding=1), nn.Tanh())
  d = nn.Sequential(
      nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.2),
      nn.Conv2d(64, 128, 5, 2, 2, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
      nn.Conv2d(128, 256, 5, 2, 2, bias=False), nn.BatchNorm2d(256),
      nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(256 * 4 * 4, 1))
  opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
  bce = nn.BCEWithLogitsLoss()
  real = torch.rand(batch_size, 1, 28, 28) * 2 - 1
  ones, zeros = torch.ones(batch_size), torch.zeros(batch_size)

  def step():
    fake = g(torch.randn(batch_size, 64))
    opt_d.zero_grad()
    d_loss = bce(d(real).squeeze(1), ones) + bce(d(fake.detach()).squeeze(1), zeros)
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    g_loss = bce(d(fake).squeeze(1), ones)
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()

  for _ in range(5):
    step()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      step()
    times.append((time.perf_counter() - start) / steps)
  return statistics.median(times), torch.get_num_threads()


def main(argv):
  del argv
  steps, repeats = FLAGS.steps, FLAGS.repeats
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, batch {FLAGS.batch_size}, '
        f'{steps} steps x {repeats} repeats (median)')
  results = {}
  results['baseline (synthetic data)'] = time_tf(
      _config(synthetic_data=True), steps, repeats)
  results['jacobian clamping (synthetic)'] = time_tf(
      _config(synthetic_data=True, jacobian_clamping=True), steps, repeats)
  results['baseline bf16 (synthetic)'] = time_tf(
      _config(synthetic_data=True, precision='bfloat16'), steps, repeats)
  results['jacobian clamping bf16 (synthetic)'] = time_tf(
      _config(synthetic_data=True, jacobian_clamping=True, precision='bfloat16'),
      steps, repeats)
  results['fresh G(z) for G step (synthetic)'] = time_tf(
      _config(synthetic_data=True, g_step_reuses_fake=False), steps, repeats)
  q_seconds = time_q_measurement(_config(synthetic_data=True), repeats)
  if FLAGS.real_data:
    try:
      results['baseline (fashion_mnist TFDS)'] = time_tf(_config(), steps, repeats)
    except data_lib.DataUnavailableError as e:
      print(f'real data skipped: {e}')
  if FLAGS.torch:
    results['pytorch same step'], threads = time_torch(steps, repeats, FLAGS.batch_size)
    print(f'(PyTorch {threads} threads)')
  for name, seconds in results.items():
    print(f'{name:40s} {seconds * 1000:8.1f} ms/step  {1 / seconds:6.2f} steps/s')
  base = results['baseline (synthetic data)']
  jc = results['jacobian clamping (synthetic)']
  print(f'JC / baseline step time:               {jc / base:.3f}  (target <= 1.5)')
  print(f'bf16 speed-up (float32 / bf16 time):   baseline '
        f'{base / results["baseline bf16 (synthetic)"]:.3f}, JC '
        f'{jc / results["jacobian clamping bf16 (synthetic)"]:.3f}')
  print(f'fresh-G(z) / reused-G(z) step time:    '
        f'{results["fresh G(z) for G step (synthetic)"] / base:.3f}')
  record_every = _config().log_every
  print(f'Q measurement per train record / its {record_every} baseline steps: '
        f'{q_seconds / (record_every * base):.3f}  ({q_seconds:.2f} s a record)')
  if 'baseline (fashion_mnist TFDS)' in results:
    print(f'input-pipeline efficiency (synthetic / real time): '
          f'{base / results["baseline (fashion_mnist TFDS)"]:.3f}  (target >= 0.95)')
  if 'pytorch same step' in results:
    print(f'TF / PyTorch step time:                '
          f'{base / results["pytorch same step"]:.3f}  (< 1 means TF is faster)')


if __name__ == '__main__':
  app.run(main)
