"""`python -m launch.run_sweep --backend=slurm`: the script, bad input, and sweeps run
as job arrays on a real SLURM (the `slurm_cluster` fixture, tests/slurm_cluster.py).

The sweep is fashion_mnist_quick with one seed (2 runs) on synthetic data, tiny
models; every wait is bounded and the jobs a test submitted are cancelled in a
`finally`.
"""

import json
import os
import re
import stat
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from launch import run_sweep  # noqa: E402
from launch import slurm  # noqa: E402
from launch import sweeps  # noqa: E402
from tf_gancond import runlog  # noqa: E402

RUNS = {'0': 'baseline_seed0', '1': 'jacobian_clamping_seed0'}
TINY = ('synthetic_data=true,batch_size=8,g_base_channels=16,d_base_channels=8,'
        'latent_dim=8,probe_num_z=4,log_every=1,sample_grid=4,final_eval=false')
WAIT_S = 400  # Two tiny runs on 2 cores, then the report: 31 s measured (load 4.5).


def _cli(*args, timeout=180):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, '-m', 'launch.run_sweep', *args],
                        capture_output=True, text=True, cwd=sweeps.REPO_ROOT, env=env,
                        timeout=timeout)


def _submit(sweep_dir, *more, steps=20, cluster=None, extra=''):
  partition = [f'--partition={cluster["partition"]}'] if (
      cluster and cluster['partition']) else []
  return _cli('--backend=slurm', '--sweep=fashion_mnist_quick', '--num_seeds=1',
              f'--sweep_dir={sweep_dir}',
              f'--extra={TINY},train_steps={steps},probe_every={steps // 2},'
              f'checkpoint_every={steps // 2}{extra}', *partition, *more)


def _submissions(sweep_dir):
  with open(sweep_dir / run_sweep.MANIFEST_FILE) as f:
    return json.load(f).get(slurm.JOBS_KEY, [])


def _in_queue(job_ids):
  out = subprocess.run(['squeue', '--noheader', '--me', '--format=%F'],
                       capture_output=True, text=True, timeout=60, check=True).stdout
  return set(job_ids) & set(out.split())


def _wait_then_cancel(job_ids):
  """Waits (bounded) until squeue no longer lists the jobs; cancels what is left."""
  deadline = time.time() + WAIT_S
  try:
    while _in_queue(job_ids) and time.time() < deadline:
      time.sleep(1)
    assert not _in_queue(job_ids), f'jobs {job_ids} still queued after {WAIT_S} s'
  finally:
    left = _in_queue(job_ids)
    if left:
      subprocess.run(['scancel', *sorted(left)], timeout=60)


def _assert_ran_once(workdir, steps, log):
  status = runlog.read_status(str(workdir))
  assert (status.get('state'), status.get('step')) == ('finished', steps), log[-3000:]
  train = [r['step'] for r in runlog.read_records(str(workdir), 'train')]
  assert train == list(range(1, steps + 1))  # Every step once.
  assert len(runlog.read_records(str(workdir), 'start')) == 1  # Started once.


# ----------------------------------------------------------------------------
# Without a cluster.


def test_dry_run_prints_one_array_whose_tasks_run_the_local_commands(tmp_path):
  """The script asks for the resources given, and each task, run by bash with a fake
  srun, runs the exact command of its run in sweep.json."""
  sweep_dir = tmp_path / 'sweep'
  result = _submit(sweep_dir, '--dry_run', '--partition=p1', '--time=1-02:00:00',
                   '--gpus_per_task=1', '--cpus_per_task=4', '--mem=8G', '--account=a',
                   '--sbatch=--qos=high', '--requeue', '--parallel=1')
  assert result.returncode == 0, result.stderr
  script = result.stdout[result.stdout.index('#!/bin/bash'):]
  array, report = script.split('#!/bin/bash')[1:]
  header = [l for l in array.splitlines() if l.startswith('#SBATCH ')]
  assert header == [f'#SBATCH {o}' for o in (
      '--job-name=fashion_mnist_quick', '--array=0,1%1',
      f'--output={sweep_dir}/slurm/%A_%a.log', '--partition=p1', '--account=a',
      '--time=1-02:00:00', '--gpus-per-task=1', '--cpus-per-task=4', '--mem=8G',
      '--signal=TERM@120', '--requeue', '--qos=high')]
  assert '#SBATCH --dependency' not in report  # Given to sbatch with the job id.
  assert f'tf_gancond.report --sweep_dir={sweep_dir}' in report
  fake_bin = tmp_path / 'bin'
  fake_bin.mkdir()
  srun = fake_bin / 'srun'
  srun.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
  srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
  manifest = json.load(open(sweep_dir / run_sweep.MANIFEST_FILE))
  for index, name in RUNS.items():
    env = {k: v for k, v in os.environ.items() if not k.startswith('TF_NUM_')}
    env.update(PATH=f'{fake_bin}:{os.environ["PATH"]}', SLURM_ARRAY_TASK_ID=index,
               SLURM_ARRAY_JOB_ID='7', SLURM_CPUS_PER_TASK='4')
    ran = subprocess.run(['bash', '-c', 'source /dev/stdin; env | grep ^TF_NUM_'],
                         input=array.replace('exec srun', 'srun'), capture_output=True,
                         text=True, env=env, timeout=60)
    lines = ran.stdout.splitlines()
    assert lines[0] == f'run {sweep_dir}/{name} on {os.uname().nodename}, job 7_{index}'
    command = manifest['runs'][int(index)]['command']
    assert lines[1:1 + len(command)] == command, ran.stderr
    assert sorted(lines[1 + len(command):]) == ['TF_NUM_INTEROP_THREADS=1',
                                                'TF_NUM_INTRAOP_THREADS=4']
  assert sorted(os.listdir(sweep_dir)) == sorted([run_sweep.MANIFEST_FILE,
                                                  runlog.LOCK_FILE])


@pytest.mark.parametrize('args,message', [
    (['--time=soon'], "--time='soon' is not a SLURM time limit"),
    (['--mem=8GB'], "--mem='8GB' is not memory per node"),
    (['--gpus_per_task=0'], '--gpus_per_task=0 must be an integer >= 1'),
    (['--partition=a b'], "--partition='a b' is not a partition name"),
    (['--sbatch=--array=0-3'], "--sbatch='--array=0-3': --array is set by run_sweep"),
    (['--sbatch=qos=high'], "--sbatch='qos=high' is not an sbatch option"),
    (['--signal=TERM@soon'], "--signal='TERM@soon' is not SIGNAL@SECONDS"),
    (['--backend=local', '--partition=p'], '--partition: only --backend=slurm reads it'),
])
def test_bad_slurm_input_is_one_line_exit_2_nothing_written(tmp_path, args, message):
  result = _submit(tmp_path / 'sweep', *args)
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and message in lines[0], result.stderr
  assert not (tmp_path / 'sweep').exists()


def test_sweep_dir_with_a_blank_and_status_of_nothing_are_refused(tmp_path):
  result = _submit(tmp_path / 'a b')
  assert result.returncode == 2 and 'holds a blank or a %' in result.stderr
  assert not (tmp_path / 'a b').exists()
  result = _cli('--backend=slurm', '--status', f'--sweep_dir={tmp_path}')
  assert result.returncode == 2 and 'holds no sweep.json' in result.stderr


def test_a_run_whose_folder_is_locked_is_not_submitted(tmp_path):
  """A run a process holds (a local runner, a task of another submission) is left
  to it; once its folder is free again, it is submitted."""
  sweep_dir = tmp_path / 'sweep'
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from tf_gancond import runlog; '
       f'runlog.lock_folder({str(sweep_dir / RUNS["0"])!r}); print("held", flush=True); '
       'time.sleep(120)'], stdout=subprocess.PIPE, text=True, cwd=sweeps.REPO_ROOT)
  try:
    assert holder.stdout.readline().strip() == 'held'
    result = _submit(sweep_dir, '--dry_run')
    assert result.returncode == 0, result.stderr
    assert '1 running elsewhere (folder locked), 1 to submit' in result.stdout
    assert '#SBATCH --array=1\n' in result.stdout
  finally:
    holder.kill()
    holder.wait(timeout=60)
  result = _submit(sweep_dir, '--dry_run')
  assert '#SBATCH --array=0,1\n' in result.stdout, result.stdout


def _write_finished_run(sweep_dir, index, step, train_steps=20):
  """The files a launch of run RUNS[index] (as _submit makes it) leaves when it
  finishes at `step`: config.txt, the final record, the checkpoint state file and
  status.json."""
  from tf_gancond import config as config_lib
  run = sweeps.fashion_mnist_quick(num_seeds=1)[int(index)]
  workdir = sweep_dir / run.name
  extra = run_sweep.parse_extra(f'{TINY},train_steps={train_steps},'
                                f'probe_every={train_steps // 2},'
                                f'checkpoint_every={train_steps // 2}')
  config = run_sweep.resolve_run_config(run, extra, str(workdir))
  (workdir / 'checkpoints').mkdir(parents=True)
  (workdir / 'checkpoints' / 'checkpoint').write_text(
      f'model_checkpoint_path: "ckpt-{step}"\n')
  (workdir / runlog.CONFIG_FILE).write_text(config_lib.to_text(config))
  (workdir / runlog.METRICS_FILE).write_text(
      json.dumps({'kind': 'final', 'step': step}) + '\n')
  (workdir / 'status.json').write_text(json.dumps({'state': 'finished', 'step': step}))


def test_finished_runs_are_not_submitted(tmp_path, monkeypatch):
  """Also a run that ended before its train_steps (an O7 memorizing G stops once
  memorized): --status calls it finished, though SLURM says COMPLETED."""
  sweep_dir = tmp_path / 'sweep'
  _write_finished_run(sweep_dir, '1', step=19)
  result = _submit(sweep_dir, '--dry_run')
  assert result.returncode == 0, result.stderr
  assert '1 finished (skipped)' in result.stdout and '1 to submit' in result.stdout
  assert '#SBATCH --array=0\n' in result.stdout
  assert RUNS['1'] not in result.stdout.split('#!/bin/bash')[1]
  manifest = json.load(open(sweep_dir / run_sweep.MANIFEST_FILE))
  manifest[slurm.JOBS_KEY] = [{'job_id': '7', 'tasks': {'1': RUNS['1']}}]
  runlog.atomic_write_json(str(sweep_dir / run_sweep.MANIFEST_FILE), manifest)
  _fake_commands(tmp_path, monkeypatch, sacct_stdout='7_1|COMPLETED|0:0\n')
  _, states, _ = slurm.run_states(str(sweep_dir))
  assert states[RUNS['1']]['state'] == 'finished'
  result = _cli('--backend=slurm', '--sweep=fashion_mnist_quick', '--num_seeds=1',
                f'--sweep_dir={sweep_dir}', '--dry_run',  # Longer runs: both go on.
                f'--extra={TINY},train_steps=30,probe_every=10,checkpoint_every=10')
  assert '#SBATCH --array=0,1\n' in result.stdout, result.stderr


def _fake_commands(tmp_path, monkeypatch, squeue_stdout='', sacct_stdout='',
                   sacct_stderr='', sacct_code=0):
  """squeue and sacct first on PATH, printing the given text; sacct records its
  arguments in <tmp_path>/sacct_args."""
  fake_bin = tmp_path / 'bin'
  fake_bin.mkdir(exist_ok=True)
  for name, text in (('squeue_out', squeue_stdout), ('sacct_out', sacct_stdout),
                     ('sacct_err', sacct_stderr)):
    (tmp_path / name).write_text(text)
  scripts = {
      'squeue': f'#!/bin/sh\ncat {tmp_path}/squeue_out\n',
      'sacct': (f'#!/bin/sh\nfor a in "$@"; do echo "$a"; done > {tmp_path}/sacct_args\n'
                f'cat {tmp_path}/sacct_out; cat {tmp_path}/sacct_err >&2; '
                f'exit {sacct_code}\n')}
  for name, text in scripts.items():
    (fake_bin / name).write_text(text)
    (fake_bin / name).chmod(0o755)
  monkeypatch.setenv('PATH', f'{fake_bin}:{os.environ["PATH"]}')


def _submitted_sweep(tmp_path, job_id='7'):
  """A sweep folder whose sweep.json records one submission of both runs as job_id."""
  sweep_dir = tmp_path / 'sweep'
  result = _submit(sweep_dir, '--dry_run')
  assert result.returncode == 0, result.stderr
  manifest = json.load(open(sweep_dir / run_sweep.MANIFEST_FILE))
  manifest[slurm.JOBS_KEY] = [{'job_id': job_id, 'tasks': RUNS}]
  runlog.atomic_write_json(str(sweep_dir / run_sweep.MANIFEST_FILE), manifest)
  return sweep_dir


def test_other_settings_for_a_run_still_queued_are_refused(tmp_path, monkeypatch):
  """A task pending in SLURM runs the command it was submitted with: a submission
  with another --extra would record settings its run never gets. Refused (exit 2,
  the run, its task and what to do) with sweep.json as it was; a run whose task
  ended takes the new settings."""
  sweep_dir = _submitted_sweep(tmp_path)
  _fake_commands(tmp_path, monkeypatch, squeue_stdout='7|0|PENDING\n')
  before = (sweep_dir / run_sweep.MANIFEST_FILE).read_bytes()
  result = _submit(sweep_dir, '--dry_run', extra=',eval_every=5')
  assert result.returncode == 2, result.stdout + result.stderr
  assert result.stderr.count('\n') == 1 and (
      f'run {RUNS["0"]} is pending in SLURM as task 7_0, submitted with another '
      'command' in result.stderr), result.stderr
  assert (sweep_dir / run_sweep.MANIFEST_FILE).read_bytes() == before
  assert _submit(sweep_dir, '--dry_run').returncode == 0  # Its own settings: fine.
  _fake_commands(tmp_path, monkeypatch, squeue_stdout='7|0|COMPLETED\n')
  result = _submit(sweep_dir, '--dry_run', extra=',eval_every=5')
  assert result.returncode == 0, result.stderr


def test_status_of_a_manifest_this_package_cannot_resolve_any_more(
    tmp_path, monkeypatch):
  """A sweep.json of an older version (its config file since removed): --status
  still reports each run, a finished one by its status.json."""
  sweep_dir = _submitted_sweep(tmp_path)
  manifest = json.load(open(sweep_dir / run_sweep.MANIFEST_FILE))
  manifest['runs'][0]['config'] = 'configs/removed_since.py'
  runlog.atomic_write_json(str(sweep_dir / run_sweep.MANIFEST_FILE), manifest)
  (sweep_dir / RUNS['0']).mkdir()
  (sweep_dir / RUNS['0'] / 'status.json').write_text(
      json.dumps({'state': 'finished', 'step': 20}))
  _fake_commands(tmp_path, monkeypatch, sacct_stdout='7_0|COMPLETED|0:0\n')
  _, states, _ = slurm.run_states(str(sweep_dir))
  assert states[RUNS['0']]['state'] == 'finished'


def test_status_takes_end_states_and_exit_codes_from_sacct(tmp_path, monkeypatch):
  """sacct's allocation rows of the recorded jobs give each ended task's state and exit
  code: exit code 4 of a run whose status.json says 'stopped' is interrupted (a
  resubmission resumes it), any other FAILED is failed; rows of steps and of pending
  array ranges are not tasks."""
  sweep_dir = _submitted_sweep(tmp_path)
  baseline, jc = (sweep_dir / RUNS[i] for i in '01')
  for workdir in (baseline, jc):
    workdir.mkdir()
    (workdir / 'status.json').write_text(json.dumps({'state': 'stopped', 'step': 5}))
  _fake_commands(tmp_path, monkeypatch, sacct_stdout=(
      '7_0|FAILED|4:0\n7_1|FAILED|2:0\n7_0.0|FAILED|4:0\n7_[2-3]|PENDING|0:0\n'))
  assert slurm.accounted(['7']) == {'7_0': ('FAILED', '4:0'), '7_1': ('FAILED', '2:0')}
  args = (tmp_path / 'sacct_args').read_text().split()
  assert '--allocations' in args and '--jobs=7' in args and '--parsable2' in args
  _, states, notes = slurm.run_states(str(sweep_dir))
  assert notes == []
  assert {n: (s['state'], s['slurm_state']) for n, s in states.items()} == {
      RUNS['0']: ('interrupted', 'FAILED'), RUNS['1']: ('failed', 'FAILED')}
  assert states[RUNS['0']]['reason'] == 'SLURM state FAILED; exit code 4:0'
  assert states[RUNS['1']]['reason'] == 'SLURM state FAILED; exit code 2:0'
  _fake_commands(tmp_path, monkeypatch, sacct_stdout='7_1|CANCELLED by 0|0:15\n')
  _, states, _ = slurm.run_states(str(sweep_dir))
  assert (states[RUNS['1']]['state'], states[RUNS['1']]['slurm_state']) == (
      'interrupted', 'CANCELLED')


def test_without_accounting_a_stop_is_told_from_a_failure_by_the_task_log(
    tmp_path, monkeypatch):
  """sacct failing as it does without accounting storage (the one-node test cluster),
  squeue saying FAILED for both tasks (exit code non-zero): the task whose log ends
  with the launcher's 'stopped:' line is interrupted; the other, whose run folder
  still says 'stopped' from an earlier task but whose log ends with an error, failed.
  --status exits 0."""
  sweep_dir = _submitted_sweep(tmp_path)
  (sweep_dir / 'slurm').mkdir()
  last_lines = {'0': 'stopped: stopped by SIGTERM at step 5, checkpointed in ckpt-5',
                '1': 'error: the data cannot be read'}
  for index, last in last_lines.items():
    (sweep_dir / RUNS[index]).mkdir()
    (sweep_dir / RUNS[index] / 'status.json').write_text(
        json.dumps({'state': 'stopped', 'step': 5}))
    (sweep_dir / 'slurm' / f'7_{index}.log').write_text(
        f'{last}\nsrun: error: localhost: task 0: Exited with exit code 4\n')
  _fake_commands(tmp_path, monkeypatch, squeue_stdout='7|0|FAILED\n7|1|FAILED\n',
                 sacct_stderr='Slurm accounting storage is disabled\n', sacct_code=1)
  assert slurm.accounted(['7']) == {}
  result = _cli('--backend=slurm', '--status', f'--sweep_dir={sweep_dir}')
  assert result.returncode == 0, result.stderr
  states = json.load(open(sweep_dir / run_sweep.STATUS_FILE))['runs']
  assert {n: (s['state'], s['slurm_state']) for n, s in states.items()} == {
      RUNS['0']: ('interrupted', 'FAILED'), RUNS['1']: ('failed', 'FAILED')}
  for index, last in last_lines.items():
    assert states[RUNS[index]]['reason'] == f'SLURM state FAILED; {last}'


# ----------------------------------------------------------------------------
# On a real SLURM.


def test_array_sweep_finishes_and_reports_and_a_second_submission_submits_nothing(
    tmp_path, slurm_cluster):
  sweep_dir = tmp_path / 'sweep'
  first = _submit(sweep_dir, cluster=slurm_cluster)
  assert first.returncode == 0, first.stderr
  [submission] = _submissions(sweep_dir)
  assert submission['tasks'] == RUNS
  job, report_job = submission['job_id'], submission['report_job_id']
  _wait_then_cancel([job, report_job])
  for index, name in RUNS.items():
    log = (sweep_dir / 'slurm' / f'{job}_{index}.log').read_text()
    _assert_ran_once(sweep_dir / name, 20, log)
  report_log = (sweep_dir / 'slurm' / f'report_{report_job}.log').read_text()
  assert (sweep_dir / 'report' / 'report.md').exists(), report_log[-3000:]
  statuses = json.load(open(sweep_dir / run_sweep.STATUS_FILE))['runs']
  assert {n: s['state'] for n, s in statuses.items()} == {
      n: 'finished' for n in RUNS.values()}
  assert {n: s['task'] for n, s in statuses.items()} == {
      n: f'{job}_{i}' for i, n in RUNS.items()}
  scripts = sorted(os.listdir(sweep_dir / 'slurm'))
  again = _submit(sweep_dir, cluster=slurm_cluster)
  assert again.returncode == 0, again.stderr
  assert '2 finished (skipped)' in again.stdout and 'nothing to submit' in again.stdout
  assert _submissions(sweep_dir) == [submission]
  assert sorted(os.listdir(sweep_dir / 'slurm')) == scripts


def test_a_submission_while_the_runs_are_in_slurm_does_not_duplicate_them(
    tmp_path, slurm_cluster):
  """Submitted again at once (its tasks pending or running), then asked for its status:
  nothing new is submitted, and each run trains each step once."""
  sweep_dir = tmp_path / 'sweep'
  steps = 300  # About 30 s a run: the resubmission comes well before its end.
  first = _submit(sweep_dir, '--report_job=false', steps=steps, cluster=slurm_cluster)
  assert first.returncode == 0, first.stderr
  [submission] = _submissions(sweep_dir)
  job = submission['job_id']
  try:
    again = _submit(sweep_dir, steps=steps, cluster=slurm_cluster)
    assert again.returncode == 0, again.stderr
    assert '2 pending or running in SLURM' in again.stdout, again.stdout
    assert 'nothing to submit' in again.stdout
    assert _submissions(sweep_dir) == [submission]
    status = _cli('--backend=slurm', '--status', f'--sweep_dir={sweep_dir}')
    assert status.returncode == 0, status.stderr
    states = json.load(open(sweep_dir / run_sweep.STATUS_FILE))['runs']
    assert {s['state'] for s in states.values()} <= {'pending', 'running', 'finished'}
    assert {s['task'] for s in states.values()} == {f'{job}_0', f'{job}_1'}
  finally:
    _wait_then_cancel([job])
  for index, name in RUNS.items():
    log = (sweep_dir / 'slurm' / f'{job}_{index}.log').read_text()
    _assert_ran_once(sweep_dir / name, steps, log)
  assert sorted(p for p in os.listdir(sweep_dir / 'slurm') if p.endswith('.log')) == [
      f'{job}_0.log', f'{job}_1.log']


def test_status_says_which_task_failed_and_why(tmp_path, slurm_cluster):
  """Runs whose data cannot be had fail in their task (exit 2): --status names the
  state, the SLURM state and the launcher's error line."""
  sweep_dir = tmp_path / 'sweep'
  missing = tmp_path / 'nothing'
  result = _submit(sweep_dir, '--report_job=false', cluster=slurm_cluster,
                   extra=f',synthetic_data=false,dataset=mnist,data_dir={missing},'
                   f'manual_dir={missing}')
  assert result.returncode == 0, result.stderr
  [submission] = _submissions(sweep_dir)
  _wait_then_cancel([submission['job_id']])
  status = _cli('--backend=slurm', '--status', f'--sweep_dir={sweep_dir}')
  assert status.returncode == 0, status.stderr
  states = json.load(open(sweep_dir / run_sweep.STATUS_FILE))['runs']
  for index, name in RUNS.items():
    log = (sweep_dir / 'slurm' / f'{submission["job_id"]}_{index}.log').read_text()
    s = states[name]
    assert (s['state'], s['slurm_state']) == ('failed', 'FAILED'), (s, log[-2000:])
    error = [l for l in log.splitlines() if l.startswith('error: ')]
    assert error and s['reason'] == f'SLURM state FAILED; {error[-1][:300]}', s
    assert f'{name} ' in status.stdout and 'failed' in status.stdout


def test_a_resubmission_with_more_steps_resumes_each_run_from_its_checkpoint(
    tmp_path, slurm_cluster):
  """Both runs finish 10 steps; submitted again for 20, each task resumes its run from
  the step-10 checkpoint: every step once, a second start at step 10."""
  sweep_dir = tmp_path / 'sweep'
  first = _submit(sweep_dir, '--report_job=false', steps=10, cluster=slurm_cluster)
  assert first.returncode == 0, first.stderr
  _wait_then_cancel([_submissions(sweep_dir)[0]['job_id']])
  # checkpoint_every and probe_every stay those of the first submission: only
  # train_steps may change in a run folder.
  longer = ',train_steps=20'
  second = _submit(sweep_dir, '--report_job=false', steps=10, extra=longer,
                   cluster=slurm_cluster)
  assert second.returncode == 0, second.stderr
  assert '0 finished (skipped)' in second.stdout and '2 to submit' in second.stdout
  submissions = _submissions(sweep_dir)
  assert len(submissions) == 2 and submissions[1]['tasks'] == RUNS
  job = submissions[1]['job_id']
  _wait_then_cancel([job])
  for index, name in RUNS.items():
    log = (sweep_dir / 'slurm' / f'{job}_{index}.log').read_text()
    workdir = str(sweep_dir / name)
    assert runlog.read_status(workdir)['step'] == 20, log[-3000:]
    train = [r['step'] for r in runlog.read_records(workdir, 'train')]
    assert train == list(range(1, 21))
    assert [r['step'] for r in runlog.read_records(workdir, 'start')] == [0, 10]


def _job_fields(task):
  """{field: value} of `scontrol show job` for '<job>_<task>' (kept MinJobAge, 300 s)."""
  out = subprocess.run(['scontrol', 'show', 'job', '--oneliner', task],
                       capture_output=True, text=True, timeout=60, check=True).stdout
  return dict(f.split('=', 1) for f in out.split() if '=' in f)


def test_a_task_signalled_before_its_time_limit_checkpoints_and_a_resubmission_resumes(
    tmp_path, slurm_cluster):
  """--time=1 --signal=TERM@10: each task's run is told to stop while it trains, writes
  the checkpoint of the step it is at, says 'stopped' and exits 4 before SLURM's limit;
  --status calls it interrupted (resumable), and a resubmission resumes each run from
  that checkpoint: every step once, a second start at the step it stopped at.

  Timings: slurmctld sends the --signal at its time-limit check (every 30 s,
  PERIODIC_TIMEOUT, fixed at SLURM's build; no slurm.conf option sets it), once
  remaining time <= signal seconds + 30 (job_mgr.c send_job_warn_signal). With a
  one-minute limit (SLURM's least) and TERM@10 the signal so comes 20 to 50 s after the
  task starts: late enough for the launcher to be training (its TensorBoard writer, made
  just before the first step, came 4-6 s after the start here under loads of 5-8), and
  30 s before the limit's own kill, at the next check. The runs ask for far more steps
  than a task can train in 50 s, so both still train then; the resubmission, with no
  time limit, asks for 10 steps past the later stop (a resume may lower train_steps
  down to the step reached), so it ends in seconds. 46-75 s in all here.
  """
  sweep_dir = tmp_path / 'sweep'
  steps = 100_000  # Never reached: about 30 steps/s here.
  first = _submit(sweep_dir, '--report_job=false', '--time=1', '--signal=TERM@10',
                  steps=steps, cluster=slurm_cluster)
  assert first.returncode == 0, first.stderr
  [submission] = _submissions(sweep_dir)
  job = submission['job_id']
  _wait_then_cancel([job])
  stopped = {}
  for index, name in RUNS.items():
    task = f'{job}_{index}'
    log = (sweep_dir / 'slurm' / f'{task}.log').read_text()
    workdir = sweep_dir / name
    status = runlog.read_status(str(workdir))
    step = status.get('step', 0)
    assert status.get('state') == 'stopped' and 0 < step < steps, (status, log[-3000:])
    assert status['reason'] == 'SIGTERM'
    assert status['last_checkpoint'] == str(workdir / 'checkpoints' / f'ckpt-{step}')
    # The stop's checkpoint, the only one (the periodic one is due at step 50,000).
    assert sorted(p.name for p in (workdir / 'checkpoints').glob('*.index')) == [
        f'ckpt-{step}.index']
    assert [r['step'] for r in runlog.read_records(str(workdir), 'train')] == list(
        range(1, step + 1))
    assert f'stopped: stopped by SIGTERM at step {step},' in log, log[-3000:]
    assert re.search(r'^srun: error: \S+: task 0: Exited with exit code 4$', log,
                     re.MULTILINE), log[-3000:]
    assert 'TIME LIMIT' not in log, log[-3000:]  # Stopped before SLURM's kill.
    fields = _job_fields(task)
    assert (fields['JobState'], fields['ExitCode']) == ('FAILED', '4:0'), fields
    assert fields['TimeLimit'] == '00:01:00' and fields['RunTime'] < '00:01:00', fields
    stopped[name] = step
  status = _cli('--backend=slurm', '--status', f'--sweep_dir={sweep_dir}')
  assert status.returncode == 0, status.stderr
  states = json.load(open(sweep_dir / run_sweep.STATUS_FILE))['runs']
  for name, step in stopped.items():
    s = states[name]
    assert (s['state'], s['step']) == ('interrupted', step), s
    assert f'stopped by SIGTERM at step {step},' in s['reason'], s
  resume_to = max(stopped.values()) + 10
  second = _submit(sweep_dir, '--report_job=false', steps=steps,
                   extra=f',train_steps={resume_to}', cluster=slurm_cluster)
  assert second.returncode == 0, second.stderr
  assert '0 finished (skipped)' in second.stdout and '2 to submit' in second.stdout
  job = _submissions(sweep_dir)[1]['job_id']
  _wait_then_cancel([job])
  for index, name in RUNS.items():
    log = (sweep_dir / 'slurm' / f'{job}_{index}.log').read_text()
    workdir = str(sweep_dir / name)
    status = runlog.read_status(workdir)
    assert (status.get('state'), status.get('step')) == ('finished', resume_to), (
        log[-3000:])
    train = [r['step'] for r in runlog.read_records(workdir, 'train')]
    assert train == list(range(1, resume_to + 1))  # Every step once.
    starts = [r['step'] for r in runlog.read_records(workdir, 'start')]
    assert starts == [0, stopped[name]]  # Resumed from the stop's checkpoint.
