"""The TFDS input pipeline on mock data: shapes, range, labels, errors."""

import os
import tempfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tf_gancond import config as config_lib
from tf_gancond import data


@pytest.mark.parametrize('dataset,shape', [
    ('mnist', (4, 28, 28, 1)), ('cifar10', (4, 32, 32, 3)), ('stl10', (4, 48, 48, 3)),
    ('fashion_mnist', (4, 28, 28, 1))])
def test_pipeline_shapes_and_range(dataset, shape, tmp_path):
  c = config_lib.get_config()
  c.dataset = dataset
  c.batch_size = 4
  c.shuffle_buffer = 8
  c.data_dir = str(tmp_path)
  c = config_lib.resolve(c)
  with tfds.testing.mock_data(num_examples=12):
    images, labels = next(iter(data.make_dataset(c)))
  assert images.shape == shape
  x = images.numpy()
  assert x.min() >= -1.0 and x.max() <= 1.0 and x.std() > 0.1
  assert labels.dtype.name == 'int32' and labels.shape == (4,)


@pytest.mark.parametrize('dequantize', [False, True])
def test_a_pipeline_skipped_by_k_batches_reads_batch_k_onwards(dequantize, tmp_path):
  """A resumed run reads what a run never stopped would: the stream skipped by k
  batches (across epoch ends: 12 examples, 4 per batch) equals batches k, k+1, ...
  of the whole stream, dequantization noise included."""
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', batch_size=4, shuffle_buffer=8, seed=5,
                dequantize=dequantize, data_dir=str(tmp_path)))
  c = config_lib.resolve(c)
  with tfds.testing.mock_data(num_examples=12):
    whole = [x.numpy() for x, _ in data.make_dataset(c).take(10)]
    skipped = [x.numpy() for x, _ in data.make_dataset(c, skip_batches=7).take(3)]
    again = [x.numpy() for x, _ in data.make_dataset(c).take(10)]
  for a, b in zip(whole[7:], skipped):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(whole, again):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(whole[0], whole[3])  # The epochs are reshuffled.


def test_workers_shard_the_skipped_global_stream(tmp_path):
  """Under MultiWorkerMirroredStrategy every worker reads the one global stream and
  keeps its share of each batch (DATA sharding), so a resume's skip by global
  batches lines up on every worker; FILE sharding would give each worker a stream
  of its own, which a skip of global batches overshoots."""
  import tensorflow as tf
  c = config_lib.get_config()
  c.update(dict(dataset='mnist', batch_size=4, shuffle_buffer=8,
                data_dir=str(tmp_path)))
  c = config_lib.resolve(c)
  with tfds.testing.mock_data(num_examples=12):
    ds = data.make_dataset(c, skip_batches=2)
  assert (ds.options().experimental_distribute.auto_shard_policy ==
          tf.data.experimental.AutoShardPolicy.DATA)


def test_stl_uses_unlabelled_split():
  c = config_lib.get_config()
  c.dataset = 'stl10'
  assert config_lib.resolve(c).split == 'unlabelled'


def test_scaling_is_exact():
  import tensorflow as tf
  x = tf.constant([[[[0]], [[255]]]], tf.uint8)
  y = data._to_float(x, 2, dequantize=False).numpy().ravel()
  np.testing.assert_allclose(y[:2], [-1.0, 1.0])


def test_dequantize_noise_bounds():
  import tensorflow as tf
  x = tf.fill([1, 8, 8, 1], tf.constant(0, tf.uint8))
  y = data._to_float(x, 8, dequantize=True, noise_seed=[0, 0]).numpy()
  assert np.all(y >= -1.0) and np.all(y <= -1.0 + 1.0 / 128) and y.std() > 0


def test_dequantized_images_stay_below_one():
  """igul222: 2 (x/256 - 0.5) + U[0, 1/128] lies in [-1, 1) for every byte x."""
  import tensorflow as tf
  x = tf.reshape(tf.tile(tf.range(256, dtype=tf.int32), [64]), [1, 128, 128, 1])
  y = data._to_float(tf.cast(x, tf.uint8), 128, dequantize=True,
                      noise_seed=[0, 0]).numpy().ravel()
  assert y.min() >= -1.0 and y.max() < 1.0
  brightest = y[x.numpy().ravel() == 255]
  # 255 maps to 1 - 1/128, plus noise of mean 1/256 (64 draws: std 2.8e-4).
  np.testing.assert_allclose(brightest.mean(), 1 - 1 / 256, atol=1.2e-3)


def test_missing_split_is_clear(monkeypatch):
  class FakeInfo:
    splits = {'train': None, 'test': None}

  class FakeBuilder:
    info = FakeInfo()
  monkeypatch.setattr(data, 'load_builder', lambda *a: FakeBuilder())
  c = config_lib.resolve(config_lib.get_config())
  c.split = 'nope'
  with pytest.raises(data.DataUnavailableError,
                     match="split='nope' does not exist.*available: train, test"):
    data.make_dataset(c)


def test_unavailable_dataset_says_how_to_provide(tmp_path, monkeypatch):
  """No network here: preparing cifar10 fails with one line that names a fix."""
  import tensorflow_datasets as tfds_mod

  def fail(*args, **kwargs):
    raise ConnectionError('no network')
  monkeypatch.setattr(tfds_mod.core.DatasetBuilder, 'download_and_prepare', fail)
  with pytest.raises(data.DataUnavailableError) as e:
    data.load_builder('cifar10', data_dir=str(tmp_path))
  message = str(e.value)
  assert "dataset='cifar10'" in message and 'data_dir' in message
  assert '\n' not in message


def test_two_runs_preparing_one_dataset_build_it_once(tmp_path, monkeypatch):
  """A sweep starts runs together: the second waits for the first build, not races it."""
  import threading
  import time
  built = tmp_path / 'fashion_mnist' / '3.0.1'
  builds = []

  class Splits(dict):
    total_num_examples = 0

  class FakeBuilder:
    data_dir = str(built)

    def __init__(self):  # As TFDS, a builder reads the folder's state once.
      splits = Splits(train=None)
      splits.total_num_examples = 70000 if built.exists() else 0
      self.info = type('Info', (), {'splits': splits})()

    def download_and_prepare(self, download_config=None):
      builds.append(1)
      time.sleep(0.3)  # TFDS writes to a temporary folder, then renames it.
      if built.exists():
        raise OSError(f'Cannot rename. Destination {built} already exists.')
      built.mkdir(parents=True)

  monkeypatch.setattr(tfds, 'builder', lambda name, data_dir=None: FakeBuilder())
  monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path / 'tmp'))
  (tmp_path / 'tmp').mkdir()
  start, errors = threading.Barrier(2), []

  def run():
    start.wait()
    try:
      data.load_builder('fashion_mnist', data_dir=str(tmp_path))
    except data.DataUnavailableError as e:
      errors.append(str(e))
  threads = [threading.Thread(target=run) for _ in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert errors == [] and len(builds) == 1
  locks = os.listdir(tmp_path / 'tmp')  # Per user: another's /tmp file cannot be opened.
  assert len(locks) == 1 and locks[0].startswith(f'tf_gancond_prepare_{os.getuid()}_')
