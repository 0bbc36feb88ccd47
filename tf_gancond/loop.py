"""The outer loop of every experiment, an Orbit `Controller` analogue.

`run(config, make_trainer)` trains the trainer that `make_trainer(config)` builds
in `config.workdir` and returns its final results. The loop owns what every
experiment shares; a trainer (`Trainer`) owns its step.

  seeding      op determinism (`deterministic`), Keras weight initialisation from
               `seed`, and the data iterator: one stream per `seed`, skipped to
               the start step's batch (`Trainer.make_iterator`), so that a resumed
               run reads the batches a run never stopped would.
  checkpoint   `<local_dir>/checkpoints/ckpt-<step>` of `trainer.step` and
               `trainer.checkpoint_items()`, restored at start (a worker other
               than the chief restores the chief's newest where the workdir is
               shared, so all go on from one step; `runlog.restore_checkpoint`).
               A finished run launched with its settings, or with resumable
               changes that ask for no more work, returns its recorded final
               values (`runlog.final_values`) and writes nothing; one with no
               checkpoint left (restored from its compact records) is refused a
               launch that asks for more. Refused with a one-line ConfigError
               before any file is written: a folder holding a run with settings
               a resume may not change (`runlog.check_resumable`, checked again
               once the folder is locked), a train_steps below the restored
               step, checkpoints whose state file `checkpoint` is missing or
               unreadable (TensorFlow would ignore them and start over,
               truncating the records), and a checkpoint that cannot be
               restored (gone, or a truncated .data or .index).
  run files    (`tf_gancond.runlog`) config.txt; metrics.jsonl cut back to the
               restored step; a 'start' record; status.json 'running', then
               'finished' with a 'final' record, or 'diverged'. TensorBoard events
               in the workdir, whose SessionLog.START at step start + 1 makes
               TensorBoard drop the events a killed run wrote past its checkpoint,
               as `truncate_after` drops its records.
  each step    its scalars checked finite; every `trainer.record_every` steps a
               'train' record (with `process_cpu_seconds`, the chief's CPU time
               since this start, as the 'final' record; `runlog.cpu_seconds`);
               then the actions due, in order: the trainer's (probe, eval, ...),
               the checkpoint, the generator export. The
               checkpoint and the export each check every weight first. A
               non-finite value raises DivergedError (the launcher's exit code 3)
               after marking the run 'diverged'; the last good checkpoint and
               export stay.
  SIGTERM      (SLURM's time limit with `--signal=TERM@...`, preemption) stops
               the run at the next step boundary (`Termination`): the steps since
               the last 'train' record as a record at that step (so that after a
               resume every step is in exactly one record), the checkpoint of that
               step, status.json 'stopped', then StoppedError (the launcher's exit
               code 4). The same command resumes it. A SIGTERM once the last step
               is done, during the closing actions, ends the process (the handler
               before the loop is back): the checkpoint of the last step is there
               to resume from.

Only the chief worker writes the run files; every worker saves checkpoints and
exports (under MultiWorkerMirroredStrategy both are collectives), the others in
their scratch folder (`distribute.worker_dir`), deleting their export copies.
"""

import io
import os
import shutil
import signal
import threading
import time

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.python.ops import summary_ops_v2

from tf_gancond import config as config_lib
from tf_gancond import data as data_lib
from tf_gancond import distribute
from tf_gancond import export as export_lib
from tf_gancond import models
from tf_gancond import runlog


class DivergedError(RuntimeError):
  """A loss or weight became NaN/Inf; the run stopped at its last good state."""


class StoppedError(RuntimeError):
  """SIGTERM stopped the run at a step boundary, after checkpointing that step."""

  def __init__(self, step, checkpoint):
    super().__init__(f'stopped by SIGTERM at step {step}, checkpointed in '
                     f'{checkpoint}; the same command resumes it')
    self.step = step


class Termination:
  """SIGTERM as a request to stop at the next step boundary.

  `requested(step)`, called at each step boundary with a step to go, says whether
  the run stops there; by then `stop(step)` (the pending record and the checkpoint
  of `step`) has run. The signal handler only sets a flag, so a step costs nothing
  more. Active from the construction to `restore()`; off the main thread (where
  Python cannot handle signals) SIGTERM keeps its handler.

  Under MultiWorkerMirroredStrategy every worker must stop at the same step: the
  checkpoint save is a collective, and SIGTERM may reach one worker alone (a node
  preempted). tf.distribute.experimental.PreemptionCheckpointHandler agrees on that
  step through the coordination service (it saves one step after the boundary
  where the signalled worker sees its flag), so it is used there: it polls the flag
  (`termination_watcher_fn`: the same on every platform, where its default would
  watch GCE's maintenance events instead of SIGTERM on a GCE GPU), saves with
  `save_fn=stop` (the run's own checkpoint layout, that runlog.restore_checkpoint
  reads), and its `exit_fn` does nothing, so that the loop writes status.json and
  the launcher exits with its code. Its own CheckpointManager is given a folder
  that is never written: the handler restores the newest checkpoint of that
  manager, where a worker must restore the chief's
  (`runlog.restore_checkpoint(prefer=)`); its step counter then counts this start's
  steps, alike on every worker. It is not used on a single worker (default and
  mirrored strategies): no peer must agree there, and it would add a variable to
  the checkpoint and a request to the GCE metadata server at each start
  (`failure_handling_util.on_gcp`, up to 5 s).
  """

  def __init__(self, strategy, local_dir, stop):
    self._stop = stop
    self._flag = threading.Event()
    self._handler = None
    self.stopped_at = None
    self._installed = threading.current_thread() is threading.main_thread()
    if not self._installed:
      return
    self._previous = signal.signal(signal.SIGTERM,
                                   lambda signum, frame: self._flag.set())
    resolver = getattr(strategy, 'cluster_resolver', None)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        resolver.cluster_spec().jobs):
      self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
          resolver,
          tf.train.CheckpointManager(
              tf.train.Checkpoint(), os.path.join(local_dir, 'checkpoints', 'unused'),
              max_to_keep=1),
          termination_config=tf.distribute.experimental.TerminationConfig(
              termination_watcher_fn=self._flag.is_set,
              # The loop ends the run once `_save` has marked the stop.
              exit_fn=lambda: None, save_fn=self._save, grace_period=0))

  def _save(self, step):
    self._stop(step)
    self.stopped_at = step

  def requested(self, step):
    """True when the run stops after `step` (its record and checkpoint written)."""
    if self._handler is not None:
      self._handler.save_checkpoint_if_preempted(step)
    elif self._flag.is_set():
      self._save(step)
    return self.stopped_at is not None

  def restore(self):
    """SIGTERM's handler as it was before the construction."""
    if self._installed:
      signal.signal(signal.SIGTERM, self._previous)
      self._installed = False


class Trainer(tf.Module):
  """What an experiment plugs into the loop.

  A subclass sets `step` (int64 tf.Variable: iterations done, advanced by
  `train_step`), `generator` (the Keras model that is probed and exported, or
  None) and `strategy` (where its variables live, if not the default), and gives
  `checkpoint_items` and `train_step`; the rest has defaults.
  """

  generator = None
  num_classes = 0
  log_keys = ()  # Record fields shown in the log line.

  def __init__(self, config, name):
    super().__init__(name=name)
    self.config = config
    self.strategy = tf.distribute.get_strategy()

  @property
  def record_every(self):
    """Steps per 'train' record (the interval its values are averaged over)."""
    return self.config.log_every

  def checkpoint_items(self):
    """{name: trackable} checkpointed beside `step`."""
    raise NotImplementedError

  def make_iterator(self, config, start_step):
    """The iterator that `train_step` reads from `start_step` on (one batch a step
    here): the stream of a run from step 0, its first batches skipped."""
    return iter(data_lib.make_dataset(config, skip_batches=start_step))

  def train_step(self, iterator):
    """One iteration -> {name: tensor}: scalars, or arrays the trainer summarizes."""
    raise NotImplementedError

  def summarize(self, interval):
    """(record, histograms) of a log interval: `interval` lists each step's values
    (numpy); default: the mean of each, no histograms."""
    return {k: float(np.mean([v[k] for v in interval])) for k in interval[0]}, {}

  def actions(self, run):
    """The trainer's actions (probe, eval, ...), run before checkpoint and export."""
    del run
    return []

  def start(self, run):
    """Called once the run files are open, before the first step."""

  def done(self):
    """True to stop before train_steps (e.g. once memorized)."""
    return False

  def generate_inference(self, z, labels=None):
    """G(z) [B, H, W, C] with BatchNorm in inference mode."""
    raise NotImplementedError

  def float32_generator(self):
    """The Keras G that exports and batch-statistics probes use, in float32."""
    return self.generator

  def export_metadata(self):
    """Fields added to the export's tf_gancond.json."""
    return {}

  def final_results(self, run):
    """The 'final' record's values; `run` returns them without the loop's own
    field, process_cpu_seconds."""
    del run
    return {}

  def final_status(self, final):
    """Fields added to status.json when the run finishes."""
    del final
    return {}


class Action:
  """`fn(step)` after each iteration where `due(step)`; also at step 0 of a fresh
  run with `initial`, and after the last iteration, unless it ran there, with
  `final`. `last_step` is the step it last ran at."""

  def __init__(self, fn, due, initial=False, final=False):
    self.fn = fn
    self.due = due
    self.initial = initial
    self.final = final
    self.last_step = None

  def __call__(self, step):
    self.last_step = step
    return self.fn(step)


def every(n, at=()):
  """due(step) for every n-th step (never for n = 0) and the steps in `at`."""
  at = frozenset(at)
  return lambda step: bool(n and step % n == 0) or step in at


class Run:
  """What actions and trainers see of a run: config, files, TensorBoard, state.

  `step` is the last step done; `record` the newest 'train' record written by
  this process ({} before one) and `saved_model` the newest export's path (None
  before one, and on workers other than the chief).
  """

  def __init__(self, config, trainer, local_dir, chief, manager):
    self.config = config
    self.trainer = trainer
    self.workdir = config.workdir
    self.local_dir = local_dir
    self.chief = chief
    self.manager = manager
    self.log = runlog.RunLog(self.workdir, enabled=chief)
    self.writer = tf.summary.create_noop_writer()
    self.step = int(trainer.step.numpy())
    self.record = {}
    self.saved_model = None
    self.cpu_at_start = time.process_time()  # A process may run several runs (tests).

  def cpu_seconds(self):
    """This process's CPU seconds (all threads) since this start of the run."""
    return time.process_time() - self.cpu_at_start

  def open(self):
    """Writes config.txt, drops records past the restored step, appends the 'start'
    record, marks the run running and opens the TensorBoard writer."""
    if not self.chief:
      return
    start, c = self.step, self.config
    runlog.atomic_write_text(os.path.join(self.workdir, runlog.CONFIG_FILE),
                             config_lib.to_text(c))
    self.log.truncate_after(start)
    self.log.append('start', start, precision=c.precision, **runlog.provenance())
    self.log.set_status('running', start, experiment=c.experiment,
                        train_steps=c.train_steps)
    self.writer = tf.summary.create_file_writer(self.workdir)
    # TensorBoard drops every event at or after the step of a SessionLog.START
    # that is not the run's first (plugin_event_accumulator.
    # _CheckForRestartAndMaybePurge); at start + 1 these are the events a killed
    # run wrote past the checkpoint it is resumed from.
    restart = tf.compat.v1.Event(
        wall_time=time.time(), step=start + 1,
        session_log=tf.compat.v1.SessionLog(status=tf.compat.v1.SessionLog.START))
    with self.writer.as_default():
      summary_ops_v2.import_event(tf.constant(restart.SerializeToString()))

  def scalars(self, prefix, values, step):
    """TensorBoard scalars `prefix/name` of the numbers among `values`."""
    with self.writer.as_default(step=step):
      for k, v in values.items():
        if (isinstance(v, (int, float, np.number)) and
            not isinstance(v, (bool, np.bool_))):
          tf.summary.scalar(f'{prefix}/{k}', float(v))

  def images(self, tag, images, step):
    """One grid image of `images` [N, H, W, C] in [-1, 1]."""
    with self.writer.as_default(step=step):
      tf.summary.image(tag, image_grid(images))

  def write_record(self, step, interval, elapsed):
    """The 'train' record and TensorBoard summaries of the steps in `interval`."""
    record, histograms = self.trainer.summarize(interval)
    record.update(steps_per_sec=len(interval) / elapsed,
                  step_time=elapsed / len(interval),
                  process_cpu_seconds=self.cpu_seconds())
    self.log.append('train', step, **record)
    self.scalars('train', record, step)
    with self.writer.as_default(step=step):
      for tag, values in histograms.items():
        tf.summary.histogram(f'train/{tag}', values)
    self.record = record
    c = self.config
    if step % c.log_every == 0 or step == c.train_steps:
      logging.info('%s step %d/%d %s', c.experiment, step, c.train_steps, ' '.join(
          f'{k}={record[k]:.4g}' for k in self.trainer.log_keys + ('steps_per_sec',)
          if k in record))

  def check_weights(self, step):
    """DivergedError unless every floating variable the checkpoint saves (weights,
    BatchNorm statistics, optimizer moments, power-iteration vectors) is finite."""
    # Walked each time: Keras makes optimizer moments at the first update.
    saved = tf.train.TrackableView(self.manager.checkpoint).descendants()
    if not all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in saved
               if isinstance(v, tf.Variable) and v.dtype.is_floating):
      raise DivergedError(f'non-finite weights at step {step}')

  def save_checkpoint(self, step):
    self.check_weights(step)
    self.manager.save(checkpoint_number=step)

  def export_path(self, step):
    return os.path.join(self.local_dir, 'saved_models', f'step_{step:08d}')

  def export(self, step):
    """SavedModel of the generator at `<local_dir>/saved_models/step_XXXXXXXX`."""
    self.check_weights(step)
    c, trainer = self.config, self.trainer
    path = self.export_path(step)
    export_lib.export_generator(
        trainer.float32_generator(), path, c.latent_dim, models.image_shape(c),
        num_classes=trainer.num_classes,
        metadata=dict(trainer.export_metadata(), step=step, dataset=c.dataset,
                      experiment=c.experiment, seed=c.seed))
    if not self.chief:
      shutil.rmtree(path, ignore_errors=True)
      path = None
    self.saved_model = path
    return path


class Probe:
  """The Jacobian probe of the trainer's generator on the fixed probe batch
  (docs/experiments.md#0-common-setup, #o1) and its sample grids: a 'probe' record
  and TensorBoard summaries.

  `samples`: {tag: () -> images [N, H, W, C]} drawn at each probe. `last` holds
  the newest result (`probes.probe_generator`).
  """

  def __init__(self, run, samples):
    from tf_gancond import probes  # Imported only when probes are asked for.
    self.probes = probes
    self.run = run
    c = run.config
    self.z, self.labels = self._probe_batch(c.probe_num_z)
    # A generator that normalises with batch statistics even in inference (O6) is
    # probed with the probe batch's statistics held fixed, whatever probe_bn_mode says.
    self.bn_mode = 'batch_stats' if c.g_bn_always_batch_stats else c.probe_bn_mode
    self.samples = samples
    self.last = None

  def _probe_batch(self, num_z):
    """z [num_z, n_z] and labels [num_z] (None for an unconditional G) from the
    probe stream (probe_seed): a larger num_z extends a smaller one."""
    c, num_classes = self.run.config, self.run.trainer.num_classes
    z = self.probes.fixed_probe_z(c.latent_dim, num_z, c.probe_seed)
    labels = (self.probes.probe_labels(num_classes, num_z, c.probe_seed)
              if num_classes else None)
    return z, labels

  def _measure(self, kind, step, z, labels):
    """`probes.probe_generator` on (z, labels), written as a `kind` record."""
    probes, trainer = self.probes, self.run.trainer
    if self.bn_mode == 'inference':
      result = probes.probe_generator(trainer.generate_inference, z, labels=labels)
    else:
      with probes.held_batch_statistics(trainer.float32_generator(), z,
                                        labels) as generate:
        result = probes.probe_generator(generate, z, labels=labels)
    self.run.log.append(kind, step, bn_mode=self.bn_mode, labels=labels,
                        **probes.to_json_dict(result))
    return result

  def __call__(self, step):
    result = self._measure('probe', step, self.z, self.labels)
    with self.run.writer.as_default(step=step):
      tf.summary.scalar('probe/mean_log_cond', result['mean_log_cond'])
      tf.summary.scalar('probe/mean_log10_cond', result['mean_log10_cond'])
      tf.summary.histogram('probe/log_cond', result['log_cond'])
      sv = np.asarray(result['avg_jacobian_singular_values'], np.float64)
      # Singular values can be exactly 0 in float64 for a degenerate G: floored at
      # the smallest positive double so that the log stays finite.
      tf.summary.histogram('probe/log_avg_jacobian_singular_values',
                           np.log(np.maximum(sv, np.finfo(np.float64).tiny)))
      tf.summary.image('probe/avg_jacobian_spectrum', _spectrum_plot(sv, step))
    for tag, sample in self.samples.items():
      self.run.images(tag, sample(), step)
    self.last = result
    return result

  def action(self):
    """Every probe_every steps, at step 0 of a fresh run and at the end."""
    return Action(self, every(self.run.config.probe_every), initial=True, final=True)

  def final_mean_log_cond(self, step):
    """The run's final log-cond: the last probe's mean, or with
    config.final_probe_num_z above probe_num_z, the mean over that many z (the
    probe batch first), written as a 'final_probe' record. Same expectation as the
    probe batch's mean, with a standard error smaller by
    sqrt(probe_num_z / final_probe_num_z)."""
    num_z = self.run.config.final_probe_num_z
    if num_z <= len(self.z):
      return float(self.last['mean_log_cond'])
    result = self._measure('final_probe', step, *self._probe_batch(num_z))
    with self.run.writer.as_default(step=step):
      tf.summary.scalar('probe/final_mean_log_cond', result['mean_log_cond'])
    return float(result['mean_log_cond'])


def sample_grid_z(config):
  """z [sample_grid, n_z] of the TensorBoard sample grids, from probe_seed + 1: the
  same in every run of a sweep."""
  return tf.constant(np.random.default_rng(config.probe_seed + 1).standard_normal(
      (config.sample_grid, config.latent_dim)).astype(np.float32))


def image_grid(images, columns=8):
  """[N, H, W, C] in [-1, 1] -> one uint8 grid image [1, rows*H, columns*W, C]."""
  images = np.clip((np.asarray(images) + 1.0) * 127.5, 0, 255).astype(np.uint8)
  n, h, w, c = images.shape
  rows = -(-n // columns)
  grid = np.zeros((rows * h, columns * w, c), np.uint8)
  for i in range(n):
    r, col = divmod(i, columns)
    grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i]
  return grid[None]


def _spectrum_plot(singular_values, step):
  """PNG of log singular values of E_z[J_z] (Hoffman-style spectrum) as [1,H,W,4]."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
  ax.semilogy(np.arange(1, len(singular_values) + 1), singular_values)
  ax.set_xlabel('index')
  ax.set_ylabel('singular value of E_z[J_z]')
  ax.set_title(f'step {step}')
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format='png')
  plt.close(fig)
  return tf.image.decode_png(buf.getvalue(), channels=4)[None]


def _check_finite(values, step):
  bad = sorted(k for k, v in values.items() if not np.all(np.isfinite(v)))
  if bad:
    raise DivergedError(f'non-finite {", ".join(bad)} at step {step}')


def run(config, make_trainer):
  """Trains `make_trainer(config)` (a `Trainer`) as the module docstring says.

  Returns the trainer's final results. Raises ConfigError before writing anything
  for a run it must not resume, and DivergedError on a non-finite value.
  """
  config = config_lib.validate(config_lib.resolve(config))
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  tf.keras.utils.set_random_seed(config.seed)  # Weight initialisation.
  runlog.check_resumable(config.workdir, config)
  trainer = make_trainer(config)
  chief = distribute.is_chief(trainer.strategy)
  local_dir = distribute.worker_dir(config.workdir, trainer.strategy)
  # Every worker opens its data before its folder is made (the chief's run folder, or
  # another worker's scratch folder inside it): without data (one line, exit 2) it
  # leaves no folder behind. A worker that then resumes at a later step opens its
  # data again there.
  first_iterator = (trainer.make_iterator(config, 0)
                    if not os.path.exists(local_dir) else None)
  # Before anything in the folder is written: one process per folder, the chief's
  # (the run folder) and each other worker's (its scratch folder) alike.
  runlog.lock_folder(local_dir, name=None if chief else (
      f'workdir={config.workdir!r}: the folder of worker '
      f'{trainer.strategy.cluster_resolver.task_id} ({local_dir!r})'))
  # Again under the lock: another launch may have written the folder since.
  runlog.check_resumable(config.workdir, config)
  checkpoint = tf.train.Checkpoint(step=trainer.step, **trainer.checkpoint_items())
  manager, restored = runlog.restore_checkpoint(
      checkpoint, os.path.join(local_dir, 'checkpoints'), config.max_checkpoints,
      prefer=None if chief else os.path.join(config.workdir, 'checkpoints'))
  ctx = Run(config, trainer, local_dir, chief, manager)
  start = step = ctx.step
  status = runlog.read_status(config.workdir)
  without_checkpoint = status.get('state') == 'finished' and not restored
  # A finished run with no checkpoint left (restored from its compact records, or
  # checkpoints deleted) is judged at the step it finished: it cannot go on.
  finished = runlog.finished_results(
      config, status.get('step') if without_checkpoint else start)
  if finished is not None:
    logging.info('%s finished at step %d already; nothing to do', local_dir,
                 status['step'])
    return finished
  runlog.check_can_go_on(config, start if restored else None)
  # The data before any write (DataUnavailableError leaves the run as it was).
  iterator = (first_iterator if first_iterator is not None and start == 0 else
              trainer.make_iterator(config, start))
  del first_iterator  # Not kept alive (with its threads) when unused.
  if restored:
    logging.info('Resumed from %s at step %d', restored, start)
  runlog.remove_stale_tmp(local_dir)  # What a kill left of atomic writes.
  ctx.open()
  checkpoint_action = Action(
      ctx.save_checkpoint, lambda s: (every(config.checkpoint_every)(s) or
                                      s == config.train_steps or trainer.done()))
  actions = trainer.actions(ctx) + [checkpoint_action]
  export_due = None
  if trainer.generator is not None:
    export_due = every(config.export_every, config_lib.parse_steps(
        config.export_at_steps))
    actions.append(Action(ctx.export, export_due, final=True))
  trainer.start(ctx)

  def stop(step):
    """The steps since the last 'train' record as a record at `step`, and the
    checkpoint of `step` (unless it was just made)."""
    if interval:
      ctx.write_record(step, interval, time.perf_counter() - t_last)
    if checkpoint_action.last_step != step:
      checkpoint_action(step)

  termination = Termination(trainer.strategy, local_dir, stop)
  try:
    for action in actions:
      if action.initial and start == 0:
        action(0)
    # A kill between the checkpoint at `start` and its export left the export
    # missing (the final one is made at the end). Under multi_worker every worker
    # must join an export and only the chief keeps it, so there it is made again.
    if export_due is not None and 0 < start < config.train_steps and export_due(
        start) and (getattr(trainer.strategy, 'cluster_resolver', None) is not None or
                    not os.path.isdir(ctx.export_path(start))):
      ctx.export(start)
    interval, t_last = [], time.perf_counter()
    while step < config.train_steps and not trainer.done():
      # At a boundary with a step to go: a SIGTERM after the last step lets the run
      # finish.
      if step > start and termination.requested(step):
        break
      values = {k: v.numpy() for k, v in trainer.train_step(iterator).items()}
      step = ctx.step = step + 1
      _check_finite(values, step)
      interval.append(values)
      if step % trainer.record_every == 0 or step == config.train_steps:
        ctx.write_record(step, interval, time.perf_counter() - t_last)
        interval, t_last = [], time.perf_counter()
      for action in actions:
        if action.due(step):
          action(step)
      if step != int(trainer.step.numpy()):
        raise RuntimeError('host and device step counters disagree')
    termination.restore()
    if termination.stopped_at is not None:
      ctx.log.set_status('stopped', step, reason='SIGTERM',
                         last_checkpoint=manager.latest_checkpoint)
      raise StoppedError(step, manager.latest_checkpoint)
    for action in actions:
      if action.final and action.last_step != step:
        action(step)
  except DivergedError as e:
    ctx.log.set_status('diverged', step, reason=str(e),
                       last_checkpoint=manager.latest_checkpoint)
    raise
  finally:
    termination.restore()
    ctx.writer.flush()  # Events up to a fault are kept, as the records are.
  final = trainer.final_results(ctx)
  ctx.log.append('final', step, **final, process_cpu_seconds=ctx.cpu_seconds())
  status = dict(trainer.final_status(final), experiment=config.experiment,
                train_steps=config.train_steps)
  if trainer.generator is not None:
    status['final_saved_model'] = ctx.saved_model
  ctx.log.set_status('finished', step, **status)
  ctx.writer.flush()
  return final
