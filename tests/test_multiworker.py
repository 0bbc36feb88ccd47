"""Two worker processes on 127.0.0.1 train with MultiWorkerMirroredStrategy.

Each process runs tests/multiworker_worker.py with its own `TF_CONFIG` (the same
two-worker cluster on free loopback ports, its own task index), trains a tiny
DCGAN for a few steps through `train.train_and_evaluate(strategy='multi_worker')`
and saves its final weights (from the checkpoint it wrote) to a npz. The test
asserts that both workers end with identical weights and optimizer slots, and
that only the chief wrote the run's files.

SIGTERM to one worker (tf_gancond.launch on each): both checkpoint one step and
exit 4 (PreemptionCheckpointHandler's agreement, tf_gancond/loop.py), and both
relaunched finish the run with every step recorded once.

The processes are killed in a `finally` block whatever happens; every wait is
bounded.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from tf_gancond import runlog

STEPS = 3
TIMEOUT_S = 240  # The two processes together; they take ~50 s on 2 shared cores.
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'multiworker_worker.py')


def _free_ports(n):
  """n distinct free TCP ports on 127.0.0.1 (the sockets stay open until all are got)."""
  sockets = []
  try:
    for _ in range(n):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind(('127.0.0.1', 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def run_workers(tmp_path, workdir, envs, *args):
  """tests/multiworker_worker.py WORKDIR OUTDIR STEPS ARGS... once per environment
  in `envs`, all at once (worker i's OUTDIR out<i>, its log worker<i>.log); asserts
  that each ends with 0 within TIMEOUT_S."""
  procs = []
  try:
    for index, env in enumerate(envs):
      with open(tmp_path / f'worker{index}.log', 'w') as log:
        procs.append(subprocess.Popen(
            [sys.executable, WORKER, str(workdir), str(tmp_path / f'out{index}'),
             str(STEPS), *args], env=env, stdout=log, stderr=subprocess.STDOUT))
    for proc in procs:
      proc.wait(timeout=TIMEOUT_S)
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)
  for index, proc in enumerate(procs):
    assert proc.returncode == 0, (tmp_path / f'worker{index}.log').read_text()[-3000:]


def test_two_workers_end_with_identical_weights(tmp_path):
  workers = [f'127.0.0.1:{p}' for p in _free_ports(2)]
  workdir = tmp_path / 'run'
  run_workers(tmp_path, workdir, [
      dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', TF_CONFIG=json.dumps(
          {'cluster': {'worker': workers}, 'task': {'type': 'worker', 'index': index}}))
      for index in range(2)])

  chief = np.load(tmp_path / 'out0' / 'weights.npz')
  other = np.load(tmp_path / 'out1' / 'weights.npz')
  assert set(chief.files) == set(other.files)
  names = [k for k in chief.files if k.startswith(('generator/', 'discriminator/'))]
  assert any('optimizer' in k for k in chief.files) and len(names) > 10
  for name in chief.files:
    np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
  assert int(chief['step/.ATTRIBUTES/VARIABLE_VALUE']) == STEPS
  # Training did move the weights: Adam's first moments are non-zero.
  assert any(np.abs(chief[k]).max() > 0 for k in chief.files if 'optimizer' in k)

  # The chief (task 0) wrote the run; the other worker only its checkpoints.
  assert (tmp_path / 'out0' / 'local_dir.txt').read_text() == str(workdir)
  other_dir = (tmp_path / 'out1' / 'local_dir.txt').read_text()
  assert other_dir == str(workdir / 'workers' / 'worker_1')
  steps = [json.loads(line)['step'] for line in open(workdir / 'metrics.jsonl')
           if json.loads(line)['kind'] == 'train']
  assert steps == list(range(1, STEPS + 1))  # Written once, by one worker.
  assert json.loads((workdir / 'status.json').read_text())['state'] == 'finished'
  assert (workdir / 'saved_models' / f'step_{STEPS:08d}' / 'saved_model.pb').exists()
  written = sorted(os.listdir(other_dir))
  # Its folder lock, as the chief's in the run folder.
  assert written in (['.lock', 'checkpoints'], ['.lock', 'checkpoints', 'saved_models']), (
      written)
  if 'saved_models' in written:  # Its export copy is deleted after the (collective) save.
    assert not os.listdir(os.path.join(other_dir, 'saved_models'))



@contextlib.contextmanager
def _launched_workers(tmp_path, workdir, tag, steps):
  """Both workers of a 2-worker cluster on free loopback ports, each running the
  launcher (tiny GAN, synthetic data) in `workdir`, logging to <tag><index>.log;
  killed on leaving the block if they still run."""
  workers = [f'127.0.0.1:{p}' for p in _free_ports(2)]
  procs = []
  try:
    for index in range(2):
      tf_config = {'cluster': {'worker': workers},
                   'task': {'type': 'worker', 'index': index}}
      env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL='3')
      with open(tmp_path / f'{tag}{index}.log', 'w') as log:
        procs.append(subprocess.Popen(
            [sys.executable, '-m', 'tf_gancond.launch', '--dataset=mnist',
             '--batch_size=8', '--latent_dim=8', '--config.g_base_channels=16',
             '--config.d_base_channels=8', '--probe_every=0', '--synthetic_data',
             '--strategy=multi_worker', f'--workdir={workdir}',
             f'--train_steps={steps}', '--log_every=1'],
            env=env, stdout=log, stderr=subprocess.STDOUT))
    yield procs
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def _exit_codes(procs, tmp_path, tag):
  """The workers' exit codes once both ended (TIMEOUT_S at the most), with their
  logs' tails."""
  deadline = time.monotonic() + TIMEOUT_S
  for proc in procs:
    proc.wait(timeout=max(1, deadline - time.monotonic()))
  return [p.returncode for p in procs], [
      (tmp_path / f'{tag}{i}.log').read_text()[-3000:] for i in range(2)]


def test_sigterm_to_one_worker_stops_both_at_one_step_and_a_relaunch_resumes(tmp_path):
  """SIGTERM to worker 1 alone (its node preempted): through PreemptionCheckpointHandler
  both workers checkpoint the same step and exit 4 (the launcher's code); both
  relaunched go on from that step and finish with every step recorded once."""
  steps = 150
  workdir = tmp_path / 'run'
  with _launched_workers(tmp_path, workdir, 'first', steps) as procs:
    deadline = time.monotonic() + TIMEOUT_S
    while not runlog.read_records(workdir, 'train'):
      assert all(p.poll() is None for p in procs), 'a worker ended before its first step'
      assert time.monotonic() < deadline, 'no train record in time'
      time.sleep(0.05)
    os.kill(procs[1].pid, signal.SIGTERM)
    codes, logs = _exit_codes(procs, tmp_path, 'first')
  assert codes == [4, 4], logs
  status = runlog.read_status(workdir)
  step = status['step']
  assert status['state'] == 'stopped' and 0 < step < steps, status
  for folder in (workdir, workdir / 'workers' / 'worker_1'):
    assert tf.train.latest_checkpoint(str(folder / 'checkpoints')).endswith(
        f'ckpt-{step}'), folder
  assert [r['step'] for r in runlog.read_records(workdir, 'train')] == list(
      range(1, step + 1))

  with _launched_workers(tmp_path, workdir, 'again', steps) as procs:
    codes, logs = _exit_codes(procs, tmp_path, 'again')
  assert codes == [0, 0], logs
  assert [r['step'] for r in runlog.read_records(workdir, 'train')] == list(
      range(1, steps + 1))
  assert [r['step'] for r in runlog.read_records(workdir, 'start')] == [0, step]
  assert runlog.read_status(workdir)['state'] == 'finished'
