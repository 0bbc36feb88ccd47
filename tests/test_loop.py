"""The loop every experiment runs in (tf_gancond/loop.py), with a counting trainer.

The trainer adds 1 to a weight per step and returns it as its loss, beside a tiny
generator with BatchNorm for exports; faults are injected at chosen steps: a
crash (an exception, as a kill after the events were flushed) and NaN moving
statistics (no step value shows them, only the weights do).
"""

import glob
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_accumulator

from tf_gancond import config as config_lib
from tf_gancond import data as data_lib
from tf_gancond import loop
from tf_gancond import runlog


class Crash(Exception):
  """Stands for a kill in the middle of a run."""


class TinyGenerator(tf.keras.Model):
  """z [B, 2] -> tanh(BN(Dense(z))) as [B, 28, 28, 1]."""

  def __init__(self):
    super().__init__()
    self.dense = tf.keras.layers.Dense(28 * 28)
    self.bn = tf.keras.layers.BatchNormalization()

  def call(self, z, labels=None, training=False):
    del labels
    h = self.bn(self.dense(z), training=training)
    return tf.tanh(tf.reshape(h, [-1, 28, 28, 1]))


class CountingTrainer(loop.Trainer):
  """loss = w + offset after w <- w + 1 each step; faults at chosen steps."""

  def __init__(self, config, offset=0.0, crash_at=None, nan_moving_stats_at=None):
    super().__init__(config, name='counting')
    self.generator = TinyGenerator()
    self.generator(tf.zeros([1, config.latent_dim]))
    self.w = tf.Variable(0.0)
    self.step = tf.Variable(0, dtype=tf.int64)
    self.offset = offset
    self.crash_at = crash_at
    self.nan_moving_stats_at = nan_moving_stats_at
    self.start_step = None

  def checkpoint_items(self):
    return {'generator': self.generator, 'w': self.w}

  def make_iterator(self, config, start_step):
    self.start_step = start_step
    return None

  def train_step(self, iterator):
    step = int(self.step) + 1
    if step == self.crash_at:
      raise Crash(step)
    self.w.assign_add(1.0)
    self.step.assign_add(1)
    if step == self.nan_moving_stats_at:
      self.generator.bn.moving_mean.assign(self.generator.bn.moving_mean * np.nan)
    return {'loss': self.w + self.offset}


@pytest.fixture
def config(tmp_path):
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', latent_dim=2, train_steps=6, log_every=1,
                checkpoint_every=4, probe_every=0, export_every=0,
                workdir=str(tmp_path / 'run')))
  return config_lib.resolve(c)


def _scalar_events(workdir, tag):
  """{step: value} of `tag` as TensorBoard shows it, and the raw event steps."""
  accumulator = plugin_event_accumulator.EventAccumulator(
      workdir, size_guidance={plugin_event_accumulator.TENSORS: 0})
  accumulator.Reload()
  shown = [(e.step, float(tf.make_ndarray(e.tensor_proto)))
           for e in accumulator.Tensors(tag)]
  raw = [event.step for path in sorted(glob.glob(os.path.join(workdir, 'events.*')))
         for event in tf.compat.v1.train.summary_iterator(path)
         if any(v.tag == tag for v in event.summary.value)]
  return shown, raw


def test_resume_after_a_crash_shows_each_step_once_in_tensorboard(config):
  """A run killed after step 5 (checkpoint at 4) and resumed: its event files hold
  step 5 twice, TensorBoard shows steps 1-6 once, 5 and 6 from the resumed run;
  metrics.jsonl likewise, and the data stream goes on from the restored step."""
  first = CountingTrainer(config, crash_at=6)
  with pytest.raises(Crash):
    loop.run(config, lambda c: first)
  assert first.start_step == 0
  resumed = CountingTrainer(config, offset=100.0)
  loop.run(config, lambda c: resumed)
  assert resumed.start_step == 4
  shown, raw = _scalar_events(config.workdir, 'train/loss')
  assert raw == [1, 2, 3, 4, 5, 5, 6]
  assert shown == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 105.0), (6, 106.0)]
  records = runlog.read_records(config.workdir, 'train')
  assert [(r['step'], r['loss']) for r in records] == [(s, v) for s, v in shown]
  assert [r['step'] for r in runlog.read_records(config.workdir, 'start')] == [0, 4]


def _file_contents(workdir):
  """{path: bytes} of every file in the run folder but its lock."""
  contents = {}
  for root, _, names in os.walk(workdir):
    for name in names:
      if name != '.lock':
        with open(os.path.join(root, name), 'rb') as f:
          contents[os.path.join(root, name)] = f.read()
  return contents


def test_a_finished_run_launched_again_writes_nothing(config):
  """The same command after the run finished: its final record is returned and no
  record, status, event file or export is added (no second 'start' or 'final'). With
  a larger train_steps it goes on."""
  config.export_every = 3
  final = loop.run(config, lambda c: CountingTrainer(c))
  files = _file_contents(config.workdir)
  again = CountingTrainer(config)
  assert loop.run(config, lambda c: again) == final
  assert int(again.step) == 6 and again.start_step is None  # Restored; no data read.
  assert _file_contents(config.workdir) == files
  config.train_steps = 8  # Extended (as the campaign's phase 3): it goes on.
  longer = CountingTrainer(config)
  loop.run(config, lambda c: longer)
  assert int(longer.step) == 8
  assert [r['step'] for r in runlog.read_records(config.workdir, 'final')] == [6, 8]


def test_a_finished_run_without_its_checkpoints_is_refused_not_started_again(config):
  """Finished records but no checkpoint (a run restored from its compact records, or
  checkpoints deleted): starting at step 0 would drop every record, so a launch with
  more train_steps is refused before anything is written; with its own settings it
  returns its recorded results."""
  final = loop.run(config, lambda c: CountingTrainer(c))
  import shutil
  shutil.rmtree(os.path.join(config.workdir, 'checkpoints'))
  files = _file_contents(config.workdir)
  assert loop.run(config, lambda c: CountingTrainer(c)) == final  # Its own settings.
  assert _file_contents(config.workdir) == files
  config.train_steps = 8
  with pytest.raises(config_lib.ConfigError,
                     match='finished at step 6 and has no checkpoint'):
    loop.run(config, lambda c: CountingTrainer(c))
  assert _file_contents(config.workdir) == files


def _folder_hashes(workdir):
  """{relative path: SHA-256 of a file, or 'dir'} of everything in the run folder but
  its lock file."""
  out = {}
  for root, dirs, names in os.walk(workdir):
    for name in dirs:
      out[os.path.relpath(os.path.join(root, name), workdir)] = 'dir'
    for name in names:
      if name != runlog.LOCK_FILE:
        with open(os.path.join(root, name), 'rb') as f:
          out[os.path.relpath(os.path.join(root, name), workdir)] = hashlib.sha256(
              f.read()).hexdigest()
  return out


def test_a_finished_run_relaunched_with_other_settings_is_refused_untouched(config):
  """The README job relaunched with the defaults of its probe_every and final_eval:
  refused in one line naming each field with the run's value and the launch's, and
  not a byte of the run folder changes (config.txt, records, status, export)."""
  config.update(dict(probe_every=3, final_eval=True, export_every=3))
  loop.run(config, lambda c: CountingTrainer(c))
  before = _folder_hashes(config.workdir)
  config.update(dict(probe_every=250, final_eval=False, export_every=-1))
  built = []
  with pytest.raises(config_lib.ConfigError) as e:
    loop.run(config, lambda c: built.append(c) or CountingTrainer(c))
  message = str(e.value)
  assert len(message.splitlines()) == 1
  assert repr(config.workdir) in message
  for field, old, new in (('probe_every', 3, 250), ('final_eval', True, False),
                          ('export_every', 3, 250)):
    assert f'{field}={old!r} -> {new!r}' in message, message
  assert not built  # Refused before the trainer is built.
  assert _folder_hashes(config.workdir) == before


def _killed_at_5(config):
  """A run of 6 steps killed after step 5 (its newest checkpoint at step 4)."""
  with pytest.raises(Crash):
    loop.run(config, lambda c: CountingTrainer(c, crash_at=6))


# Each field a resume may change, with a value other than the `config` fixture's.
RESUMABLE = [('train_steps', 8), ('final_eval', True), ('data_dir', '/elsewhere/data'),
             ('manual_dir', '/elsewhere/manual'), ('checkpoint_every', 2),
             ('max_checkpoints', 5), ('strategy', 'mirrored'), ('workdir', None)]


def _change(config, field, value, tmp_path):
  """Sets `field`; for workdir, copies the run folder there first (as a folder moved
  to another machine; a move would keep the lock this process holds on it)."""
  if field == 'workdir':
    value = str(tmp_path / 'moved')
    shutil.copytree(config.workdir, value)
  config[field] = value


@pytest.mark.parametrize('field,value', RESUMABLE, ids=[f for f, _ in RESUMABLE])
def test_a_resume_may_change_each_resumable_field(config, tmp_path, field, value):
  """A killed run goes on from its checkpoint with the field changed; config.txt then
  records the new value."""
  _killed_at_5(config)
  _change(config, field, value, tmp_path)
  resumed = CountingTrainer(config)
  loop.run(config, lambda c: resumed)
  assert resumed.start_step == 4 and int(resumed.step) == config.train_steps
  assert runlog.read_config(config.workdir)[field] == config[field]
  assert [r['step'] for r in runlog.read_records(config.workdir, 'start')] == [0, 4]


NO_NEW_WORK = [(f, v) for f, v in RESUMABLE if f not in ('train_steps', 'final_eval')]


@pytest.mark.parametrize('field,value', NO_NEW_WORK, ids=[f for f, _ in NO_NEW_WORK])
def test_a_finished_run_launched_with_a_bookkeeping_change_writes_nothing(
    config, tmp_path, field, value):
  """A change that asks for no new work (where the data or the folder is, how often
  state is saved, on how many replicas): the recorded final values come back and
  nothing is written (no second 'start' or 'final', no export made again)."""
  config.export_every = 3
  final = loop.run(config, lambda c: CountingTrainer(c, offset=7.0))
  _change(config, field, value, tmp_path)
  before = _folder_hashes(config.workdir)
  again = CountingTrainer(config)
  assert loop.run(config, lambda c: again) == final
  assert _folder_hashes(config.workdir) == before


def test_a_finished_run_may_turn_its_final_evaluation_on(config):
  """final_eval False -> True on a finished run goes on at its last step: a second
  'final' record there; True -> False is refused (test above)."""
  loop.run(config, lambda c: CountingTrainer(c))
  config.final_eval = True
  loop.run(config, lambda c: CountingTrainer(c))
  assert [r['step'] for r in runlog.read_records(config.workdir, 'final')] == [6, 6]
  assert runlog.read_config(config.workdir)['final_eval'] is True


# Fields whose change would alter what the written records mean or when later ones
# are made, with a value other than the `config` fixture's.
REFUSED = [('probe_every', 5), ('log_every', 2), ('eval_every', 5), ('export_every', 2),
           ('export_at_steps', '5'), ('eval_num_samples', 500),
           ('final_eval_num_samples', 500), ('final_probe_num_z', 128),
           ('classifier', '/elsewhere/classifier'), ('memorize_target_mse', 0.01),
           ('deterministic', True), ('seed', 1), ('g_lr', 1e-3), ('probe_seed', 1)]


@pytest.mark.parametrize('field,value', REFUSED, ids=[f for f, _ in REFUSED])
def test_a_resume_may_not_change_what_the_records_mean(config, field, value):
  _killed_at_5(config)
  old = config[field]
  before = _folder_hashes(config.workdir)
  config[field] = value
  with pytest.raises(config_lib.ConfigError) as e:
    loop.run(config, lambda c: CountingTrainer(c))
  assert len(str(e.value).splitlines()) == 1
  assert f'{field}={old!r} -> {value!r}' in str(e.value), str(e.value)
  assert _folder_hashes(config.workdir) == before


def test_train_steps_below_the_step_a_run_reached_is_refused(config):
  """A finished run of 6 steps launched with train_steps=4 cannot be shortened: it
  would write a second 'final' at step 6 under a config saying 4."""
  loop.run(config, lambda c: CountingTrainer(c))
  before = _folder_hashes(config.workdir)
  config.train_steps = 4
  with pytest.raises(config_lib.ConfigError, match=r'train_steps=4 .*step 6'):
    loop.run(config, lambda c: CountingTrainer(c))
  assert _folder_hashes(config.workdir) == before


class ScoringTrainer(CountingTrainer):
  """Final values with a score when final_eval is on."""

  def final_results(self, run):
    final = {'mean_log_cond': float(self.w)}
    if self.config.final_eval:
      final['classifier_score'] = 8.5
    return final


def test_a_finished_run_returns_the_values_of_all_its_final_records(config):
  """A folder holding a second 'final' at the run's last step without the score (its
  closing step made again without a final evaluation): the run's values keep the
  earlier score (the later record adds to the earlier, never erases it)."""
  config.final_eval = True
  final = loop.run(config, ScoringTrainer)
  assert final == {'mean_log_cond': 6.0, 'classifier_score': 8.5}
  log = runlog.RunLog(config.workdir)
  log.append('start', 6)
  log.append('final', 6, mean_log_cond=6.0, process_cpu_seconds=0.1)
  assert loop.run(config, ScoringTrainer) == final


class EarlyStoppingTrainer(CountingTrainer):
  """Stops once w reaches `stop_at` (as a memorizing G stops once memorized)."""

  def __init__(self, config, stop_at):
    super().__init__(config)
    self.stop_at = stop_at

  def done(self):
    return float(self.w) >= self.stop_at


def test_a_run_that_stopped_early_is_finished_unless_a_setting_changed(config):
  loop.run(config, lambda c: EarlyStoppingTrainer(c, stop_at=4))
  files = _file_contents(config.workdir)
  loop.run(config, lambda c: EarlyStoppingTrainer(c, stop_at=4))
  assert _file_contents(config.workdir) == files  # Finished at 4 of 6: nothing to do.
  config.train_steps = 8  # A resumable change that asks for more work: it goes on.
  loop.run(config, lambda c: EarlyStoppingTrainer(c, stop_at=5))
  assert [r['step'] for r in runlog.read_records(config.workdir, 'final')] == [4, 5]


def test_weights_are_checked_before_a_checkpoint(config):
  """NaN moving statistics at step 3, which no step value shows: the checkpoint of
  step 4 is refused and the run marked diverged at 4, ckpt-2 kept as the latest."""
  config.checkpoint_every = 2
  with pytest.raises(loop.DivergedError, match='non-finite weights at step 4'):
    loop.run(config, lambda c: CountingTrainer(c, nan_moving_stats_at=3))
  status = runlog.read_status(config.workdir)
  ckpt_dir = os.path.join(config.workdir, 'checkpoints')
  assert status['state'] == 'diverged' and status['step'] == 4
  assert status['last_checkpoint'] == os.path.join(ckpt_dir, 'ckpt-2')
  assert tf.train.latest_checkpoint(ckpt_dir) == status['last_checkpoint']


class AdamTrainer(CountingTrainer):
  """CountingTrainer whose w also takes an Adam step (grad 1) each step; after that of
  step `inf_slot_at` its second moment is Inf while every weight is finite (Keras's
  next update, v + (g^2 - v)(1 - beta2) = Inf - Inf, makes w NaN)."""

  def __init__(self, config, inf_slot_at):
    super().__init__(config)
    self.optimizer = tf.keras.optimizers.Adam(0.1)
    self.inf_slot_at = inf_slot_at

  def checkpoint_items(self):
    return dict(super().checkpoint_items(), optimizer=self.optimizer)

  def train_step(self, iterator):
    out = super().train_step(iterator)
    self.optimizer.apply_gradients([(tf.ones_like(self.w), self.w)])
    if int(self.step) == self.inf_slot_at:
      [second_moment] = [v for v in self.optimizer.variables  # Keras 2: '/v/'; 3:
                         if '/v/' in v.name or 'velocity' in v.name]  # 'velocity'.
      second_moment.assign(tf.fill(second_moment.shape, np.inf))
    return out


def test_optimizer_state_is_checked_before_a_checkpoint(config):
  """An Inf second moment at step 4 is refused at the checkpoint of step 4, though
  every weight is finite; ckpt-2 stays the latest."""
  config.checkpoint_every = 2
  with pytest.raises(loop.DivergedError, match='non-finite weights at step 4'):
    loop.run(config, lambda c: AdamTrainer(c, inf_slot_at=4))
  assert runlog.read_status(config.workdir)['last_checkpoint'].endswith('ckpt-2')


def test_weights_are_checked_before_an_export(config):
  """The same fault before an export due at step 3 (no checkpoint due): no export."""
  config.export_every = 3
  with pytest.raises(loop.DivergedError, match='non-finite weights at step 3'):
    loop.run(config, lambda c: CountingTrainer(c, nan_moving_stats_at=3))
  assert runlog.read_status(config.workdir)['step'] == 3
  assert not os.path.exists(os.path.join(config.workdir, 'saved_models'))


def test_non_finite_step_value_stops_before_any_action(config):
  """A NaN loss at step 2 stops the run there: no record or checkpoint of step 2."""
  config.checkpoint_every = 1

  class NaNLoss(CountingTrainer):
    def train_step(self, iterator):
      out = super().train_step(iterator)
      return {'loss': out['loss'] * (np.nan if int(self.step) == 2 else 1.0)}
  with pytest.raises(loop.DivergedError, match='non-finite loss at step 2'):
    loop.run(config, NaNLoss)
  assert [r['step'] for r in runlog.read_records(config.workdir, 'train')] == [1]
  latest = tf.train.latest_checkpoint(os.path.join(config.workdir, 'checkpoints'))
  assert latest.endswith('ckpt-1')


@pytest.mark.parametrize('fault', ['missing_state', 'truncated_data', 'missing_newest'])
def test_unusable_checkpoints_are_refused_before_any_file_changes(config, fault):
  loop.run(config, CountingTrainer)
  ckpt_dir = os.path.join(config.workdir, 'checkpoints')
  if fault == 'missing_state':
    os.remove(os.path.join(ckpt_dir, 'checkpoint'))
    expected = 'state file "checkpoint" is missing or unreadable'
  elif fault == 'missing_newest':  # The state file names ckpt-6; its files are gone.
    for path in glob.glob(os.path.join(ckpt_dir, 'ckpt-6.*')):
      os.remove(path)
    expected = 'ckpt-6.* cannot be restored'
  else:
    path = os.path.join(ckpt_dir, 'ckpt-6.data-00000-of-00001')
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 2)
    expected = 'cannot be restored'
  files = {p: open(p, 'rb').read() for p in glob.glob(os.path.join(config.workdir, '*'))
           if os.path.isfile(p)}
  config.train_steps = 8
  with pytest.raises(config_lib.ConfigError, match=expected):
    loop.run(config, CountingTrainer)
  assert {p: open(p, 'rb').read() for p in files} == files
  assert len(glob.glob(os.path.join(config.workdir, 'events.*'))) == 1


def test_read_config_is_the_inverse_of_the_written_config(config, tmp_path):
  """runlog.read_config gives back the fields of config.txt; {} for a folder without
  one or with a cut one (nothing to compare against)."""
  assert runlog.read_config(str(tmp_path)) == {}
  config.seed = 7
  loop.run(config, lambda c: CountingTrainer(c))
  recorded = runlog.read_config(config.workdir)
  assert recorded['seed'] == 7 and recorded['train_steps'] == config.train_steps
  assert recorded == dict(config_lib.from_text(config_lib.to_text(
      config_lib.resolve(config))))
  (tmp_path / runlog.CONFIG_FILE).write_text("seed: 7\ntrain_steps: [1,")
  assert runlog.read_config(str(tmp_path)) == {}


class SecondWorker(CountingTrainer):
  """Worker 1 of a MultiWorkerMirroredStrategy cluster (not the chief)."""

  class Resolver:
    task_type, task_id = 'worker', 1

  def __init__(self, config):
    super().__init__(config)
    self.strategy = type('Strategy', (), {'cluster_resolver': self.Resolver()})()


def test_every_worker_resumes_from_the_chiefs_checkpoint(config):
  """Workers must agree on the step they go on from, or the chief waits forever in a
  collective: where the chief's folder is shared, a worker restores the chief's
  newest checkpoint (its own scratch folder may hold an older one, or none), and
  decides 'finished' from the chief's folder."""
  config.train_steps = 4
  loop.run(config, SecondWorker)  # Scratch checkpoint at step 4.
  config.train_steps = 6
  loop.run(config, lambda c: CountingTrainer(c))  # The chief's, at step 6.
  config.train_steps = 8
  worker = SecondWorker(config)
  loop.run(config, lambda c: worker)
  assert worker.start_step == 6  # Went on from the chief's step 6.
  assert int(worker.step) == 8 and float(worker.w) == 8.0
  worker_checkpoints = os.path.join(config.workdir, 'workers', 'worker_1', 'checkpoints')
  assert tf.train.latest_checkpoint(worker_checkpoints).endswith('ckpt-8')
  # The scratch folder newer than the chief's (ckpt-8 against ckpt-6): still the chief's.
  config.train_steps = 10
  worker = SecondWorker(config)
  loop.run(config, lambda c: worker)
  assert worker.start_step == 6 and float(worker.w) == 10.0


def test_a_worker_on_its_own_disk_resumes_from_its_scratch_checkpoint(config):
  """Hosts without a shared workdir: the chief's folder is not visible to a worker,
  whose own scratch checkpoint (saved at the chief's steps) is where it goes on."""
  config.train_steps = 4
  loop.run(config, SecondWorker)
  config.train_steps = 6
  worker = SecondWorker(config)
  loop.run(config, lambda c: worker)
  assert worker.start_step == 4 and float(worker.w) == 6.0


def test_a_non_chief_worker_folder_in_use_is_refused(config):
  """Under MultiWorkerMirroredStrategy a worker other than the chief writes in
  workers/<task>; a second launch's same worker is refused there, as a chief is."""
  worker_folder = os.path.join(config.workdir, 'workers', 'worker_1')
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from tf_gancond import runlog; '
       'runlog.lock_folder(sys.argv[1]); print("locked", flush=True); time.sleep(60)',
       worker_folder], stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    with pytest.raises(config_lib.ConfigError) as e:
      loop.run(config, SecondWorker)
    # It names the flag the user gave, and which worker's folder is taken.
    assert str(e.value).startswith(f'workdir={config.workdir!r}: the folder of worker 1')
    assert 'is in use by another process' in str(e.value)
  finally:
    holder.kill()
    holder.wait()


class WorkerWithoutData(SecondWorker):
  """Worker 1 on a node whose data is missing."""

  def make_iterator(self, config, start_step):
    raise data_lib.DataUnavailableError(f'dataset={config.dataset!r} cannot be prepared')


@pytest.mark.parametrize('resume', [False, True], ids=['first start', 'resume'])
def test_a_worker_without_data_writes_nothing(config, resume):
  """Missing data is refused before anything is written on every worker, not only the
  chief: a first start leaves no run folder (nor the worker's scratch folder under it),
  and a resume leaves the folders and their files as they were."""
  if resume:  # Scratch folder and run folder from a first part.
    config.train_steps = 4
    loop.run(config, SecondWorker)
    config.train_steps = 6
  before = _folder_hashes(config.workdir) if os.path.exists(config.workdir) else None
  with pytest.raises(data_lib.DataUnavailableError):
    loop.run(config, WorkerWithoutData)
  if before is None:
    assert not os.path.exists(config.workdir)
  else:
    assert _folder_hashes(config.workdir) == before


def test_records_carry_the_process_cpu_time(config):
  """Each 'train' record and the 'final' record carry this process's CPU seconds so
  far, nondecreasing; a run's CPU time is their sum over its starts."""
  before = time.process_time()
  loop.run(config, lambda c: CountingTrainer(c))
  spent = time.process_time() - before
  records = runlog.read_records(config.workdir)
  cpu = [r['process_cpu_seconds'] for r in records if r['kind'] in ('train', 'final')]
  assert len(cpu) == config.train_steps + 1 and cpu == sorted(cpu) and cpu[0] > 0
  assert cpu[-1] <= spent  # This run's CPU, not the process's since it began.
  assert runlog.cpu_seconds(records) == cpu[-1]


def test_cpu_seconds_sums_the_last_value_of_each_start():
  """A start, records to 10 s of CPU, a kill; a resume, records to 4 s: 14 s. Records
  without the field (made before it was recorded) give None."""
  records = [{'kind': 'start', 'step': 0}, {'kind': 'probe', 'step': 0},
             {'kind': 'train', 'step': 1, 'process_cpu_seconds': 5.0},
             {'kind': 'train', 'step': 2, 'process_cpu_seconds': 10.0},
             {'kind': 'start', 'step': 2},
             {'kind': 'train', 'step': 3, 'process_cpu_seconds': 3.0},
             {'kind': 'final', 'step': 3, 'process_cpu_seconds': 4.0}]
  assert runlog.cpu_seconds(records) == 14.0
  assert runlog.cpu_seconds([{'kind': 'start', 'step': 0},
                             {'kind': 'train', 'step': 1}]) is None
  # Finished, then launched again with more train_steps: both starts count.
  longer = records + [{'kind': 'start', 'step': 3},
                      {'kind': 'final', 'step': 5, 'process_cpu_seconds': 6.0}]
  assert runlog.cpu_seconds(longer) == 20.0
  # A start made before the field was recorded, resumed after: the total is unknown,
  # not the later start's alone.
  assert runlog.cpu_seconds([{'kind': 'start', 'step': 0},
                             {'kind': 'train', 'step': 1},
                             {'kind': 'start', 'step': 1},
                             {'kind': 'final', 'step': 2,
                              'process_cpu_seconds': 4.0}]) is None


def test_a_deterministic_run_may_not_change_its_strategy(config):
  """Another strategy changes only the rounding of a run, which a non-deterministic
  run has anyway; a deterministic one would no longer be reproducible from its
  config.txt."""
  os.makedirs(config.workdir)
  for deterministic in (False, True):
    config.deterministic, config.strategy = deterministic, 'default'
    runlog.atomic_write_text(os.path.join(config.workdir, runlog.CONFIG_FILE),
                             config_lib.to_text(config))
    config.strategy = 'mirrored'
    if deterministic:
      with pytest.raises(config_lib.ConfigError,
                         match="strategy='default' -> 'mirrored'"):
        runlog.check_resumable(config.workdir, config)
    else:
      runlog.check_resumable(config.workdir, config)


class Terminated(Exception):
  """What SIGTERM raises in these tests when the loop does not handle it."""


@pytest.fixture
def sigterm_raises():
  """SIGTERM raises Terminated (not the end of pytest) unless the loop takes it."""
  def handler(signum, frame):
    raise Terminated()
  previous = signal.signal(signal.SIGTERM, handler)
  yield handler
  signal.signal(signal.SIGTERM, previous)


class SigtermTrainer(CountingTrainer):
  """Sends this process SIGTERM during the train step that reaches `sigterm_at`."""

  def __init__(self, config, sigterm_at):
    super().__init__(config)
    self.sigterm_at = sigterm_at

  def train_step(self, iterator):
    out = super().train_step(iterator)
    if int(self.step) == self.sigterm_at:
      os.kill(os.getpid(), signal.SIGTERM)
    return out


def test_sigterm_stops_at_the_step_boundary_with_its_record_and_checkpoint(
    config, sigterm_raises):
  """SIGTERM during step 6 of a run recording every 4 steps: the run ends after step
  6 with a record of steps 5-6 and the checkpoint of step 6, status 'stopped'; the
  resume records 7-8 at 8, so each step is in one record. loss = w = step."""
  config.train_steps, config.log_every, config.checkpoint_every = 12, 4, 100
  with pytest.raises(loop.StoppedError) as e:
    loop.run(config, lambda c: SigtermTrainer(c, sigterm_at=6))
  assert e.value.step == 6
  assert signal.getsignal(signal.SIGTERM) is sigterm_raises  # Handed back.
  checkpoint = os.path.join(config.workdir, 'checkpoints', 'ckpt-6')
  assert tf.train.latest_checkpoint(os.path.dirname(checkpoint)) == checkpoint
  assert runlog.read_status(config.workdir) == {
      'state': 'stopped', 'step': 6, 'reason': 'SIGTERM', 'last_checkpoint': checkpoint}
  assert [(r['step'], r['loss']) for r in runlog.read_records(config.workdir, 'train')
          ] == [(4, 2.5), (6, 5.5)]
  trainer = CountingTrainer(config)
  loop.run(config, lambda c: trainer)
  assert trainer.start_step == 6 and float(trainer.w) == 12.0
  assert [(r['step'], r['loss']) for r in runlog.read_records(config.workdir, 'train')
          ] == [(4, 2.5), (6, 5.5), (8, 7.5), (12, 10.5)]
  assert runlog.read_status(config.workdir)['state'] == 'finished'


def test_sigterm_during_the_last_step_lets_the_run_finish(config, sigterm_raises):
  """No step is left to stop before: the run finishes (its closing actions, 'final'
  record, status 'finished') rather than stopping with nothing left to resume."""
  loop.run(config, lambda c: SigtermTrainer(c, sigterm_at=config.train_steps))
  assert runlog.read_status(config.workdir)['state'] == 'finished'
  assert len(runlog.read_records(config.workdir, 'final')) == 1
  assert signal.getsignal(signal.SIGTERM) is sigterm_raises
