"""Does each phase-3 run re-make its phase-2 run over their common 5,000 steps?

  python results/phase3_full_length/match_phase2.py \
      --phase2=results/phase2_jc_lambda_from_q --phase3=results/phase3_full_length

Phase 3 starts each run from step 0 with its phase-2 seed at a commit whose training
equals the phase-2 commits' bit for bit (results/campaign.sh). Where the phase-2 run
never resumed before step 5,000 (its commit reseeded the data on a resume), the two
differ only if the CPU kernels are not deterministic. For every run of both parts
this prints: the steps either resumed at, the first train record whose losses
differ, and the probe at step 5,000 of each (mean ln cond, largest per-z difference).
Folders may be committed parts (metrics.jsonl.gz) or sweep folders (metrics.jsonl).
"""

import gzip
import json
import os

import numpy as np
from absl import app
from absl import flags

flags.DEFINE_string('phase2', 'results/phase2_jc_lambda_from_q',
                    'Phase-2 part or sweep folder.')
flags.DEFINE_string('phase3', 'results/phase3_full_length',
                    'Phase-3 part or sweep folder.')
flags.DEFINE_integer('step', 5000, 'The last step the two runs share.')
FLAGS = flags.FLAGS
LOSSES = ('d_loss', 'g_loss')


def records(run_dir):
  """The run's records, or None without a metrics file."""
  for name, opener in (('metrics.jsonl.gz', gzip.open), ('metrics.jsonl', open)):
    path = os.path.join(run_dir, name)
    if os.path.exists(path):
      with opener(path, 'rt') as f:
        return [json.loads(line) for line in f]
  return None


def resumes(recs, before):
  return [r['step'] for r in recs if r['kind'] == 'start' and 0 < r['step'] < before]


def first_difference(a, b, last):
  """The first step <= last whose train-record losses differ, or None."""
  a_train = {r['step']: r for r in a if r['kind'] == 'train' and r['step'] <= last}
  b_train = {r['step']: r for r in b if r['kind'] == 'train' and r['step'] <= last}
  for step in sorted(set(a_train) & set(b_train)):
    if any(a_train[step].get(k) != b_train[step].get(k) for k in LOSSES):
      return step
  return None


def probe_at(recs, step):
  probes = [r for r in recs if r['kind'] == 'probe' and r['step'] == step]
  return np.asarray(probes[-1]['log_cond'], np.float64) if probes else None


def main(argv):
  del argv
  print(f'run | phase-2 resumes before {FLAGS.step} | phase-3 resumes | first '
        f'step with other losses | mean ln cond at {FLAGS.step}: phase 2, phase 3 | '
        'largest per-z difference')
  for name in sorted(os.listdir(FLAGS.phase3)):
    two = records(os.path.join(FLAGS.phase2, name))
    three = records(os.path.join(FLAGS.phase3, name))
    if two is None or three is None:
      continue
    p2, p3 = probe_at(two, FLAGS.step), probe_at(three, FLAGS.step)
    probes = ('not reached' if p2 is None or p3 is None else
              f'{p2.mean():.4f}, {p3.mean():.4f} | {np.abs(p2 - p3).max():.2g}')
    print(f'{name} | {resumes(two, FLAGS.step)} | {resumes(three, 10**9)} | '
          f'{first_difference(two, three, FLAGS.step)} | {probes}')


if __name__ == '__main__':
  app.run(main)
