"""Runs a sweep locally: every run a `tf_gancond.launch` subprocess, N at a time.

  python -m launch.run_sweep --sweep=fashion_mnist_quick --sweep_dir=runs/quick --parallel=2
  python -m launch.run_sweep --sweep=odena_jc_mnist --sweep_dir=runs/jc_mnist \
      --num_seeds=5 --extra=train_steps=5000,eval_every=1000 --dry_run
  python -m launch.run_sweep --sweep=odena_jc_mnist --sweep_dir=runs/jc_q \
      --setting_extra=jacobian_clamping:jc_lambda_min=1.3,jc_lambda_max=3.7

Each run is `python -m tf_gancond.launch --config=<file> --config.FIELD=VALUE ...
--config.workdir=<sweep_dir>/<run name>`, with its stdout and stderr in
`<run dir>/stdout.log` and `<run dir>/stderr.log`. The sweep directory gets

  sweep.json         the manifest: sweep name, extra overrides (for every run, and
                     --setting_extra for the runs of one setting), each run's name,
                     setting, seed, config file, overrides, workdir and command;
  sweep_status.json  per run: state (pending | running | finished | failed |
                     diverged | stopped (by SIGTERM, checkpointed: the next
                     invocation resumes it) | interrupted), exit code, reason (last stderr line
                     of a failed run), step, seconds, attempts.

A failed run (non-zero exit; 3 = diverged) is recorded and the sweep goes on. The
runner is idempotent: a second invocation skips the runs the launcher would have
nothing to do for (finished under these settings: `is_finished`) and starts the
others again with the same workdir, where the launcher resumes them from their last
checkpoint. Settings that differ from those a run folder was made with (an `--extra`
other than more train_steps or final_eval turned on), train_steps below the step a
run's newest checkpoint reached, more steps for a finished run without checkpoints,
and a field given in both --extra and --setting_extra (--extra would win) are
refused before anything is written. One runner at a time: the sweep directory
is locked (`.lock`) while it runs, and its launchers end when it ends, however it
ends (on Linux they get SIGTERM when the runner dies, even by SIGKILL); a run whose
folder another process still holds (such a launcher checkpointing) waits for it. Progress
(runs done and left, the current step of each running run read from its
metrics.jsonl, an ETA) is printed on every change and every --progress_every
seconds.

Exit codes: 0 every run finished; 1 some run failed (after the others ran; one
summary line on stderr); 2 bad input (one line); 130 interrupted.

`--backend=slurm` submits the same runs as one `sbatch` job array instead, and
`--backend=slurm --status` shows where each run is (launch/slurm.py):

  python -m launch.run_sweep --backend=slurm --sweep=odena_jc_mnist --sweep_dir=/shared/jc \
      --partition=cpu --time=04:00:00 --cpus_per_task=4 --dry_run
"""

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags

from launch import slurm
from launch import sweeps as sweeps_lib
from launch.sweeps import SweepError
from tf_gancond import config as config_lib
from tf_gancond import runlog

FLAGS = flags.FLAGS

MANIFEST_FILE = 'sweep.json'
STATUS_FILE = 'sweep_status.json'
STDOUT_FILE = 'stdout.log'
STDERR_FILE = 'stderr.log'
DIVERGED_EXIT_CODE = 3  # tf_gancond.launch: the run diverged (NaN/Inf).
STOPPED_EXIT_CODE = 4  # tf_gancond.launch: stopped by SIGTERM, checkpointed; resumable.
DEFAULT_LAUNCHER = (sys.executable, '-m', 'tf_gancond.launch')

# `--extra` splits at commas followed by FIELD=, so values may hold commas
# (export_at_steps=1,10,25).
_EXTRA_SPLIT = re.compile(r',(?=\s*[A-Za-z_]\w*\s*=)')


def define_flags():
  """The runner's flags (called from `run`, so importing this module defines none)."""
  flags.DEFINE_string('sweep', None, 'Sweep name: one of '
                      f'{", ".join(sorted(sweeps_lib.SWEEPS))}.')
  flags.DEFINE_string('sweep_dir', None, 'Directory of the sweep (one subdirectory '
                      'per run, sweep.json, sweep_status.json).')
  flags.DEFINE_integer('parallel', 1, 'Runs at a time.')
  flags.DEFINE_integer('num_seeds', None, 'Seeds per setting (default: the sweep\'s).')
  flags.DEFINE_string('extra', '', 'Config overrides for every run: FIELD=VALUE,...')
  flags.DEFINE_string('setting_extra', '', 'Config overrides for the runs of one '
                      'setting only: SETTING:FIELD=VALUE,...')
  flags.DEFINE_bool('dry_run', False, 'Write sweep.json and print the commands; '
                    'run nothing.')
  flags.DEFINE_float('progress_every', 30.0, 'Seconds between progress lines.')
  flags.DEFINE_enum('backend', 'local', ['local', 'slurm'], 'local: subprocesses on '
                    'this machine; slurm: one sbatch job array (launch/slurm.py).')
  flags.DEFINE_bool('status', False, 'slurm: print each run\'s state (records, squeue, '
                    'sacct), write sweep_status.json; submit nothing.')
  flags.DEFINE_string('partition', None, 'slurm: partition of the tasks.')
  flags.DEFINE_string('time', None, 'slurm: time limit per task (HH:MM:SS, '
                      'DAYS-HH:MM:SS, MINUTES).')
  flags.DEFINE_integer('gpus_per_task', None, 'slurm: GPUs per task.')
  flags.DEFINE_integer('cpus_per_task', None, 'slurm: CPUs per task (also the width '
                       'of TensorFlow\'s thread pool).')
  flags.DEFINE_string('mem', None, 'slurm: memory per task\'s node (16G, 4000M).')
  flags.DEFINE_string('account', None, 'slurm: account to charge.')
  flags.DEFINE_multi_string('sbatch', [], 'slurm: an extra #SBATCH option such as '
                            '--qos=high (repeat the flag for more).')
  flags.DEFINE_string('signal', slurm.DEFAULT_SIGNAL, 'slurm: signal sent to a run '
                      'before its time limit (SIG@SECONDS; empty: none).')
  flags.DEFINE_bool('requeue', False, 'slurm: let SLURM requeue a preempted or failed '
                    'node\'s task (it resumes).')
  flags.DEFINE_bool('report_job', True, 'slurm: submit the report as a job after the '
                    'array (--dependency=afterany).')


# Flags that only the slurm backend reads.
SLURM_FLAGS = ('status', 'partition', 'time', 'gpus_per_task', 'cpus_per_task', 'mem',
               'account', 'sbatch', 'signal', 'requeue', 'report_job')


def parse_extra(text):
  """'a=1,b=x' -> {'a': '1', 'b': 'x'}; checks the fields exist and the values parse."""
  extra = {}
  if not text or not text.strip():
    return extra
  for item in _EXTRA_SPLIT.split(text.strip()):
    if '=' not in item:
      raise SweepError(f'--extra item {item!r} is not FIELD=VALUE')
    field, value = (s.strip() for s in item.split('=', 1))
    if field in ('workdir', 'seed'):
      raise SweepError(f'--extra field {field!r} is set by the sweep for each run')
    extra[field] = value
  try:
    config_lib.apply_overrides(config_lib.get_config(), extra)
  except config_lib.ConfigError as e:
    raise SweepError(f'--extra: {e}') from None
  return extra


def apply_setting_extra(runs, text):
  """Adds 'SETTING:FIELD=VALUE,...' to the overrides of the runs of that setting only
  (the others stay as the plain sweep makes them, so their finished runs can be
  reused); returns {setting: {field: value}} for the manifest."""
  if not text or not text.strip():
    return {}
  setting, colon, fields = text.strip().partition(':')
  if not colon or '=' in setting:
    raise SweepError(f'--setting_extra={text!r} is not SETTING:FIELD=VALUE,...')
  settings = sorted({r.setting for r in runs})
  if setting not in settings:
    raise SweepError(f'--setting_extra: setting {setting!r} is not in this sweep; its '
                     f'settings: {", ".join(settings)}')
  try:
    overrides = parse_extra(fields)
  except SweepError as e:
    raise SweepError(str(e).replace('--extra', '--setting_extra', 1)) from None
  for run in runs:
    if run.setting == setting:
      run.overrides = dict(run.overrides, **overrides)
  return {setting: overrides}


def check_extra_fields_apart(extra, setting_extra):
  """SweepError naming the fields that both `extra` ({field: value}) and
  `setting_extra` ({setting: {field: value}}) set: `extra` would win for that
  setting's runs, so one of the two would be dropped without a word."""
  for setting, overrides in sorted(setting_extra.items()):
    both = [f for f in overrides if f in extra]
    if both:
      in_extra = ','.join(f'{f}={extra[f]}' for f in both)
      in_setting = ','.join(f'{f}={overrides[f]}' for f in both)
      raise SweepError(
          f'{", ".join(both)} {"is" if len(both) == 1 else "are"} given in both '
          f'--extra ({in_extra}) and --setting_extra ({setting}:{in_setting});'
          ' give each field in one of them (--extra for every run, --setting_extra for '
          f'the runs of {setting})')


def _overrides(run, extra, workdir):
  """The run's overrides as text, extra last (it wins), workdir at the end."""
  merged = {k: v for k, v in run.overrides.items()}
  merged.update(extra)
  merged['workdir'] = workdir
  return {k: _text(v) for k, v in merged.items()}


def _text(value):
  if isinstance(value, bool):
    return 'true' if value else 'false'
  return str(value)


def build_command(run, workdir, extra, launcher=DEFAULT_LAUNCHER):
  """The launcher command line of one run (a list of arguments)."""
  args = list(launcher) + [f'--config={run.config_path()}']
  args += [f'--config.{k}={v}' for k, v in _overrides(run, extra, workdir).items()]
  return args


def resolve_run_config(run, extra, workdir):
  """The run's resolved, validated config (as the launcher will build it)."""
  from tf_gancond import launch
  try:
    return launch.build_config(run.config_path(), _overrides(run, extra, workdir), {})
  except config_lib.ConfigError as e:
    raise SweepError(f'run {run.name}: {e}') from None


# ----------------------------------------------------------------------------
# Reading a run's files while it runs.


def tail_lines(path, max_bytes=65536):
  """The last complete lines of a text file (reads at most max_bytes)."""
  try:
    with open(path, 'rb') as f:
      f.seek(0, os.SEEK_END)
      size = f.tell()
      f.seek(max(0, size - max_bytes))
      data = f.read()
  except OSError:
    return []
  lines = data.decode('utf-8', errors='replace').splitlines()
  if size > max_bytes and lines:
    lines = lines[1:]  # The first line may be cut.
  return lines


def current_step(workdir):
  """The step of the newest record in <workdir>/metrics.jsonl (0 if none)."""
  for line in reversed(tail_lines(os.path.join(workdir, 'metrics.jsonl'))):
    try:
      return int(json.loads(line)['step'])
    except (ValueError, KeyError, TypeError):
      continue
  return 0


def last_stderr_line(workdir):
  """The last non-empty line of the run's stderr log ('' if none)."""
  for line in reversed(tail_lines(os.path.join(workdir, STDERR_FILE), 16384)):
    if line.strip():
      return line.strip()[:500]
  return ''


def is_finished(config):
  """True when the run in config.workdir finished under `config` and the launcher
  would have nothing to do (runlog.finished_results): not when more train_steps or a
  final evaluation are asked for; also a run that ended before its train_steps (an
  O7 memorizing G that reached its target)."""
  return runlog.finished_results(config) is not None


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _ends_with_runner():
  """A Popen `preexec_fn` (Linux): the child gets SIGTERM when this process dies,
  however it dies. Elsewhere None: the runner's own handlers stop its launchers."""
  if not sys.platform.startswith('linux'):
    return None
  prctl = ctypes.CDLL(None, use_errno=True).prctl  # Looked up before the fork.
  runner = os.getpid()

  def set_parent_death_signal():
    prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != runner:  # The runner died before the line above took effect.
      os.kill(os.getpid(), signal.SIGTERM)
  return set_parent_death_signal


def _duration(seconds):
  seconds = int(round(seconds))
  if seconds >= 3600:
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
  if seconds >= 60:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds}s'


# ----------------------------------------------------------------------------
# The runner.


class _Active:
  """A running launcher process and what the progress line needs about it."""

  def __init__(self, run, proc, workdir, train_steps, log_files):
    self.run, self.proc, self.workdir = run, proc, workdir
    self.train_steps = train_steps
    self.log_files = log_files
    self.started = time.time()
    self.first_step = current_step(workdir)
    self.step = self.first_step

  def rate(self):
    """Steps per second since the launch (0 before the first new record)."""
    elapsed = time.time() - self.started
    return (self.step - self.first_step) / elapsed if elapsed > 0 else 0.0


class SweepRunner:
  """Runs `runs` in `sweep_dir`; see the module docstring."""

  def __init__(self, sweep_name, runs, sweep_dir, parallel=1, extra=None,
               setting_extra=None, launcher=DEFAULT_LAUNCHER, progress_every=30.0,
               poll_seconds=1.0, out=None):
    """`runs` as `apply_setting_extra` left them; `setting_extra` is its record."""
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
      raise SweepError(f'parallel={parallel!r} must be a positive integer')
    if os.path.exists(sweep_dir) and not os.path.isdir(sweep_dir):
      raise SweepError(f'sweep_dir={sweep_dir!r} exists and is not a directory')
    self.sweep_name = sweep_name
    self.runs = list(runs)
    self.sweep_dir = os.path.abspath(sweep_dir)
    self.parallel = parallel
    self.extra = dict(extra or {})
    self.setting_extra = dict(setting_extra or {})
    check_extra_fields_apart(self.extra, self.setting_extra)
    self.launcher = tuple(launcher)
    self.progress_every = progress_every
    self.poll_seconds = poll_seconds
    self.out = out or sys.stdout
    self.workdirs = {r.name: os.path.join(self.sweep_dir, r.name) for r in self.runs}
    # Every run's config is validated, and checked against its folder, before any runs.
    self.configs = {}
    for r in self.runs:
      config = resolve_run_config(r, self.extra, self.workdirs[r.name])
      try:
        runlog.check_resumable(self.workdirs[r.name], config,
                               hint='use another --sweep_dir, or the --extra the '
                               'runs were made with (more train_steps may be added)')
        if not is_finished(config):
          runlog.check_can_go_on(config, runlog.checkpoint_step(config.workdir))
      except config_lib.ConfigError as e:
        raise SweepError(f'run {r.name}: {e}') from None
      self.configs[r.name] = config
    self.train_steps = {name: int(c.train_steps) for name, c in self.configs.items()}
    self.status = {}
    self.previous_manifest = {}

  # ----- files -----
  def _check_manifest(self):
    """Refuses an unreadable sweep.json or one of another sweep; keeps it."""
    path = os.path.join(self.sweep_dir, MANIFEST_FILE)
    if not os.path.exists(path):
      return
    try:
      with open(path) as f:
        old = json.load(f)
    except (OSError, ValueError) as e:
      raise SweepError(f'{path!r} cannot be read ({str(e).splitlines()[0][:160]}); '
                       'repair or move it') from None
    if not isinstance(old, dict):
      raise SweepError(f'{path!r} cannot be read (a JSON {type(old).__name__}, not an '
                       'object); repair or move it')
    if old.get('sweep') not in (None, self.sweep_name):
      raise SweepError(f'sweep_dir={self.sweep_dir!r} holds sweep {old["sweep"]!r}, '
                       f'not {self.sweep_name!r}; use another --sweep_dir')
    self.previous_manifest = old

  def write_manifest(self, slurm_jobs=None):
    """sweep.json; slurm_jobs: the SLURM submissions (default: those it records)."""
    manifest = {
        'sweep': self.sweep_name,
        'extra': self.extra,
        'setting_extra': self.setting_extra,
        'launcher': list(self.launcher),
        'runs': [dict(r.to_json(), workdir=self.workdirs[r.name],
                      train_steps=self.train_steps[r.name],
                      command=build_command(r, self.workdirs[r.name], self.extra,
                                            self.launcher))
                 for r in self.runs],
    }
    if slurm_jobs is None:
      slurm_jobs = self.previous_manifest.get(slurm.JOBS_KEY)
    if slurm_jobs:
      manifest[slurm.JOBS_KEY] = slurm_jobs
    runlog.atomic_write_json(os.path.join(self.sweep_dir, MANIFEST_FILE), manifest)

  def _load_status(self):
    path = os.path.join(self.sweep_dir, STATUS_FILE)
    old = {}
    if os.path.exists(path):
      try:
        with open(path) as f:
          old = json.load(f).get('runs', {})
      except (OSError, ValueError, AttributeError):
        old = {}
    for r in self.runs:
      previous = old.get(r.name, {})
      self.status[r.name] = {
          'state': 'pending', 'setting': r.setting, 'seed': r.seed,
          'attempts': int(previous.get('attempts', 0)),
          'step': current_step(self.workdirs[r.name]),
          'train_steps': self.train_steps[r.name]}

  def _save_status(self):
    counts = {}
    for s in self.status.values():
      counts[s['state']] = counts.get(s['state'], 0) + 1
    runlog.atomic_write_json(os.path.join(self.sweep_dir, STATUS_FILE), {
        'sweep': self.sweep_name, 'updated': time.strftime('%Y-%m-%dT%H:%M:%S'),
        'counts': counts, 'runs': self.status})

  def _say(self, message):
    print(message, file=self.out, flush=True)

  # ----- processes -----
  def _start(self, run):
    workdir = self.workdirs[run.name]
    os.makedirs(workdir, exist_ok=True)
    command = build_command(run, workdir, self.extra, self.launcher)
    stdout = open(os.path.join(workdir, STDOUT_FILE), 'w')
    stderr = open(os.path.join(workdir, STDERR_FILE), 'w')
    env = dict(os.environ)
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    # Share the cores between the runs at a time: N TensorFlow processes each with
    # a pool as wide as the machine oversubscribe it, and spinning pools then slow
    # every run several-fold. A user's own setting wins.
    threads = str(max(1, (os.cpu_count() or 1) // self.parallel))
    env.setdefault('TF_NUM_INTRAOP_THREADS', threads)
    env.setdefault('TF_NUM_INTEROP_THREADS', '1')
    # The repository root on the path, so `-m tf_gancond.launch` imports this checkout.
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (sweeps_lib.REPO_ROOT, env.get('PYTHONPATH', '')) if p)
    proc = subprocess.Popen(command, stdout=stdout, stderr=stderr,
                            stdin=subprocess.DEVNULL, cwd=sweeps_lib.REPO_ROOT, env=env,
                            preexec_fn=_ends_with_runner())
    active = _Active(run, proc, workdir, self.train_steps[run.name], (stdout, stderr))
    s = self.status[run.name]
    s.update(state='running', attempts=s['attempts'] + 1, pid=proc.pid,
             started=time.strftime('%Y-%m-%dT%H:%M:%S'),
             resumed_from=active.first_step)
    s.pop('reason', None)
    s.pop('exit_code', None)
    return active

  def _finish(self, active, code):
    for f in active.log_files:
      f.close()
    s = self.status[active.run.name]
    s.pop('pid', None)
    s.update(exit_code=code, seconds=round(time.time() - active.started, 1),
             step=current_step(active.workdir))
    if code == 0:
      s['state'] = 'finished'
    else:
      s['state'] = {DIVERGED_EXIT_CODE: 'diverged',
                    STOPPED_EXIT_CODE: 'stopped'}.get(code, 'failed')
      reason = last_stderr_line(active.workdir)
      if code < 0:
        reason = f'killed by signal {-code}' + (f'; {reason}' if reason else '')
      s['reason'] = reason or f'exit code {code}'

  def _stop_all(self, active):
    """Stops the running launchers (SIGTERM, then SIGKILL after 20 s)."""
    for a in active:
      if a.proc.poll() is None:
        a.proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 20
    for a in active:
      try:
        a.proc.wait(timeout=max(0.1, deadline - time.time()))
      except subprocess.TimeoutExpired:
        a.proc.kill()
        a.proc.wait()
      for f in a.log_files:
        f.close()
      s = self.status[a.run.name]
      s.pop('pid', None)
      s.update(state='interrupted', step=current_step(a.workdir),
               reason='the sweep was interrupted; run it again to resume')

  # ----- progress -----
  def _progress(self, active, pending):
    done = [s for s in self.status.values() if s['state'] not in ('pending', 'running')]
    failed = [s for s in done if s['state'] != 'finished']
    for a in active:
      a.step = current_step(a.workdir)
      self.status[a.run.name]['step'] = a.step
    remaining = sum(max(0, self.train_steps[a.run.name] - a.step) for a in active)
    remaining += sum(max(0, self.train_steps[r.name] - self.status[r.name]['step'])
                     for r in pending)
    rate = sum(a.rate() for a in active)
    eta = '0s' if remaining == 0 else (_duration(remaining / rate) if rate > 0 else '?')
    running = ', '.join(f'{a.run.name} {a.step}/{a.train_steps}' for a in active)
    line = (f'[{self.sweep_name}] {len(done)}/{len(self.runs)} done'
            + (f' ({len(failed)} failed)' if failed else '')
            + (f', running: {running}' if active else '')
            + f', {len(pending)} left, ETA {eta}')
    self._say(line)

  # ----- the sweep -----
  def lock(self):
    """Checks the manifest, then locks the sweep directory (creating it)."""
    self._check_manifest()
    try:
      runlog.lock_folder(self.sweep_dir, 'sweep_dir')
    except config_lib.ConfigError as e:
      raise SweepError(str(e)) from None
    # Read again under the lock: the previous holder may have recorded SLURM jobs since.
    self._check_manifest()

  def dry_run(self):
    self.lock()
    self.write_manifest()
    for r in self.runs:
      workdir = self.workdirs[r.name]
      note = ('finished, would be skipped' if is_finished(self.configs[r.name])
              else 'would run')
      self._say(f'# {r.name}: {note}')
      self._say(' '.join(build_command(r, workdir, self.extra, self.launcher)))

  def _next_startable(self, pending, waiting):
    """The first pending run whose folder no process holds (None if none). A held
    folder (a launcher of a killed runner still checkpointing, a launch by hand) would
    make its launcher exit 2: the run waits, said once (names in `waiting`)."""
    for run in list(pending):
      if not runlog.folder_in_use(self.workdirs[run.name]):
        if run.name in waiting and is_finished(self.configs[run.name]):
          pending.remove(run)  # The process that held it finished it.
          self.status[run.name].update(state='finished',
                                       note='finished by another process; skipped')
          continue
        return run
      if run.name not in waiting:
        waiting.add(run.name)
        self._say(f'[{self.sweep_name}] {run.name}: its folder is in use by another '
                  'process; waiting for it to be free')
    return None

  def run(self):
    """Runs the sweep; returns the per-run status dict (also in sweep_status.json)."""
    self.lock()
    self.write_manifest()
    self._load_status()
    pending = []
    for r in self.runs:
      if is_finished(self.configs[r.name]):
        self.status[r.name].update(state='finished', note='finished earlier; skipped')
      else:
        pending.append(r)
    skipped = len(self.runs) - len(pending)
    self._save_status()
    self._say(f'[{self.sweep_name}] {len(self.runs)} runs in {self.sweep_dir}: '
              f'{skipped} finished earlier (skipped), {len(pending)} to run, '
              f'{self.parallel} at a time')
    active, waiting = [], set()
    last_progress = time.time()
    try:
      while pending or active:
        changed = False
        while len(active) < self.parallel:
          run = self._next_startable(pending, waiting)
          if run is None:
            break
          pending.remove(run)
          active.append(self._start(run))
          changed = True
        for a in list(active):
          code = a.proc.poll()
          if code is not None:
            active.remove(a)
            self._finish(a, code)
            s = self.status[a.run.name]
            self._say(f'[{self.sweep_name}] {a.run.name}: {s["state"]} after '
                      f'{_duration(s["seconds"])}' +
                      (f' ({s["reason"]})' if 'reason' in s else ''))
            changed = True
        if changed or time.time() - last_progress >= self.progress_every:
          self._progress(active, pending)
          self._save_status()
          last_progress = time.time()
        if active or pending:
          time.sleep(self.poll_seconds)
    except KeyboardInterrupt:
      self._stop_all(active)
      for r in pending:
        self.status[r.name]['state'] = 'pending'
      self._save_status()
      raise
    self._save_status()
    return self.status

  def summary(self):
    """One line: counts per state and the first failure."""
    states = [s['state'] for s in self.status.values()]
    failed = [(n, s) for n, s in self.status.items() if s['state'] != 'finished']
    line = (f'sweep {self.sweep_name}: {states.count("finished")}/{len(states)} '
            f'finished')
    if failed:
      name, s = failed[0]
      line += (f', {len(failed)} not finished (first: {name} {s["state"]}: '
               f'{s.get("reason", "")})')
    return line + f'; status in {os.path.join(self.sweep_dir, STATUS_FILE)}'


def _raise_interrupt(signum, frame):
  del signum, frame
  raise KeyboardInterrupt


def main(argv):
  # SIGTERM stops the launchers too (as Ctrl-C does), so no run is left orphaned.
  signal.signal(signal.SIGTERM, _raise_interrupt)
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]!r}; every option is a --flag')
  on_slurm = FLAGS.backend == 'slurm'
  slurm_only = [f'--{n}' for n in SLURM_FLAGS if FLAGS[n].present]
  if slurm_only and not on_slurm:
    _fail(f'{", ".join(slurm_only)}: only --backend=slurm reads '
          f'{"it" if len(slurm_only) == 1 else "them"} (the backend is local)')
  if on_slurm and FLAGS.status:
    if not FLAGS.sweep_dir:
      _fail('--sweep_dir is required (the folder of a submitted sweep)')
    try:
      slurm.status(FLAGS.sweep_dir)
    except SweepError as e:
      _fail(str(e))
    return
  if not FLAGS.sweep:
    _fail('--sweep is required; choose one of: ' + ', '.join(sorted(sweeps_lib.SWEEPS)))
  if not FLAGS.sweep_dir:
    _fail('--sweep_dir is required (a directory; created if missing)')
  if not FLAGS.progress_every > 0:
    _fail(f'--progress_every={FLAGS.progress_every!r} must be > 0')
  try:
    if on_slurm:
      resources = slurm.Resources(
          partition=FLAGS.partition, time=FLAGS.time, gpus_per_task=FLAGS.gpus_per_task,
          cpus_per_task=FLAGS.cpus_per_task, mem=FLAGS.mem, account=FLAGS.account,
          sbatch=tuple(FLAGS.sbatch), signal=FLAGS.signal, requeue=FLAGS.requeue,
          parallel=FLAGS.parallel if FLAGS['parallel'].present else None)
      resources.check()
    runs = sweeps_lib.get_sweep(FLAGS.sweep, FLAGS.num_seeds)
    setting_extra = apply_setting_extra(runs, FLAGS.setting_extra)
    runner = SweepRunner(FLAGS.sweep, runs, FLAGS.sweep_dir, parallel=FLAGS.parallel,
                         extra=parse_extra(FLAGS.extra), setting_extra=setting_extra,
                         progress_every=FLAGS.progress_every)
    if on_slurm:
      slurm.submit(runner, resources, dry_run=FLAGS.dry_run, report=FLAGS.report_job)
      return
    if FLAGS.dry_run:
      runner.dry_run()
      return
    runner.run()
  except SweepError as e:
    _fail(str(e))
  except KeyboardInterrupt:
    print('interrupted: run the same command again to resume', file=sys.stderr)
    sys.exit(130)
  line = runner.summary()
  if any(s['state'] != 'finished' for s in runner.status.values()):
    print(line, file=sys.stderr)
    sys.exit(1)
  print(line)


def _fail(message, code=2):
  print(f'error: {message}', file=sys.stderr)
  sys.exit(code)


def _flags_parser(argv):
  try:
    return FLAGS(argv)
  except flags.Error as e:
    _fail(str(e).splitlines()[0])


def run():
  define_flags()
  app.run(main, flags_parser=_flags_parser)


if __name__ == '__main__':
  run()
