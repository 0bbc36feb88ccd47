"""The probe and propose_lambda command lines: outputs and bad-input exits."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tf_gancond import config as config_lib
from tf_gancond import export
from tf_gancond import models
from tf_gancond import probes
from tf_gancond import propose_lambda

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')


def _cli(module, *args):
  return subprocess.run([sys.executable, '-m', module, *args], capture_output=True,
                        text=True, env=ENV, timeout=300)


@pytest.fixture(scope='module')
def saved_generator(tmp_path_factory):
  c = config_lib.get_config()
  c.dataset = 'mnist'
  c.latent_dim = 5
  c.g_base_channels = 8
  g, _ = models.build_gan(config_lib.resolve(c))
  path = str(tmp_path_factory.mktemp('gen') / 'g')
  export.export_generator(g, path, 5, (28, 28, 1))
  return path, g


def test_probe_cli_writes_json(saved_generator, tmp_path):
  path, g = saved_generator
  out = tmp_path / 'spectrum.json'
  result = _cli('tf_gancond.probe', f'--saved_model={path}', '--num_z=4', '--seed=7',
                f'--output={out}')
  assert result.returncode == 0, result.stderr
  data = json.loads(out.read_text())
  assert data['num_z'] == 4 and data['seed'] == 7 and data['latent_dim'] == 5
  expected = probes.probe_generator(lambda z: g(z, training=False),
                                    probes.fixed_probe_z(5, 4, 7))
  np.testing.assert_allclose(data['log_cond'], expected['log_cond'], atol=1e-4)
  assert len(data['avg_jacobian_singular_values']) == 5


@pytest.mark.parametrize('args,message', [
    (['--saved_model=/nonexistent/dir'], 'not a SavedModel directory'),
    (['--saved_model={path}', '--num_z=0'], 'num_z=0 must be > 0'),
    (['--saved_model={path}', '--output=/nonexistent/dir/x.json'],
     'its directory does not exist'),
    ([], '--saved_model=DIR is required'),
    (['--saved_model={path}', '--nope=1'], "Unknown command line flag 'nope'"),
])
def test_probe_cli_bad_input(saved_generator, capsys, args, message):
  """In-process (main raises SystemExit(2)); one line on stderr."""
  from tf_gancond import probe
  path, _ = saved_generator
  with pytest.raises(SystemExit) as e:
    probe.main(['probe'] + [a.format(path=path) for a in args])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert message in err and len(err.strip().splitlines()) == 1


def test_probe_cli_rejects_savedmodel_without_signature(tmp_path, capsys):
  import tensorflow as tf
  from tf_gancond import probe
  module = tf.Module()
  module.v = tf.Variable(1.0)
  tf.saved_model.save(module, str(tmp_path / 'm'))
  with pytest.raises(SystemExit) as e:
    probe.main(['probe', f'--saved_model={tmp_path / "m"}'])
  assert e.value.code == 2 and 'serving_default' in capsys.readouterr().err


def _write_run(path, q_low, q_high, score=None, log_cond=None):
  os.makedirs(path)
  with open(os.path.join(path, 'metrics.jsonl'), 'w') as f:
    for step in (100, 200, 300, 400, 500):
      f.write(json.dumps({'kind': 'train', 'step': step, 'q_p5': q_low, 'q_p25': 2.0,
                          'q_p50': 3.0, 'q_p75': 4.0, 'q_p95': q_high}) + '\n')
    if log_cond is not None:
      f.write(json.dumps({'kind': 'probe', 'step': 500, 'mean_log_cond': log_cond}) + '\n')
    if score is not None:
      f.write(json.dumps({'kind': 'final', 'step': 500, 'classifier_score': score}) + '\n')
    f.write('{"kind": "tra')  # A line cut by a crash is skipped.


def test_propose_lambda_from_good_runs(tmp_path):
  dirs = [str(tmp_path / n) for n in 'abcd']
  _write_run(dirs[0], 1.0, 18.0, score=8.0)
  _write_run(dirs[1], 1.4, 22.0, score=7.5)
  _write_run(dirs[2], 0.1, 90.0, score=2.0)  # Bad runs' Q must not count.
  _write_run(dirs[3], 0.2, 80.0, score=1.5)
  result = propose_lambda.propose(dirs)
  assert result['good_runs'] == dirs[:2]
  assert result['lambda_min'] == pytest.approx(1.2)
  assert result['lambda_max'] == pytest.approx(20.0)
  assert 'score' in result['criterion']


def test_propose_lambda_ranks_by_log_cond_without_scores(tmp_path):
  dirs = [str(tmp_path / n) for n in 'ab']
  _write_run(dirs[0], 0.5, 50.0, log_cond=30.0)
  _write_run(dirs[1], 1.0, 20.0, log_cond=12.0)
  result = propose_lambda.propose(dirs)
  assert result['good_runs'] == [dirs[1]] and result['lambda_max'] == 20.0
  assert 'log-condition' in result['criterion']


def test_propose_lambda_cli_errors(tmp_path, capsys):
  for args, message in (([f'--run_dirs={tmp_path / "missing"}'], 'is not a directory'),
                        ([f'--run_dirs={tmp_path}', '--low_pct=7'], 'low_pct=7'),
                        ([f'--run_dirs={tmp_path}'], 'no Q statistics')):
    with pytest.raises(SystemExit) as e:
      propose_lambda.main(['propose_lambda'] + args)
    assert e.value.code == 2 and message in capsys.readouterr().err
