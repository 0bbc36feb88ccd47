"""How much of the run-to-run difference in Q's 95th percentile is sampling error.

  python results/phase2_odena_jc/q_sampling_check.py --step=5000 \
      --run_dirs=~/tf_gancond_campaign/phase2_odena_jc/baseline_seed7,...

Phase 2 recorded Q's percentiles from 64 pairs per record in a baseline run (one
batch measured at the record) and from 3,200 in a JC run (every pair its 50 steps
penalised). This script restores each run's checkpoint at --step and measures Q there
(`GANTrainer.measure_q`: G in training mode on [z; z'] per batch of 64) on
--num_batches fresh batches, then prints the 95th percentile of Q over groups of
3,200 pairs beside the 95th percentiles of single batches of 64: their mean, sd and
the highest of 100, which is what 100 records of one batch each would show.
"""

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from tf_gancond import config as config_lib
from tf_gancond import runlog
from tf_gancond import train

flags.DEFINE_list('run_dirs', None, 'Run folders with a checkpoint at --step.')
flags.DEFINE_integer('step', 5000, 'Checkpoint step to restore.')
flags.DEFINE_integer('num_batches', 200, 'Batches of g_batch_size pairs (a multiple '
                     'of 100).')
flags.DEFINE_integer('seed', 123, 'Seed of z and z\'.')
FLAGS = flags.FLAGS


def q_at_checkpoint(run_dir, step, num_batches, seed):
  """Q [num_batches, g_batch_size] of the run's G restored at `step`."""
  c = config_lib.get_config()
  c.update(runlog.read_config(run_dir))
  c = config_lib.validate(config_lib.resolve(c))
  trainer = train.GANTrainer(c, tf.distribute.get_strategy())
  tf.train.Checkpoint(step=trainer.step, **trainer.checkpoint_items()).restore(
      f'{run_dir}/checkpoints/ckpt-{step}').expect_partial()
  pairs = trainer.q_pairs(np.random.default_rng(seed), num_batches * c.g_batch_size)
  q = trainer.measure_q(*pairs).numpy()
  return q.reshape(num_batches, c.g_batch_size)


def main(argv):
  del argv
  print('run | p95 of 3,200 pairs (each group) | p95 of 64 pairs: mean, sd, highest '
        'of 100 (each 100) | share of batches of 64 with p95 > 8.7')
  for run_dir in FLAGS.run_dirs:
    q = q_at_checkpoint(run_dir, FLAGS.step, FLAGS.num_batches, FLAGS.seed)
    pooled = [np.percentile(q[i:i + 50], 95) for i in range(0, len(q), 50)]
    single = np.percentile(q, 95, axis=1)
    highest = [single[i:i + 100].max() for i in range(0, len(single), 100)]
    print(f'{run_dir.rstrip("/").split("/")[-1]} | {np.round(pooled, 2).tolist()} | '
          f'{single.mean():.2f}, {single.std(ddof=1):.2f}, '
          f'{np.round(highest, 2).tolist()} | {np.mean(single > 8.7):.2f}')


if __name__ == '__main__':
  flags.mark_flag_as_required('run_dirs')
  app.run(main)
