"""The package classifier: CLI on mock data, its SavedModel contract, bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_gancond import classifier
from tf_gancond import config as config_lib

MOCK_EXAMPLES = 48


def _train_args(tmp_path, *extra):
  return ['classifier', '--dataset=mnist', '--epochs=1', '--steps_per_epoch=2',
          '--batch_size=16', f'--output_dir={tmp_path / "clf"}',
          f'--data_dir={tmp_path / "tfds"}', *extra]


def test_model_outputs_logits_and_penultimate_features():
  out = classifier.ConvClassifier()(tf.zeros([3, 28, 28, 1]))
  assert out['logits'].shape == (3, 10)
  assert out['pool_3'].shape == (3, classifier.FEATURE_DIM)


def test_cli_on_mock_data_writes_a_model_the_scorer_loads(tmp_path, capsys):
  from tf_gancond import scores
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    with pytest.raises(SystemExit) as e:
      classifier.main(_train_args(tmp_path))  # 2 steps on random labels: << 0.99
  # Below the target: exit 3, with the model saved all the same.
  assert e.value.code == 3
  assert 'below the target 0.99 for mnist' in capsys.readouterr().err
  path = str(tmp_path / 'clf')
  assert classifier.is_saved_model_dir(path)
  assert not os.path.exists(path + '.tmp')
  with open(os.path.join(path, classifier.CLASSIFIER_METADATA_FILE)) as f:
    meta = json.load(f)
  assert meta['dataset'] == 'mnist' and meta['num_test'] == MOCK_EXAMPLES
  assert 0.0 <= meta['test_accuracy'] <= 1.0 and meta['epochs'] == 1
  # The contract: images [None, 28, 28, 1] -> {'logits' [None, 10], 'pool_3' [None, D]}.
  loaded = tf.saved_model.load(path)
  out = loaded(tf.zeros([2, 28, 28, 1]))
  assert out['logits'].shape == (2, 10) and out['pool_3'].shape == (2, 128)
  sig = loaded.signatures['serving_default']
  assert sig(images=tf.zeros([1, 28, 28, 1]))['logits'].shape == (1, 10)
  assert not any('optimizer' in v.name.lower() or 'adam' in v.name.lower()
                 for v in sig.variables)  # Only the model is saved.

  c = config_lib.get_config()
  c.dataset, c.latent_dim, c.classifier = 'mnist', 4, path
  c.data_dir = str(tmp_path / 'tfds')
  c = config_lib.resolve(c)
  gen = lambda z: tf.tanh(tf.reshape(tf.tile(z, [1, 196]), [-1, 28, 28, 1]))  # noqa
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    scorer = scores.Scorer.from_config(c)
    res = scorer.score(gen, 40, 2)
  assert scorer.spec.image_size == 28 and res['classifier'] == path
  assert res['num_real'] == MOCK_EXAMPLES and res['num_samples'] == 40
  assert 1.0 <= res['classifier_score'] <= 10.0  # IS is bounded by the class count.
  assert np.isfinite(res['frechet_distance']) and res['frechet_distance'] > 0


@pytest.mark.parametrize('args,message', [
    (['--dataset=cifar10'], "dataset='cifar10' has no package classifier"),
    (['--epochs=abc'], 'epochs'),
    (['--epochs=0'], 'epochs=0'),
    (['--bogus=1'], 'bogus'),
    (['stray'], 'unexpected arguments')])
def test_bad_input_exits_2_with_one_line(args, message, capsys):
  with pytest.raises(SystemExit) as e:
    classifier.main(['classifier'] + args)
  err = capsys.readouterr().err.strip()
  assert e.value.code == 2
  assert len(err.splitlines()) == 1 and message in err


def test_module_entry_point_exits_2(tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  proc = subprocess.run([sys.executable, '-m', 'tf_gancond.classifier',
                         '--dataset=nope'], capture_output=True, text=True, env=env,
                        timeout=120, cwd=tmp_path)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: dataset='nope' has no package classifier")


def test_ensure_classifier_trains_once_when_missing(tmp_path, monkeypatch):
  monkeypatch.setenv('TF_GANCOND_HOME', str(tmp_path / 'home'))
  c = config_lib.get_config()
  c.dataset, c.data_dir = 'mnist', str(tmp_path / 'tfds')
  with pytest.raises(classifier.ClassifierUnavailableError, match='--dataset=mnist'):
    classifier.ensure_classifier(c, train_if_missing=False)
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    path = classifier.ensure_classifier(c, epochs=1, steps_per_epoch=1, batch_size=8)
  assert path == str(tmp_path / 'home' / 'classifiers' / 'mnist')
  assert classifier.is_saved_model_dir(path)
  monkeypatch.setattr(classifier, 'train_classifier',
                      lambda *a, **k: pytest.fail('must not retrain'))
  assert classifier.ensure_classifier(c) == path
  c.classifier = str(tmp_path / 'missing')
  with pytest.raises(classifier.ClassifierUnavailableError, match='not a SavedModel'):
    classifier.ensure_classifier(c)
