"""One worker of the 2-process MultiWorkerMirroredStrategy test (test_distributed.py).

  TF_CONFIG='{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}' \
  python tests/multiworker_worker.py WORKDIR OUTDIR STEPS [STRATEGY [ADAM_EPSILON]]

Trains a tiny DCGAN on mock MNIST with `strategy='multi_worker'` (or STRATEGY:
`default` gives the single-worker run to compare with; ADAM_EPSILON sets both
optimizers' epsilon, as tests/test_distributed.py does for such comparisons) through
`train.train_and_evaluate` (the real loop: chief-only files, checkpoints on every
worker), then writes this worker's final weights, read back from the checkpoint
it saved (the chief's in WORKDIR, the others' in their scratch folders), to
OUTDIR/weights.npz, and the folder it wrote to OUTDIR/local_dir.txt.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from tf_gancond import config as config_lib  # noqa: E402
from tf_gancond import distribute  # noqa: E402
from tf_gancond import loop  # noqa: E402
from tf_gancond import train  # noqa: E402


def main(workdir, outdir, steps, strategy_name='multi_worker', adam_epsilon=None):
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', batch_size=8, train_steps=steps, g_base_channels=16,
                d_base_channels=8, latent_dim=8, probe_every=0, log_every=1,
                checkpoint_every=steps, shuffle_buffer=16, workdir=workdir,
                strategy=strategy_name))
  c = config_lib.validate(config_lib.resolve(c))
  strategy = distribute.make_strategy(strategy_name)
  def make_trainer(config):
    trainer = train.gan_trainer(config, strategy)
    if adam_epsilon is not None:
      trainer.g_optimizer.epsilon = trainer.d_optimizer.epsilon = float(adam_epsilon)
    return trainer
  with tfds.testing.mock_data(num_examples=64):
    loop.run(c, make_trainer)
  local_dir = distribute.worker_dir(workdir, strategy)
  reader = tf.train.load_checkpoint(os.path.join(local_dir, 'checkpoints'))
  weights = {name: reader.get_tensor(name)
             for name in reader.get_variable_to_shape_map()
             if name != '_CHECKPOINTABLE_OBJECT_GRAPH'}  # Weights, Adam slots, step.
  os.makedirs(outdir, exist_ok=True)
  np.savez(os.path.join(outdir, 'weights.npz'), **weights)
  with open(os.path.join(outdir, 'local_dir.txt'), 'w') as f:
    f.write(local_dir)


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
