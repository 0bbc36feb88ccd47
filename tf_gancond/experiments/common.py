"""Pieces shared by the non-GAN experiments (O3 VAE, O7 memorizing G, A1-A3 frozen G).

Each experiment writes the same run files as the GAN loop (`tf_gancond.runlog`):
`config.txt`, `metrics.jsonl` (records with "kind" and "step"), `status.json`,
TensorBoard events in the workdir, checkpoints in `<workdir>/checkpoints` (resumed
when the run is started again) and generator SavedModels in
`<workdir>/saved_models/step_XXXXXXXX` (`tf_gancond.export` contract).
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from tf_gancond import config as config_lib
from tf_gancond import data as data_lib
from tf_gancond import export as export_lib
from tf_gancond import runlog
# The launcher maps this error to exit code 3 for every experiment.
from tf_gancond.train import DivergedError  # noqa: F401
from tf_gancond.train import image_grid


def prepare_config(config, workdir=None):
  """Resolves and validates `config`; `workdir` (if given) replaces config.workdir.

  With neither, the run goes to runs/<dataset>_<experiment>_seed<seed>.
  """
  if workdir:
    config.workdir = str(workdir)
  elif not config.workdir:
    config.workdir = os.path.join(
        'runs', f'{config.dataset}_{config.experiment}_seed{config.seed}')
  config = config_lib.resolve(config)
  return config_lib.validate(config)


def check_resumable(workdir, config, may_change=()):
  """See `runlog.check_resumable`."""
  runlog.check_resumable(workdir, config, may_change)


class RunFiles:
  """Run log, TensorBoard writer and checkpoint manager of one experiment run.

  Creating it locks the workdir for the rest of the process (`runlog.lock_folder`).
  `start = files.restore()` resumes from the newest checkpoint (0 when none);
  records written after it are dropped so that no step appears twice.
  """

  def __init__(self, config, checkpoint):
    self.config = config
    self.workdir = config.workdir
    runlog.lock_folder(self.workdir)
    self.checkpoint = checkpoint
    self.log = runlog.RunLog(self.workdir)
    self.manager = None  # Set by restore(), as is the TensorBoard writer.
    self.writer = None

  def restore(self, step_variable):
    """Restores the newest checkpoint and starts the run's files; returns its step.

    Refuses (ConfigError, DataUnavailableError) a checkpoint that cannot be restored
    and data that cannot be had before anything in the workdir is written.
    """
    self.manager = runlog.restore_checkpoint(
        self.checkpoint, os.path.join(self.workdir, 'checkpoints'),
        self.config.max_checkpoints)
    start = int(step_variable)
    data_lib.make_dataset(self.config)
    if self.manager.latest_checkpoint:
      logging.info('Resumed from %s at step %d', self.manager.latest_checkpoint, start)
    runlog.remove_stale_tmp(self.workdir)
    runlog.atomic_write_text(os.path.join(self.workdir, runlog.CONFIG_FILE),
                             config_lib.to_text(self.config))
    self.log.truncate_after(start)
    self.log.append('start', start, **runlog.provenance())
    self.log.set_status('running', start, experiment=self.config.experiment,
                        train_steps=self.config.train_steps)
    self.writer = tf.summary.create_file_writer(self.workdir)
    return start

  def save(self, step, variables):
    """Checkpoints at `step` after checking that every weight is finite."""
    if not all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in variables
               if v.dtype.is_floating):
      raise DivergedError(f'non-finite weights at step {step}')
    self.manager.save(checkpoint_number=step)

  def scalars(self, step, values, prefix):
    with self.writer.as_default(step=step):
      for k, v in values.items():
        if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(
            v, bool):
          tf.summary.scalar(f'{prefix}/{k}', float(v))

  def export(self, generator, step, latent_dim, image_shape, **metadata):
    """SavedModel of `generator` at `<workdir>/saved_models/step_XXXXXXXX`."""
    path = os.path.join(self.workdir, 'saved_models', f'step_{step:08d}')
    try:
      export_lib.export_generator(
          generator, path, latent_dim, image_shape,
          metadata=dict(metadata, step=int(step), dataset=self.config.dataset,
                        experiment=self.config.experiment, seed=self.config.seed))
    except export_lib.NonFiniteWeightsError as e:
      raise DivergedError(f'{e} at step {step}') from None
    return path

  def probe(self, generate_inference, probe_z, step):
    """Jacobian probe (SPEC 0: BN in inference mode) logged as a "probe" record.

    Returns the probe result, or None when `tf_gancond.probes` is not installed.
    """
    try:
      from tf_gancond import probes  # Written beside this package; optional here.
    except ImportError as e:
      logging.warning('probe skipped at step %d: %s', step, e)
      return None
    result = probes.probe_generator(generate_inference, probe_z)
    self.log.append('probe', step, bn_mode='inference', **probes.to_json_dict(result))
    with self.writer.as_default(step=step):
      tf.summary.scalar('probe/mean_log_cond', float(result['mean_log_cond']))
      tf.summary.histogram('probe/log_cond', np.asarray(result['log_cond']))
      sv = np.asarray(result['avg_jacobian_singular_values'], np.float64)
      # Singular values can be exactly 0 in float64 for a degenerate G: floor at the
      # smallest positive double so the log stays finite.
      tf.summary.histogram('probe/log_avg_jacobian_singular_values',
                           np.log(np.maximum(sv, np.finfo(np.float64).tiny)))
    return result

  def images(self, name, images, step):
    with self.writer.as_default(step=step):
      tf.summary.image(name, image_grid(images))

  def finish(self, step, final, **status):
    self.log.append('final', step, **final)
    self.log.set_status('finished', step, experiment=self.config.experiment, **status)
    self.writer.flush()


def probe_z(config):
  """The fixed probe batch shared by every run (SPEC 0), or None when no probes."""
  if not config.probe_every:
    return None
  try:
    from tf_gancond import probes
  except ImportError:
    return None
  return probes.fixed_probe_z(config.latent_dim, config.probe_num_z, config.probe_seed)


def stateless_normal(shape, seed, step, salt):
  """N(0, 1) of `shape` as a function of (seed, step, salt): the same after a resume."""
  s = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64) * 16 + salt])
  return tf.random.stateless_normal(shape, seed=s)


def check_finite(values, step):
  bad = sorted(k for k, v in values.items() if not np.all(np.isfinite(v)))
  if bad:
    raise DivergedError(f'non-finite {", ".join(bad)} at step {step}')


def class_histogram(classify_fn, images, num_classes, batch_size=500):
  """Counts of argmax classes of `images` [N, H, W, C] under `classify_fn` -> logits."""
  counts = np.zeros(num_classes, np.int64)
  for i in range(0, len(images), batch_size):
    logits = np.asarray(classify_fn(tf.constant(images[i:i + batch_size])))
    counts += np.bincount(np.argmax(logits, axis=-1), minlength=num_classes)[
        :num_classes]
  return counts
