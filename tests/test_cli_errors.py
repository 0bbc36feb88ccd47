"""Bad input at the launch CLI: one line on stderr, exit code 2, nothing touched.

Every case runs `tf_gancond.launch.run()` (the `python -m tf_gancond.launch`
entry point) with its own argv in its own process and points `--workdir` at a
copy of a finished run (a GAN run, a VAE run, or a GAN run with
lr_decay='linear'), or for FRESH_FOLDER at a new folder, and every file and
folder of the case (size, mtime, SHA-256) must be unchanged afterwards. To pay
for one TensorFlow import instead of one per case, a driver process (this file
run with `--driver`) imports the package once and forks one child per case; each
child has its own stdout/stderr files and exit code, exactly as a fresh
`python -m tf_gancond.launch` would (the parent never runs a TensorFlow op, so
forking is safe). Children run inside `tfds.testing.mock_data`, so a case that wrongly
got past the checks would train (and be caught by the unchanged-files check)
rather than fail on missing data; the cases of UNAVAILABLE_DATA run without it,
on an empty --data_dir, with TFDS's download failing as it does without network.
For the cases of FOLDER_IN_USE the driver holds the run folder's lock while the
child runs. One case also runs as a real `python -m tf_gancond.launch`
subprocess.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

import native_log

TESTS = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
ENV.pop('TF_CONFIG', None)
# A finished 2-step run; every case starts from these flags plus its own.
BASE = ['--dataset=mnist', '--batch_size=8', '--latent_dim=8',
        '--config.g_base_channels=16', '--config.d_base_channels=8',
        '--config.shuffle_buffer=16', '--probe_every=0', '--train_steps=2',
        '--log_every=1', '--checkpoint_every=2']
BASES = {'gan': BASE, 'vae': BASE + ['--experiment=vae'],
         'linear': BASE + ['--config.lr_decay=linear'],
         'noise': BASE + ['--config.instance_noise=0.1']}
NO_CLASSIFIER = '--classifier=/nonexistent/classifier'

# name -> (extra flags, text the one error line must contain). '{config}' is a
# config file prepared for the case, '{workdir}' the case's run folder.
CASES = {
    'unknown_dataset': (['--dataset=nope'], "dataset='nope'"),
    # Only --dataset and --workdir: the dataset-dependent defaults are resolved too.
    'unknown_dataset_with_defaults': ([], "dataset='nope'"),
    'unknown_loss': (['--loss=nope'], "loss='nope' is not allowed"),
    'zero_train_steps': (['--train_steps=0'], 'train_steps=0 must be > 0'),
    'negative_train_steps': (['--train_steps=-5'], 'train_steps=-5 must be > 0'),
    'zero_batch_size': (['--batch_size=0'], 'batch_size=0 must be > 0'),
    'negative_batch_size': (['--batch_size=-8'], 'batch_size=-8 must be > 0'),
    'workdir_is_a_file': ([], 'exists and is not a directory'),
    'unknown_config_field': (['--config.nope=1'], "config field 'nope' does not exist"),
    'config_value_of_wrong_type': (['--config.batch_size=abc'],
                                   "config field batch_size='abc'"),
    'unknown_flag': (['--nope=1'], 'nope'),
    # --precision is a flag of its own (README.md), not only --config.precision.
    'unknown_precision': (['--precision=float16'],
                          "precision='float16' is not allowed; choose one of: "),
    'resume_with_other_precision': (['--precision=bfloat16'],
                                    "precision='float32' -> 'bfloat16'"),
    'config_file_syntax_error': (['--config={config}'], 'has a syntax error at line 3'),
    'config_file_missing': (['--config={config}'], 'is not a file'),
    'config_path_is_a_folder': (['--config={config}'], 'is not a file'),
    'config_file_without_get_config': (['--config={config}'], 'defines no get_config()'),
    'jc_lambda_min_above_max': (['--jacobian_clamping', '--jc_lambda_min=5',
                                 '--jc_lambda_max=1'], 'jc_lambda_min=5.0'),
    'multi_worker_without_tf_config': (['--strategy=multi_worker'], 'TF_CONFIG'),
    'resume_with_other_settings': (['--loss=hinge'],
                                   "holds a run with other settings (its value -> this "
                                   "launch's): loss='non_saturating' -> 'hinge'; "),
    # Each field that changes what the records mean, named with both values.
    'resume_with_other_intervals': (['--probe_every=250', '--log_every=50'],
                                    "log_every=1 -> 50, probe_every=0 -> 250; a resume "
                                    'may change only checkpoint_every, data_dir, '
                                    'final_eval (False -> True), '),
    'corrupt_checkpoint': ([], 'cannot be restored'),
    'corrupt_checkpoint_index': ([], 'cannot be restored'),
    'corrupt_checkpoint_state': ([], 'checkpoint'),
    'config_file_import_fails': (['--config={config}'],
                                 'raised ModuleNotFoundError: No module named'),
    'config_get_config_raises': (['--config={config}'], "raised KeyError: 'nope'"),
    'eval_splits_above_eval_num_samples': (
        ['--eval_every=1', '--config.eval_num_samples=5', NO_CLASSIFIER],
        'eval_splits=10 is larger than eval_num_samples=5'),
    'eval_splits_above_final_eval_num_samples': (
        ['--config.final_eval=true', '--config.final_eval_num_samples=4', NO_CLASSIFIER],
        'eval_splits=10 is larger than final_eval_num_samples=4'),
    'final_probe_num_z_below_the_probe_batch': (
        ['--config.final_probe_num_z=2'],
        'final_probe_num_z=2 must be 0 (the probe batch) or at least probe_num_z=64'),
    'final_probe_num_z_with_batch_statistics': (
        ['--config.final_probe_num_z=128', '--config.probe_bn_mode=batch_stats'],
        "final_probe_num_z=128 needs probe_bn_mode='inference'"),
    # More train_steps: the finished run needs its data again.
    'data_unavailable': (['--data_dir={case}/no_data', '--train_steps=4'],
                         "dataset='mnist' cannot be"),
    'run_folder_in_use': ([], 'is in use by another process'),
    'linear_decay_resume_with_other_train_steps': (
        ['--train_steps=4'], "lr_decay='linear' over train_steps=2"),
    'noise_anneal_resume_with_other_train_steps': (
        ['--train_steps=4'], 'instance_noise=0.1 annealed to 0 over train_steps=2'),
    'vae_corrupt_checkpoint': ([], 'cannot be restored'),
    'vae_corrupt_checkpoint_state': ([], 'state file "checkpoint" is missing or '
                                         'unreadable'),
    'vae_data_unavailable': (['--data_dir={case}/no_data', '--train_steps=4'],
                             "dataset='mnist' cannot be"),
    'vae_run_folder_in_use': ([], 'is in use by another process'),
    # A first launch: the folder it would make is not left behind.
    'fresh_folder_data_unavailable': (['--data_dir={case}/no_data'],
                                      "dataset='mnist' cannot be"),
}
UNAVAILABLE_DATA = ('data_unavailable', 'vae_data_unavailable',
                    'fresh_folder_data_unavailable')
# Cases launched on a new folder under the case's (not a copy of a finished run, whose
# folder refuses their changed settings first): nothing may be created.
FRESH_FOLDER = ('eval_splits_above_eval_num_samples',
                'eval_splits_above_final_eval_num_samples',
                'fresh_folder_data_unavailable')
# The text of the config file of each case that passes a bad one.
CONFIG_FILE_TEXT = {
    'config_file_syntax_error':
        'from tf_gancond import config\n\ndef get_config(:\n  pass\n',
    'config_file_without_get_config': 'X = 1\n',
    'config_file_import_fails': 'import tf_gancond_no_such_module\n',
    'config_get_config_raises': 'def get_config():\n  return {}["nope"]\n',
}
FOLDER_IN_USE = ('run_folder_in_use', 'vae_run_folder_in_use')
SUBPROCESS_CASE = 'config_file_syntax_error'


def _base_of(name):
  return next((b for b in BASES if name.startswith(b + '_')), 'gan')


def _snapshot(path):
  """{relative path: (kind, size, mtime_ns, sha256)} of `path` and all below it."""
  def entry(p):
    st = os.stat(p)
    if os.path.isdir(p):
      return ('dir', 0, st.st_mtime_ns, '')
    with open(p, 'rb') as f:
      return ('file', st.st_size, st.st_mtime_ns, hashlib.sha256(f.read()).hexdigest())
  out = {'.': entry(path)}
  if os.path.isdir(path):
    for root, dirs, files in os.walk(path):
      for name in dirs + files:
        p = os.path.join(root, name)
        out[os.path.relpath(p, path)] = entry(p)
  return out


def _prepare(name, root):
  """(argv, path that must stay untouched) for case `name` under `root`."""
  flags, _ = CASES[name]
  base = _base_of(name)
  case_dir = os.path.join(root, name)
  os.makedirs(case_dir)
  workdir = os.path.join(case_dir, 'run')
  # copy2: sizes, contents and mtimes kept.
  shutil.copytree(os.path.join(root, f'base_{base}'), workdir)
  config = os.path.join(case_dir, 'config.py')
  if name in CONFIG_FILE_TEXT:
    with open(config, 'w') as f:
      f.write(CONFIG_FILE_TEXT[name])
  elif name == 'config_path_is_a_folder':
    os.makedirs(config)
  elif name == 'workdir_is_a_file':
    shutil.rmtree(workdir)
    with open(workdir, 'w') as f:
      f.write('not a run folder\n')
  elif name.endswith(('corrupt_checkpoint', 'corrupt_checkpoint_index')):
    suffix = 'index' if name.endswith('index') else 'data-00000-of-00001'
    path = os.path.join(workdir, 'checkpoints', f'ckpt-2.{suffix}')
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 2)
  elif name.endswith('corrupt_checkpoint_state'):
    with open(os.path.join(workdir, 'checkpoints', 'checkpoint'), 'w') as f:
      f.write('model_checkpoint_path: "ckpt-2\n')  # Unterminated string.
  if name in UNAVAILABLE_DATA:
    os.makedirs(os.path.join(case_dir, 'no_data'))
  if name in FRESH_FOLDER:
    shutil.rmtree(workdir)
  base_flags = (['--dataset=nope'] if name == 'unknown_dataset_with_defaults' else
                BASES[base])
  argv = base_flags + [f'--workdir={workdir}'] + [
      a.format(config=config, workdir=workdir, case=case_dir) for a in flags]
  return argv, case_dir


def _no_network(*args, **kwargs):
  raise ConnectionError('no network')


def _run_launch_in_child(argv, out_prefix, mock=True):
  """Forks; the child runs the launcher on argv (inside `tfds.testing.mock_data`,
  or with TFDS downloads failing when not `mock`). Returns its exit code."""
  pid = os.fork()
  if pid == 0:  # Child.
    code = 70
    try:
      for fd, suffix in ((1, '.out'), (2, '.err')):
        out = os.open(out_prefix + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, fd)
        os.close(out)
      import tensorflow_datasets as tfds
      from tf_gancond import launch
      sys.argv = ['launch'] + argv
      if mock:
        with tfds.testing.mock_data(num_examples=32):
          launch.run()
      else:
        tfds.core.DatasetBuilder.download_and_prepare = _no_network
        launch.run()
      code = 0
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: B036 - report any crash as the exit code 1.
      import traceback
      traceback.print_exc()
      code = 1
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(code)
  _, status = os.waitpid(pid, 0)
  return os.waitstatus_to_exitcode(status)


def _driver(root, result_path):
  """Creates the base runs, then runs every case; writes the results as JSON."""
  import fcntl
  import tensorflow  # noqa: F401 - imported once, before the forks.
  import tensorflow_datasets  # noqa: F401
  from tf_gancond import launch  # noqa: F401
  from tf_gancond import runlog
  from tf_gancond import train  # noqa: F401
  results = {'base_exit': {}, 'base_files': {}, 'base_stderr': {}, 'cases': {}}
  for base, flags in BASES.items():
    base_run = os.path.join(root, f'base_{base}')
    results['base_exit'][base] = _run_launch_in_child(flags + [f'--workdir={base_run}'],
                                                      base_run)
    results['base_files'][base] = (sorted(_snapshot(base_run))
                                   if os.path.isdir(base_run) else [])
    results['base_stderr'][base] = open(base_run + '.err').read()[-3000:]
  if set(results['base_exit'].values()) == {0}:
    for name in CASES:
      argv, case_dir = _prepare(name, root)
      lock = None
      if name in FOLDER_IN_USE:  # Another process's lock: not this package's registry.
        lock = open(os.path.join(case_dir, 'run', runlog.LOCK_FILE), 'a')
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
      before = _snapshot(case_dir)
      prefix = os.path.join(root, name)
      exit_code = _run_launch_in_child(argv, prefix, mock=name not in UNAVAILABLE_DATA)
      if lock is not None:
        lock.close()
      results['cases'][name] = {
          'argv': argv, 'exit': exit_code,
          'stdout': open(prefix + '.out').read(), 'stderr': open(prefix + '.err').read(),
          'unchanged': before == _snapshot(case_dir)}
  with open(result_path, 'w') as f:
    json.dump(results, f)


@pytest.fixture(scope='module')
def results(tmp_path_factory):
  root = tmp_path_factory.mktemp('cli_errors')
  result_path = root / 'results.json'
  proc = subprocess.run([sys.executable, __file__, '--driver', str(root),
                         str(result_path)], capture_output=True, text=True,
                        timeout=900, env=ENV, cwd=os.path.dirname(TESTS))
  assert proc.returncode == 0 and result_path.exists(), proc.stderr[-3000:]
  out = json.loads(result_path.read_text())
  for base in BASES:
    assert out['base_exit'][base] == 0, out['base_stderr'][base]
    assert 'checkpoints/ckpt-2.index' in out['base_files'][base]
  out['root'] = str(root)
  return out


@pytest.mark.parametrize('name', sorted(CASES))
def test_bad_input_is_one_line_exit_2_nothing_touched(results, name):
  r = results['cases'][name]
  _, expected = CASES[name]
  lines = native_log.package_lines(r['stderr'])
  assert r['exit'] == 2, r['stderr'][-3000:]
  assert len(lines) == 1, r['stderr'][-3000:]
  assert lines[0].startswith('error: ') and expected in lines[0], lines[0]
  if name in FOLDER_IN_USE:
    workdir = next(a for a in r['argv'] if a.startswith('--workdir='))
    assert repr(workdir[len('--workdir='):]) in lines[0], lines[0]
  assert r['stdout'] == ''
  assert r['unchanged'], 'the pre-existing run folder was modified'


def test_launch_subprocess_reports_the_same(results):
  """The real `python -m tf_gancond.launch` gives the forked child's answer."""
  r = results['cases'][SUBPROCESS_CASE]
  proc = subprocess.run([sys.executable, '-m', 'tf_gancond.launch', *r['argv']],
                        capture_output=True, text=True, timeout=120, env=ENV)
  assert proc.returncode == 2
  assert native_log.package_lines(proc.stderr) == native_log.package_lines(r['stderr'])
  assert proc.stdout == ''


if __name__ == '__main__':
  if sys.argv[1:2] == ['--driver']:
    sys.path.insert(0, os.path.dirname(TESTS))
    _driver(sys.argv[2], sys.argv[3])
