"""Scores through TF-GAN on tiny fake classifiers, against numpy/scipy references."""

import os
import re
import shutil
import threading

import fake_classifier
import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_gancond import classifier
from tf_gancond import config as config_lib
from tf_gancond import data
from tf_gancond import network
from tf_gancond import runlog
from tf_gancond import scores

MNIST_SHAPE = (28, 28, 1)
NUM_REAL = 120  # mock examples per split: one KID block, full-rank 6-d covariances.


def _config(tmp_path, dataset='mnist', classifier='', fd_layer=''):
  c = config_lib.get_config()
  c.dataset = dataset
  c.latent_dim = 8
  c.data_dir = str(tmp_path / 'tfds')
  c.classifier = classifier
  c.fd_layer = fd_layer
  return config_lib.resolve(c)


def _tanh_generator(latent_dim, image_shape, seed=1):
  a = tf.constant(np.random.default_rng(seed).standard_normal(
      (latent_dim, int(np.prod(image_shape)))).astype(np.float32))
  return lambda z: tf.reshape(tf.tanh(z @ a), [-1] + list(image_shape))


def _softmax(logits):
  e = np.exp(logits - logits.max(axis=1, keepdims=True))
  return e / e.sum(axis=1, keepdims=True)


def _inception_score(logits):
  """exp(E_x KL(p(y|x) || p(y))) in float64, from the definition."""
  p = _softmax(logits)
  py = p.mean(axis=0)
  return np.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), axis=1)))


def _frechet(a, b):
  m, mw = a.mean(0), b.mean(0)
  c, cw = np.cov(a, rowvar=False), np.cov(b, rowvar=False)  # unbiased (N-1), as TF-GAN
  return float(np.sum((m - mw) ** 2) + np.trace(c + cw - 2 * np.real(
      scipy.linalg.sqrtm(c @ cw))))


def _kid(r, g):
  """Unbiased MMD^2 with k(x, y) = (x.y/d + 1)^3 (Binkowski et al. 2018), one block."""
  d = r.shape[1]
  k = lambda x, y: (x @ y.T / d + 1) ** 3  # noqa: E731
  krr, kgg, krg = k(r, r), k(g, g), k(r, g)
  m, n = len(r), len(g)
  return ((krr.sum() - np.trace(krr)) / (m * (m - 1)) +
          (kgg.sum() - np.trace(kgg)) / (n * (n - 1)) - 2 * krg.mean())


@pytest.mark.parametrize('fd_layer', ['logits', 'pool_3'])
def test_is_fid_kid_match_numpy_references(tmp_path, fd_layer):
  """Distances on the chosen layer: the logits (MNIST default) or the features."""
  path, w_l, w_f = fake_classifier.save_linear(tmp_path / 'clf', MNIST_SHAPE)
  c = _config(tmp_path, classifier=path, fd_layer=fd_layer)
  gen = _tanh_generator(c.latent_dim, MNIST_SHAPE)
  n, splits = 200, 4
  with tfds.testing.mock_data(num_examples=NUM_REAL):
    result = scores.Scorer(c, batch_size=64).score(gen, n, splits, seed=7)
    real, _ = data.load_numpy(c, 'test')
  z = np.random.default_rng(7).standard_normal((n, c.latent_dim)).astype(np.float32)
  logits, feats = fake_classifier.linear_reference(gen(z).numpy(), w_l, w_f)
  real_logits, real_feats = fake_classifier.linear_reference(real, w_l, w_f)
  if fd_layer == 'logits':
    feats, real_feats = logits, real_logits
  parts = [_inception_score(p) for p in np.array_split(logits, splits)]
  assert result['classifier_score'] == pytest.approx(np.mean(parts), rel=1e-4)
  assert result['classifier_score_std'] == pytest.approx(np.std(parts), rel=1e-3,
                                                         abs=1e-5)
  assert result['frechet_distance'] == pytest.approx(_frechet(real_feats, feats),
                                                     rel=1e-4)
  assert result['kid'] == pytest.approx(_kid(real_feats, feats), rel=1e-3, abs=1e-6)
  assert result['kid_std'] is None  # One block: TF-GAN has no error estimate.
  assert result['frechet_distance'] > 0.01  # A real difference, not a trivial zero.
  assert {k: result[k] for k in ('num_samples', 'splits', 'real_split', 'num_real',
                                 'classifier', 'classifier_fingerprint', 'fd_layer',
                                 'score_implementation')} == {
      'num_samples': n, 'splits': splits, 'real_split': 'test', 'num_real': NUM_REAL,
      'classifier': path, 'classifier_fingerprint': classifier.fingerprint(path),
      'fd_layer': fd_layer, 'score_implementation': scores.SCORE_IMPLEMENTATION}


def test_mnist_like_distances_default_to_the_logits_and_inception_to_pool_3(tmp_path):
  assert _config(tmp_path, dataset='mnist').fd_layer == 'logits'
  assert _config(tmp_path, dataset='fashion_mnist').fd_layer == 'logits'
  assert _config(tmp_path, dataset='cifar10').fd_layer == 'pool_3'


def test_a_logits_only_classifier_serves_logit_distances_and_is_refused_for_pool_3(
    tmp_path):
  """TF-GAN's MNIST module returns logits alone: enough for its own FD layer."""
  path, w_l, w_f = fake_classifier.save_linear(tmp_path / 'clf', MNIST_SHAPE,
                                               logits_only=True)
  images = np.random.default_rng(0).uniform(-1, 1, (5,) + MNIST_SHAPE).astype(np.float32)
  spec = scores.check_classifier(_config(tmp_path, classifier=path, fd_layer='logits'))
  logits, features = scores._make_classify(spec, 'mnist', 'logits')(tf.constant(images))
  expected, _ = fake_classifier.linear_reference(images, w_l, w_f)
  np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(features.numpy(), logits.numpy())
  with pytest.raises(scores.ClassifierUnavailableError,
                     match="as fd_layer='pool_3' needs"):
    scores.check_classifier(_config(tmp_path, classifier=path, fd_layer='pool_3'))


def _flip_last_byte(path):
  with open(path, 'r+b') as f:
    f.seek(-1, os.SEEK_END)
    last = f.read(1)
    f.seek(-1, os.SEEK_END)
    f.write(bytes([last[0] ^ 1]))


def test_fingerprint_follows_the_saved_model_files(tmp_path):
  path, _, _ = fake_classifier.save_linear(tmp_path / 'a', MNIST_SHAPE)
  fp = classifier.fingerprint(path)
  assert len(fp) == 16 and int(fp, 16) >= 0
  copy = shutil.copytree(path, tmp_path / 'copy')
  assert classifier.fingerprint(str(copy)) == fp  # The files count, not where they are.
  with open(os.path.join(copy, classifier.CLASSIFIER_METADATA_FILE), 'w') as f:
    f.write('{"test_accuracy": 0.5}')
  assert classifier.fingerprint(str(copy)) == fp  # Metadata does not change outputs.
  other, _, _ = fake_classifier.save_linear(tmp_path / 'b', MNIST_SHAPE, seed=1)
  assert classifier.fingerprint(other) != fp
  _flip_last_byte(os.path.join(copy, 'variables', 'variables.data-00000-of-00001'))
  assert classifier.fingerprint(str(copy)) != fp
  graph_changed = shutil.copytree(path, tmp_path / 'graph')
  _flip_last_byte(os.path.join(graph_changed, 'saved_model.pb'))
  assert classifier.fingerprint(str(graph_changed)) != fp
  assert classifier.fingerprint('gs://tfhub-modules/google/x/1/uncompressed') == ''


def test_fid_of_a_set_with_itself_is_zero(tmp_path):
  path, _, _ = fake_classifier.save_linear(tmp_path / 'clf', MNIST_SHAPE)
  c = _config(tmp_path, classifier=path)
  with tfds.testing.mock_data(num_examples=NUM_REAL):
    scorer = scores.Scorer(c)
    real, _ = data.load_numpy(c, 'test')
    result = scorer.score_images(real, splits=1)
  assert result['frechet_distance'] == pytest.approx(0.0, abs=1e-6)
  assert abs(result['kid']) < 0.05  # Unbiased MMD^2 of a set with itself: ~0, may be < 0.


@pytest.mark.parametrize('classes,splits,expected', [
    (list(range(10)) * 20, 1, 10.0),   # uniform over 10 confident classes: IS = K
    (list(range(10)) * 20, 2, 10.0),   # each split uniform too
    ([3] * 200, 1, 1.0),               # one confident class: IS = 1
    ([0, 1] * 100, 1, 2.0)])
def test_is_of_confident_logits_is_the_number_of_classes(tmp_path, classes, splits,
                                                         expected):
  path = fake_classifier.save_class_code(tmp_path / 'clf', MNIST_SHAPE)
  c = _config(tmp_path, classifier=path)
  images = fake_classifier.class_code_images(classes, MNIST_SHAPE)
  with tfds.testing.mock_data(num_examples=NUM_REAL):
    result = scores.Scorer(c).score_images(images, splits)
  assert result['classifier_score'] == pytest.approx(expected, rel=1e-6)


def test_missing_modes_histogram_of_a_known_class_mix(tmp_path):
  path = fake_classifier.save_class_code(tmp_path / 'clf', MNIST_SHAPE)
  c = _config(tmp_path, classifier=path)
  classes = [0] * 100 + [3] * 200 + [7] * 60
  images = fake_classifier.class_code_images(classes, MNIST_SHAPE)
  given = []

  def generator(z):  # Hands out the images in order, whatever z is.
    start = sum(given)
    given.append(int(z.shape[0]))
    return tf.constant(images[start:start + given[-1]])
  scorer = scores.Scorer(c)  # Real data is only read for scores, not needed here.
  result = scores.missing_modes(generator, c.latent_dim, scorer.classify,
                                num_samples=360, batch_size=64)
  expected = [0] * 10
  expected[0], expected[3], expected[7] = 100, 200, 60
  assert result == {'class_histogram': expected, 'min_class_count': 0,
                    'missing_modes_num_samples': 360}
  assert given == [64] * 5 + [40]


def test_classify_matches_tfgan_classifier_fn_from_tfhub(tmp_path):
  path, _, _ = fake_classifier.save_linear(tmp_path / 'clf', MNIST_SHAPE)
  c = _config(tmp_path, classifier=path)
  images = np.random.default_rng(0).uniform(-1, 1, (5,) + MNIST_SHAPE).astype(np.float32)
  spec = scores.check_classifier(c)
  ours = scores._make_classify(spec, 'mnist', 'pool_3')(tf.constant(images))
  tfgan_fn = scores.tfgan_eval.classifier_fn_from_tfhub(path, ['logits', 'pool_3'])
  theirs = tfgan_fn(tf.constant(images))
  np.testing.assert_allclose(ours[0].numpy(), theirs['logits'].numpy(), rtol=1e-6)
  np.testing.assert_allclose(ours[1].numpy(), theirs['pool_3'].numpy(), rtol=1e-6)


def test_inception_handle_from_hub_cache_resizes_to_299(tmp_path, monkeypatch):
  monkeypatch.setenv('TFHUB_CACHE_DIR', str(tmp_path / 'hub'))
  monkeypatch.setattr(scores, '_network_reachable', lambda *a, **k: pytest.fail(
      'the network must not be tried when the module is cached'))
  handle = scores.tfgan_eval.INCEPTION_TFHUB
  fake_classifier.save_shape_probe(scores.hub_cache_path(handle))
  c = _config(tmp_path, dataset='cifar10')
  spec = scores.check_classifier(c)
  assert (spec.identity, spec.image_size, spec.channels) == (handle, 299, 3)
  scorer = scores.Scorer(c, spec=spec)
  _, features = scorer.activations([np.zeros((2, 32, 32, 3))])
  np.testing.assert_array_equal(features, [[299, 299, 3]] * 2)
  assert scorer.fingerprint == classifier.fingerprint(scores.hub_cache_path(handle))
  assert scorer.fingerprint != ''


def test_grey_images_are_tiled_for_a_three_channel_classifier(tmp_path, monkeypatch):
  monkeypatch.setenv('TFHUB_CACHE_DIR', str(tmp_path / 'hub'))
  path = fake_classifier.save_shape_probe(tmp_path / 'inception_copy')
  c = _config(tmp_path, dataset='mnist', classifier=path, fd_layer='pool_3')
  spec = scores.resolve_classifier(c)
  spec.channels, spec.image_size = 3, 40  # An Inception-like module for MNIST.
  _, features = scores.Scorer(c, spec=spec).activations([np.zeros((1, 28, 28, 1))])
  np.testing.assert_array_equal(features, [[40, 40, 3]])


def test_missing_local_classifier_is_a_clear_error(tmp_path):
  c = _config(tmp_path, classifier=str(tmp_path / 'nope'))
  with pytest.raises(scores.ClassifierUnavailableError,
                     match=r"classifier='.*nope' is not a SavedModel directory"):
    scores.check_classifier(c)


def test_missing_default_mnist_classifier_says_how_to_train_it(tmp_path, monkeypatch):
  monkeypatch.setenv('TF_GANCOND_HOME', str(tmp_path / 'home'))
  with pytest.raises(scores.ClassifierUnavailableError,
                     match=r'python -m tf_gancond.classifier --dataset=fashion_mnist'):
    scores.check_classifier(_config(tmp_path, dataset='fashion_mnist'))


def test_inception_offline_fails_without_trying_a_download(tmp_path, monkeypatch):
  monkeypatch.setenv('TFHUB_CACHE_DIR', str(tmp_path / 'empty_hub'))
  monkeypatch.setattr(scores, '_network_reachable', lambda *a, **k: False)
  monkeypatch.setattr(scores.tfhub, 'resolve', lambda *a, **k: pytest.fail(
      'no download may be tried when the host is unreachable'))
  with pytest.raises(scores.ClassifierUnavailableError,
                     match=r'not in the TF-Hub cache .* unreachable.*--classifier=DIR'):
    scores.check_classifier(_config(tmp_path, dataset='stl10'))


def test_network_probe_returns_while_the_connection_still_hangs(monkeypatch):
  """Name resolution ignores socket timeouts: the probe must not wait for it."""
  release, attempts, finished = threading.Event(), [], []

  def hanging_connect(address, timeout):
    attempts.append((address, timeout))
    release.wait(60)
    finished.append(address)
    raise OSError('released')
  monkeypatch.setattr(network.socket, 'create_connection', hanging_connect)
  try:
    assert network.host_reachable('tfhub.dev', timeout=0.2) is False
    assert attempts == [(('tfhub.dev', 443), 0.2)] and not finished
  finally:
    release.set()


def test_classifier_with_wrong_outputs_is_rejected(tmp_path):
  path = fake_classifier.save_wrong_outputs(tmp_path / 'clf')
  with pytest.raises(scores.ClassifierUnavailableError, match=r'does not map images'):
    scores.check_classifier(_config(tmp_path, classifier=path))


def test_bad_splits_and_samples(tmp_path):
  path = fake_classifier.save_class_code(tmp_path / 'clf', MNIST_SHAPE)
  scorer = scores.Scorer(_config(tmp_path, classifier=path))
  with pytest.raises(ValueError, match=r'splits=5 must lie in \[1, num_samples=3\]'):
    scorer.score_activations(np.zeros((3, 10)), np.zeros((3, 4)), 5)
  with pytest.raises(ValueError, match=r'num_samples=0 must be > 0'):
    scores.missing_modes(None, 8, scorer.classify, num_samples=0)


def test_check_scores_rejects_a_missing_real_split(tmp_path, monkeypatch):
  class FakeInfo:
    splits = {'train': None, 'test': None}

  class FakeBuilder:
    info = FakeInfo()
  monkeypatch.setattr(data, 'load_builder', lambda *a: FakeBuilder())
  path = fake_classifier.save_class_code(tmp_path / 'clf', MNIST_SHAPE)
  c = _config(tmp_path, classifier=path)
  assert scores.check_scores(c).identity == path
  c.eval_real_split = 'validation'
  with pytest.raises(data.DataUnavailableError,
                     match=r"eval_real_split='validation' does not exist.*train, test"):
    scores.check_scores(c)


def _write_run(c, records):
  """A workdir as a run leaves it: config.txt and metrics.jsonl with `records`."""
  os.makedirs(c.workdir, exist_ok=True)
  runlog.atomic_write_text(os.path.join(c.workdir, runlog.CONFIG_FILE),
                           config_lib.to_text(c))
  log = runlog.RunLog(c.workdir)
  for kind, step, values in records:
    log.append(kind, step, **values)


def _resume_config(tmp_path, classifier_path):
  c = _config(tmp_path, classifier=classifier_path)
  c.workdir = str(tmp_path / 'run')
  c.eval_num_samples, c.final_eval_num_samples = 20, 30
  return c


def test_resume_keeps_the_sample_counts_of_existing_scores(tmp_path):
  path = fake_classifier.save_class_code(tmp_path / 'clf', MNIST_SHAPE)
  c = _resume_config(tmp_path, path)
  _write_run(c, [('train', 2, {'d_loss': 1.0}),
                 ('eval', 2, {'num_samples': 20, 'classifier': path,
                              'classifier_fingerprint': classifier.fingerprint(path),
                              'fd_layer': 'logits'})])
  scores.check_resume(c)
  for field, value in (('eval_num_samples', 40), ('final_eval_num_samples', 60)):
    old = c[field]
    c[field] = value
    with pytest.raises(config_lib.ConfigError) as e:
      scores.check_resume(c)
    assert len(str(e.value).splitlines()) == 1
    assert f'holds scores made with {field}={old}, not {value}' in str(e.value)
    c[field] = old


def test_resume_of_scores_with_a_cut_config_is_refused(tmp_path):
  """The sample counts of existing scores cannot be read: refused, not waved through."""
  path = fake_classifier.save_class_code(tmp_path / 'clf', MNIST_SHAPE)
  c = _resume_config(tmp_path, path)
  _write_run(c, [('eval', 2, {'num_samples': 20, 'classifier': path,
                              'classifier_fingerprint': classifier.fingerprint(path),
                              'fd_layer': 'logits'})])
  config_txt = os.path.join(c.workdir, runlog.CONFIG_FILE)
  with open(config_txt) as f:
    text = f.read()
  c.eval_num_samples = 40
  cut_in_a_line = text[:text.index('eval_num_samples: ')] + 'eval_num_samples: [2'
  cut_between_lines = text[:text.index('eval_num_samples: ')]
  for cut in (cut_in_a_line, cut_between_lines):
    with open(config_txt, 'w') as f:
      f.write(cut)
    with pytest.raises(config_lib.ConfigError) as e:
      scores.check_resume(c)
    assert len(str(e.value).splitlines()) == 1
    assert 'holds scores' in str(e.value) and 'config.txt' in str(e.value)


def test_resume_keeps_the_classifier_of_existing_scores(tmp_path):
  path_a, _, _ = fake_classifier.save_linear(tmp_path / 'a', MNIST_SHAPE)
  path_b, _, _ = fake_classifier.save_linear(tmp_path / 'b', MNIST_SHAPE, seed=1)
  c = _resume_config(tmp_path, path_a)
  fp_a = classifier.fingerprint(path_a)
  _write_run(c, [('eval', 2, {'num_samples': 30, 'classifier': path_a,
                              'classifier_fingerprint': fp_a, 'fd_layer': 'logits'})])
  c.classifier = str(shutil.copytree(path_a, tmp_path / 'copy_of_a'))
  scores.check_resume(c)  # Another path to the same files: the same scores.
  c.classifier = path_b
  with pytest.raises(config_lib.ConfigError) as e:
    scores.check_resume(c)
  assert len(str(e.value).splitlines()) == 1
  assert (f'holds scores made by a classifier with fingerprint {fp_a}, not '
          f'{classifier.fingerprint(path_b)}') in str(e.value)


def test_resume_keeps_the_fd_layer_of_existing_scores(tmp_path):
  """Records with no fd_layer were made on the penultimate layer (pool_3)."""
  path, _, _ = fake_classifier.save_linear(tmp_path / 'a', MNIST_SHAPE)
  c = _resume_config(tmp_path, path)
  _write_run(c, [('eval', 2, {'num_samples': 30, 'classifier': path,
                              'classifier_fingerprint': classifier.fingerprint(path)})])
  assert c.fd_layer == 'logits'
  with pytest.raises(config_lib.ConfigError,
                     match="holds scores made on fd_layer='pool_3', not 'logits'"):
    scores.check_resume(c)
  c.fd_layer = 'pool_3'
  scores.check_resume(c)


def test_resume_without_score_records_may_change_classifier_and_counts(tmp_path):
  path_a, _, _ = fake_classifier.save_linear(tmp_path / 'a', MNIST_SHAPE)
  path_b, _, _ = fake_classifier.save_linear(tmp_path / 'b', MNIST_SHAPE, seed=1)
  c = _resume_config(tmp_path, path_a)
  _write_run(c, [('train', 2, {'d_loss': 1.0}), ('final', 4, {'mean_log_cond': 3.0})])
  c.classifier, c.eval_num_samples, c.final_eval_num_samples = path_b, 40, 60
  scores.check_resume(c)


def test_train_refuses_a_resume_that_changes_its_scores(tiny_config, tmp_path):
  """The refusal comes before the run's files are touched: another classifier path
  or sample count by the run folder's contract (runlog.check_resumable), other
  classifier files at the same path by the scores' fingerprint."""
  from tf_gancond import train
  c = tiny_config
  c.probe_every, c.train_steps, c.final_eval = 0, 2, True
  c.eval_num_samples = c.final_eval_num_samples = 20
  path_a, _, _ = fake_classifier.save_linear(tmp_path / 'a', MNIST_SHAPE)
  other, _, _ = fake_classifier.save_linear(tmp_path / 'b', MNIST_SHAPE, seed=1)
  c.classifier = str(shutil.copytree(path_a, tmp_path / 'classifier'))
  with tfds.testing.mock_data(num_examples=32):
    train.train_and_evaluate(c)
    files = {name: open(os.path.join(c.workdir, name)).read()
             for name in (runlog.METRICS_FILE, runlog.CONFIG_FILE, runlog.STATUS_FILE)}
    assert [r['classifier_fingerprint'] for r in runlog.read_records(
        c.workdir, 'final')] == [classifier.fingerprint(c.classifier)]
    c.train_steps = 4
    for field, value, message in (
        ('classifier', other, f'classifier={c.classifier!r} -> {other!r}'),
        ('final_eval_num_samples', 40, 'final_eval_num_samples=20 -> 40'),
        ('classifier', 'same path, other files', 'holds scores made by a classifier')):
      changed = config_lib.get_config()
      changed.update(c)
      if value == 'same path, other files':
        shutil.rmtree(c.classifier)
        shutil.copytree(other, c.classifier)
      else:
        changed[field] = value
      with pytest.raises(config_lib.ConfigError, match=re.escape(message)):
        train.train_and_evaluate(changed)
      for name, text in files.items():
        assert open(os.path.join(c.workdir, name)).read() == text, name
    shutil.rmtree(c.classifier)
    shutil.copytree(path_a, c.classifier)
    train.train_and_evaluate(c)  # The same classifier and counts: resumes.
  assert [r['step'] for r in runlog.read_records(c.workdir, 'final')] == [2, 4]
