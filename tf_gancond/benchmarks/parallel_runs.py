"""Sweep throughput: runs at a time against threads per run, measured in one run.

  python -m tf_gancond.benchmarks.parallel_runs [--steps=60 --jacobian_clamping]

`python -m launch.run_sweep --parallel=N` gives each of its N runs cpu_count // N
intra-op threads and one inter-op thread. This times the DCGAN step of
docs/experiments.md#o1 (batch 64, synthetic data) in processes started that way, side by
side:
  * one run with every thread (--parallel=1);
  * cpu_count runs with one thread each (--parallel=cpu_count);
  * one run alone with one thread: a sweep's last run, once the others finished.
For each: ms per step of each process, and the machine's total steps per second.
Which --parallel is faster depends on the machine (shared caches, hyperthreads).
"""

import os
import statistics
import subprocess
import sys

from absl import app
from absl import flags

flags.DEFINE_integer('steps', 60, 'Timed steps per repeat.')
flags.DEFINE_integer('repeats', 3, 'Repeats per process (median reported).')
flags.DEFINE_bool('jacobian_clamping', False, 'Time the Jacobian Clamping step.')
flags.DEFINE_bool('child', False, 'Internal: time one run in this process and print '
                  'its seconds per step.')
FLAGS = flags.FLAGS

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def _time_one_run():
  import tensorflow as tf
  from tf_gancond import benchmarks
  from tf_gancond import config as config_lib
  c = config_lib.get_config()
  c.synthetic_data = True
  c.jacobian_clamping = FLAGS.jacobian_clamping
  c = config_lib.validate(config_lib.resolve(c))
  return benchmarks.time_train_step(c, tf.distribute.get_strategy(), FLAGS.steps,
                                    FLAGS.repeats)


def side_by_side(runs, threads):
  """Seconds per step of each of `runs` processes started together, each with
  `threads` intra-op threads and one inter-op thread, as run_sweep starts them."""
  env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(threads),
             TF_NUM_INTEROP_THREADS='1', TF_CPP_MIN_LOG_LEVEL='2',
             PYTHONPATH=os.pathsep.join(p for p in (
                 _REPO_ROOT, os.environ.get('PYTHONPATH', '')) if p))
  command = [sys.executable, '-m', 'tf_gancond.benchmarks.parallel_runs', '--child',
             f'--steps={FLAGS.steps}', f'--repeats={FLAGS.repeats}',
             f'--jacobian_clamping={FLAGS.jacobian_clamping}']
  processes = [subprocess.Popen(command, env=env, cwd=_REPO_ROOT,
                                stdout=subprocess.PIPE, text=True)
               for _ in range(runs)]
  outputs = [p.communicate()[0] for p in processes]
  if any(p.returncode for p in processes):
    raise SystemExit('a timed process failed; see its error above')
  return [float(out.split()[-1]) for out in outputs]


def main(argv):
  del argv
  if FLAGS.child:
    print(_time_one_run())
    return
  cpus = os.cpu_count() or 1
  step = 'Jacobian Clamping' if FLAGS.jacobian_clamping else 'baseline'
  print(f'{step} step, batch 64, {cpus} CPUs, {FLAGS.steps} steps x {FLAGS.repeats} '
        'repeats per process (median)')
  variants = {f'1 run x {cpus} threads (--parallel=1)': (1, cpus),
              f'{cpus} runs x 1 thread (--parallel={cpus})': (cpus, 1),
              '1 run x 1 thread (a sweep\'s tail)': (1, 1)}
  throughput = {}
  for name, (runs, threads) in variants.items():
    seconds = side_by_side(runs, threads)
    throughput[name] = sum(1 / s for s in seconds)
    print(f'{name:40s} {statistics.mean(seconds) * 1000:7.1f} ms/step per run  '
          f'{throughput[name]:5.2f} steps/s in all')
  one, many, tail = throughput.values()
  print(f'--parallel={cpus} / --parallel=1 total steps/s: {many / one:.3f}')
  print(f'tail run (1 thread) / one run with {cpus} threads: {tail / one:.3f}')


if __name__ == '__main__':
  app.run(main)
