"""The two tested stacks (BUILD.md "Two stacks"): what differs is handled in one place.

Every test here runs on both stacks (CI runs the suite on each). The cross-stack tests
need the other stack's interpreter in TF_GANCOND_OTHER_PYTHON (CI sets it on its
second run) and are skipped without it, with the reason printed.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_gancond import scores
from tf_gancond import stack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, 'tests', 'fixtures', 'tfgan_eval_reference.json')
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
OTHER_PYTHON = os.environ.get('TF_GANCOND_OTHER_PYTHON', '')
# Measured over 8 steps: 1.1e-7 relative (float32 round-off in different TF kernels);
# 1e-5 leaves room for it to grow with steps while catching any real difference.
STACK_LOSS_RTOL = 1e-5
needs_other_stack = pytest.mark.skipif(
    not OTHER_PYTHON, reason='TF_GANCOND_OTHER_PYTHON (the other stack) not set')


def _reference_inputs():
  """Fixed float64 inputs from closed forms (no random stream that could change).

  logits [200, 7]; real and generated features [1500, 6] and [1300, 6]: more than one
  1,024-sample block, so TF-GAN's KID has a standard deviation.
  """
  i = np.arange(200)[:, None]
  j = np.arange(7)[None, :]
  logits = 3 * np.sin(1.3 * i + 0.7 * j + 0.01 * i * j)
  def features(n, phase):
    i = np.arange(n)[:, None]
    j = np.arange(6)[None, :]
    return np.sin(0.37 * i * (j + 1) + phase) + 0.1 * np.cos(0.011 * i + j)
  return logits, features(1500, 0.0), 1.2 * features(1300, 0.4) + 0.3


def _tfgan_eval_outputs(tfgan_eval):
  logits, real, generated = _reference_inputs()
  kid, kid_std = tfgan_eval.kernel_classifier_distance_and_std_from_activations(
      tf.constant(real), tf.constant(generated), dtype=tf.float64)
  return {
      'classifier_score': float(tfgan_eval.classifier_score_from_logits(
          tf.constant(logits))),
      'frechet_distance': float(tfgan_eval.frechet_classifier_distance_from_activations(
          tf.constant(real), tf.constant(generated))),
      'kid': float(kid), 'kid_std': float(kid_std)}


def test_tfgan_eval_matches_the_faithful_stack_to_1e_6():
  """The three TF-GAN functions give the numbers TF-GAN 2.1.0 gave on TF 2.15.1.

  The fixture was written on the faithful stack through `import tensorflow_gan`
  (`python tests/test_stacks.py --write_reference`); the modern stack reaches the same
  functions through scores.py's import of TF-GAN's eval modules alone.
  """
  with open(FIXTURE) as f:
    reference = json.load(f)
  assert reference['written_with'] == 'tensorflow_gan 2.1.0 on TensorFlow 2.15.1'
  ours = _tfgan_eval_outputs(scores.tfgan_eval)
  for key, value in reference['outputs'].items():
    assert ours[key] == pytest.approx(value, rel=1e-6), key
  assert reference['outputs']['kid_std'] > 0  # Two blocks: a real spread, not NaN.


def test_scores_record_the_implementation_of_this_stack():
  expected = {'faithful': 'tensorflow_gan 2.1.0',
              'modern': 'tensorflow_gan 2.1.0 eval modules (package __init__ skipped)'}
  assert scores.SCORE_IMPLEMENTATION == expected[stack.NAME]
  # No empty `tensorflow_gan` package is left behind for a later import to find.
  if 'tensorflow_gan' in sys.modules:
    assert hasattr(sys.modules['tensorflow_gan'], 'eval')


def test_tensorflow_gan_package_import_fails_only_on_the_modern_stack():
  """Why scores.py imports the eval modules alone from TF 2.16 on."""
  result = subprocess.run([sys.executable, '-c', 'import tensorflow_gan'],
                          capture_output=True, text=True, env=ENV, timeout=300)
  if stack.NAME == 'faithful':
    assert result.returncode == 0, result.stderr[-2000:]
  else:
    assert result.returncode != 0
    assert "has no attribute 'estimator'" in result.stderr


def test_stack_name_and_keras_2():
  import tf_gancond
  # The two detections agree: before TensorFlow is imported (installed version) and
  # after (tf.__version__).
  assert (stack.NAME == 'modern') == (tf_gancond._installed_tensorflow() >= (2, 16))
  versions = stack.versions()
  assert versions['tensorflow'] == tf.__version__
  if stack.NAME == 'faithful':
    assert versions['keras'] == 'keras 2.15.0'  # TF 2.15's own, as pinned.
  else:
    assert versions['keras'].startswith('tf-keras ')
  assert versions['keras'].split()[1].startswith('2.')


_VERSIONS_CHILD = 'import json, tf_gancond.stack as s; print(json.dumps(s.versions()))'


def _child_versions(python, **env):
  result = subprocess.run([python, '-c', _VERSIONS_CHILD], capture_output=True,
                          text=True, env=dict(ENV, **env), timeout=300, cwd=ROOT)
  assert result.returncode == 0, result.stderr[-2000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('legacy_keras', ['1', '0', None])
def test_each_stack_keeps_its_keras_whatever_the_environment_says(legacy_keras):
  """A faithful process started with TF_USE_LEGACY_KERAS=1 (by a modern parent or a
  shell) still runs keras 2.15.0; a modern one runs tf-keras even with 0."""
  env = {} if legacy_keras is None else {'TF_USE_LEGACY_KERAS': legacy_keras}
  pythons = [sys.executable] + ([OTHER_PYTHON] if OTHER_PYTHON else [])
  for python in pythons:
    versions = _child_versions(python, **env)
    expected = 'keras 2.15.0' if versions['stack'] == 'faithful' else 'tf-keras 2.21.0'
    assert versions['keras'] == expected, (python, versions)


def test_keras_3_loaded_before_the_package_is_refused():
  """tf.keras resolves lazily, so only using it before tf_gancond is imported fails;
  the error names the cause and the remedy."""
  child = ('import os; os.environ.pop("TF_USE_LEGACY_KERAS", None)\n'
           'import tensorflow as tf\ntf.keras.layers\nimport tf_gancond.stack')
  env = {k: v for k, v in ENV.items() if k != 'TF_USE_LEGACY_KERAS'}
  result = subprocess.run([sys.executable, '-c', child], capture_output=True,
                          text=True, env=env, timeout=300)
  if stack.NAME == 'faithful':
    assert result.returncode == 0, result.stderr[-2000:]
  else:
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('tf_gancond.stack.KerasVersionError: tf.keras is keras 3.')
    assert 'import tf_gancond before using tf.keras' in last


def _python_reporting(folder, version, tensorflow='none'):
  """A stand-in interpreter in `folder` that answers setup.sh's one question (its
  Python and TensorFlow versions) as `version` and `tensorflow` would."""
  major, minor = version.split('.')[:2]
  os.makedirs(folder, exist_ok=True)
  fake = os.path.join(folder, 'python')
  with open(fake, 'w') as f:
    f.write(f'#!/bin/sh\necho {int(major) * 100 + int(minor)} {tensorflow} {version}\n')
  os.chmod(fake, 0o755)
  return fake


@pytest.mark.parametrize('stack_name,version,message', [
    ('newest', '3.11.7', 'TF_GANCOND_STACK=newest is not a stack; allowed: faithful, modern'),
    ('faithful', '3.12.1', 'TF_GANCOND_STACK=faithful needs Python 3.9-3.11 '
     '(TensorFlow 2.15 has no wheel for Python 3.12.1)'),
    ('faithful', '3.8.18', 'TF_GANCOND_STACK=faithful needs Python 3.9-3.11 '
     '(TensorFlow 2.15 has no wheel for Python 3.8.18)'),
    ('modern', '3.10.13', 'TF_GANCOND_STACK=modern needs Python 3.11-3.13, not '
     'Python 3.10.13'),
    ('modern', '3.14.0', 'TF_GANCOND_STACK=modern needs Python 3.11-3.13, not '
     'Python 3.14.0'),
])
def test_setup_refuses_a_bad_stack_before_writing(tmp_path, stack_name, version, message):
  venv = tmp_path / 'venv'
  result = subprocess.run(
      ['bash', os.path.join(ROOT, 'launch', 'setup.sh')], capture_output=True,
      text=True, timeout=120,
      env=dict(os.environ, TF_GANCOND_VENV=str(venv), TF_GANCOND_STACK=stack_name,
               PYTHON=_python_reporting(tmp_path / 'bin', version)))
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('setup.sh: ') and message in lines[0]
  assert not venv.exists()


@pytest.mark.parametrize('marker,tensorflow,asked,held', [
    ('modern', 'none', 'faithful', 'modern'),
    (None, '2.15.1', 'modern', 'faithful'),   # Made before the marker existed.
    (None, '2.21.0', 'faithful', 'modern'),
])
def test_setup_refuses_a_folder_holding_the_other_stack(tmp_path, marker, tensorflow,
                                                        asked, held):
  venv = tmp_path / 'venv'
  _python_reporting(venv / 'bin', '3.11.7', tensorflow)
  if marker:
    (venv / 'tf_gancond-stack').write_text(marker + '\n')
  before = sorted(str(p) for p in venv.rglob('*'))
  result = subprocess.run(
      ['bash', os.path.join(ROOT, 'launch', 'setup.sh')], capture_output=True,
      text=True, timeout=120,
      env=dict(os.environ, TF_GANCOND_VENV=str(venv), TF_GANCOND_STACK=asked))
  assert result.returncode == 2, result.stderr
  assert f'{venv} holds the {held} stack, not {asked}' in result.stderr
  assert sorted(str(p) for p in venv.rglob('*')) == before


_EXPORT_CHILD = r'''
import sys
from tf_gancond import config as config_lib, export, models
import tensorflow as tf
tf.keras.utils.set_random_seed(5)
c = config_lib.get_config()
c.update(dict(dataset='mnist', latent_dim=5, g_base_channels=8))
g, _ = models.build_gan(config_lib.resolve(c))
export.export_generator(g, sys.argv[1], 5, (28, 28, 1))
'''


def _on(python, *args, **kwargs):
  env = dict(ENV, PYTHONPATH=ROOT)
  return subprocess.run([python, *args], capture_output=True, text=True, env=env,
                        timeout=600, cwd=ROOT, **kwargs)


def _probe(python, saved_model, out):
  result = _on(python, '-m', 'tf_gancond.probe', f'--saved_model={saved_model}',
               '--num_z=6', '--seed=11', f'--output={out}')
  assert result.returncode == 0, result.stderr[-3000:]
  with open(out) as f:
    return json.load(f)


@needs_other_stack
def test_a_saved_model_probes_the_same_on_both_stacks(tmp_path):
  """Exported on either stack, probed on both: ln cond within 1e-6 (BUILD.md)."""
  for exporter in (sys.executable, OTHER_PYTHON):
    saved_model = str(tmp_path / f'g_{len(os.listdir(tmp_path))}')
    result = _on(exporter, '-c', _EXPORT_CHILD, saved_model)
    assert result.returncode == 0, result.stderr[-3000:]
    here = _probe(sys.executable, saved_model, tmp_path / 'here.json')
    there = _probe(OTHER_PYTHON, saved_model, tmp_path / 'there.json')
    assert len(here['log_cond']) == 6
    np.testing.assert_allclose(here['log_cond'], there['log_cond'], rtol=0, atol=1e-6)
    np.testing.assert_allclose(here['avg_jacobian_singular_values'],
                               there['avg_jacobian_singular_values'], rtol=1e-5)


_DETERMINISTIC = ['-m', 'tf_gancond.launch', '--dataset=mnist', '--batch_size=8',
                  '--latent_dim=8', '--config.g_base_channels=16',
                  '--config.d_base_channels=8', '--probe_every=0', '--synthetic_data',
                  '--deterministic', '--seed=3', '--train_steps=8', '--log_every=1']


def _losses(python, workdir):
  result = _on(python, *_DETERMINISTIC, f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  from tf_gancond import runlog
  records = runlog.read_records(str(workdir), 'train')
  assert [r['step'] for r in records] == list(range(1, 9))
  return np.array([[r['d_loss'], r['g_loss']] for r in records])


@needs_other_stack
def test_a_deterministic_run_gives_the_same_losses_on_both_stacks(tmp_path):
  """Same seed, same data: the losses of 8 steps agree to STACK_LOSS_RTOL (BUILD.md)."""
  here = _losses(sys.executable, tmp_path / 'here')
  there = _losses(OTHER_PYTHON, tmp_path / 'there')
  assert len(set(here[:, 1])) == 8  # The runs did train.
  np.testing.assert_allclose(here, there, rtol=STACK_LOSS_RTOL)


if __name__ == '__main__':
  if sys.argv[1:] != ['--write_reference'] or stack.NAME != 'faithful':
    sys.exit('usage (faithful stack only): python tests/test_stacks.py --write_reference')
  import tensorflow_gan as tfgan
  with open(FIXTURE, 'w') as f:
    json.dump({'written_with': f'tensorflow_gan 2.1.0 on TensorFlow {tf.__version__}',
               'outputs': _tfgan_eval_outputs(tfgan.eval)}, f, indent=1)
    f.write('\n')
