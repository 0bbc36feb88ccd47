"""`tf.distribute` strategies by name, and which worker writes files.

  default      : `tf.distribute.get_strategy()`, one device.
  mirrored     : `MirroredStrategy`, all local GPUs (or logical CPU devices).
  multi_worker : `MultiWorkerMirroredStrategy`, machines listed in `TF_CONFIG`, or,
                 inside an `srun` step without `TF_CONFIG`, one worker per SLURM
                 task (`slurm_tf_config`).

The batch in the config is the global batch; each replica gets batch / replicas
and its loss is divided by the number of replicas (see train.py).
"""

import json
import os

import tensorflow as tf
from tensorflow.python.distribute.cluster_resolver import slurm_cluster_resolver

from tf_gancond.config import ConfigError


def make_strategy(name):
  """The strategy called `name` (see the module docstring)."""
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    # MirroredStrategy() alone takes every GPU, or one CPU when there is none; on a
    # CPU-only machine take every logical CPU device instead (tests split the CPU in 2).
    if tf.config.list_logical_devices('GPU'):
      return tf.distribute.MirroredStrategy()
    return tf.distribute.MirroredStrategy(
        [d.name for d in tf.config.list_logical_devices('CPU')])
  if name == 'multi_worker':
    if 'TF_CONFIG' not in os.environ:
      if not all(v in os.environ for v in _SLURM_STEP_VARIABLES):
        raise ConfigError(
            'strategy=multi_worker needs the TF_CONFIG environment variable (cluster '
            'and task), or to run as the tasks of an srun step (one per worker); '
            'see BUILD.md')
      # Set in this process only: TFConfigClusterResolver (the strategy's) reads it,
      # and so does `is_chief`.
      os.environ['TF_CONFIG'] = json.dumps(slurm_tf_config(os.environ))
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ConfigError(f'strategy={name!r} is not known; choose default, mirrored or '
                   'multi_worker')


# What `srun` sets in each task of a step (a bare `sbatch` script lacks the STEP ones).
_SLURM_STEP_VARIABLES = ('SLURM_JOB_ID', 'SLURM_PROCID', 'SLURM_STEP_NODELIST',
                         'SLURM_STEP_TASKS_PER_NODE')
# Each job's workers listen on PORTS_PER_JOB ports from a base derived from its job
# id, between 10000 and 32767: below Linux's ephemeral ports (32768-60999), which
# outgoing connections take.
PORTS_PER_JOB = 16
_FIRST_PORT = 10000
_PORT_SLOTS = (32768 - _FIRST_PORT) // PORTS_PER_JOB


def slurm_tf_config(environ):
  """The TF_CONFIG dict of this task of an srun step: one `worker` per task, worker i
  the task of SLURM_PROCID i (worker 0, the chief, writes the run).

  Tasks are laid out as srun's default block distribution places them: the nodes
  in SLURM_STEP_NODELIST order, each with its count of SLURM_STEP_TASKS_PER_NODE
  consecutive ranks; a task on node h with local rank l listens on port
  `base + l`, base = 10000 + 16 (SLURM_JOB_ID mod 1423). Raises ConfigError (one
  line) for a variable it cannot read, more than 16 tasks on a node, or (where
  SLURMD_NODENAME / SLURM_LOCALID say) a task that is not where that layout puts it.

  Built here rather than by TensorFlow's SlurmClusterResolver, which would serve
  with its parsers (used here) but not as a whole:
    * it counts GPUs with nvidia-smi, and on a CPU-only node fails
      (tensorflow/tensorflow#56894: FileNotFoundError without nvidia-smi; with
      gpus_per_node=0, `range(0, 0, 0)` raises ValueError in cluster_spec());
    * its ports start at a fixed 8888, so two jobs sharing a node collide;
    * it orders hosts by Python's sort, not SLURM's layout ('node10' before
      'node9'), so a rank may be given another node's address.
  """
  def number(name):
    value = environ.get(name, '')
    if not value.isdigit():
      raise ConfigError(f'{name}={value!r} is not a non-negative integer (set by '
                        'srun in each task of a step)')
    return int(value)
  try:
    hosts = slurm_cluster_resolver.expand_hostlist(environ['SLURM_STEP_NODELIST'])
    counts = slurm_cluster_resolver.expand_tasks_per_node(
        environ['SLURM_STEP_TASKS_PER_NODE'])
  except ValueError as e:
    raise ConfigError(f'{str(e).splitlines()[0]} (from srun\'s SLURM_STEP_NODELIST '
                      'and SLURM_STEP_TASKS_PER_NODE)') from None
  nodelist, tasks = environ['SLURM_STEP_NODELIST'], environ['SLURM_STEP_TASKS_PER_NODE']
  if len(hosts) != len(counts) or not hosts:
    raise ConfigError(
        f'SLURM_STEP_NODELIST={nodelist!r} names {len(hosts)} nodes but '
        f'SLURM_STEP_TASKS_PER_NODE={tasks!r} gives {len(counts)} counts')
  if max(counts) > PORTS_PER_JOB:
    raise ConfigError(f'SLURM_STEP_TASKS_PER_NODE={tasks!r} puts {max(counts)} tasks '
                      f'on a node; at most {PORTS_PER_JOB}')
  base = _FIRST_PORT + PORTS_PER_JOB * (number('SLURM_JOB_ID') % _PORT_SLOTS)
  places = [(host, local) for host, count in zip(hosts, counts) for local in range(count)]
  rank = number('SLURM_PROCID')
  if rank >= len(places):
    raise ConfigError(f'SLURM_PROCID={rank} is not below the {len(places)} tasks of '
                      'SLURM_STEP_TASKS_PER_NODE')
  where = (environ.get('SLURMD_NODENAME', places[rank][0]),
           number('SLURM_LOCALID') if 'SLURM_LOCALID' in environ else places[rank][1])
  if where != places[rank]:
    raise ConfigError(
        f'task SLURM_PROCID={rank} runs on {where[0]!r} as local task {where[1]}, '
        f'but srun\'s block layout puts it on {places[rank][0]!r} as local task '
        f'{places[rank][1]}; start the step with srun --distribution=block')
  return {'cluster': {'worker': [f'{h}:{base + l}' for h, l in places]},
          'task': {'type': 'worker', 'index': rank}}


def is_chief(strategy):
  """True on the worker that writes checkpoints, summaries and exports."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == 'chief':
    return True
  has_chief = 'chief' in json.loads(os.environ.get('TF_CONFIG', '{}')).get(
      'cluster', {})
  return resolver.task_type == 'worker' and resolver.task_id == 0 and not has_chief


def worker_dir(workdir, strategy):
  """Where this worker writes: `workdir` on the chief, a scratch dir elsewhere.

  MultiWorkerMirroredStrategy needs every worker to call checkpoint save (the
  save is a collective); non-chief workers write to their own scratch folder.
  """
  if is_chief(strategy):
    return workdir
  resolver = strategy.cluster_resolver
  return os.path.join(workdir, 'workers', f'{resolver.task_type}_{resolver.task_id}')
