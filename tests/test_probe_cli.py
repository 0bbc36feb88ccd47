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
    ([], 'give one of --saved_model=DIR'),
    (['--saved_model={path}', '--bn_mode=batch_stats'], 'need --run_dir'),
    (['--run_dir=/nonexistent/run'], "run='/nonexistent/run' has no readable config"),
    (['--saved_model={path}', '--nope=1'], "Unknown command line flag 'nope'"),
    (['--saved_model={path}', '--latent_dim=64'], 'latent_dim=64 does not match'),
    (['--saved_model={path}', '--label=-1'], 'label=-1 must be >= 0'),
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


def test_probe_cli_output_naming_a_directory(saved_generator, tmp_path, capsys):
  """Refused before the probe runs: exit 2, one line naming it, nothing written."""
  from tf_gancond import probe
  path, _ = saved_generator
  out = tmp_path / 'out'
  out.mkdir()
  with pytest.raises(SystemExit) as e:
    probe.main(['probe', f'--saved_model={path}', '--num_z=2', f'--output={out}'])
  err = capsys.readouterr().err
  assert e.value.code == 2 and len(err.strip().splitlines()) == 1
  assert f'output={str(out)!r} is a directory' in err
  assert sorted(os.listdir(tmp_path)) == ['out'] and not os.listdir(out)


def test_probe_cli_rejects_savedmodel_without_signature(tmp_path, capsys):
  import tensorflow as tf
  from tf_gancond import probe
  module = tf.Module()
  module.v = tf.Variable(1.0)
  tf.saved_model.save(module, str(tmp_path / 'm'))
  with pytest.raises(SystemExit) as e:
    probe.main(['probe', f'--saved_model={tmp_path / "m"}'])
  assert e.value.code == 2 and 'serving_default' in capsys.readouterr().err


def _foreign_conditional_savedmodel(path):
  """G(z, y) = reshape(tanh(z + e_y) W), 3 classes, not written by this package."""
  import tensorflow as tf
  rng = np.random.default_rng(0)
  module = tf.Module()
  module.w = tf.Variable(rng.standard_normal((4, 8)).astype(np.float32))
  module.emb = tf.Variable(rng.standard_normal((3, 4)).astype(np.float32))

  @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name='z'),
                                tf.TensorSpec([None], tf.int32, name='labels')])
  def serving(z, labels):
    h = tf.tanh(z + tf.gather(module.emb, labels))
    return {'images': tf.reshape(h @ module.w, [-1, 2, 4, 1])}
  tf.saved_model.save(module, str(path), signatures={'serving_default': serving})
  return module


def _conditional_log_cond(module, z, labels):
  h = z.astype(np.float64) + module.emb.numpy()[labels]
  jac = module.w.numpy().T[None].astype(np.float64) * (1 - np.tanh(h)**2)[:, None, :]
  return probes.spectrum(jac)['log_cond']


def test_probe_cli_conditional_foreign_savedmodel(tmp_path, capsys):
  """A class-conditional SavedModel not written by this package: the label picks
  the class embedding; a label out of range is one line and exit 2."""
  from tf_gancond import probe
  module = _foreign_conditional_savedmodel(tmp_path / 'm')
  out = tmp_path / 'p.json'
  probe.main(['probe', f'--saved_model={tmp_path / "m"}', '--num_z=3', '--label=2',
              f'--output={out}'])
  z = probes.fixed_probe_z(4, 3)
  result = json.loads(out.read_text())
  np.testing.assert_allclose(result['log_cond'], _conditional_log_cond(module, z, 2),
                             rtol=1e-4)
  assert result['labels'] == [2, 2, 2]
  capsys.readouterr()
  with pytest.raises(SystemExit) as e:
    probe.main(['probe', f'--saved_model={tmp_path / "m"}', '--num_z=3', '--label=7'])
  err = capsys.readouterr().err
  assert e.value.code == 2 and 'failed on the probe batch' in err
  assert len(err.strip().splitlines()) == 1


def _write_run(path, q_low, q_high, score=None, log_cond=None, score_key='classifier_score',
               score_kind='final'):
  os.makedirs(path)
  with open(os.path.join(path, 'metrics.jsonl'), 'w') as f:
    for step in (100, 200, 300, 400, 500):
      f.write(json.dumps({'kind': 'train', 'step': step, 'q_p5': q_low, 'q_p25': 2.0,
                          'q_p50': 3.0, 'q_p75': 4.0, 'q_p95': q_high}) + '\n')
    if log_cond is not None:
      f.write(json.dumps({'kind': 'probe', 'step': 500, 'mean_log_cond': log_cond}) + '\n')
    if score is not None:
      f.write(json.dumps({'kind': score_kind, 'step': 500, score_key: score}) + '\n')
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


def test_propose_lambda_frechet_from_eval_records_diverged_last(tmp_path):
  """Eval records with a Frechet distance (lower is better); a run whose last score
  is NaN (runlog writes the string 'nan') ranks last even with the lowest Q spread."""
  dirs = [str(tmp_path / n) for n in 'abc']
  kw = dict(score_key='frechet_distance', score_kind='eval')
  _write_run(dirs[0], 0.5, 40.0, score=30.0, **kw)
  _write_run(dirs[1], 2.0, 10.0, score='nan', **kw)
  _write_run(dirs[2], 1.0, 16.0, score=12.0, **kw)
  result = propose_lambda.propose(dirs, good_fraction=0.34)
  assert result['ranked_runs'] == [dirs[2], dirs[0], dirs[1]]
  assert result['good_runs'] == [dirs[2]]
  assert (result['lambda_min'], result['lambda_max']) == (1.0, 16.0)
  assert 'Frechet' in result['criterion']


def test_propose_lambda_cli_prints_flags(tmp_path, capsys):
  dirs = [str(tmp_path / n) for n in 'ab']
  _write_run(dirs[0], 1.0, 18.0, score=8.0)
  _write_run(dirs[1], 0.1, 90.0, score=2.0)
  propose_lambda.main(['propose_lambda', f'--run_dirs={",".join(dirs)}'])
  assert '--jc_lambda_min=1 --jc_lambda_max=18' in capsys.readouterr().out


def test_propose_lambda_cli_errors(tmp_path, capsys):
  for args, message in (([f'--run_dirs={tmp_path / "missing"}'], 'is not a directory'),
                        ([f'--run_dirs={tmp_path}', '--low_pct=7'], 'low_pct=7'),
                        ([f'--run_dirs={tmp_path}'], 'no Q statistics')):
    with pytest.raises(SystemExit) as e:
      propose_lambda.main(['propose_lambda'] + args)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_probe_cli_conditional_default_is_uniform_fixed_labels(tmp_path, capsys):
  """Without --label a conditional generator is probed on the probe seed's uniform
  labels (not class 0); a foreign one needs --num_classes for that."""
  from tf_gancond import probe
  module = _foreign_conditional_savedmodel(tmp_path / 'm')
  with pytest.raises(SystemExit) as e:
    probe.main(['probe', f'--saved_model={tmp_path / "m"}', '--num_z=8'])
  err = capsys.readouterr().err
  assert e.value.code == 2 and '--num_classes' in err and '--label' in err
  out = tmp_path / 'p.json'
  probe.main(['probe', f'--saved_model={tmp_path / "m"}', '--num_z=8',
              '--num_classes=3', f'--output={out}'])
  labels = probes.probe_labels(3, 8, 1234)
  assert len(set(labels.tolist())) > 1
  result = json.loads(out.read_text())
  assert result['labels'] == labels.tolist()
  np.testing.assert_allclose(result['log_cond'], _conditional_log_cond(
      module, probes.fixed_probe_z(4, 8), labels), rtol=1e-4)


def test_probe_cli_refuses_a_batch_statistics_generator(tmp_path, capsys):
  """A SavedModel of a generator that normalises with batch statistics mixes the
  rows of the probe batch: its per-z Jacobian cannot be had from the signature."""
  from tf_gancond import export
  from tf_gancond import probe
  path = tmp_path / 'g'
  _foreign_conditional_savedmodel(path)
  meta = path / export.METADATA_FILE
  meta.write_text(json.dumps({'g_bn_always_batch_stats': True, 'num_classes': 3}))
  with pytest.raises(SystemExit) as e:
    probe.main(['probe', f'--saved_model={path}', '--num_z=3'])
  err = capsys.readouterr().err
  assert e.value.code == 2 and 'batch statistics' in err
  assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize('bn_mode', ['inference', 'batch_stats'])
def test_a_runs_checkpoint_probes_as_the_run_probed_itself(tiny_config, bn_mode):
  """A run trained with probe_bn_mode=M, probed afterwards from its last checkpoint
  under M, gives the per-z values of its own last probe record."""
  from tf_gancond import probe
  from tf_gancond import runlog
  from tf_gancond import train
  c = tiny_config
  c.synthetic_data, c.probe_bn_mode, c.probe_every = True, bn_mode, 4
  train.train_and_evaluate(c)
  last = runlog.read_records(c.workdir, kind='probe')[-1]
  result = probe.probe_run(c.workdir, bn_mode)
  assert result['step'] == last['step'] == c.train_steps
  assert result['bn_mode'] == bn_mode == last['bn_mode']
  np.testing.assert_allclose(result['log_cond'], last['log_cond'], rtol=1e-5)


def test_the_other_bn_mode_of_a_checkpoint_gives_other_values(tiny_config):
  """Batch statistics are not the moving averages: the two readings differ."""
  from tf_gancond import probe
  from tf_gancond import train
  c = tiny_config
  c.synthetic_data = True
  train.train_and_evaluate(c)
  inference = probe.probe_run(c.workdir, 'inference')
  batch = probe.probe_run(c.workdir, 'batch_stats', num_z=4)
  assert batch['num_z'] == 4 and batch['bn_mode'] == 'batch_stats'
  assert np.abs(np.subtract(inference['log_cond'], batch['log_cond'])).max() > 1e-3
  with pytest.raises(probe.ProbeError, match='has no checkpoint ckpt-3'):
    probe.probe_run(c.workdir, 'inference', step=3)
