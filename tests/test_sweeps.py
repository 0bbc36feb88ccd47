"""Sweep expansion and the local runner: skip/resume, failure isolation, bad input.

Most runner tests inject a fake launcher (a small Python script that writes the
per-run files the real one writes); one test runs the real tf_gancond.launch on a
tiny synthetic-data run.
"""

import io
import json
import re
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

# launch/ is a top-level directory of the repository, not part of the installed
# package: put the repository root on the path (pytest puts only tests/ there).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from launch import run_sweep  # noqa: E402
from launch import sweeps  # noqa: E402
from tf_gancond import runlog  # noqa: E402

REPO_ROOT = sweeps.REPO_ROOT

# Behaviour per run name from a JSON file: ok (default) | diverge | stop | crash |
# early (finishes one step short, as a memorizing G that reached its target does) |
# slow (holds its folder 2 s first).
# It locks the run folder (exit 2 when another process holds it), logs "<run name>
# <start step>" to calls.log beside the behaviour file, resumes from the last step in
# metrics.jsonl, and writes config.txt, status.json and the final record, as the real
# launcher does.
FAKE_LAUNCHER = textwrap.dedent('''
    import json, os, sys
    from tf_gancond import config as config_lib
    from tf_gancond import launch
    from tf_gancond import runlog
    behaviour_file = sys.argv[1]
    args = dict(a[2:].split('=', 1) for a in sys.argv[2:] if a.startswith('--'))
    workdir = args['config.workdir']
    try:
      runlog.lock_folder(workdir)
    except config_lib.ConfigError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
    if json.load(open(behaviour_file)).get(os.path.basename(workdir)) == 'slow':
      import time
      time.sleep(2)
    steps = int(args['config.train_steps'])
    config = launch.build_config(args['config'], {
        k[len('config.'):]: v for k, v in args.items() if k.startswith('config.')}, {})
    with open(os.path.join(workdir, 'config.txt'), 'w') as f:
      f.write(config_lib.to_text(config))
    name = os.path.basename(workdir)
    what = json.load(open(behaviour_file)).get(name, 'ok')
    metrics = os.path.join(workdir, 'metrics.jsonl')
    start = 0
    if os.path.exists(metrics):
      start = max(json.loads(l)['step'] for l in open(metrics) if l.strip())
    with open(os.path.join(os.path.dirname(behaviour_file), 'calls.log'), 'a') as f:
      f.write(f'{name} {start}\\n')
    print('I0000 some absl log line', file=sys.stderr)
    def status(state, step):
      with open(os.path.join(workdir, 'status.json'), 'w') as f:
        json.dump({'state': state, 'step': step}, f)
    def checkpoint(step):  # Only TensorFlow's state file, naming ckpt-<step>.
      os.makedirs(os.path.join(workdir, 'checkpoints'), exist_ok=True)
      with open(os.path.join(workdir, 'checkpoints', 'checkpoint'), 'w') as f:
        f.write(f'model_checkpoint_path: "ckpt-{step}"\\n')
    if what == 'diverge':
      status('diverged', start + 1)
      print('error: run diverged: non-finite d_loss at step 2', file=sys.stderr)
      sys.exit(3)
    if what == 'stop':
      checkpoint(start + 1)
      status('stopped', start + 1)
      print(f'stopped: SIGTERM at step {start + 1}, checkpointed', file=sys.stderr)
      sys.exit(4)
    if what == 'crash':
      print('Traceback (most recent call last):', file=sys.stderr)
      print('RuntimeError: boom', file=sys.stderr)
      sys.exit(1)
    end = steps - 1 if what == 'early' else steps
    with open(metrics, 'a') as f:
      for step in range(start + 1, end + 1):
        f.write(json.dumps({'kind': 'train', 'step': step, 'd_loss': 1.0}) + '\\n')
      f.write(json.dumps({'kind': 'final', 'step': end, 'score': 1.0}) + '\\n')
    checkpoint(end)
    status('finished', end)
    print('finished:', workdir)
''')


@pytest.fixture
def fake(tmp_path):
  """(launcher command, behaviour setter, calls reader)."""
  script = tmp_path / 'fake_launch.py'
  script.write_text(FAKE_LAUNCHER)
  behaviour = tmp_path / 'behaviour.json'
  behaviour.write_text('{}')

  def set_behaviour(mapping):
    behaviour.write_text(json.dumps(mapping))

  def calls():
    path = tmp_path / 'calls.log'
    return path.read_text().split('\n')[:-1] if path.exists() else []

  return [sys.executable, str(script), str(behaviour)], set_behaviour, calls


def _runner(runs, sweep_dir, launcher, parallel=2, extra=None, name='fashion_mnist_quick'):
  return run_sweep.SweepRunner(name, runs, str(sweep_dir), parallel=parallel,
                               extra=extra or {'train_steps': '3'}, launcher=launcher,
                               poll_seconds=0.05, out=io.StringIO())


def _sweep_status(sweep_dir):
  return json.load(open(os.path.join(sweep_dir, run_sweep.STATUS_FILE)))['runs']


# ----------------------------------------------------------------------------
# Expansion.


def test_odena_jc_expands_seeds_times_settings():
  runs = sweeps.odena_jc('cifar10', num_seeds=10)
  assert len(runs) == 20
  assert len({r.name for r in runs}) == 20
  by_setting = {}
  for r in runs:
    by_setting.setdefault(r.setting, []).append(r.seed)
    assert r.overrides['dataset'] == 'cifar10' and r.overrides['seed'] == r.seed
  assert by_setting == {'baseline': list(range(10)), 'jacobian_clamping': list(range(10))}
  assert {r.config for r in runs if r.setting == 'jacobian_clamping'} == {
      'configs/o5_jacobian_clamping.py'}


def test_every_sweep_resolves_to_valid_configs(tmp_path):
  for name in sweeps.SWEEPS:
    runs = sweeps.get_sweep(name, num_seeds=2)
    settings = {r.setting for r in runs}
    assert len(runs) == 2 * len(settings)
    workdirs = set()
    for r in runs:
      workdir = str(tmp_path / name / r.name)
      config = run_sweep.resolve_run_config(r, {}, workdir)
      assert config.seed == r.seed and config.workdir == workdir
      for field, value in r.overrides.items():
        assert config[field] == value, (name, field)
      workdirs.add(workdir)
    assert len(workdirs) == len(runs)


def test_config_files_set_their_experiment():
  jc = {r.setting: run_sweep.resolve_run_config(r, {}, '/tmp/x')
        for r in sweeps.odena_jc('mnist', 1)}
  assert not jc['baseline'].jacobian_clamping and jc['jacobian_clamping'].jacobian_clamping
  assert (jc['jacobian_clamping'].jc_lambda_max, jc['jacobian_clamping'].jc_lambda_min,
          jc['jacobian_clamping'].jc_epsilon) == (20.0, 1.0, 1.0)
  for key in jc['baseline'].keys():  # "Hold everything else the same."
    if key not in ('jacobian_clamping',):
      assert jc['baseline'][key] == jc['jacobian_clamping'][key], key
  quick = sweeps.get_sweep('fashion_mnist_quick')
  assert len(quick) == 6
  config = run_sweep.resolve_run_config(quick[1], {}, '/tmp/x')
  assert config.dataset == 'fashion_mnist' and config.jacobian_clamping
  o4 = run_sweep.resolve_run_config(sweeps.o4_missing_modes(1)[0], {}, '/tmp/x')
  assert o4.num_missing_mode_samples == 360 and o4.final_eval and not o4.eval_every
  assert config.final_eval


def test_unknown_sweep_and_bad_seed_count():
  with pytest.raises(sweeps.SweepError, match="sweep='nope'"):
    sweeps.get_sweep('nope')
  with pytest.raises(sweeps.SweepError, match='num_seeds=0'):
    sweeps.get_sweep('odena_jc_mnist', num_seeds=0)


def test_parse_extra():
  assert run_sweep.parse_extra('train_steps=5, export_at_steps=1,10,25') == {
      'train_steps': '5', 'export_at_steps': '1,10,25'}
  assert run_sweep.parse_extra('') == {}
  for bad, message in (('train_steps', 'FIELD=VALUE'), ('nope=1', "'nope'"),
                       ('train_steps=abc', 'train_steps'), ('seed=3', 'set by the sweep')):
    with pytest.raises(sweeps.SweepError, match=message):
      run_sweep.parse_extra(bad)


def test_setting_extra_overrides_one_setting_only():
  runs = sweeps.get_sweep('odena_jc_fashion_mnist', num_seeds=2)
  plain = {r.name: dict(r.overrides) for r in runs}
  run_sweep.apply_setting_extra(
      runs, 'jacobian_clamping:jc_lambda_min=1.3,jc_lambda_max=3.7')
  for r in runs:
    if r.setting == 'jacobian_clamping':
      assert r.overrides == dict(plain[r.name], jc_lambda_min='1.3', jc_lambda_max='3.7')
      config = run_sweep.resolve_run_config(r, {}, '/tmp/x')
      assert (config.jc_lambda_min, config.jc_lambda_max) == (1.3, 3.7)
    else:  # The baselines stay those of the plain sweep (finished ones are reused).
      assert r.overrides == plain[r.name]


@pytest.mark.parametrize('text,message', [
    ('jc_lambda_min=1.3', "--setting_extra='jc_lambda_min=1.3' is not SETTING:FIELD=VALUE"),
    ('vae:jc_lambda_min=1.3', "setting 'vae' is not in this sweep; its settings: "
                              'baseline, jacobian_clamping'),
    ('jacobian_clamping:nope=1', "'nope'"),
    ('jacobian_clamping:seed=1', 'set by the sweep'),
])
def test_setting_extra_bad_input(text, message):
  runs = sweeps.get_sweep('odena_jc_fashion_mnist', num_seeds=1)
  with pytest.raises(sweeps.SweepError, match=re.escape(message)):
    run_sweep.apply_setting_extra(runs, text)


def test_command_line_of_a_run():
  run = sweeps.fashion_mnist_quick(1)[1]
  cmd = run_sweep.build_command(run, '/s/jc', {'train_steps': '9'}, ('L',))
  assert cmd == ['L', f'--config={REPO_ROOT}/configs/quick.py',
                 '--config.dataset=fashion_mnist', '--config.jacobian_clamping=true',
                 '--config.seed=0',
                 '--config.train_steps=9', '--config.workdir=/s/jc']


# ----------------------------------------------------------------------------
# The runner with a fake launcher.


def test_a_run_stopped_by_sigterm_is_recorded_as_stopped_and_resumed_next_time(
    tmp_path, fake):
  """Exit 4 (checkpointed at a step boundary) is no failure: the next invocation
  resumes the run."""
  launcher, set_behaviour, calls = fake
  set_behaviour({'baseline_seed0': 'stop'})
  runs = sweeps.fashion_mnist_quick(num_seeds=1)[:1]
  status = _runner(runs, tmp_path / 'sweep', launcher).run()
  assert status['baseline_seed0']['state'] == 'stopped'
  assert status['baseline_seed0']['exit_code'] == 4
  assert status['baseline_seed0']['reason'] == (
      'stopped: SIGTERM at step 1, checkpointed')
  set_behaviour({})
  status = _runner(runs, tmp_path / 'sweep', launcher).run()
  assert status['baseline_seed0']['state'] == 'finished'
  assert calls() == ['baseline_seed0 0', 'baseline_seed0 0']


def test_failed_runs_are_recorded_and_the_sweep_goes_on(tmp_path, fake):
  launcher, set_behaviour, calls = fake
  set_behaviour({'jacobian_clamping_seed0': 'diverge', 'baseline_seed1': 'crash'})
  runs = sweeps.fashion_mnist_quick(num_seeds=2)
  runner = _runner(runs, tmp_path / 'sweep', launcher)
  status = runner.run()
  assert {n: s['state'] for n, s in status.items()} == {
      'baseline_seed0': 'finished', 'jacobian_clamping_seed0': 'diverged',
      'baseline_seed1': 'failed', 'jacobian_clamping_seed1': 'finished'}
  on_disk = _sweep_status(tmp_path / 'sweep')
  assert on_disk['jacobian_clamping_seed0']['exit_code'] == 3
  assert on_disk['jacobian_clamping_seed0']['reason'] == (
      'error: run diverged: non-finite d_loss at step 2')
  assert on_disk['baseline_seed1']['reason'] == 'RuntimeError: boom'
  assert on_disk['baseline_seed0']['step'] == 3
  assert sorted(calls()) == sorted(f'{r.name} 0' for r in runs)
  assert '2/4 finished' in runner.summary() and 'not finished' in runner.summary()
  manifest = json.load(open(tmp_path / 'sweep' / run_sweep.MANIFEST_FILE))
  assert manifest['sweep'] == 'fashion_mnist_quick'
  assert [r['name'] for r in manifest['runs']] == [r.name for r in runs]
  assert manifest['runs'][1]['command'][-1] == (
      f'--config.workdir={tmp_path}/sweep/jacobian_clamping_seed0')
  progress = runner.out.getvalue()
  assert '4/4 done (2 failed)' in progress and 'ETA' in progress


def test_rerun_skips_finished_and_retries_failed(tmp_path, fake):
  launcher, set_behaviour, calls = fake
  runs = sweeps.fashion_mnist_quick(num_seeds=2)
  set_behaviour({'baseline_seed1': 'crash'})
  _runner(runs, tmp_path / 'sweep', launcher).run()
  set_behaviour({})
  status = _runner(runs, tmp_path / 'sweep', launcher, parallel=1).run()
  assert all(s['state'] == 'finished' for s in status.values())
  assert calls().count('baseline_seed1 0') == 2  # Retried.
  assert calls().count('baseline_seed0 0') == 1  # Skipped the second time.
  assert status['baseline_seed1']['attempts'] == 2
  assert status['baseline_seed0']['note'] == 'finished earlier; skipped'
  # Longer runs asked for: the finished runs resume from their last step.
  _runner(runs[:1], tmp_path / 'sweep', launcher, extra={'train_steps': '5'}).run()
  assert calls()[-1] == 'baseline_seed0 3'


def test_finished_runs_linked_into_another_sweep_are_reused(tmp_path, fake):
  """Phase 2's second half: the baselines of a finished sweep, linked into a new
  folder, are skipped there while JC runs with other lambdas are made beside them."""
  launcher, _, calls = fake
  _runner(sweeps.fashion_mnist_quick(num_seeds=2), tmp_path / 'first', launcher).run()
  (tmp_path / 'second').mkdir()
  for seed in (0, 1):
    os.symlink(tmp_path / 'first' / f'baseline_seed{seed}',
               tmp_path / 'second' / f'baseline_seed{seed}')
  runs = sweeps.fashion_mnist_quick(num_seeds=2)
  run_sweep.apply_setting_extra(runs, 'jacobian_clamping:jc_lambda_max=4')
  before = len(calls())
  status = _runner(runs, tmp_path / 'second', launcher).run()
  assert sorted(calls()[before:]) == ['jacobian_clamping_seed0 0',
                                      'jacobian_clamping_seed1 0']
  assert all(s['state'] == 'finished' for s in status.values())
  assert status['baseline_seed0']['note'] == 'finished earlier; skipped'


def test_interrupted_run_is_resumed(tmp_path, fake):
  launcher, _, calls = fake
  runs = sweeps.fashion_mnist_quick(num_seeds=1)[:1]
  workdir = tmp_path / 'sweep' / runs[0].name
  workdir.mkdir(parents=True)
  (workdir / 'metrics.jsonl').write_text(
      ''.join(json.dumps({'kind': 'train', 'step': s}) + '\n' for s in (1, 2)))
  (workdir / 'status.json').write_text(json.dumps({'state': 'running', 'step': 2}))
  status = _runner(runs, tmp_path / 'sweep', launcher).run()
  assert calls() == ['baseline_seed0 2']
  assert status['baseline_seed0']['resumed_from'] == 2
  steps = [json.loads(l)['step'] for l in open(workdir / 'metrics.jsonl')
           if json.loads(l)['kind'] == 'train']
  assert steps == [1, 2, 3]


def test_a_run_whose_folder_is_in_use_waits_for_it(tmp_path, fake):
  """A launcher of a killed runner still checkpointing holds its run folder: the new
  runner starts that run once the folder is free (its launcher would exit 2), and
  leaves its logs alone until then."""
  launcher, _, calls = fake
  runs = sweeps.fashion_mnist_quick(num_seeds=1)
  workdir = tmp_path / 'sweep' / runs[0].name
  workdir.mkdir(parents=True)
  (workdir / run_sweep.STDOUT_FILE).write_text('the old launcher is stopping\n')
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from tf_gancond import runlog; '
       'runlog.lock_folder(sys.argv[1]); print("locked", flush=True); time.sleep(2)',
       str(workdir)], stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    runner = _runner(runs, tmp_path / 'sweep', launcher)
    status = runner.run()
  finally:
    holder.kill()
    holder.wait()
  assert {n: (s['state'], s['attempts']) for n, s in status.items()} == {
      r.name: ('finished', 1) for r in runs}
  assert sorted(calls()) == sorted(f'{r.name} 0' for r in runs)
  assert f'{runs[0].name}: its folder is in use by another process; waiting' in (
      runner.out.getvalue())


def test_a_run_finished_by_the_process_that_held_its_folder_is_skipped(tmp_path, fake):
  """A launch by hand holds the folder and finishes the run while the runner waits:
  the runner then skips it rather than launch it again."""
  launcher, set_behaviour, calls = fake
  runs = sweeps.fashion_mnist_quick(num_seeds=1)[:1]
  workdir = tmp_path / 'sweep' / runs[0].name
  workdir.mkdir(parents=True)
  set_behaviour({runs[0].name: 'slow'})
  by_hand = subprocess.Popen(
      run_sweep.build_command(runs[0], str(workdir), {'train_steps': '3'}, launcher),
      cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=REPO_ROOT))
  try:
    deadline = time.time() + 60
    while not runlog.folder_in_use(str(workdir)) and time.time() < deadline:
      time.sleep(0.05)
    status = _runner(runs, tmp_path / 'sweep', launcher).run()
  finally:
    by_hand.wait(timeout=60)
  assert status[runs[0].name]['state'] == 'finished'
  assert status[runs[0].name]['note'] == 'finished by another process; skipped'
  assert calls() == [f'{runs[0].name} 0']


def _files(path):
  """{relative path: bytes} of every file under `path`."""
  return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob('*'))
          if p.is_file()}


def test_a_run_that_finished_before_its_train_steps_is_skipped(tmp_path, fake):
  """An O7 memorizing G stops once memorized, short of train_steps: finished, so a
  second invocation (and its dry run) leaves it alone."""
  launcher, set_behaviour, calls = fake
  runs = sweeps.fashion_mnist_quick(num_seeds=1)[:1]
  set_behaviour({'baseline_seed0': 'early'})
  status = _runner(runs, tmp_path / 'sweep', launcher).run()
  assert (status['baseline_seed0']['state'], status['baseline_seed0']['step']) == (
      'finished', 2)
  status = _runner(runs, tmp_path / 'sweep', launcher).run()
  assert status['baseline_seed0']['note'] == 'finished earlier; skipped'
  assert calls() == ['baseline_seed0 0']
  runner = _runner(runs, tmp_path / 'sweep', launcher)
  runner.dry_run()
  assert '# baseline_seed0: finished, would be skipped' in runner.out.getvalue()


def test_final_eval_turned_on_for_a_finished_run_launches_it_again(tmp_path, fake):
  """final_eval False -> True asks a finished run for its scores: the launcher must
  run (it resumes at the last step and scores it); the same settings again skip."""
  launcher, _, calls = fake
  runs = sweeps.fashion_mnist_quick(num_seeds=1)[:1]
  _runner(runs, tmp_path / 'sweep', launcher,
          extra={'train_steps': '3', 'final_eval': 'false'}).run()
  _runner(runs, tmp_path / 'sweep', launcher,
          extra={'train_steps': '3', 'final_eval': 'true'}).run()
  assert calls() == ['baseline_seed0 0', 'baseline_seed0 3']
  _runner(runs, tmp_path / 'sweep', launcher,
          extra={'train_steps': '3', 'final_eval': 'true'}).run()
  assert len(calls()) == 2


def test_fewer_train_steps_than_a_run_reached_are_refused_before_writing(
    tmp_path, fake):
  """train_steps below a run's newest checkpoint, or more train_steps for a finished
  run without checkpoints (restored from its records), would make every launcher
  exit 2: the runner refuses first, with the run, the values and what is allowed, and
  writes nothing (not sweep.json, not the run's logs)."""
  launcher, set_behaviour, calls = fake
  runs = sweeps.fashion_mnist_quick(num_seeds=1)[:1]
  sweep_dir = tmp_path / 'sweep'
  set_behaviour({'baseline_seed0': 'stop'})
  _runner(runs, sweep_dir, launcher).run()  # Stopped at step 1, checkpointed.
  set_behaviour({})
  _runner(runs, sweep_dir, launcher).run()  # Finished at step 3.
  before = _files(sweep_dir)
  with pytest.raises(sweeps.SweepError,
                     match=r'run baseline_seed0: train_steps=2 is below step 3 .*'
                     r'use train_steps >= 3'):
    _runner(runs, sweep_dir, launcher, extra={'train_steps': '2'})
  assert _files(sweep_dir) == before
  for path in (sweep_dir / 'baseline_seed0' / 'checkpoints').iterdir():
    path.unlink()
  (sweep_dir / 'baseline_seed0' / 'checkpoints').rmdir()
  before = _files(sweep_dir)
  with pytest.raises(sweeps.SweepError,
                     match=r'run baseline_seed0: .*finished at step 3 and has no '
                     'checkpoint to go on from'):
    _runner(runs, sweep_dir, launcher, extra={'train_steps': '5'})
  assert _files(sweep_dir) == before
  status = _runner(runs, sweep_dir, launcher).run()  # Its own settings: skipped.
  assert status['baseline_seed0']['note'] == 'finished earlier; skipped'
  assert len(calls()) == 2


def test_extra_that_changes_a_finished_run_is_refused(tmp_path, fake):
  """A finished run skipped under other settings would mix two experiments in one
  sweep: refused before anything is written; more train_steps (an extension) pass."""
  from tf_gancond import config as config_lib
  launcher, _, calls = fake
  runs = sweeps.fashion_mnist_quick(num_seeds=1)[:1]
  sweep_dir = tmp_path / 'sweep'
  _runner(runs, sweep_dir, launcher).run()
  workdir = str(sweep_dir / runs[0].name)
  config = run_sweep.resolve_run_config(runs[0], {'train_steps': '3'}, workdir)
  runlog.atomic_write_text(os.path.join(workdir, runlog.CONFIG_FILE),
                           config_lib.to_text(config))  # As the launcher writes it.
  before = _files(sweep_dir)
  with pytest.raises(sweeps.SweepError,
                     match=f"run {runs[0].name}: .*loss='non_saturating' -> 'hinge'"):
    _runner(runs, sweep_dir, launcher, extra={'train_steps': '3', 'loss': 'hinge'})
  assert _files(sweep_dir) == before
  _runner(runs, sweep_dir, launcher, extra={'train_steps': '5'}).run()
  assert calls() == [f'{runs[0].name} 0', f'{runs[0].name} 3']


def test_unreadable_manifest_is_refused(tmp_path, fake):
  launcher, _, calls = fake
  runs = sweeps.fashion_mnist_quick(num_seeds=1)
  sweep_dir = tmp_path / 'sweep'
  sweep_dir.mkdir()
  for text in ('{"sweep": "fashion_mn', '["fashion_mnist_quick"]'):
    (sweep_dir / run_sweep.MANIFEST_FILE).write_text(text)
    before = _files(sweep_dir)
    for start in (lambda r: r.run(), lambda r: r.dry_run()):
      with pytest.raises(sweeps.SweepError, match=f'{run_sweep.MANIFEST_FILE}.* cannot'):
        start(_runner(runs, sweep_dir, launcher))
      assert _files(sweep_dir) == before
  assert calls() == []


def test_sweep_dir_of_another_sweep_is_refused(tmp_path, fake):
  launcher, _, _ = fake
  runs = sweeps.fashion_mnist_quick(num_seeds=1)
  _runner(runs, tmp_path / 's', launcher, name='fashion_mnist_quick').dry_run()
  with pytest.raises(sweeps.SweepError, match="holds sweep 'fashion_mnist_quick'"):
    _runner(runs, tmp_path / 's', launcher, name='other').run()
  with pytest.raises(sweeps.SweepError, match='parallel=0'):
    _runner(runs, tmp_path / 't', launcher, parallel=0)


# ----------------------------------------------------------------------------
# The command line.


def _cli(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, '-m', 'launch.run_sweep', *args],
                        capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                        timeout=120)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
  a_file = tmp_path / 'file'
  a_file.write_text('x')
  cases = [
      (['--sweep=nope', f'--sweep_dir={tmp_path}/s'], "sweep='nope'"),
      (['--sweep=fashion_mnist_quick', f'--sweep_dir={a_file}'], 'not a directory'),
      (['--sweep=fashion_mnist_quick', f'--sweep_dir={tmp_path}/s', '--extra=bogus=1'],
       "'bogus'"),
  ]
  for args, message in cases:
    result = _cli(*args)
    assert result.returncode == 2, (args, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
  assert not (tmp_path / 's').exists()


def test_cli_setting_extra_reaches_the_commands_and_the_manifest(tmp_path):
  result = _cli('--sweep=odena_jc_mnist', f'--sweep_dir={tmp_path}/s', '--num_seeds=1',
                '--dry_run', '--setting_extra=jacobian_clamping:jc_lambda_max=4')
  assert result.returncode == 0, result.stderr
  manifest = json.load(open(tmp_path / 's' / run_sweep.MANIFEST_FILE))
  assert manifest['setting_extra'] == {'jacobian_clamping': {'jc_lambda_max': '4'}}
  commands = {r['setting']: r['command'] for r in manifest['runs']}
  assert '--config.jc_lambda_max=4' in commands['jacobian_clamping']
  assert not any('jc_lambda_max' in c for c in commands['baseline'])


@pytest.mark.parametrize('backend', ['local', 'slurm'])
def test_cli_a_field_in_both_extra_and_setting_extra_is_refused(tmp_path, backend):
  """--extra would silently win over --setting_extra for that setting's runs: refused,
  one line naming the field and both values, exit 2, nothing written."""
  result = _cli('--sweep=odena_jc_mnist', f'--sweep_dir={tmp_path}/s', '--num_seeds=1',
                '--dry_run', f'--backend={backend}',
                '--extra=train_steps=7,jc_lambda_max=3',
                '--setting_extra=jacobian_clamping:jc_lambda_max=4,jc_lambda_min=2')
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert lines == [
      'error: jc_lambda_max is given in both --extra (jc_lambda_max=3) and '
      '--setting_extra (jacobian_clamping:jc_lambda_max=4); give each field in one of '
      'them (--extra for every run, --setting_extra for the runs of jacobian_clamping)'
  ], result.stderr
  assert not (tmp_path / 's').exists()


def test_cli_dry_run_writes_manifest_only(tmp_path):
  result = _cli('--sweep=odena_jc_mnist', f'--sweep_dir={tmp_path}/s', '--num_seeds=2',
                '--dry_run', '--extra=train_steps=7')
  assert result.returncode == 0, result.stderr
  manifest = json.load(open(tmp_path / 's' / run_sweep.MANIFEST_FILE))
  assert len(manifest['runs']) == 4 and manifest['extra'] == {'train_steps': '7'}
  assert all(r['train_steps'] == 7 for r in manifest['runs'])
  assert result.stdout.count('-m tf_gancond.launch') == 4
  assert sorted(os.listdir(tmp_path / 's')) == sorted(
      [run_sweep.MANIFEST_FILE, runlog.LOCK_FILE])


# ----------------------------------------------------------------------------
# One real tiny run through tf_gancond.launch.


def test_real_tiny_run_then_skip(tmp_path):
  runs = sweeps.fashion_mnist_quick(num_seeds=1)[:1]
  extra = run_sweep.parse_extra(
      'synthetic_data=true,train_steps=2,batch_size=8,g_base_channels=16,'
      'd_base_channels=8,latent_dim=8,probe_every=0,log_every=1,sample_grid=4,'
      'final_eval=false')  # No scores: they would need the trained classifier.
  out = io.StringIO()
  runner = run_sweep.SweepRunner('fashion_mnist_quick', runs, str(tmp_path / 's'),
                                 extra=extra, poll_seconds=0.2, out=out)
  status = runner.run()
  workdir = tmp_path / 's' / 'baseline_seed0'
  assert status['baseline_seed0']['state'] == 'finished', (
      workdir / run_sweep.STDERR_FILE).read_text()[-2000:]
  assert json.load(open(workdir / 'status.json'))['state'] == 'finished'
  assert status['baseline_seed0']['step'] == 2
  assert 'finished:' in (workdir / run_sweep.STDOUT_FILE).read_text()
  mtime = os.path.getmtime(workdir / run_sweep.STDOUT_FILE)
  again = run_sweep.SweepRunner('fashion_mnist_quick', runs, str(tmp_path / 's'),
                                extra=extra, out=io.StringIO()).run()
  assert again['baseline_seed0']['note'] == 'finished earlier; skipped'
  assert os.path.getmtime(workdir / run_sweep.STDOUT_FILE) == mtime


def test_sigterm_stops_the_running_launchers(tmp_path):
  """The runner passes SIGTERM on to its launchers and marks them interrupted."""
  sleeper = tmp_path / 'sleeper.py'
  sleeper.write_text(textwrap.dedent(f'''
      import os, sys, time
      open(os.path.join({str(tmp_path)!r}, f'pid.{{os.getpid()}}'), 'w').close()
      time.sleep(120)
  '''))
  script = textwrap.dedent(f'''
      import signal, sys
      sys.path.insert(0, {REPO_ROOT!r})
      from launch import run_sweep, sweeps
      signal.signal(signal.SIGTERM, run_sweep._raise_interrupt)
      runner = run_sweep.SweepRunner(
          'fashion_mnist_quick', sweeps.fashion_mnist_quick(2), {str(tmp_path / 's')!r},
          parallel=2, launcher=[sys.executable, {str(sleeper)!r}], poll_seconds=0.05)
      try:
        runner.run()
      except KeyboardInterrupt:
        sys.exit(130)
  ''')
  proc = subprocess.Popen([sys.executable, '-c', script])
  deadline = time.time() + 60
  while len(list(tmp_path.glob('pid.*'))) < 2 and time.time() < deadline:
    time.sleep(0.1)
  pids = [int(p.name.split('.')[1]) for p in tmp_path.glob('pid.*')]
  assert len(pids) == 2
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=60) == 130
  for pid in pids:
    with pytest.raises(ProcessLookupError):
      os.kill(pid, 0)
  states = {n: s['state'] for n, s in _sweep_status(tmp_path / 's').items()}
  assert states == {'baseline_seed0': 'interrupted', 'jacobian_clamping_seed0': 'interrupted',
                    'baseline_seed1': 'pending', 'jacobian_clamping_seed1': 'pending'}


def _alive(pid):
  """Whether process `pid` runs (a zombie no longer does)."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except FileNotFoundError:
    return False


def test_sigkill_of_the_runner_ends_its_launchers(tmp_path):
  """A second runner on the sweep folder in use exits 2 and leaves it alone; when
  the first runner is SIGKILLed (no handler runs) its launchers end too."""
  sleeper = tmp_path / 'sleeper.py'
  sleeper.write_text(textwrap.dedent(f'''
      import os, time
      open(os.path.join({str(tmp_path)!r}, f'pid.{{os.getpid()}}'), 'w').close()
      time.sleep(120)
  '''))
  sweep_dir = tmp_path / 's'
  # A runner as `python -m launch.run_sweep` runs it, with the sleeper as launcher.
  script = textwrap.dedent(f'''
      import sys
      sys.path.insert(0, {REPO_ROOT!r})
      from launch import run_sweep, sweeps
      try:
        run_sweep.SweepRunner(
            'fashion_mnist_quick', sweeps.fashion_mnist_quick(2), {str(sweep_dir)!r},
            parallel=2, launcher=[sys.executable, {str(sleeper)!r}], poll_seconds=0.05,
            progress_every=1000).run()
      except sweeps.SweepError as e:
        run_sweep._fail(str(e))
  ''')
  runner = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.DEVNULL)
  pids = []
  try:
    deadline = time.time() + 60
    while len(pids) < 2 and time.time() < deadline:
      time.sleep(0.1)
      pids = [int(p.name.split('.')[1]) for p in tmp_path.glob('pid.*')]
    assert len(pids) == 2
    manifest = (sweep_dir / run_sweep.MANIFEST_FILE).read_bytes()
    second = subprocess.run([sys.executable, '-c', script], capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and repr(str(sweep_dir)) in lines[0], second.stderr
    assert 'in use by another process' in lines[0] and '--sweep_dir' in lines[0]
    assert (sweep_dir / run_sweep.MANIFEST_FILE).read_bytes() == manifest
    assert len(list(tmp_path.glob('pid.*'))) == 2  # The second started no launcher.
    assert runner.poll() is None and all(_alive(pid) for pid in pids)
    runner.kill()
    assert runner.wait(timeout=30) == -signal.SIGKILL
    deadline = time.time() + 30
    while any(_alive(pid) for pid in pids) and time.time() < deadline:
      time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), 'a launcher outlived its runner'
  finally:
    if runner.poll() is None:
      runner.kill()
    for pid in [int(p.name.split('.')[1]) for p in tmp_path.glob('pid.*')]:
      if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def test_o3_and_o7_sweeps_use_their_experiment_configs():
  o3 = {r.setting: run_sweep.resolve_run_config(r, {}, '/tmp/x')
        for r in sweeps.o3_gan_vs_vae(1)}
  assert (o3['gan'].experiment, o3['vae'].experiment) == ('gan', 'vae')
  assert o3['gan'].dataset == o3['vae'].dataset == 'mnist'
  assert o3['gan'].latent_dim == o3['vae'].latent_dim  # Same decoder input.
  o7 = run_sweep.resolve_run_config(sweeps.o7_memorizing_generator(1)[0], {}, '/tmp/x')
  assert o7.experiment == 'memorize'


def test_a1_a2_sweep_runs_a_fresh_d_against_the_given_generator():
  extra = {'dataset': 'fashion_mnist',
           'generator_saved_model': '/c/o1/saved_models/step_00009375'}
  configs = {r.setting: run_sweep.resolve_run_config(r, extra, f'/tmp/{r.name}')
             for r in sweeps.get_sweep('a1_a2_frozen_generator')}
  assert sorted(configs) == ['frozen_g', 'frozen_g_instance_noise']
  for c in configs.values():
    assert (c.experiment, c.train_steps, c.dataset, c.generator_saved_model) == (
        'frozen_generator', 4000, 'fashion_mnist', extra['generator_saved_model'])
  assert configs['frozen_g'].instance_noise == 0.0
  noisy = configs['frozen_g_instance_noise']
  assert (noisy.instance_noise, noisy.instance_noise_anneal_steps) == (0.1, 0)


def test_o6_expands_jc_times_n_critic_on_its_config():
  runs = sweeps.get_sweep('o6_cifar_wgangp_jc')
  assert len(runs) == 20
  cells = {}
  for r in runs:
    c = run_sweep.resolve_run_config(r, {}, f'/tmp/{r.name}')
    assert c.architecture == 'resnet_wgangp' and c.seed == r.seed
    cells.setdefault(r.setting, set()).add((c.jacobian_clamping, c.n_critic, r.seed))
  assert cells == {
      f'{setting}_ncritic{n}': {(setting == 'jacobian_clamping', n, s) for s in range(5)}
      for setting in ('baseline', 'jacobian_clamping') for n in (5, 1)}


def test_tiny_o6_sweep_runs_mirrored_and_reports(tmp_path):
  """O6 by name through the runner: 2 trials x 4 cells, 2 steps each, mock CIFAR-10,
  strategy=mirrored over 2 logical CPU devices (tests/mirrored_launch.py); then its
  report."""
  from tf_gancond import report
  runs = sweeps.get_sweep('o6_cifar_wgangp_jc', num_seeds=2)
  extra = run_sweep.parse_extra(
      'strategy=mirrored,train_steps=2,batch_size=4,g_batch_size=8,g_base_channels=8,'
      'd_base_channels=8,latent_dim=8,log_every=1,checkpoint_every=2,eval_every=0,'
      'final_eval=false,export_every=0,sample_grid=4,shuffle_buffer=8,'
      'probe_every=0')  # No probes: tracing their Jacobians would double each run's time.
  launcher = [sys.executable, os.path.join(os.path.dirname(__file__), 'mirrored_launch.py')]
  sweep_dir = tmp_path / 'o6'
  runner = run_sweep.SweepRunner('o6_cifar_wgangp_jc', runs, str(sweep_dir), parallel=2,
                                 extra=extra, launcher=launcher, poll_seconds=0.2,
                                 out=io.StringIO())
  status = runner.run()
  assert len(status) == 8
  for r in runs:
    workdir = str(sweep_dir / r.name)
    stderr = (sweep_dir / r.name / run_sweep.STDERR_FILE).read_text()
    assert status[r.name]['state'] == 'finished', stderr[-2000:]
    assert 'replicas: 2' in stderr
    config = runlog.read_config(workdir)
    assert (config['strategy'], config['n_critic'], config['jacobian_clamping']) == (
        'mirrored', r.overrides['n_critic'], r.overrides['jacobian_clamping'])
    assert [x['step'] for x in runlog.read_records(workdir, 'train')] == [1, 2]
  path = report.write_report(str(sweep_dir))
  text = open(path).read()
  for r in runs:
    assert r.setting in text
  with open(os.path.join(os.path.dirname(path), report.JSON_FILE)) as f:
    rows = {row['id']: row for row in json.load(f)}
  # No run collapsed, so the rule alone says FAIL; 2 trials of the paper's 5 and
  # 2 of its 100,000 iterations make it INCONCLUSIVE.
  assert rows['o6_collapse']['verdict'] == 'INCONCLUSIVE'
  assert rows['o6_collapse']['note'].startswith('n = 2 < 5; runs at 0 % of the paper')
