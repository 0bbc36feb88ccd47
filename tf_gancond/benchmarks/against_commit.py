"""Train-step time of this work tree against another commit or stack, in one run.

  python -m tf_gancond.benchmarks.against_commit --base=HEAD~1 [--rounds=4 --steps=40]
  python -m tf_gancond.benchmarks.against_commit --base=worktree \
      --base_python=.venv-modern/bin/python      # the same code on the other stack

Exports the base commit's package (`git archive`) to a temporary folder (`worktree`:
this tree itself), then runs the two sides' `benchmarks.time_train_step` alternately
in fresh subprocesses (A B A B ...), so both see the same machine load over the same
minutes; the base side runs under `--base_python` (default: this interpreter). Prints
the median seconds per iteration of each, for the baseline step and the Jacobian
Clamping step (28x28 DCGAN, batch 64, synthetic data), and the ratio
this / base: above 1 means this side's step is slower.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

flags.DEFINE_string('base', 'HEAD~1',
                    "The commit to compare against; 'worktree' for this tree.")
flags.DEFINE_string('base_python', sys.executable,
                    "The base side's interpreter (another stack's venv).")
flags.DEFINE_integer('rounds', 4, 'Alternating rounds (one subprocess per version).')
flags.DEFINE_integer('steps', 40, 'Timed steps per subprocess.')
flags.DEFINE_integer('batch_size', 64, 'Batch size.')
FLAGS = flags.FLAGS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VARIANTS = {'baseline': {}, 'jacobian_clamping': {'jacobian_clamping': True}}

# Run in the child with PYTHONPATH set to one version's tree.
_CHILD = '''
import json, os, sys
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from tf_gancond import benchmarks, config as config_lib  # Before TF: Keras 2 (stack.py).
import tensorflow as tf
out = {}
for name, overrides in json.loads(sys.argv[1]).items():
  c = config_lib.get_config()
  c.update(dict(synthetic_data=True, batch_size=int(sys.argv[3]), **overrides))
  c = config_lib.validate(config_lib.resolve(c))
  out[name] = benchmarks.time_train_step(c, tf.distribute.get_strategy(),
                                         int(sys.argv[2]), repeats=1)
print('RESULT ' + json.dumps(out))
'''


def _export(commit, into):
  """The package of `commit` as files under `into` (no .git, no work tree change)."""
  archive = subprocess.run(['git', '-C', REPO, 'archive', commit, 'tf_gancond'],
                           check=True, capture_output=True).stdout
  subprocess.run(['tar', '-x', '-C', into], input=archive, check=True)


def _time(python, tree, steps, batch_size):
  env = dict(os.environ, PYTHONPATH=tree)
  proc = subprocess.run([python, '-c', _CHILD, json.dumps(VARIANTS),
                         str(steps), str(batch_size)], env=env, capture_output=True,
                        text=True, check=True, cwd=tree)
  line = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')][-1]
  return json.loads(line[len('RESULT '):])


def _stack(python):
  """'faithful 2.15.1' or 'modern 2.21.0': the stack `python` runs."""
  child = ('import tf_gancond, tensorflow as tf; from tf_gancond import stack; '
           'print(stack.NAME, tf.__version__)')
  proc = subprocess.run([python, '-c', child], capture_output=True, text=True,
                        check=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO,
                                                       TF_CPP_MIN_LOG_LEVEL='3'))
  return proc.stdout.strip().splitlines()[-1]


def main(argv):
  del argv
  # Absolute: each child runs in its own tree (a temporary folder for a commit).
  this_python, base_python = sys.executable, os.path.abspath(FLAGS.base_python)
  this_stack, base_stack = _stack(this_python), _stack(base_python)
  with tempfile.TemporaryDirectory() as tmp:
    if FLAGS.base == 'worktree':
      base, base_tree = 'worktree', REPO
    else:
      base = subprocess.run(['git', '-C', REPO, 'rev-parse', '--short', FLAGS.base],
                            check=True, capture_output=True, text=True).stdout.strip()
      base_tree = tmp
      _export(base, tmp)
    if base_stack != this_stack:
      base = f'{base}@{base_stack.split()[0]}'
    sides = (('this', this_python, REPO), (base, base_python, base_tree))
    times = {label: {k: [] for k in VARIANTS} for label, _, _ in sides}
    for _ in range(FLAGS.rounds):
      for label, python, tree in sides:
        for k, v in _time(python, tree, FLAGS.steps, FLAGS.batch_size).items():
          times[label][k].append(v)
  print(f'{FLAGS.rounds} alternating rounds of {FLAGS.steps} steps, batch '
        f'{FLAGS.batch_size}; this: {this_stack}, {base}: {base_stack}; median seconds '
        'per iteration:')
  for k in VARIANTS:
    this, old = statistics.median(times['this'][k]), statistics.median(times[base][k])
    print(f'  {k:18s} this {this:.4f}  {base} {old:.4f}  this/{base} {this / old:.3f}')
  return 0


if __name__ == '__main__':
  app.run(main)
