"""The package classifier: CLI on mock data, its SavedModel contract, bad input."""

import json
import os
import subprocess
import sys

import fake_classifier
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_gancond import classifier
from tf_gancond import config as config_lib

MOCK_EXAMPLES = 48
SHAPE = (28, 28, 1)


def _mnist_config(tmp_path):
  c = config_lib.get_config()
  c.dataset, c.data_dir = 'mnist', str(tmp_path / 'tfds')
  return config_lib.resolve(c)


def _cached_classifier(path, accuracy):
  """A SavedModel at `path`, with the metadata of a package classifier if accuracy."""
  fake_classifier.save_class_code(path, SHAPE)
  if accuracy is not None:
    with open(os.path.join(path, classifier.CLASSIFIER_METADATA_FILE), 'w') as f:
      json.dump({'dataset': 'mnist', 'test_accuracy': accuracy}, f)


def _train_args(tmp_path, *extra):
  return ['classifier', '--dataset=mnist', '--epochs=1', '--steps_per_epoch=2',
          '--batch_size=16', f'--output_dir={tmp_path / "clf"}',
          f'--data_dir={tmp_path / "tfds"}', *extra]


def test_model_outputs_logits_and_penultimate_features():
  out = classifier.ConvClassifier()(tf.zeros([3, 28, 28, 1]))
  assert out['logits'].shape == (3, 10)
  assert out['pool_3'].shape == (3, classifier.FEATURE_DIM)


def test_classification_accuracy_counts_examples_not_batches(tmp_path):
  module = tf.saved_model.load(fake_classifier.save_class_code(tmp_path / 'clf', SHAPE))
  predicted = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3]
  labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0]  # Batches of 5: 5/5, 4/5, 0/3 right.
  images = fake_classifier.class_code_images(predicted, SHAPE)
  batches = tf.data.Dataset.from_tensor_slices((images, np.int32(labels))).batch(5)
  accuracy, total = classifier.classification_accuracy(
      lambda x: module(x)['logits'], batches)
  assert (accuracy, total) == (9 / 13, 13)


def test_cli_below_target_leaves_the_new_model_beside_the_output_dir(tmp_path, capsys):
  from tf_gancond import data
  from tf_gancond import scores
  path = str(tmp_path / 'clf')
  c = _mnist_config(tmp_path)
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    with pytest.raises(SystemExit) as e:
      classifier.main(_train_args(tmp_path))  # 2 steps on random labels: << 0.99
    test_images, test_labels = data.load_numpy(c, 'test')
  assert e.value.code == 3
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1
  assert 'is below the target 0.99 for mnist' in err
  assert f'nothing installed at {path}; the new one is at {path}.candidate' in err
  assert not os.path.exists(path)
  new = path + '.candidate'
  assert classifier.is_saved_model_dir(new) and not os.path.exists(new + '.tmp')
  meta = classifier.read_metadata(new)
  # The contract: images [None, 28, 28, 1] -> {'logits' [None, 10], 'pool_3' [None, D]}.
  loaded = tf.saved_model.load(new)
  out = loaded(tf.zeros([2, 28, 28, 1]))
  assert out['logits'].shape == (2, 10) and out['pool_3'].shape == (2, 128)
  sig = loaded.signatures['serving_default']
  assert sig(images=tf.zeros([1, 28, 28, 1]))['logits'].shape == (1, 10)
  assert not any('optimizer' in v.name.lower() or 'adam' in v.name.lower()
                 for v in sig.variables)  # Only the model is saved.
  # The recorded accuracy is the saved model's on the whole test split.
  predicted = np.argmax(loaded(tf.constant(test_images))['logits'].numpy(), axis=1)
  assert meta['dataset'] == 'mnist' and meta['epochs'] == 1
  assert meta['num_test'] == len(test_labels) == MOCK_EXAMPLES
  assert meta['test_accuracy'] == pytest.approx(np.mean(predicted == test_labels),
                                                abs=1e-12)

  c.latent_dim, c.classifier = 4, new
  gen = lambda z: tf.tanh(tf.reshape(tf.tile(z, [1, 196]), [-1, 28, 28, 1]))  # noqa
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    scorer = scores.Scorer.from_config(c)
    res = scorer.score(gen, 40, 2)
  assert scorer.spec.image_size == 28 and res['classifier'] == new
  assert res['num_real'] == MOCK_EXAMPLES and res['num_samples'] == 40
  assert 1.0 <= res['classifier_score'] <= 10.0  # IS is bounded by the class count.
  assert np.isfinite(res['frechet_distance']) and res['frechet_distance'] > 0


def test_cli_keeps_the_cached_classifier_when_the_new_one_misses_the_target(
    tmp_path, capsys):
  path = str(tmp_path / 'clf')
  _cached_classifier(path, accuracy=0.995)
  fingerprint = classifier.fingerprint(path)
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    with pytest.raises(SystemExit) as e:
      classifier.main(_train_args(tmp_path))
  assert e.value.code == 3
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1
  assert f'kept the classifier at {path}; the new one is at {path}.candidate' in err
  assert classifier.fingerprint(path) == fingerprint
  assert classifier.read_metadata(path)['test_accuracy'] == 0.995
  assert classifier.read_metadata(path + '.candidate')['test_accuracy'] < 0.99


def test_cli_replaces_the_cached_classifier_with_one_that_meets_the_target(
    tmp_path, monkeypatch):
  monkeypatch.setitem(classifier.TARGET_ACCURACY, 'mnist', 0.0)
  path = str(tmp_path / 'clf')
  _cached_classifier(path, accuracy=0.995)
  fingerprint = classifier.fingerprint(path)
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    result = classifier.main(_train_args(tmp_path))
  assert result['path'] == path
  assert classifier.fingerprint(path) != fingerprint
  assert classifier.read_metadata(path)['num_test'] == MOCK_EXAMPLES
  assert not os.path.exists(path + '.candidate')


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


def test_ensure_classifier_installs_a_new_one_only_if_it_meets_the_target(
    tmp_path, monkeypatch):
  monkeypatch.setenv('TF_GANCOND_HOME', str(tmp_path / 'home'))
  c = _mnist_config(tmp_path)
  path = str(tmp_path / 'home' / 'classifiers' / 'mnist')
  with pytest.raises(classifier.ClassifierUnavailableError, match='--dataset=mnist'):
    classifier.ensure_classifier(c, train_if_missing=False)
  train = dict(epochs=1, steps_per_epoch=1, batch_size=8)
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    with pytest.raises(classifier.ClassifierUnavailableError) as e:
      classifier.ensure_classifier(c, **train)
  assert len(str(e.value).splitlines()) == 1
  assert (f'below the target 0.99 for mnist: nothing installed at {path}; the new '
          f'one is at {path}.candidate') in str(e.value)
  assert not os.path.exists(path)
  monkeypatch.setitem(classifier.TARGET_ACCURACY, 'mnist', 0.0)
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    assert classifier.ensure_classifier(c, **train) == path
  assert classifier.is_saved_model_dir(path)
  assert not os.path.exists(path + '.candidate')
  monkeypatch.setattr(classifier, 'train_classifier',
                      lambda *a, **k: pytest.fail('must not retrain'))
  assert classifier.ensure_classifier(c) == path
  c.classifier = str(tmp_path / 'missing')
  with pytest.raises(classifier.ClassifierUnavailableError, match='not a SavedModel'):
    classifier.ensure_classifier(c)


@pytest.mark.parametrize('accuracy,message', [
    (0.95, r'test accuracy 0.9500 is below the target 0.99 for mnist'),
    (None, r'no test accuracy is recorded')])
def test_ensure_classifier_refuses_a_cached_classifier_below_target(
    tmp_path, monkeypatch, accuracy, message):
  monkeypatch.setenv('TF_GANCOND_HOME', str(tmp_path / 'home'))
  monkeypatch.setattr(classifier, 'train_classifier',
                      lambda *a, **k: pytest.fail('must not retrain'))
  c = _mnist_config(tmp_path)
  path = classifier.default_classifier_path('mnist')
  _cached_classifier(path, accuracy)
  with pytest.raises(classifier.ClassifierUnavailableError, match=message) as e:
    classifier.ensure_classifier(c)
  assert len(str(e.value).splitlines()) == 1
  assert path in str(e.value) and '--dataset=mnist' in str(e.value)
  _cached_classifier(path, 0.995)
  assert classifier.ensure_classifier(c) == path


COMMITTED = os.path.join(os.path.dirname(__file__), '..', 'results',
                         'classifier_fashion_mnist')


def test_install_from_copies_the_committed_classifier_and_is_idempotent(
    tmp_path, monkeypatch, capsys):
  monkeypatch.setenv('TF_GANCOND_HOME', str(tmp_path / 'home'))
  monkeypatch.setattr(classifier, 'train_classifier',
                      lambda *a, **k: pytest.fail('must not train'))
  path = classifier.default_classifier_path('fashion_mnist')
  for _ in range(2):  # The second call finds the same classifier and changes nothing.
    result = classifier.main(['classifier', f'--install_from={COMMITTED}'])
    assert result['path'] == path
    assert classifier.fingerprint(path) == classifier.fingerprint(COMMITTED) != ''
    assert classifier.read_metadata(path)['test_accuracy'] == 0.9232
  assert os.listdir(os.path.dirname(path)) == ['fashion_mnist']  # No copy left behind.
  c = config_lib.get_config()
  c.dataset = 'fashion_mnist'
  assert classifier.ensure_classifier(c) == path


@pytest.mark.parametrize('dataset,target', [('mnist', 0.99), ('fashion_mnist', 0.90)])
def test_the_committed_classifiers_meet_their_target_as_fingerprinted(dataset, target):
  committed = os.path.join(os.path.dirname(COMMITTED), f'classifier_{dataset}')
  metadata = classifier.read_metadata(committed)
  assert metadata['dataset'] == dataset and metadata['test_accuracy'] >= target
  recorded = os.path.join(committed, 'FINGERPRINT')
  if os.path.exists(recorded):
    with open(recorded) as f:
      assert classifier.fingerprint(committed) == f.read().strip()


def test_the_committed_mnist_classifier_records_real_data_scores_on_both_layers():
  """The ceiling of a perfect generator: the classifier is confident on real digits
  (score near 10 classes) and real images lie close to real images on each layer."""
  from tf_gancond import scores
  committed = os.path.join(os.path.dirname(COMMITTED), 'classifier_mnist')
  with open(os.path.join(committed, scores.REAL_DATA_SCORES_FILE)) as f:
    ceiling = json.load(f)
  assert sorted(ceiling) == ['logits', 'pool_3']
  for layer, result in ceiling.items():
    assert result['fd_layer'] == layer and result['num_samples'] == 10000
    assert result['classifier_fingerprint'] == classifier.fingerprint(committed)
    assert 9.5 < result['classifier_score'] <= 10.0
    assert 0.0 < result['frechet_distance'] < 5.0


def test_install_from_never_replaces_a_different_classifier(tmp_path, capsys):
  dest = str(tmp_path / 'clf')
  _cached_classifier(dest, accuracy=0.995)
  before = classifier.fingerprint(dest)
  with pytest.raises(SystemExit) as e:
    classifier.main(['classifier', f'--install_from={COMMITTED}',
                     f'--output_dir={dest}'])
  err = capsys.readouterr().err.strip()
  assert e.value.code == 2 and len(err.splitlines()) == 1
  assert f'a different classifier (fingerprint {before}) is already at {dest}' in err
  assert classifier.fingerprint(dest) == before


@pytest.mark.parametrize('make_source,args,message', [
    (lambda p: os.makedirs(p), [], 'is not a SavedModel directory'),
    (lambda p: _cached_classifier(p, 0.5), ['--dataset=mnist'],
     'test accuracy 0.5000 is below the target 0.99 for mnist'),
    (lambda p: _cached_classifier(p, 0.995), [],
     "a classifier of dataset 'mnist', not --dataset=fashion_mnist")])
def test_install_from_bad_source_exits_2_before_writing(
    tmp_path, capsys, make_source, args, message):
  source, dest = str(tmp_path / 'source'), tmp_path / 'clf'
  make_source(source)
  with pytest.raises(SystemExit) as e:
    classifier.main(['classifier', f'--install_from={source}',
                     f'--output_dir={dest}', *args])
  err = capsys.readouterr().err.strip()
  assert e.value.code == 2 and len(err.splitlines()) == 1
  assert message in err and source in err
  assert not os.path.exists(dest) and os.listdir(tmp_path) == ['source']
