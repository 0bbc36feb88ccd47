"""Runs that survive faults: SIGKILL and resume, determinism, divergence, locks.

  * SIGKILL: `python -m tf_gancond.launch` is killed mid-training once a checkpoint
    (and its export) exists; what a kill in the middle of an export leaves is
    planted on top (the export of the last checkpoint missing, its `.tmp` folder
    and a `status.json.tmp` present). The same command again resumes from that
    checkpoint and finishes: metrics.jsonl holds every train step exactly once,
    every line valid JSON, the missing export is made again, no `*.tmp` is left.
  * SIGTERM (a cluster's time limit, preemption), sent from outside mid-run or by
    the run itself during a known step (tests/sigterm_launch.py): exit code 4, the
    step it was at checkpointed (the only checkpoint), status.json 'stopped'; the
    same command resumes it and it ends with every step in exactly one record and
    every record and checkpointed tensor of a straight run (`--deterministic`).
  * A second launcher on a run folder in use exits 2 with one line; the first run
    goes on.
  * `deterministic`: two runs with the same seed log bit-identical losses (CPU).
  * Divergence: a NaN injected into the G loss and weights (tests/nan_launch.py, the
    launcher with its trainer wrapped) stops the run with exit code 3, status.json
    'diverged' at that step, and the last good checkpoint and SavedModel kept and
    loadable. A generator with a
    non-finite weight is never exported.
The launcher runs as a subprocess (its exit code and files are what is tested)
on synthetic data; the determinism runs use mock TFDS data (shuffled pipeline).
"""

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import native_log
from kill_points import killed_at_each_call
from tf_gancond import export
from tf_gancond import runlog

PYTHON = sys.executable
TINY = ['--dataset=mnist', '--batch_size=8', '--latent_dim=8',
        '--config.g_base_channels=16', '--config.d_base_channels=8', '--probe_every=0',
        '--synthetic_data']
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')


def _launch_cmd(workdir, *flags):
  return [PYTHON, '-m', 'tf_gancond.launch', *TINY, f'--workdir={workdir}', *flags]


def _run(cmd, timeout=180):
  return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


def _strict_records(workdir):
  """Every line of metrics.jsonl parsed (a cut or garbled line fails the test)."""
  with open(os.path.join(workdir, runlog.METRICS_FILE)) as f:
    return [json.loads(line) for line in f]


@contextlib.contextmanager
def _launched(cmd, stderr=subprocess.DEVNULL):
  """`cmd` started (stdout dropped); killed on leaving the block if it still runs."""
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=ENV)
  try:
    yield proc
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait(timeout=30)


def _wait_for_a_train_record(proc, workdir):
  """Returns once `proc`, running in `workdir`, has written a 'train' record (150 s
  at the most)."""
  deadline = time.monotonic() + 150
  while not runlog.read_records(workdir, 'train'):
    assert proc.poll() is None, 'the run ended before its first train record'
    assert time.monotonic() < deadline, 'no train record within 150 s'
    time.sleep(0.02)


def test_sigkill_then_same_command_resumes_without_gaps(tmp_path):
  workdir = tmp_path / 'run'
  steps, log_every, ckpt_every = 300, 5, 50
  cmd = _launch_cmd(workdir, f'--train_steps={steps}', f'--log_every={log_every}',
                    f'--checkpoint_every={ckpt_every}', f'--export_every={ckpt_every}')
  state_file = workdir / 'checkpoints' / 'checkpoint'
  with _launched(cmd) as proc:
    deadline = time.monotonic() + 150
    while not state_file.exists():
      assert proc.poll() is None, 'the run ended before its first checkpoint'
      assert time.monotonic() < deadline, 'no checkpoint within 150 s'
      time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.3))  # Between checkpoints, mid-interval.
    assert proc.poll() is None, 'the run finished before it could be killed'
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
  assert proc.returncode == -signal.SIGKILL
  assert runlog.read_status(workdir)['state'] == 'running'
  assert not runlog.read_records(workdir, 'final')
  # What the kill left is readable: the newest checkpoint and its step.
  latest = tf.train.latest_checkpoint(str(workdir / 'checkpoints'))
  killed_at = int(tf.train.load_checkpoint(latest).get_tensor(
      'step/.ATTRIBUTES/VARIABLE_VALUE'))
  assert killed_at % ckpt_every == 0 and 0 < killed_at < steps
  before = [r for r in runlog.read_records(workdir) if r['step'] <= killed_at]
  assert max(r['step'] for r in runlog.read_records(workdir, 'train')) < steps
  # A kill in the middle of the export that follows the checkpoint.
  exported = workdir / 'saved_models' / f'step_{killed_at:08d}'
  shutil.rmtree(exported, ignore_errors=True)
  cut = workdir / 'saved_models' / f'step_{killed_at:08d}.tmp'
  cut.mkdir(parents=True)
  (cut / 'saved_model.pb').write_bytes(b'cut')
  (workdir / 'status.json.tmp').write_text('{"state": "runn')

  result = _run(cmd)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Resumed from {latest} at step {killed_at}' in result.stderr
  records = _strict_records(workdir)
  train_steps = [r['step'] for r in records if r['kind'] == 'train']
  assert train_steps == list(range(log_every, steps + 1, log_every))
  kept = [r for r in records if r['step'] <= killed_at]
  assert kept[:len(before)] == before  # Kept as written.
  assert [r['kind'] for r in kept[len(before):]] == ['start']  # The resume's own.
  assert [r['kind'] for r in records].count('final') == 1
  status = runlog.read_status(workdir)
  assert status['state'] == 'finished' and status['step'] == steps
  assert not list(workdir.rglob('*.tmp'))  # No half-written file left behind.
  assert sorted(os.listdir(workdir / 'saved_models')) == [
      f'step_{s:08d}' for s in range(ckpt_every, steps + 1, ckpt_every)]
  with open(exported / export.METADATA_FILE) as f:
    assert json.load(f)['step'] == killed_at
  generate, latent_dim = export.load_generator(str(exported))
  assert np.all(np.isfinite(generate(tf.random.normal([2, latent_dim])).numpy()))


def test_second_launcher_on_a_live_run_folder_exits_2(tmp_path):
  workdir = tmp_path / 'run'
  cmd = _launch_cmd(workdir, '--train_steps=1000000', '--log_every=5',
                    '--checkpoint_every=1000000')
  first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=ENV)
  try:
    _wait_for_a_train_record(first, workdir)
    second = _run(cmd)
    assert second.returncode == 2, second.stderr[-3000:]
    lines = native_log.package_lines(second.stderr)
    assert len(lines) == 1 and lines[0].startswith('error: '), second.stderr[-3000:]
    assert repr(str(workdir)) in lines[0] and 'in use' in lines[0]
    assert second.stdout == ''
    step = runlog.read_records(workdir, 'train')[-1]['step']
    deadline = time.monotonic() + 60
    while runlog.read_records(workdir, 'train')[-1]['step'] <= step:
      assert first.poll() is None, 'the first run ended'
      assert time.monotonic() < deadline, 'the first run stopped logging'
      time.sleep(0.05)
    assert runlog.read_status(workdir)['state'] == 'running'
  finally:
    first.kill()
    first.wait(timeout=30)


_DETERMINISM_CHILD = r'''
import sys
import tensorflow_datasets as tfds
from tf_gancond import config as config_lib
from tf_gancond import train
for workdir in sys.argv[1:]:
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', batch_size=8, train_steps=6, g_base_channels=16,
                d_base_channels=8, latent_dim=8, probe_every=0, log_every=1,
                shuffle_buffer=64, seed=3, deterministic=True, workdir=workdir))
  with tfds.testing.mock_data(num_examples=64):
    train.train_and_evaluate(c)
'''


def test_deterministic_runs_give_identical_losses(tmp_path):
  """Two runs (in one child: op determinism is process-wide) match bit for bit."""
  dirs = [str(tmp_path / 'a'), str(tmp_path / 'b')]
  result = _run([PYTHON, '-c', _DETERMINISM_CHILD, *dirs])
  assert result.returncode == 0, result.stderr[-3000:]
  timing = ('steps_per_sec', 'step_time', 'process_cpu_seconds')
  a, b = ([{k: v for k, v in r.items() if k not in timing}
           for r in runlog.read_records(d, 'train')] for d in dirs)
  assert [r['step'] for r in a] == list(range(1, 7))
  assert a == b  # Losses, logits, gradient norms, Q statistics: exactly equal.
  assert len({r['g_loss'] for r in a}) == 6  # The runs did train.


_RESUME_CHILD = r"""
import json, sys
import tensorflow_datasets as tfds
from tf_gancond import config as config_lib
from tf_gancond import train
fields, straight, resumed = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
with tfds.testing.mock_data(num_examples=40):  # Read only without synthetic_data.
  for workdir, steps in ((straight, (4,)), (resumed, (2, 4))):
    for train_steps in steps:
      c = config_lib.get_config()
      c.update(dict(dataset='mnist', batch_size=8, train_steps=train_steps,
                    g_base_channels=16, d_base_channels=8, latent_dim=8,
                    probe_every=0, log_every=1, checkpoint_every=2,
                    synthetic_data=True, seed=3, deterministic=True,
                    shuffle_buffer=16, data_dir=workdir + '_data', workdir=workdir))
      c.update(fields)
      train.train_and_evaluate(c)
"""


def _straight_and_resumed(tmp_path, **fields):
  """Run folders of 4 steps in one go and of 2 steps resumed to 4 (same settings)."""
  straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
  result = _run([PYTHON, '-c', _RESUME_CHILD, json.dumps(fields), straight, resumed])
  assert result.returncode == 0, result.stderr[-3000:]
  return straight, resumed


@pytest.mark.parametrize('fields', [
    dict(jacobian_clamping=True),  # One fixed synthetic batch.
    # Real (mock) data through epoch ends (40 examples, 16 per step), dequantized:
    # the resumed run reads the batches and the noise of the straight one.
    dict(synthetic_data=False, n_critic=2, dequantize=True)],
    ids=['synthetic', 'data'])
def test_a_resumed_run_ends_with_the_weights_of_a_straight_run(fields, tmp_path):
  """2 steps, then a resume to 4, against 4 straight steps: every checkpointed tensor
  (weights, moving statistics, optimizer slots) and every train record equal bit for
  bit, because the step's random draws (and Q's) are keyed by step and the data
  stream is skipped to the start step's batch."""
  straight, resumed = _straight_and_resumed(tmp_path, **fields)
  a = tf.train.load_checkpoint(os.path.join(straight, 'checkpoints', 'ckpt-4'))
  b = tf.train.load_checkpoint(os.path.join(resumed, 'checkpoints', 'ckpt-4'))
  names = a.get_variable_to_shape_map()
  assert names == b.get_variable_to_shape_map()
  for name in names:
    if name != '_CHECKPOINTABLE_OBJECT_GRAPH':
      np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), name)
  # Every train record too, Q's measurement (its own z draws) included.
  timing = ('steps_per_sec', 'step_time', 'process_cpu_seconds')
  straight_records, resumed_records = (
      [{k: v for k, v in r.items() if k not in timing}
       for r in runlog.read_records(d, 'train')] for d in (straight, resumed))
  assert 'q_p50' in straight_records[-1]
  assert straight_records == resumed_records


def test_a_resume_restores_the_power_iteration_vectors(tmp_path):
  """r(W) (S2) and the spectral clamp (S3) carry unit vectors from step to step, as
  SN does. r(W) at step 3 is a function of G's weights and r(W)'s vector u after
  step 2 only (no data), so the run resumed at step 2 logs the straight run's value
  exactly only if u was checkpointed and restored."""
  straight, resumed = _straight_and_resumed(tmp_path, rw_lambda=0.1,
                                            grad_clamp_g_ratio=1.5,
                                            grad_clamp_d_ratio=4.0)
  rw = [{r['step']: r['rw_mean'] for r in runlog.read_records(d, 'train')}
        for d in (straight, resumed)]
  assert rw[0][3] == rw[1][3]
  assert rw[0][2] != rw[0][3]  # It does change from step to step.
  names = tf.train.load_checkpoint(
      os.path.join(resumed, 'checkpoints', 'ckpt-4')).get_variable_to_shape_map()
  for module in ('g_penalties_0/u', 'g_gradients_0/vectors', 'd_gradients_0/vectors'):
    assert any(n.startswith(f'power_iteration_vectors/{module}') for n in names), module


SIGTERM_LAUNCH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              'sigterm_launch.py')
STOPPED_EXIT_CODE = 4  # The launcher's documented code for a run stopped by SIGTERM.
SIGTERM_STEPS = 120
_TIMING = ('steps_per_sec', 'step_time', 'process_cpu_seconds')


def _sigterm_cmd(workdir, log_every, launcher=()):
  """The launch (or `launcher`'s) of a deterministic SIGTERM_STEPS-step run whose only
  checkpoint before the end is the one a stop makes (default checkpoint_every 1000)."""
  base = list(launcher) or [PYTHON, '-m', 'tf_gancond.launch']
  return [*base, *TINY, f'--workdir={workdir}', f'--train_steps={SIGTERM_STEPS}',
          f'--log_every={log_every}', '--deterministic']


@pytest.fixture(scope='module')
def straight_run(tmp_path_factory):
  """The SIGTERM tests' run made in one go, a 'train' record every step."""
  workdir = tmp_path_factory.mktemp('straight') / 'run'
  result = _run(_sigterm_cmd(workdir, log_every=1))
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def _stopped_at(result, workdir):
  """The step a run stopped by SIGTERM reports, after checking how it stopped: exit
  code 4, one `stopped:` line, status 'stopped', its checkpoint the newest and of
  that step, the only one (no other was due), no 'final' record."""
  assert result.returncode == STOPPED_EXIT_CODE, result.stderr[-3000:]
  lines = [l for l in native_log.package_lines(result.stderr)
           if l.startswith(('stopped: ', 'error: '))]
  assert len(lines) == 1 and lines[0].startswith('stopped: '), result.stderr[-3000:]
  status = runlog.read_status(workdir)
  step = status['step']
  assert status['state'] == 'stopped' and 0 < step < SIGTERM_STEPS
  assert f'at step {step},' in lines[0]
  checkpoints = workdir / 'checkpoints'
  assert status['last_checkpoint'] == str(checkpoints / f'ckpt-{step}')
  assert tf.train.latest_checkpoint(str(checkpoints)) == status['last_checkpoint']
  assert sorted(p.name for p in checkpoints.glob('*.index')) == [f'ckpt-{step}.index']
  assert int(tf.train.load_checkpoint(status['last_checkpoint']).get_tensor(
      'step/.ATTRIBUTES/VARIABLE_VALUE')) == step
  assert not runlog.read_records(workdir, 'final')
  return step


def _assert_resumed_like_straight(workdir, straight, stopped_at):
  """A run stopped at `stopped_at` and relaunched ends as the straight one: every
  step in exactly one 'train' record, each record's step values (losses, norms) the
  mean of the straight run's over the steps it covers, its Q statistics (measured
  at the record's step) the straight run's there; one 'final'; every checkpointed
  tensor of the run equal bit for bit."""
  records = _strict_records(workdir)
  assert [r['kind'] for r in records].count('final') == 1
  assert [r['step'] for r in records if r['kind'] == 'start'] == [0, stopped_at]
  per_step = {r['step']: r for r in runlog.read_records(straight, 'train')}
  assert sorted(per_step) == list(range(1, SIGTERM_STEPS + 1))
  train = [r for r in records if r['kind'] == 'train']
  ends = [r['step'] for r in train]
  assert ends == sorted(set(ends)) and ends[-1] == SIGTERM_STEPS and stopped_at in ends
  begin = 0
  for record in train:
    covered = [per_step[s] for s in range(begin + 1, record['step'] + 1)]
    assert set(record) == set(covered[-1])
    for key, value in record.items():
      if key in _TIMING or key in ('kind', 'step'):
        continue
      if key.startswith('q_'):
        assert value == covered[-1][key], (record['step'], key)
      else:
        np.testing.assert_allclose(value, np.mean([r[key] for r in covered]),
                                   rtol=1e-5, err_msg=f'{key} at {record["step"]}')
    begin = record['step']
  a = tf.train.load_checkpoint(str(straight / 'checkpoints' / f'ckpt-{SIGTERM_STEPS}'))
  b = tf.train.load_checkpoint(str(workdir / 'checkpoints' / f'ckpt-{SIGTERM_STEPS}'))
  names = a.get_variable_to_shape_map()
  assert names == b.get_variable_to_shape_map()
  # save_counter counts saves (1 straight, 2 with the stop's), not the run's state.
  for name in set(names) - {'_CHECKPOINTABLE_OBJECT_GRAPH',
                            'save_counter/.ATTRIBUTES/VARIABLE_VALUE'}:
    np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), name)
  assert len(names) > 20  # Weights, moving statistics, Adam slots.
  status = runlog.read_status(workdir)
  assert status['state'] == 'finished' and status['step'] == SIGTERM_STEPS


def test_sigterm_checkpoints_at_a_step_boundary_and_a_relaunch_ends_as_a_straight_run(
    tmp_path, straight_run):
  """SIGTERM sent mid-run (as SLURM does before a time limit, or on preemption): the
  run checkpoints the step it is at, exits 4; the same command resumes it, and it
  ends with the records and weights of the run never stopped."""
  workdir = tmp_path / 'run'
  cmd = _sigterm_cmd(workdir, log_every=1)
  log = tmp_path / 'stderr.txt'  # A file: a pipe nobody reads while waiting could fill.
  with open(log, 'w') as stderr, _launched(cmd, stderr) as proc:
    _wait_for_a_train_record(proc, workdir)
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=120)
  stopped = subprocess.CompletedProcess(cmd, proc.returncode, '', log.read_text())
  step = _stopped_at(stopped, workdir)
  assert [r['step'] for r in runlog.read_records(workdir, 'train')] == list(
      range(1, step + 1))

  result = _run(cmd)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Resumed from {workdir / "checkpoints" / f"ckpt-{step}"} at step {step}' in (
      result.stderr)
  _assert_resumed_like_straight(workdir, straight_run, step)


def test_sigterm_between_records_records_the_steps_since_the_last_one(
    tmp_path, straight_run):
  """SIGTERM during step 10 of a run recording every 4 steps: the stop writes steps
  9-10 as a record at 10 beside the checkpoint, so that the resumed run's record at
  12 holds steps 11-12, and every step is recorded once."""
  workdir = tmp_path / 'run'
  cmd = _sigterm_cmd(workdir, log_every=4)
  stopped = _run(_sigterm_cmd(workdir, log_every=4, launcher=[
      PYTHON, SIGTERM_LAUNCH, '--sigterm_at_step=10']))
  assert _stopped_at(stopped, workdir) == 10
  assert [r['step'] for r in runlog.read_records(workdir, 'train')] == [4, 8, 10]
  result = _run(cmd)
  assert result.returncode == 0, result.stderr[-3000:]
  assert [r['step'] for r in runlog.read_records(workdir, 'train')][:5] == [
      4, 8, 10, 12, 16]
  _assert_resumed_like_straight(workdir, straight_run, 10)


NAN_LAUNCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'nan_launch.py')


def test_injected_nan_stops_the_run_cleanly(tmp_path):
  workdir = tmp_path / 'run'
  result = _run([PYTHON, NAN_LAUNCH, '--nan_at_step=7', '--nan_in=loss', *TINY,
                 f'--workdir={workdir}', '--train_steps=40', '--log_every=2',
                 '--checkpoint_every=2', '--export_every=4'])
  assert result.returncode == 3, result.stderr[-3000:]
  errors = [l for l in result.stderr.splitlines() if l.startswith('error: ')]
  assert len(errors) == 1 and 'at step 7' in errors[0] and 'g_loss' in errors[0]
  assert 'Traceback' not in result.stderr

  status = runlog.read_status(workdir)
  assert status['state'] == 'diverged' and status['step'] == 7
  assert 'g_loss' in status['reason']
  assert status['last_checkpoint'] == str(workdir / 'checkpoints' / 'ckpt-6')
  # Nothing from the diverged step was saved; the last good state is finite.
  assert tf.train.latest_checkpoint(str(workdir / 'checkpoints')) == status[
      'last_checkpoint']
  reader = tf.train.load_checkpoint(status['last_checkpoint'])
  for name, dtype in reader.get_variable_to_dtype_map().items():
    if dtype.is_floating:
      assert np.all(np.isfinite(reader.get_tensor(name))), name
  assert sorted(os.listdir(workdir / 'saved_models')) == ['step_00000004']
  generate, latent_dim = export.load_generator(
      str(workdir / 'saved_models' / 'step_00000004'))
  images = generate(tf.random.normal([3, latent_dim])).numpy()
  assert np.all(np.isfinite(images))
  assert [r['step'] for r in runlog.read_records(workdir, 'train')] == [2, 4, 6]


def _folder_version(path):
  """'old' or 'new' when the folder holds both its files of one version, else None."""
  try:
    versions = {open(os.path.join(path, name)).read() for name in ('a', 'b')}
  except OSError:
    return None
  return versions.pop() if len(versions) == 1 else None


@pytest.mark.parametrize('exchange', [True, False], ids=['exchange', 'fallback'])
def test_replace_folder_leaves_a_whole_folder_at_every_kill(
    tmp_path, monkeypatch, exchange):
  """runlog.replace_folder killed at each of its steps: the old or the new folder is
  whole at the path (without the atomic exchange, the old one may instead be whole
  at <path>.replaced); run to its end, the new one is at the path and nothing else
  is left beside it."""
  if not exchange:
    monkeypatch.setattr(runlog, '_exchange', lambda a, b: False)
  path = str(tmp_path / 'folder')

  def make(name, version):
    os.makedirs(name)
    for f in ('a', 'b'):
      with open(os.path.join(name, f), 'w') as out:
        out.write(version)

  make(path, 'old')
  kills = killed_at_each_call((runlog, '_exchange'), (os, 'rename'), (shutil, 'rmtree'),
                              calls=2)
  for kill in kills:
    new = str(tmp_path / 'folder.tmp')
    shutil.rmtree(new, ignore_errors=True)
    make(new, 'new')
    with monkeypatch.context() as m:
      kill(m)
      try:
        runlog.replace_folder(new, path)
      except KeyboardInterrupt:
        pass
    found = _folder_version(path) or (
        None if exchange else _folder_version(path + '.replaced'))
    assert found in ('old', 'new'), kill
    if _folder_version(path) is None:  # Put back by hand, as a user would.
      os.rename(path + '.replaced', path)
    for left in (new, path + '.replaced'):  # What the next start would clear.
      shutil.rmtree(left, ignore_errors=True)
  make(str(tmp_path / 'last'), 'new')
  runlog.replace_folder(str(tmp_path / 'last'), path)
  assert _folder_version(path) == 'new'
  assert os.listdir(tmp_path) == ['folder']


def test_a_json_write_that_fails_leaves_the_old_file_whole_and_nothing_beside(tmp_path):
  """runlog.atomic_write_json of a value JSON cannot hold raises and leaves the file
  as it was, with no temporary file beside it (sweep.json, status.json, a part's
  progress.json are all written by it)."""
  path = str(tmp_path / 'sweep.json')
  runlog.atomic_write_json(path, {'runs': 1})
  with pytest.raises(TypeError):
    runlog.atomic_write_json(path, {'runs': object()})
  assert json.load(open(path)) == {'runs': 1}
  assert os.listdir(tmp_path) == ['sweep.json']


def test_two_writers_of_one_file_at_once_leave_one_of_them_whole(tmp_path,
                                                                   monkeypatch):
  """Two processes writing one file together (two `run_sweep --status` on a SLURM
  sweep, which hold no lock): the second writes its whole file between the first's
  write and rename. Neither fails, the file is one writer's text whole, and no
  temporary file is left."""
  path = str(tmp_path / 'sweep_status.json')
  real_replace = os.replace
  def replace_after_another_writer(src, dst):
    monkeypatch.setattr(os, 'replace', real_replace)
    runlog.atomic_write_text(path, 'second writer\n')
    real_replace(src, dst)
  monkeypatch.setattr(os, 'replace', replace_after_another_writer)
  umask = os.umask(0o002)  # A group-shared folder's: the file as open() makes it.
  try:
    runlog.atomic_write_text(path, 'first writer\n')
    with open(tmp_path / 'made_by_open', 'w'):
      pass
  finally:
    os.umask(umask)
  assert open(path).read() == 'first writer\n'
  assert os.stat(path).st_mode == os.stat(tmp_path / 'made_by_open').st_mode
  assert sorted(os.listdir(tmp_path)) == ['made_by_open', 'sweep_status.json']


def test_an_export_made_again_replaces_the_old_one_whole(tmp_path):
  """A step exported again (a resume that redoes it): the new SavedModel is at the
  path, loadable, and nothing is left beside it."""
  from tf_gancond import config as config_lib
  from tf_gancond import models
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', latent_dim=4, g_base_channels=8))
  generator, _ = models.build_gan(config_lib.resolve(c))
  path = tmp_path / 'saved_models' / 'step_00000001'
  for version in (1, 2):
    export.export_generator(generator, str(path), 4, (28, 28, 1),
                            metadata={'version': version})
  assert json.load(open(path / export.METADATA_FILE))['version'] == 2
  assert export.load_generator(str(path))[1] == 4
  assert os.listdir(path.parent) == ['step_00000001']


def test_non_finite_generator_is_not_exported(tmp_path):
  from tf_gancond import config as config_lib
  from tf_gancond import models
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', latent_dim=4, g_base_channels=8))
  generator, _ = models.build_gan(config_lib.resolve(c))
  weight = generator.trainable_variables[0]
  weight.assign(tf.tensor_scatter_nd_update(
      weight, [[0] * len(weight.shape)], [float('inf')]))
  path = tmp_path / 'saved_models' / 'step_00000001'
  path.parent.mkdir()
  with pytest.raises(export.NonFiniteWeightsError, match=weight.name):
    export.export_generator(generator, str(path), 4, (28, 28, 1))
  assert os.listdir(path.parent) == []
