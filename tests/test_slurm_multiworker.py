"""strategy=multi_worker inside an `srun` step, without TF_CONFIG: the cluster from SLURM.

  * `distribute.slurm_tf_config` from given SLURM variables against TF_CONFIG
    worked out by hand: node lists with ranges and several prefixes, tasks per node
    with repetitions, the port base from the job id (two jobs on a node apart),
    and each bad input refused with one line naming it.
  * The launcher in a bare `sbatch` script (SLURM_JOB_ID but no step variables):
    exit 2, one line, nothing written.
  * Two processes given the variables srun gives 2 tasks on one node (localhost,
    a job id whose ports are free), and a real 2-task `srun` step (needs a running
    SLURM: skipped where `sinfo` is not installed or reaches no controller): both
    tasks train one run through tests/multiworker_worker.py, end with identical
    weights, and their losses and gradient norms are the single-worker run's
    within the tolerance of tests/test_distributed.py's records (1e-4 relative).
"""

import json
import os
import random
import socket
import subprocess
import sys

import numpy as np
import pytest

import native_log
import test_multiworker
from tf_gancond import config as config_lib
from tf_gancond import distribute
from tf_gancond import runlog

STEP = {'SLURM_JOB_ID': '1234', 'SLURM_STEP_NODELIST': 'node[01-03],gpu7',
        'SLURM_STEP_TASKS_PER_NODE': '2(x3),1'}
# Job 1234: ports from 10000 + 16 * (1234 mod 1423) = 29744; a node's second task +1.
WORKERS = ['node01:29744', 'node01:29745', 'node02:29744', 'node02:29745',
           'node03:29744', 'node03:29745', 'gpu7:29744']


@pytest.mark.parametrize('rank, node, local', [
    (0, 'node01', 0), (3, 'node02', 1), (5, 'node03', 1), (6, 'gpu7', 0)])
def test_tf_config_from_an_srun_step(rank, node, local):
  environ = dict(STEP, SLURM_PROCID=str(rank), SLURMD_NODENAME=node,
                 SLURM_LOCALID=str(local))
  assert distribute.slurm_tf_config(environ) == {
      'cluster': {'worker': WORKERS}, 'task': {'type': 'worker', 'index': rank}}


def test_tf_config_keeps_slurms_node_order_and_zero_padding():
  """node[9-10]: node9 before node10 (a sort of the names would swap them); 'n[001-002]'
  keeps its width; without SLURMD_NODENAME and SLURM_LOCALID nothing is checked."""
  environ = {'SLURM_JOB_ID': '1423', 'SLURM_PROCID': '1',
             'SLURM_STEP_NODELIST': 'node[9-10],n[001-002]',
             'SLURM_STEP_TASKS_PER_NODE': '1(x4)'}
  assert distribute.slurm_tf_config(environ) == {
      'cluster': {'worker': ['node9:10000', 'node10:10000', 'n001:10000',
                             'n002:10000']},
      'task': {'type': 'worker', 'index': 1}}


def test_two_jobs_on_one_node_listen_on_other_ports():
  ports = []
  for job in ('1234', '1235'):
    config = distribute.slurm_tf_config(dict(
        STEP, SLURM_JOB_ID=job, SLURM_PROCID='0'))
    ports.append({int(a.split(':')[1]) for a in config['cluster']['worker']})
  assert ports == [{29744, 29745}, {29760, 29761}]


@pytest.mark.parametrize('changes, message', [
    ({'SLURM_PROCID': '7'}, 'SLURM_PROCID=7 is not below the 7 tasks'),
    ({'SLURM_PROCID': 'x'}, "SLURM_PROCID='x' is not a non-negative integer"),
    ({'SLURM_JOB_ID': ''}, "SLURM_JOB_ID='' is not a non-negative integer"),
    ({'SLURM_STEP_NODELIST': 'node[01-'}, 'Invalid hostlist format "node[01-"'),
    ({'SLURM_STEP_TASKS_PER_NODE': '2(x'},
     'Invalid tasks-per-node list format "2(x"'),
    ({'SLURM_STEP_TASKS_PER_NODE': '2(x3)'},
     "SLURM_STEP_NODELIST='node[01-03],gpu7' names 4 nodes but "
     "SLURM_STEP_TASKS_PER_NODE='2(x3)' gives 3 counts"),
    ({'SLURM_STEP_TASKS_PER_NODE': '17,2(x2),1'},
     "SLURM_STEP_TASKS_PER_NODE='17,2(x2),1' puts 17 tasks on a node; at most 16"),
    ({'SLURMD_NODENAME': 'node02'},
     "task SLURM_PROCID=1 runs on 'node02' as local task 1, but srun's block layout "
     "puts it on 'node01' as local task 1; start the step with srun "
     '--distribution=block'),
], ids=['rank', 'rank_text', 'job', 'nodelist', 'tasks', 'counts', 'ports', 'layout'])
def test_bad_slurm_variables_are_refused(changes, message):
  environ = dict(STEP, SLURM_PROCID='1', SLURMD_NODENAME='node01', SLURM_LOCALID='1')
  environ.update(changes)
  with pytest.raises(config_lib.ConfigError) as e:
    distribute.slurm_tf_config(environ)
  assert str(e.value).startswith(message) and '\n' not in str(e.value), str(e.value)


def test_multi_worker_in_a_bare_sbatch_script_is_refused(tmp_path):
  """In the batch step (no srun), SLURM sets the job's variables but not the step's:
  there is no task per worker to take the cluster from."""
  env = {k: v for k, v in os.environ.items()
         if not k.startswith('SLURM') and k != 'TF_CONFIG'}
  env.update(SLURM_JOB_ID='77', SLURM_JOB_NODELIST='node01', TF_CPP_MIN_LOG_LEVEL='3')
  workdir = tmp_path / 'run'
  result = subprocess.run(
      [sys.executable, '-m', 'tf_gancond.launch', '--dataset=mnist', '--synthetic_data',
       '--strategy=multi_worker', f'--workdir={workdir}'],
      capture_output=True, text=True, timeout=120, env=env)
  assert result.returncode == 2, result.stderr[-3000:]
  lines = native_log.package_lines(result.stderr)
  assert lines == [
      'error: strategy=multi_worker needs the TF_CONFIG environment variable (cluster '
      'and task), or to run as the tasks of an srun step (one per worker); see '
      'BUILD.md'], result.stderr[-3000:]
  assert not workdir.exists()


WORKER, STEPS, TIMEOUT_S = (test_multiworker.WORKER, test_multiworker.STEPS,
                            test_multiworker.TIMEOUT_S)
# As tests/test_distributed.py: Keras' 1e-7 turns the round-off of gradients summed
# in another order into weight differences (measured by step 3: losses 3e-4 and
# gradient norms 7e-3 apart, relative; with 1e-3 all below 1e-7).
ADAM_EPSILON = '1e-3'


def _losses(workdir):
  return [{k: r[k] for k in ('d_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm')}
          for r in runlog.read_records(workdir, 'train')]



def _worker_env():
  env = {k: v for k, v in os.environ.items()
         if not k.startswith('SLURM') and k != 'TF_CONFIG'}
  env['TF_CPP_MIN_LOG_LEVEL'] = '3'
  return env


def _assert_two_workers_train_like_one(tmp_path, workdir):
  """The workers' outputs (out0, out1 of tests/multiworker_worker.py): identical
  weights, worker 1 in its scratch folder, the run finished, and its losses and
  gradient norms those of the same run on one worker within 1e-4 relative."""
  single = subprocess.run(
      [sys.executable, WORKER, str(tmp_path / 'single'), str(tmp_path / 'single_out'),
       str(STEPS), 'default', ADAM_EPSILON], capture_output=True, text=True,
      timeout=TIMEOUT_S, env=_worker_env())
  assert single.returncode == 0, single.stderr[-3000:]
  chief = np.load(tmp_path / 'out0' / 'weights.npz')
  other = np.load(tmp_path / 'out1' / 'weights.npz')
  for name in chief.files:
    np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
  assert (tmp_path / 'out1' / 'local_dir.txt').read_text() == str(
      workdir / 'workers' / 'worker_1')
  losses, expected = _losses(workdir), _losses(tmp_path / 'single')
  assert len(losses) == len(expected) == STEPS
  for got, want in zip(losses, expected):
    for key in want:
      np.testing.assert_allclose(got[key], want[key], rtol=1e-4, err_msg=key)
  assert json.loads((workdir / 'status.json').read_text())['state'] == 'finished'


def _free_job_id():
  """A job id whose two ports (slurm_tf_config's base and base + 1) are free here."""
  for job in random.sample(range(distribute.PORTS_PER_JOB * 100), 100):
    base = distribute.slurm_tf_config(dict(
        STEP, SLURM_JOB_ID=str(job), SLURM_PROCID='0'))['cluster']['worker'][0]
    port = int(base.split(':')[1])
    try:
      for p in (port, port + 1):
        with socket.socket() as s:
          s.bind(('127.0.0.1', p))
      return job
    except OSError:
      continue
  raise AssertionError('no job id with free ports')


def test_two_processes_with_an_srun_steps_variables_train_like_one_worker(tmp_path):
  """What srun gives each of 2 tasks on one node (the variables only, on localhost):
  the strategy takes the cluster from them, without TF_CONFIG."""
  workdir, job = tmp_path / 'run', str(_free_job_id())
  test_multiworker.run_workers(tmp_path, workdir, [
      dict(_worker_env(), SLURM_JOB_ID=job, SLURM_PROCID=str(rank),
           SLURM_LOCALID=str(rank), SLURMD_NODENAME='localhost',
           SLURM_STEP_NODELIST='localhost', SLURM_STEP_TASKS_PER_NODE='2')
      for rank in range(2)], 'multi_worker', ADAM_EPSILON)
  _assert_two_workers_train_like_one(tmp_path, workdir)


def test_a_two_task_srun_step_trains_like_one_worker(tmp_path, slurm_cluster):
  workdir = tmp_path / 'run'
  partition = ([f'--partition={slurm_cluster["partition"]}']
               if slurm_cluster['partition'] else [])
  # One node, 2 tasks of 1 CPU; each task's outputs in out<SLURM_PROCID>.
  result = subprocess.run(
      ['srun', *partition, '--nodes=1', '--ntasks=2', '--cpus-per-task=1', '--time=5',
       '--kill-on-bad-exit=1', f'--chdir={tmp_path}', 'bash', '-c',
       f'exec {sys.executable} {WORKER} {workdir} {tmp_path}/out$SLURM_PROCID {STEPS} '
       f'multi_worker {ADAM_EPSILON}'],
      capture_output=True, text=True, timeout=TIMEOUT_S,
      env={k: v for k, v in os.environ.items() if k != 'TF_CONFIG'})
  assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
  _assert_two_workers_train_like_one(tmp_path, workdir)
