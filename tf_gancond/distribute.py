"""`tf.distribute` strategies by name, and which worker writes files.

  default      : `tf.distribute.get_strategy()`, one device.
  mirrored     : `MirroredStrategy`, all local GPUs (or logical CPU devices).
  multi_worker : `MultiWorkerMirroredStrategy`, machines listed in `TF_CONFIG`.

The batch in the config is the global batch; each replica gets batch / replicas
and its loss is divided by the number of replicas (see train.py).
"""

import json
import os

import tensorflow as tf

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
      raise ConfigError('strategy=multi_worker needs the TF_CONFIG environment '
                       'variable (cluster and task); see BUILD.md')
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ConfigError(f'strategy={name!r} is not known; choose default, mirrored or '
                   'multi_worker')


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
