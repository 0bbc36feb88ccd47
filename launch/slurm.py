"""The SLURM backend of launch/run_sweep.py: a sweep as one `sbatch` job array.

  python -m launch.run_sweep --backend=slurm --sweep=o6_cifar_wgangp_jc \
      --sweep_dir=/shared/runs/o6 --partition=gpu --time=12:00:00 --gpus_per_task=1 \
      --cpus_per_task=8 --mem=32G [--account=A] [--sbatch=--qos=high] [--requeue]
  python -m launch.run_sweep --backend=slurm --sweep_dir=/shared/runs/o6 --status

A submission writes `<sweep_dir>/slurm/array_<n>.sh` and submits it with `sbatch`: one
array task per run still to do, task index = the run's position in the sweep. Each
task runs, through `srun`, the `python -m tf_gancond.launch` command the local runner
would run, in the same run folder, so resume, the run-folder lock, the records and the
report are the local runner's. Its output goes to `<sweep_dir>/slurm/<job>_<task>.log`.
A second job, `report_<n>.sh`, depends on the array (`--dependency=afterany`): it
writes sweep_status.json (`--status`) and the report. `sweep.json` records every
submission (`slurm_jobs`: job ids and {task index: run name}).

Submitting again submits only the runs that are neither finished (status.json) nor
pending or running in SLURM (`squeue`, for the tasks of the jobs sweep.json records)
nor running elsewhere (their folder is locked); those resume from their checkpoints.
Nothing to submit: nothing is submitted. The submitting process holds the sweep
folder's lock, so two submissions cannot both submit a run.

SLURM sends the runs SIGTERM 120 s before their time limit (`--signal`, default
TERM@120: sent to the `srun` step, which is the launcher); the task's exit code is the
launcher's. `--requeue` lets SLURM requeue a preempted task, which then resumes.
"""

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

from launch import sweeps as sweeps_lib
from launch.sweeps import SweepError
from tf_gancond import runlog

# launch.run_sweep imports this module: functions import run_sweep where they use it.
SLURM_DIR = 'slurm'  # In the sweep folder: the scripts and the per-task logs.
JOBS_KEY = 'slurm_jobs'  # In sweep.json: the submissions, oldest first.
DEFAULT_SIGNAL = 'TERM@120'
# squeue states in which a task may still run (or runs): its run is not submitted again.
ACTIVE_STATES = frozenset((
    'PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'SUSPENDED', 'REQUEUED',
    'REQUEUE_FED', 'REQUEUE_HOLD', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'STOPPED',
    'RESV_DEL_HOLD'))
# End states of a task that say the run itself went wrong (the others, TIMEOUT,
# PREEMPTED, CANCELLED, DEADLINE, stopped it from outside: a resubmission resumes it).
FAILED_STATES = frozenset(('FAILED', 'OUT_OF_MEMORY', 'NODE_FAIL', 'BOOT_FAIL',
                           'COMPLETED'))
# sbatch options the backend sets itself.
_OWN_OPTIONS = ('--array', '-a', '--output', '-o', '--error', '-e', '--job-name', '-J',
                '--dependency', '-d', '--parsable')
_TIME = re.compile(r'^(\d+|\d+:\d\d|\d+:\d\d:\d\d|\d+-\d+|\d+-\d+:\d\d|\d+-\d+:\d\d:\d\d|'
                   r'UNLIMITED|INFINITE)$', re.IGNORECASE)
_MEM = re.compile(r'^\d+[KMGT]?$')
_NAME = re.compile(r'^[A-Za-z0-9_.,-]+$')
_SIGNAL = re.compile(r'^([BR]:)?(SIG)?[A-Z0-9]+(@\d+)?$')


@dataclasses.dataclass
class Resources:
  """What each array task asks SLURM for (None / empty: the cluster's default)."""
  partition: str = None
  time: str = None
  gpus_per_task: int = None
  cpus_per_task: int = None
  mem: str = None
  account: str = None
  sbatch: tuple = ()        # Extra options, one per `#SBATCH` line: '--qos=high'.
  signal: str = DEFAULT_SIGNAL  # '' sends none before the time limit.
  requeue: bool = False
  parallel: int = None      # At most this many tasks at a time (array `%N`).

  def check(self):
    """Raises SweepError (one line naming the value and what is allowed)."""
    checks = [
        ('partition', self.partition, _NAME, 'a partition name (or a comma list)'),
        ('account', self.account, _NAME, 'an account name'),
        ('time', self.time, _TIME, 'a SLURM time limit: MINUTES, HH:MM:SS or '
         'DAYS-HH[:MM[:SS]]'),
        ('mem', self.mem, _MEM, 'memory per node as SLURM takes it: 16G, 4000M'),
        ('signal', self.signal or None, _SIGNAL, 'SIGNAL@SECONDS such as TERM@120 '
         '(or empty for none)'),
    ]
    for flag, value, pattern, allowed in checks:
      if value is not None and not pattern.match(value):
        raise SweepError(f'--{flag}={value!r} is not {allowed}')
    for flag, value, least in (('gpus_per_task', self.gpus_per_task, 1),
                               ('cpus_per_task', self.cpus_per_task, 1),
                               ('parallel', self.parallel, 1)):
      if value is not None and value < least:
        raise SweepError(f'--{flag}={value!r} must be an integer >= {least}')
    for line in self.sbatch:
      option = line.split('=', 1)[0].split()[0] if line.strip() else ''
      if not line.startswith('-') or '\n' in line:
        raise SweepError(f'--sbatch={line!r} is not an sbatch option such as '
                         '--qos=high (one per --sbatch)')
      if option in _OWN_OPTIONS:
        raise SweepError(f'--sbatch={line!r}: {option} is set by run_sweep itself')

  def task_lines(self):
    """The `#SBATCH` options of an array task."""
    lines = self.job_lines()
    if self.time:
      lines.append(f'--time={self.time}')
    if self.gpus_per_task is not None:
      lines.append(f'--gpus-per-task={self.gpus_per_task}')
    if self.cpus_per_task is not None:
      lines.append(f'--cpus-per-task={self.cpus_per_task}')
    if self.mem:
      lines.append(f'--mem={self.mem}')
    if self.signal:
      lines.append(f'--signal={self.signal}')
    if self.requeue:
      lines.append('--requeue')
    return lines + list(self.sbatch)

  def job_lines(self):
    """The options every job of the sweep gets (the report job too)."""
    return [f'--{k}={v}' for k, v in (('partition', self.partition),
                                       ('account', self.account)) if v]


def check_sweep_dir(sweep_dir):
  """SLURM reads `#SBATCH --output` paths itself: no blanks, and no % (its patterns)."""
  if re.search(r'[\s%]', sweep_dir):
    raise SweepError(f'sweep_dir={sweep_dir!r} holds a blank or a %; --backend=slurm '
                     'needs a path without them (SLURM reads it in #SBATCH lines)')


def need_commands(*names):
  """SweepError unless every SLURM command in `names` is on PATH."""
  missing = [n for n in names if not shutil.which(n)]
  if missing:
    raise SweepError(f'{", ".join(missing)} not found on PATH: --backend=slurm needs '
                     "SLURM's client commands (--dry_run prints the script without them)")


def _preamble(python_env=True):
  """Shell lines every job script runs first: the repository's package, quiet TF."""
  root = shlex.quote(sweeps_lib.REPO_ROOT)
  lines = ['set -u', f'cd {root}',
           f'export PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}}',
           'export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}']
  if python_env:
    # TensorFlow's pools as wide as the task's CPUs, not the node's: tasks share nodes.
    lines += ['export TF_NUM_INTRAOP_THREADS=${TF_NUM_INTRAOP_THREADS:-'
              '${SLURM_CPUS_PER_TASK:-1}}',
              'export TF_NUM_INTEROP_THREADS=${TF_NUM_INTEROP_THREADS:-1}',
              # srun does not take --cpus-per-task from sbatch since SLURM 22.05.
              '[ -n "${SLURM_CPUS_PER_TASK:-}" ] && '
              'export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK']
  return lines


def array_script(sweep_name, sweep_dir, tasks, resources):
  """The sbatch script of one submission; tasks: [(index, run name, command)]."""
  indices = ','.join(str(i) for i, _, _ in tasks)
  if resources.parallel:
    indices += f'%{resources.parallel}'
  header = [f'--job-name={sweep_name}', f'--array={indices}',
            f'--output={os.path.join(sweep_dir, SLURM_DIR, "%A_%a.log")}']
  lines = ['#!/bin/bash',
           f'# Sweep {sweep_name} in {sweep_dir}: one array task per run '
           '(python -m launch.run_sweep --backend=slurm).']
  lines += [f'#SBATCH {option}' for option in header + resources.task_lines()]
  lines += _preamble() + ['case "$SLURM_ARRAY_TASK_ID" in']
  for index, name, command in tasks:
    lines += [f'  {index})  # {name}',
              f'    run=({" ".join(shlex.quote(a) for a in command)}) ;;']
  lines += ['  *) echo "error: array task $SLURM_ARRAY_TASK_ID is not a run of this '
            'submission" >&2; exit 2 ;;',
            'esac',
            'echo "run ${run[-1]#--config.workdir=} on $(hostname), '
            'job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
            # srun: SLURM's --signal reaches job steps, and the launcher is the step.
            'exec srun "${run[@]}"', '']
  return '\n'.join(lines)


def report_script(sweep_name, sweep_dir, python, resources):
  """The sbatch script of the report job (its dependency is given to sbatch)."""
  lines = ['#!/bin/bash', f'# The report of sweep {sweep_name} in {sweep_dir}.']
  lines += [f'#SBATCH {o}' for o in [
      f'--job-name={sweep_name}_report',
      f'--output={os.path.join(sweep_dir, SLURM_DIR, "report_%j.log")}']
            + resources.job_lines()]
  q = lambda *args: ' '.join(shlex.quote(a) for a in args)  # noqa: E731
  lines += _preamble(python_env=False) + [
      q(python, '-m', 'launch.run_sweep', '--backend=slurm', '--status',
        f'--sweep_dir={sweep_dir}'),
      'exec ' + q(python, '-m', 'tf_gancond.report', f'--sweep_dir={sweep_dir}'), '']
  return '\n'.join(lines)


def _run(args, what):
  """stdout of a SLURM command; SweepError with its last stderr line if it fails."""
  try:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
  except (OSError, subprocess.TimeoutExpired) as e:
    raise SweepError(f'{what} failed: {e}') from None
  if proc.returncode != 0:
    lines = proc.stderr.strip().splitlines() or [f'exit code {proc.returncode}']
    raise SweepError(f'{what} failed: {lines[-1][:300]}')
  return proc.stdout


def sbatch(script_path, *options):
  """Submits a script; returns its job id."""
  out = _run(['sbatch', '--parsable', *options, script_path], 'sbatch')
  return out.strip().split(';')[0]


def _task_key(job_id, task):
  return f'{job_id}_{task}'


def queued(job_ids):
  """{'<job>_<task>': state} of the array tasks of `job_ids` that squeue lists (ended
  ones too, for the few minutes SLURM keeps them: MinJobAge)."""
  if not job_ids:
    return {}
  wanted = set(job_ids)
  out = _run(['squeue', '--noheader', '--array', '--me', '--states=all',
              '--format=%F|%K|%T'], 'squeue')
  states = {}
  for line in out.splitlines():
    parts = line.strip().split('|')
    if len(parts) == 3 and parts[0] in wanted:
      states[_task_key(parts[0], parts[1])] = parts[2]
  return states


def accounted(job_ids):
  """{'<job>_<task>': (state, exit code)} from sacct; {} where accounting is off."""
  if not job_ids or not shutil.which('sacct'):
    return {}
  try:
    out = _run(['sacct', '--noheader', '--parsable2', '--allocations',
                '--format=JobID,State,ExitCode', f'--jobs={",".join(job_ids)}'],
               'sacct')
  except SweepError:  # No accounting storage (a one-node cluster): squeue alone.
    return {}
  ended = {}
  for line in out.splitlines():
    parts = line.strip().split('|')
    if len(parts) == 3 and re.match(r'^\d+_\d+$', parts[0]):
      ended[parts[0]] = (parts[1].split()[0], parts[2])
  return ended


def _last_line(path):
  """The last non-empty line of a task's log that srun did not write ('' if none):
  srun's closing 'task 0: Exited with exit code 2' says less than the run's own line."""
  from launch import run_sweep
  return next((l.strip()[:300] for l in reversed(run_sweep.tail_lines(path, 16384))
               if l.strip() and not l.startswith('srun: ')), '')


def latest_tasks(submissions):
  """{run name: '<job>_<task>'} of each run's newest submission."""
  latest = {}
  for submission in submissions:
    for task, name in submission.get('tasks', {}).items():
      latest[name] = _task_key(submission['job_id'], task)
  return latest


def active_tasks(submissions):
  """{run name: (task, squeue state)} of the runs whose newest task may still run."""
  tasks = latest_tasks(submissions)
  states = queued(sorted({s['job_id'] for s in submissions}))
  return {name: (task, states[task]) for name, task in tasks.items()
          if states.get(task) in ACTIVE_STATES}


@dataclasses.dataclass
class Plan:
  """What a submission does with each run (names, in sweep order)."""
  finished: list
  queued: dict      # name -> (task, state)
  locked: list      # Running outside this sweep's SLURM jobs (the folder is locked).
  submit: list      # [(index, run)]

  def summary(self, sweep_name, sweep_dir, total):
    return (f'[{sweep_name}] {total} runs in {sweep_dir}: {len(self.finished)} finished '
            f'(skipped), {len(self.queued)} pending or running in SLURM, '
            f'{len(self.locked)} running elsewhere (folder locked), '
            f'{len(self.submit)} to submit')


def plan(runner, submissions):
  """The Plan of a submission of `runner`'s runs (the local runner's checks done)."""
  from launch import run_sweep
  active = active_tasks(submissions)
  finished, locked, submit = [], [], []
  for index, run in enumerate(runner.runs):
    workdir = runner.workdirs[run.name]
    if run_sweep.is_finished(runner.configs[run.name]):
      finished.append(run.name)
    elif run.name in active:
      continue
    elif runlog.folder_in_use(workdir):
      locked.append(run.name)
    else:
      submit.append((index, run))
  queued_runs = {r.name: active[r.name] for r in runner.runs if r.name in active}
  submitted = {r['name']: r.get('command')
               for r in runner.previous_manifest.get('runs', [])}
  for run in runner.runs:  # A queued task runs the command it was submitted with.
    if run.name not in queued_runs or submitted.get(run.name) is None:
      continue
    command = run_sweep.build_command(run, runner.workdirs[run.name], runner.extra,
                                      runner.launcher)
    if submitted[run.name] != command:
      task, state = queued_runs[run.name]
      raise SweepError(
          f'run {run.name} is {state.lower()} in SLURM as task {task}, submitted with '
          'another command than this submission\'s (other settings, Python or folder; '
          f'sweep.json has it); wait for it to end, or `scancel {task}`, then submit '
          'again')
  return Plan(finished, queued_runs, locked, submit)


def submit(runner, resources, dry_run=False, report=True, say=print):
  """Submits the runs of `runner` (a run_sweep.SweepRunner) that need it; returns the
  submission recorded in sweep.json (None when nothing was submitted)."""
  from launch import run_sweep
  check_sweep_dir(runner.sweep_dir)
  need_commands(*([] if dry_run else ['sbatch', 'squeue']))
  runner.lock()
  submissions = runner.previous_manifest.get(JOBS_KEY, [])
  if not shutil.which('squeue'):  # Only a dry run gets here without it.
    say('note: squeue not found: tasks pending or running in SLURM are not seen')
  the_plan = plan(runner, submissions if shutil.which('squeue') else [])
  say(the_plan.summary(runner.sweep_name, runner.sweep_dir, len(runner.runs)))
  for name, (task, state) in the_plan.queued.items():
    say(f'  {name}: {state.lower()} as {task}; not submitted again')
  for name in the_plan.locked:
    say(f'  {name}: its folder is locked by a running process; not submitted')
  runner.write_manifest()
  if not the_plan.submit:
    say('nothing to submit')
    return None
  tasks = [(i, r.name, run_sweep.build_command(r, runner.workdirs[r.name], runner.extra,
                                               runner.launcher))
           for i, r in the_plan.submit]
  script = array_script(runner.sweep_name, runner.sweep_dir, tasks, resources)
  report_text = report_script(runner.sweep_name, runner.sweep_dir, sys.executable,
                              resources)
  if dry_run:
    say(script)
    if report:
      say(report_text)
    return None
  folder = os.path.join(runner.sweep_dir, SLURM_DIR)
  os.makedirs(folder, exist_ok=True)
  number = len(submissions) + 1
  paths = {}
  for kind, text in (('array', script), ('report', report_text)):
    paths[kind] = os.path.join(folder, f'{kind}_{number}.sh')
    runlog.atomic_write_text(paths[kind], text)
  job_id = sbatch(paths['array'])
  submission = {'job_id': job_id, 'tasks': {str(i): name for i, name, _ in tasks},
                'script': paths['array'],
                'submitted': time.strftime('%Y-%m-%dT%H:%M:%S')}
  # Recorded before the report job, so a failing second sbatch loses no job id.
  runner.write_manifest(submissions + [submission])
  say(f'submitted job array {job_id} ({len(tasks)} tasks: '
      f'{",".join(str(i) for i, _, _ in tasks)}); logs in {folder}/{job_id}_<task>.log')
  if report:
    after = sorted({task.split('_')[0] for task, _ in the_plan.queued.values()} |
                   {job_id})
    submission['report_job_id'] = sbatch(
        paths['report'], f'--dependency=afterany:{":".join(after)}')
    runner.write_manifest(submissions + [submission])
    say(f'report: job {submission["report_job_id"]} after {", ".join(after)} '
        f'(afterany) writes {os.path.join(runner.sweep_dir, "report")}')
  return submission


def read_manifest(sweep_dir):
  """sweep.json of a sweep folder (SweepError if there is none or it is unreadable)."""
  from launch import run_sweep
  path = os.path.join(sweep_dir, run_sweep.MANIFEST_FILE)
  try:
    with open(path) as f:
      manifest = json.load(f)
  except FileNotFoundError:
    raise SweepError(f'sweep_dir={sweep_dir!r} holds no {run_sweep.MANIFEST_FILE}: '
                     'submit the sweep first') from None
  except (OSError, ValueError) as e:
    raise SweepError(f'{path!r} cannot be read ({str(e).splitlines()[0][:160]})') from None
  if not isinstance(manifest, dict) or not isinstance(manifest.get('runs'), list):
    raise SweepError(f'{path!r} is not a sweep manifest (no list of runs)')
  return manifest


def _is_finished(manifest, entry, status):
  """Whether the manifest's run is finished as its launcher would judge it
  (run_sweep.is_finished); where this package cannot rebuild the run's config any
  more (the manifest of an older version, whose config file is gone), as its
  status.json says."""
  from launch import run_sweep
  try:
    config = run_sweep.resolve_run_config(sweeps_lib.Run.from_json(entry),
                                          manifest.get('extra', {}), entry['workdir'])
  except (SweepError, KeyError, TypeError):
    return status.get('state') == 'finished'
  return run_sweep.is_finished(config)


def run_states(sweep_dir):
  """(manifest, {run name: state dict}) from the records, squeue and sacct.

  state: finished | pending | running (a SLURM task, or the folder is locked) |
  diverged | failed | interrupted (ended by a time limit, preemption or a cancel, or
  stopped by a SIGTERM after checkpointing (exit code 4, status.json 'stopped'): a
  resubmission resumes it) | not submitted.
  """
  from launch import run_sweep
  manifest = read_manifest(sweep_dir)
  submissions = manifest.get(JOBS_KEY, [])
  job_ids = sorted({s['job_id'] for s in submissions})
  tasks = latest_tasks(submissions)
  notes = []
  try:
    in_queue = queued(job_ids) if job_ids else {}
  except SweepError as e:
    in_queue, notes = {}, [f'{e}; states from the records only']
  ended = accounted(job_ids)
  states = {}
  for entry in manifest['runs']:
    name, workdir = entry['name'], entry['workdir']
    status = runlog.read_status(workdir)
    task = tasks.get(name)
    s = {'setting': entry.get('setting'), 'seed': entry.get('seed'),
         'step': run_sweep.current_step(workdir), 'train_steps': entry['train_steps']}
    if task:
      s.update(task=task, log=os.path.join(sweep_dir, SLURM_DIR, f'{task}.log'))
    queue_state = in_queue.get(task)
    end_state, exit_code = ended.get(task, (queue_state, None))
    if _is_finished(manifest, entry, status):
      s['state'] = 'finished'
    elif queue_state in ACTIVE_STATES:
      s['state'] = 'pending' if queue_state in ('PENDING', 'REQUEUED') else 'running'
      s['slurm_state'] = queue_state
    elif runlog.folder_in_use(workdir):
      s.update(state='running', reason='its folder is locked by a process outside '
               "this sweep's SLURM jobs")
    elif status.get('state') == 'diverged':
      s.update(state='diverged', reason=status.get('reason', ''))
    elif not task:
      s['state'] = 'not submitted'
    else:
      last = _last_line(s['log'])
      # SLURM calls exit code 4 FAILED; the run stopped at a SIGTERM (--signal before
      # the time limit, a preemption) after checkpointing: a resubmission resumes it.
      stopped = status.get('state') == 'stopped' and (
          exit_code.split(':')[0] == str(run_sweep.STOPPED_EXIT_CODE) if exit_code
          else last.startswith('stopped: '))
      s['state'] = ('failed' if end_state in FAILED_STATES and not stopped
                    else 'interrupted')
      said = [f'SLURM state {end_state}' if end_state else '',
              f'exit code {exit_code}' if exit_code else '', last]
      s['reason'] = '; '.join(x for x in said if x) or 'ended before its last step'
      if end_state:
        s['slurm_state'] = end_state
    states[name] = s
  return manifest, states, notes


def status(sweep_dir, say=print):
  """Prints each run's state and writes sweep_status.json; returns the states."""
  from launch import run_sweep
  manifest, states, notes = run_states(sweep_dir)
  counts = {}
  for s in states.values():
    counts[s['state']] = counts.get(s['state'], 0) + 1
  for note in notes:
    say(f'note: {note}')
  say(f'[{manifest.get("sweep")}] {len(states)} runs in {sweep_dir}: ' +
      ', '.join(f'{n} {state}' for state, n in sorted(counts.items())))
  width = max(len(n) for n in states) if states else 0
  for name, s in states.items():
    say(f'  {name:<{width}}  {s["state"]:<13} {s["step"]:>7}/{s["train_steps"]:<7} '
        f'{s.get("task", "-"):<12} {s.get("reason", "")}'.rstrip())
  runlog.atomic_write_json(
      os.path.join(sweep_dir, run_sweep.STATUS_FILE),
      {'sweep': manifest.get('sweep'), 'backend': 'slurm',
       'updated': time.strftime('%Y-%m-%dT%H:%M:%S'), 'counts': counts, 'runs': states})
  return states
