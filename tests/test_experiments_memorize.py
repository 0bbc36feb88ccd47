"""O7: target selection, batching, memorization of a small set, histograms, files."""

import glob
import os

import fake_classifier
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_gancond import config as config_lib
from tf_gancond import export
from tf_gancond import runlog
from tf_gancond.experiments import memorize


def test_select_targets_random_plus_copies_of_one_label():
  labels = np.array([0, 4, 1, 4, 2, 3, 4, 5, 6, 7])
  index, repeated = memorize.select_targets(labels, 6, 5, 4, seed=3)
  assert len(index) == 11 and labels[repeated] == 4
  counts = np.bincount(index, minlength=len(labels))
  # 6 distinct random examples plus 5 copies of the repeated one.
  assert counts[repeated] in (5, 6) and np.sum(counts > 0) == 6 + (counts[repeated] == 5)
  assert counts.sum() == 11
  again, _ = memorize.select_targets(labels, 6, 5, 4, seed=3)
  np.testing.assert_array_equal(index, again)  # A function of the seed.
  other, _ = memorize.select_targets(labels, 6, 5, 4, seed=4)
  assert not np.array_equal(index, other)
  with pytest.raises(config_lib.ConfigError, match='memorize_label=9'):
    memorize.select_targets(labels, 2, 2, 9, seed=0)
  with pytest.raises(config_lib.ConfigError, match='memorize_num_random=11'):
    memorize.select_targets(labels, 11, 0, 4, seed=0)


def test_batch_index_visits_every_pair_once_per_epoch():
  seen = np.concatenate([memorize.batch_index(s, 12, 4, seed=0) for s in range(3)])
  np.testing.assert_array_equal(np.sort(seen), np.arange(12))
  second = np.concatenate([memorize.batch_index(s, 12, 4, seed=0) for s in (3, 4, 5)])
  np.testing.assert_array_equal(np.sort(second), np.arange(12))
  assert not np.array_equal(seen, second)  # Reshuffled each epoch.


def test_memorized_and_random_z_streams_differ():
  a = memorize.memorized_z(5, 3, seed=0)
  np.testing.assert_array_equal(a, memorize.memorized_z(5, 3, seed=0))
  assert not np.allclose(a, memorize.random_z(5, 3, seed=0))


def _fake_classify(images):
  """Deterministic 10-class 'classifier': a fixed random linear map of the pixels."""
  w = np.random.default_rng(0).normal(size=(28 * 28, 10)).astype(np.float32)
  return tf.reshape(images, [-1, 28 * 28]) @ w


@pytest.fixture
def mem_config(tiny_config):
  c = tiny_config
  c.experiment = 'memorize'
  c.memorize_num_random = 8
  c.memorize_num_copies = 8
  c.memorize_target_mse = 0.01
  c.g_base_channels = 32
  c.g_lr = 3e-3  # Tiny G, 16 noise images: a larger step than O7's 2e-4.
  c.train_steps = 800
  c.log_every = 10
  c.checkpoint_every = 1000
  c.probe_every = 0
  c.export_every = 0  # The fixture resolved it to its probe interval.
  c.eval_num_samples = 40
  return c


def _run(config, workdir, classify_fn=None):
  with tfds.testing.mock_data(num_examples=32):
    return memorize.run(config, workdir, classify_fn=classify_fn)


def test_memorizes_small_set_and_counts_random_z_classes(mem_config, tmp_path):
  c = mem_config
  c.classifier, w_logits, w_features = fake_classifier.save_linear(tmp_path / 'clf', (28, 28, 1))
  c.eval_splits = 2
  workdir = str(tmp_path / 'mem')
  final = _run(c, workdir)  # Histograms and CS/FD through tf_gancond.scores.
  assert final['memorized'] and final['memorization_mse'] < 0.01
  evals = runlog.read_records(workdir, 'eval')
  last_step = runlog.read_records(workdir, 'final')[-1]['step']
  assert last_step < c.train_steps  # Stopped once memorized.
  assert evals[-1]['memorized'] and evals[-1]['step'] == last_step
  assert all(not e['memorized'] for e in evals[:-1])
  assert os.path.exists(os.path.join(workdir, memorize.PAIRS_FILE))
  assert glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))
  assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))

  # The memorization error, recomputed from the exported G and the saved pairs.
  pairs = np.load(os.path.join(workdir, memorize.PAIRS_FILE))
  generate, _ = export.load_generator(final['saved_model'])
  with tfds.testing.mock_data(num_examples=32):
    from tf_gancond import data
    images, labels = data.load_numpy(config_lib.resolve(c), 'train')
  np.testing.assert_array_equal(labels[pairs['target_index']], pairs['target_label'])
  out = generate(tf.constant(pairs['z'])).numpy()
  mse = np.mean((out.astype(np.float64) - images[pairs['target_index']]) ** 2)
  assert mse == pytest.approx(final['memorization_mse'], rel=1e-4)

  # Random-z class histogram, recomputed from the SavedModel at the same z.
  z = memorize.random_z(c.eval_num_samples, c.latent_dim, c.seed)
  samples = generate(tf.constant(z)).numpy()
  logits, _ = fake_classifier.linear_reference(samples, w_logits, w_features)
  expected = np.bincount(np.argmax(logits, -1), minlength=10)
  assert final['random_z_class_histogram'] == expected.tolist()
  assert sum(final['memorized_z_class_histogram']) == 16
  assert final['random_z_class_fractions'] == pytest.approx(expected / 40)
  for kind, n in (('random_z', 40), ('memorized_z', 16)):
    assert final[f'{kind}_num_samples'] == n and final[f'{kind}_splits'] == 2
    assert final[f'{kind}_classifier_score'] >= 1.0
    assert np.isfinite(final[f'{kind}_frechet_distance'])
  assert 'scores_skipped' not in final

  # Re-running a memorized run trains no further; an injected classify fn works.
  n_train = len(runlog.read_records(workdir, 'train'))
  again = _run(c, workdir, _fake_classify)
  assert again['memorized'] and len(runlog.read_records(workdir, 'train')) == n_train
  expected = np.bincount(np.argmax(_fake_classify(samples).numpy(), -1), minlength=10)
  assert again['random_z_class_histogram'] == expected.tolist()


class _Killed(Exception):
  pass


def test_a_resumed_run_checks_and_stops_where_a_straight_run_does(
    mem_config, tmp_path, monkeypatch):
  """Killed inside the 5 log intervals that follow a screening check and resumed,
  the run measures at the steps a run never stopped does and stops at its step:
  the screening state comes back from the run's own 'eval' records."""
  c = mem_config
  c.deterministic = True
  c.train_steps = 1500
  c.checkpoint_every = c.log_every
  c.classifier = str(tmp_path / 'no_classifier')
  # A target whose first screening check finds the pairs not yet memorized, well
  # before the run stops (the trajectory differs between the two stacks).
  for target in (0.003, 0.002, 0.0015, 0.004):
    c.memorize_target_mse = target
    straight_dir = str(tmp_path / f'straight_{target}')
    _run(c, straight_dir)
    checks = [r['step'] for r in runlog.read_records(straight_dir, 'eval')]
    last = runlog.read_records(straight_dir, 'final')[-1]['step']
    screened = [s for s in checks if 0 < s < last - 2 * c.log_every]
    if screened:
      break
  assert screened, checks
  resumed_dir = str(tmp_path / 'resumed')
  kill_at = screened[0] + c.log_every + 1  # Resumes at the checkpoint after it.
  train_step = memorize.Memorizer.train_step

  def killed_once(self, iterator):
    if int(self.step.numpy()) + 1 == kill_at and not os.path.exists(
        resumed_dir + '_killed'):
      open(resumed_dir + '_killed', 'w').close()
      raise _Killed()
    return train_step(self, iterator)

  monkeypatch.setattr(memorize.Memorizer, 'train_step', killed_once)
  with pytest.raises(_Killed):
    _run(c, resumed_dir)
  _run(c, resumed_dir)
  assert [r['step'] for r in runlog.read_records(resumed_dir, 'start')] == [
      0, kill_at - 1]
  resumed_checks = sorted({r['step'] for r in runlog.read_records(resumed_dir, 'eval')})
  assert resumed_checks == checks
  assert runlog.read_records(resumed_dir, 'final')[-1]['step'] == last


def test_stops_at_train_steps_and_reports_missing_classifier(mem_config, tmp_path):
  c = mem_config
  c.train_steps = 3
  c.log_every = 2
  c.classifier = str(tmp_path / 'no_classifier')
  workdir = str(tmp_path / 'mem')
  final = _run(c, workdir)
  assert not final['memorized'] and np.isfinite(final['memorization_mse'])
  assert final['scores_skipped'].startswith('scores skipped')
  assert 'random_z_class_histogram' not in final
  assert [r['step'] for r in runlog.read_records(workdir, 'train')] == [2, 3]
  assert runlog.read_status(workdir)['state'] == 'finished'


def test_config_file_and_sweep_validate():
  import importlib.util
  path = os.path.join(os.path.dirname(__file__), '..', 'configs',
                      'o7_memorizing_generator.py')
  spec = importlib.util.spec_from_file_location('o7', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config()
  # docs/experiments.md#o7: n_z 64, 5,000 random + 5,000 copies of a four, Adam 2e-4
  # beta1 0.5.
  assert (c.experiment, c.latent_dim, c.memorize_num_random, c.memorize_num_copies,
          c.memorize_label, c.g_lr, c.beta1) == ('memorize', 64, 5000, 5000, 4, 2e-4,
                                                 0.5)
  from launch import sweeps
  runs = sweeps.get_sweep('o7_memorizing_generator')
  assert [r.seed for r in runs] == list(range(10))
  assert {os.path.realpath(r.config_path()) for r in runs} == {os.path.realpath(path)}
  config_lib.validate(config_lib.resolve(c))
