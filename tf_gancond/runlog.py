"""The per-run files that analysis reads without TensorBoard.

  <workdir>/config.txt     resolved config, one `field: value` per line.
  <workdir>/metrics.jsonl  one JSON object per line, each with "kind" and "step":
      kind "train": losses, gradient norms, Q statistics (q_mean, q_p5 .. q_p95),
                    steps_per_sec, averaged over the log interval ending at step;
                    process_cpu_seconds, the chief process's CPU time since
                    this start (`cpu_seconds` sums it over starts);
      kind "probe": mean_log_cond, std_log_cond, log_cond (per z), log10 values,
                    avg_jacobian_singular_values;
      kind "final_probe": the same fields over config.final_probe_num_z z (the
                    probe batch first), at the last step, when that is set;
      kind "eval":  scores with their settings (sample count, splits, real split,
                    classifier identity);
      kind "final": end-of-run results (missing modes, final scores) and
                    process_cpu_seconds;
      kind "start": provenance of each start and resume (package commit, whether
                    the work tree had uncommitted changes, TensorFlow version).
  <workdir>/status.json    {"state": running|finished|diverged|stopped, "step", ...}.
  <workdir>/.lock          held (fcntl.flock) by the process that runs in the folder.

Appends are flushed line by line; a crash can cut at most the last line, which
`read_records` skips. On resume, `truncate_after(step)` drops records written
after the restored checkpoint, so no step appears twice, and `remove_stale_tmp`
drops the temporary files and folders a kill left half-written.
"""

import collections
import contextlib
import ctypes
import errno
import fcntl
import gzip
import json
import math
import os
import re
import shutil
import subprocess

import numpy as np

from tf_gancond import config as config_lib

METRICS_FILE = 'metrics.jsonl'
STATUS_FILE = 'status.json'
CONFIG_FILE = 'config.txt'
LOCK_FILE = '.lock'


def _jsonable(value):
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.ndarray):
    return _jsonable(value.tolist())
  if isinstance(value, (np.floating, float)):
    v = float(value)
    return v if math.isfinite(v) else repr(v)  # JSON has no NaN / Inf.
  if isinstance(value, np.integer):
    return int(value)
  if isinstance(value, np.bool_):
    return bool(value)
  return value


def atomic_write_text(path, text):
  """Writes `text` to `path` through a temporary file beside it and a rename, so a
  reader or a kill finds the old file or the new one whole. The temporary file's name
  is this write's own (`<path>.<random hex>.tmp`): writers of one file at once (two
  `run_sweep --status` of a SLURM sweep, which take no lock) each rename a whole file,
  and the last rename wins. What a killed writer leaves in a run folder,
  `remove_stale_tmp` clears at the run's next start."""
  tmp = f'{path}.{os.urandom(8).hex()}.tmp'
  try:
    # O_EXCL: this write's own file; mode 0666 less the umask, as open() gives.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.isfile(tmp):
      os.remove(tmp)
    raise


def atomic_write_json(path, value):
  """atomic_write_text of `value` as indented JSON with sorted keys. An object JSON
  cannot hold raises before any file is touched; NaN and inf are written as Python's
  json writes them (NaN, Infinity), so records pass through _jsonable first."""
  atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True) + '\n')


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # <fcntl.h>, <linux/fs.h>


def _exchange(a, b):
  """Swaps the folders `a` and `b` in one atomic step (Linux renameat2 with
  RENAME_EXCHANGE); False where that is not available (another OS, an old C library,
  a file system without it)."""
  renameat2 = getattr(ctypes.CDLL(None, use_errno=True), 'renameat2', None)
  if renameat2 is None:
    return False
  if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
               _RENAME_EXCHANGE) == 0:
    return True
  code = ctypes.get_errno()
  # EPERM: a seccomp profile (older container runtimes) that blocks renameat2.
  if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
    return False
  raise OSError(code, os.strerror(code), b)


def replace_folder(new, path):
  """Puts the folder `new` at `path`, where a folder may already be.

  On Linux the two are exchanged in one atomic step and the old folder (now at `new`)
  is removed after, so a kill at any moment leaves a whole folder at `path`: the old
  one or the new. Without the exchange the old folder is first renamed to
  `<path>.replaced`, so a kill between the two renames leaves it whole there.
  """
  if not os.path.isdir(path):
    os.rename(new, path)
  elif _exchange(new, path):
    shutil.rmtree(new)
  else:
    aside = path + '.replaced'
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(path, aside)
    os.rename(new, path)
    shutil.rmtree(aside)


_LOCKS = {}  # realpath -> descriptor of its lock file, held until the process ends.


def lock_folder(path, flag='workdir', name=None):
  """Creates `path` if needed and locks it for the rest of this process.

  An exclusive `fcntl.flock` on `<path>/.lock`: a second process on the folder gets
  ConfigError (one line naming the folder as `name`, default `<flag>='<path>'`, and
  suggesting another --<flag>); the lock ends with the process that holds it,
  however it ends. Locking a folder this process holds again is a no-op.
  """
  key = os.path.realpath(path)
  if key in _LOCKS:
    return
  os.makedirs(path, exist_ok=True)
  fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
               0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    raise config_lib.ConfigError(
        f'{name or f"{flag}={path!r}"} is in use by another process (it holds '
        f'{LOCK_FILE} there); wait for it to end, or use another --{flag}') from None
  _LOCKS[key] = fd


def folder_in_use(path):
  """Whether a process holds `path`'s lock (see `lock_folder`) now; creates nothing.

  Takes the lock and drops it at once: a launcher starting in that microsecond
  would find the folder in use and stop with exit 2, before writing anything.
  """
  try:
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CLOEXEC)
  except FileNotFoundError:
    return False
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    return True
  finally:
    os.close(fd)  # Closing the descriptor releases a lock it took.
  return False


# Temporaries of atomic writes: ours end in .tmp; TensorFlow's checkpoint state
# file is written as `checkpoint.tmp<32 hex digits>`.
_TMP_NAME = re.compile(r'\.tmp([0-9a-f]{32})?$')


def remove_stale_tmp(folder):
  """Removes the temporary files and folders (see `_TMP_NAME`) a kill left in
  `folder` and below it, except under `workers/` (other processes' folders).

  Call it while holding the folder's lock, before the run writes anything.
  """
  for root, dirs, files in os.walk(folder):
    if root == folder and 'workers' in dirs:
      dirs.remove('workers')
    for name in [d for d in dirs if _TMP_NAME.search(d)]:
      shutil.rmtree(os.path.join(root, name))
      dirs.remove(name)
    for name in files:
      if _TMP_NAME.search(name):
        os.remove(os.path.join(root, name))


@contextlib.contextmanager
def _tensorflow_warnings_off():
  """TensorFlow's logger at ERROR for the block, then back at its level."""
  import tensorflow as tf
  tf_logger = tf.get_logger()
  level = tf_logger.level
  tf_logger.setLevel('ERROR')
  try:
    yield
  finally:
    tf_logger.setLevel(level)


def latest_checkpoint(directory):
  """The newest checkpoint its state file "checkpoint" names in `directory`, or None.

  The path is returned even when its files are gone, so that the restore fails
  loudly rather than the run silently starting over. Raises ConfigError (one line)
  when the folder holds checkpoints but the state file is missing or unreadable:
  TensorFlow alone would start the old run over.
  """
  import tensorflow as tf
  try:
    with _tensorflow_warnings_off():  # On a bad state file: the one line below.
      state = tf.train.get_checkpoint_state(directory)
  except (tf.errors.OpError, ValueError):  # Empty, without a path, or not UTF-8.
    state = None
  latest = state.model_checkpoint_path if state else None
  if not latest and tf.io.gfile.glob(os.path.join(directory, 'ckpt-*.index')):
    raise config_lib.ConfigError(
        f'{directory!r} holds checkpoints but its state file "checkpoint" is missing '
        'or unreadable; repair or move it (or use another --workdir)')
  return latest or None


def restore_checkpoint(checkpoint, directory, max_to_keep, prefer=None):
  """Restores into `checkpoint` the newest checkpoint of `prefer`, or of `directory`
  when `prefer` has none; returns the `tf.train.CheckpointManager` that saves the
  next ones in `directory`, and the path restored (None for a fresh start).

  A worker of a multi-worker run prefers the chief's folder: where the workdir is
  shared, every worker goes on from the chief's step; on hosts with their own disks
  the chief's folder is not there, and the worker's scratch checkpoints, saved at
  the chief's steps, are used.

  Raises ConfigError (one line), with nothing restored or written, for a bad state
  file (`latest_checkpoint`), or when the newest checkpoint cannot be read (gone, a
  truncated .index, or a truncated .data, which the reader reports as IndexError).
  """
  import tensorflow as tf
  latest = (prefer and latest_checkpoint(prefer)) or latest_checkpoint(directory)
  if latest:
    try:
      checkpoint.restore(latest).expect_partial()
    except (tf.errors.OpError, ValueError, IndexError) as e:
      raise config_lib.ConfigError(
          f'checkpoint {latest!r} cannot be restored '
          f'({str(e).splitlines()[0][:160]}); move it away to start afresh') from None
  with _tensorflow_warnings_off():  # State-file warnings matter for a restore: above.
    manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep)
  return manager, latest


def read_records(path_or_dir, kind=None):
  """All parseable records of a metrics file (or of `<dir>/metrics.jsonl`), gzipped
  if its name ends in .gz (a results part's compact copy)."""
  path = path_or_dir
  if os.path.isdir(path):
    path = os.path.join(path, METRICS_FILE)
  if not os.path.exists(path):
    return []
  records = []
  with (gzip.open if path.endswith('.gz') else open)(path, 'rt') as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue  # A line cut by a crash.
      if isinstance(record, dict) and (kind is None or record.get('kind') == kind):
        records.append(record)
  return records


def final_values(records):
  """The run's final values: its 'final' records at the step of the last one, merged
  in the order written (a later one adds and updates fields; a field it lacks keeps
  the earlier value, so a closing step made again never erases scores); {} if none.
  Earlier final steps belong to a run since extended and are left out."""
  finals = [r for r in records if r.get('kind') == 'final']
  merged = {}
  for record in finals:
    if record.get('step') == finals[-1].get('step'):
      merged.update(record)
  return merged


def cpu_seconds(records):
  """CPU seconds a run's processes spent, from its records; None if a start lacks it.

  Each start writes `process_cpu_seconds` (the chief process's CPU time since that
  start, all threads) into its 'train' and 'final' records; the run's time is the sum over
  starts of the last such value. The CPU of steps a kill lost (records past the
  checkpoint a resume restored, which it drops) is not counted. A start whose
  records lack the field (made by an older package) makes the total unknown: None.
  """
  segments = [[]]  # The 'train' and 'final' records of each start.
  for record in records:
    if record.get('kind') == 'start':
      segments.append([])
    elif record.get('kind') in ('train', 'final'):
      segments[-1].append(record)
  segments = [s for s in segments if s]
  if not segments or any('process_cpu_seconds' not in s[-1] for s in segments):
    return None
  return sum(s[-1]['process_cpu_seconds'] for s in segments)


# Fields added after runs were made, with the value every run made before had
# (read_config fills them in, so a resume compares them as if config.txt named it).
# Not q_num_batches: before it, Q came from each step's own pairs, which no value of
# it names; a config.txt without it is not compared on it.
ADDED_FIELDS = {'precision': 'float32', 'fd_layer': config_lib.UNRECORDED_FD_LAYER,
                'final_probe_num_z': 0, 'g_steps': 1}


def read_config(workdir):
  """{field: value} of `<workdir>/config.txt` (written by `config.to_text`), with the
  ADDED_FIELDS a config.txt older than them lacks; {} when the folder has none or a
  cut one, so there is nothing to compare against."""
  try:
    with open(os.path.join(workdir, CONFIG_FILE)) as f:
      fields = dict(config_lib.from_text(f.read()))
  except (OSError, ValueError, SyntaxError):
    return {}
  return dict(ADDED_FIELDS, **fields) if fields else {}


def read_status(workdir):
  path = os.path.join(workdir, STATUS_FILE)
  if not os.path.exists(path):
    return {}
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, OSError):
    return {}


def provenance():
  """{'commit', 'dirty', 'stack', 'tensorflow', 'keras'}: what a run starts or resumes under.

  The commit is read from the git work tree that holds this package ('' when it is
  installed from elsewhere); `dirty` says whether tracked files had changes.
  """
  from tf_gancond import stack
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  def git(*args):
    try:
      return subprocess.run(('git', '-C', root) + args, capture_output=True,
                            text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
      return None
  commit = git('rev-parse', 'HEAD')
  status = git('status', '--porcelain', '--untracked-files=no')
  return {'commit': commit or '', 'dirty': bool(status), **stack.versions()}


class RunLog:
  """Appends records to `<workdir>/metrics.jsonl` and keeps `status.json`."""

  def __init__(self, workdir, enabled=True):
    self.workdir = workdir
    self.enabled = enabled
    self.path = os.path.join(workdir, METRICS_FILE)

  def truncate_after(self, step):
    """Drops records with step > `step` (written after the restored checkpoint)."""
    if not self.enabled or not os.path.exists(self.path):
      return
    kept = [r for r in read_records(self.path) if r.get('step', 0) <= step]
    atomic_write_text(self.path, ''.join(json.dumps(r) + '\n' for r in kept))

  def append(self, kind, step, **values):
    if not self.enabled:
      return
    record = dict(_jsonable(values), kind=kind, step=int(step))
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
      f.flush()

  def set_status(self, state, step, **extra):
    if not self.enabled:
      return
    status = dict(_jsonable(extra), state=state, step=int(step))
    atomic_write_json(os.path.join(self.workdir, STATUS_FILE), status)


class Resumable(collections.namedtuple('Resumable', 'allowed when why')):
  """A field a resume may change: `allowed(old, new, config)` says whether this
  change is, `when` says so in words ('' = always), `why` is the reason."""


def _always(old, new, config):
  del old, new, config
  return True


# The fields a resume may change: those that alter no record already written and
# not what later records mean. Any other difference means the folder holds another
# experiment, and the launch is refused; among them the intervals and sample counts
# of records (probe_every, log_every, eval_every, eval_num_samples, ...: what a
# record measures, and where), export_every and export_at_steps (config.txt would
# name exports the run never made), deterministic (it would claim a reproducibility
# part of the run lacks), classifier, memorize_target_mse (when O7 checks and stops).
RESUMABLE_CHANGES = {
    'train_steps': Resumable(
        _always, '', 'extends the run (refused below the step the run reached, and '
        'when a schedule spans the run)'),
    'final_eval': Resumable(
        lambda old, new, config: new or not old, 'False -> True',
        'scores the end of the run; no record changes (turned off, the run would '
        'lose the scores its config promises)'),
    'workdir': Resumable(_always, '', 'where the run folder is (a moved folder), '
                         'not what it holds'),
    'data_dir': Resumable(_always, '', 'where TFDS reads the data from, not which data'),
    'manual_dir': Resumable(_always, '', 'where TFDS reads manual downloads from, not '
                            'which data'),
    'checkpoint_every': Resumable(_always, '', 'a resume goes on exactly from any '
                                  'checkpoint, so no record depends on their steps'),
    'max_checkpoints': Resumable(_always, '', 'how many old checkpoints stay on disk'),
    'strategy': Resumable(
        lambda old, new, config: not config.deterministic, 'non-deterministic runs',
        'the same global batches and random streams on 1 or N replicas; only the '
        'rounding of the sums differs, which a deterministic run must not'),
}
# Resumable changes that ask a finished run for more work (steps, scores); after any
# other one it stays finished.
MORE_WORK = ('train_steps', 'final_eval')


def _allowed_changes():
  """'field, field (when), ...' of RESUMABLE_CHANGES, for error messages."""
  return ', '.join(k + (f' ({r.when})' if r.when else '')
                   for k, r in sorted(RESUMABLE_CHANGES.items()))


def finished_results(config, step=None):
  """The final values of a run that finished at `step` (default: the step its
  status.json gives) under these settings (but for
  resumable changes that ask for no more work: MORE_WORK), else None: there
  is work (more train_steps, or a final evaluation turned on). Read from
  config.workdir (only the chief writes status and records), so all workers decide
  alike where it is shared; a worker on its own disk does not see that a run
  finished."""
  workdir = config.workdir
  status = read_status(workdir)
  step = status.get('step') if step is None else step
  final = final_values(read_records(workdir, 'final'))
  if status.get('state') != 'finished' or status.get('step') != step or (
      final.get('step') != step):
    return None
  recorded = read_config(workdir)
  if not recorded:
    return None
  asked = dict(config_lib.from_text(config_lib.to_text(config)))
  # As check_resumable: the fields both name (config.txt's with ADDED_FIELDS).
  if any(recorded[k] != asked[k] for k in recorded.keys() & asked.keys()
         if k not in RESUMABLE_CHANGES or k in MORE_WORK):
    return None
  return {k: v for k, v in final.items()
          if k not in ('kind', 'step', 'process_cpu_seconds')}


_CHECKPOINT_STATE = re.compile(r'^model_checkpoint_path: "(?:.*/)?ckpt-(\d+)"$', re.M)


def checkpoint_step(workdir):
  """The step of the newest checkpoint in `<workdir>/checkpoints`, or None if none.

  Read from the state file TensorFlow's CheckpointManager writes there
  ('model_checkpoint_path: "ckpt-<n>"', n the step: the loop saves with
  checkpoint_number=step), as text, so that the sweep runner needs no TensorFlow.
  """
  try:
    with open(os.path.join(workdir, 'checkpoints', 'checkpoint')) as f:
      found = _CHECKPOINT_STATE.search(f.read())
  except (OSError, UnicodeDecodeError):
    return None
  return int(found.group(1)) if found else None


def check_can_go_on(config, reached):
  """ConfigError (one line) when the run in config.workdir cannot go on to
  config.train_steps: it reached a later step (`reached`, the step of the checkpoint
  a resume starts from), or it finished and has no checkpoint (`reached` None; a
  folder restored from its records) while the launch asks it for more work."""
  status = read_status(config.workdir)
  if reached is None and status.get('state') == 'finished':
    raise config_lib.ConfigError(
        f'workdir={config.workdir!r} holds a run finished at step {status.get("step")!r}'
        ' and has no checkpoint to go on from: a start at step 0 would drop its '
        'records; use another --workdir, or its own settings to read its results')
  if reached is not None and reached > config.train_steps:
    raise config_lib.ConfigError(
        f'train_steps={config.train_steps!r} is below step {reached} that the run in '
        f'workdir={config.workdir!r} reached (its newest checkpoint); use '
        f'train_steps >= {reached}, or another --workdir')


def check_resumable(workdir, config,
                    hint='use another --workdir (or the same settings to resume)'):
  """ConfigError (one line naming every changed field with the folder's value and the
  launch's, ending with `hint`) when `workdir` holds a run made with settings that a
  resume may not change (RESUMABLE_CHANGES), or a run checkpointed under another
  train_steps whose schedule spans train_steps (a GAN's lr_decay='linear', instance
  noise annealed over the run)."""
  old = read_config(workdir)
  if not old:
    return
  new = dict(config_lib.from_text(config_lib.to_text(config)))  # As config.txt has it.
  changed = sorted(k for k in new if k in old and old[k] != new[k] and not (
      k in RESUMABLE_CHANGES and RESUMABLE_CHANGES[k].allowed(old[k], new[k], config)))
  if changed:
    raise config_lib.ConfigError(
        f'workdir={workdir!r} holds a run with other settings (its value -> this '
        f'launch\'s): {", ".join(f"{k}={old[k]!r} -> {new[k]!r}" for k in changed)}; '
        f'a resume may change only {_allowed_changes()}; {hint}')
  old_steps = old.get('train_steps', config.train_steps)
  if old_steps == config.train_steps or not os.path.exists(
      os.path.join(workdir, 'checkpoints')):
    return
  # Schedules as long as the first start's run: another train_steps would change them.
  if config.experiment == 'gan' and config.lr_decay == 'linear':
    schedule = "lr_decay='linear'"
  elif config.instance_noise > 0 and config.instance_noise_anneal_steps == -1:
    schedule = f'instance_noise={config.instance_noise!r} annealed to 0'
  else:
    return
  raise config_lib.ConfigError(
      f'workdir={workdir!r} holds a run with {schedule} over train_steps={old_steps!r};'
      f' its schedule cannot change to train_steps={config.train_steps!r} on a '
      f'resume; {hint}')
