"""A small convnet classifier for MNIST-like data, saved as a TF-Hub-style module.

  python -m tf_gancond.classifier --dataset=fashion_mnist       # ~10 min on 2 CPU cores
  python -m tf_gancond.classifier --dataset=mnist --epochs=5 --output_dir=/tmp/mnist_clf
  python -m tf_gancond.classifier --install_from=results/classifier_fashion_mnist

The paper's MNIST "classifier score" (CS) and "Frechet distance" (FD) come from "a
pre-trained MNIST classifier" (Odena et al. 2018; docs/experiments.md#0-common-setup,
"Scores"). TF-GAN's own (`tfgan/eval/mnist/logits/1` on TF-Hub) cannot be fetched
offline, so this module
trains one and saves it where `tf_gancond.scores` looks by default:
`<TF_GANCOND_HOME or ~/.cache/tf_gancond>/classifiers/<dataset>`.

SavedModel contract (the same shape of output as TF-GAN's Inception module, so the
directory works anywhere a TF-Hub handle does, e.g. `tfgan.eval.classifier_fn_from_tfhub`):
  * `tf.saved_model.load(path)(images)` and `signatures['serving_default'](images=...)`
    take float32 images [None, 28, 28, 1] in [-1, 1] and return
    {'logits': float32 [None, 10], 'pool_3': float32 [None, FEATURE_DIM]}.
    'pool_3' (the name of Inception's final pool, `tfgan.eval.INCEPTION_FINAL_POOL`)
    holds the penultimate activations, on which the Frechet/kernel distances are
    taken when `fd_layer='pool_3'`; by default MNIST-like scores take them on the
    logits (`fd_layer='logits'`, docs/experiments.md#0-common-setup).
  * `CLASSIFIER_METADATA_FILE` beside `saved_model.pb` records dataset, image size,
    test accuracy, epochs and training time.

Targets (issue 4): test accuracy >= 0.90 on Fashion-MNIST, >= 0.99 on MNIST. A new
classifier is trained into `<output_dir>.candidate` and moved to `output_dir` only if
it meets the target, so a classifier there (which scores already depend on) is never
replaced by a worse one; `ensure_classifier` refuses a cached one below the target.
`--install_from=DIR` copies a classifier trained earlier (those committed in
`results/classifier_mnist` and `results/classifier_fashion_mnist`, behind every score
of the results page) instead of
training one, so scores made on another machine compare; it never replaces a
different classifier already at the output directory.
Exit codes: 0 done, 2 bad input (one line on stderr), 3 accuracy below target (the
new classifier stays at `<output_dir>.candidate`).
"""

import hashlib
import json
import os
import shutil
import sys
import time

import tensorflow as tf

from tf_gancond import config as config_lib

CLASSIFIER_DATASETS = ('mnist', 'fashion_mnist')
CLASSIFIER_METADATA_FILE = 'tf_gancond_classifier.json'
LOGITS = 'logits'          # = tfgan.eval.INCEPTION_OUTPUT
FEATURES = 'pool_3'        # = tfgan.eval.INCEPTION_FINAL_POOL
FEATURE_DIM = 128          # Penultimate width: small, so FD's 128x128 sqrtm is cheap.
TARGET_ACCURACY = {'mnist': 0.99, 'fashion_mnist': 0.90}
DEFAULT_EPOCHS = 10
HOME_ENV = 'TF_GANCOND_HOME'


class ClassifierUnavailableError(RuntimeError):
  """No classifier for the scores; the one-line message says how to provide it."""


def home_dir():
  """`$TF_GANCOND_HOME`, else ~/.cache/tf_gancond."""
  return os.environ.get(HOME_ENV) or os.path.join(
      os.path.expanduser('~'), '.cache', 'tf_gancond')


def default_classifier_path(dataset):
  """Where this package's classifier for `dataset` lives by default."""
  return os.path.join(home_dir(), 'classifiers', dataset)


def is_saved_model_dir(path):
  return os.path.isdir(path) and os.path.isfile(os.path.join(path, 'saved_model.pb'))


def fingerprint(path):
  """First 16 hex digits of a sha256 over the files that define a SavedModel's outputs.

  Hashes `saved_model.pb` and every file under `variables/`, in sorted order, each as
  its path relative to `path`, its size and its bytes: a copy elsewhere has the same
  fingerprint, any change of graph or weights gives another. Other files (this
  package's metadata JSON) do not change the outputs and are left out.

  Returns '' when `path` is not a local directory: tensorflow_hub resolves a handle to
  a remote gs:// location when TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED and reads the
  module from there, and hashing it would download the whole module.
  """
  if not os.path.isdir(path):
    return ''
  variables = os.path.join(path, 'variables')
  names = ['saved_model.pb'] + sorted(
      os.path.relpath(os.path.join(d, f), path)
      for d, _, files in os.walk(variables) for f in files)
  digest = hashlib.sha256()
  for name in names:
    full = os.path.join(path, name)
    digest.update(f'{name}\0{os.path.getsize(full)}\0'.encode())
    with open(full, 'rb') as f:
      for chunk in iter(lambda: f.read(1 << 20), b''):
        digest.update(chunk)
  return digest.hexdigest()[:16]


def read_metadata(path):
  """The JSON written beside a classifier trained here, or {} for other modules."""
  meta = os.path.join(path, CLASSIFIER_METADATA_FILE)
  if not os.path.isfile(meta):
    return {}
  with open(meta) as f:
    return json.load(f)


class ConvClassifier(tf.keras.Model):
  """Two conv/pool blocks and a dense penultimate layer (LeNet-like).

  x [B, H, W, C] in [-1, 1] -> conv3x3(32)+ReLU -> maxpool2 -> conv3x3(64)+ReLU
  -> maxpool2 -> flatten -> dense(FEATURE_DIM)+ReLU ('pool_3') -> dropout -> dense(K).
  `call` returns {'logits': [B, K], 'pool_3': [B, FEATURE_DIM]}.
  """

  def __init__(self, num_classes=10, feature_dim=FEATURE_DIM, dropout=0.3):
    super().__init__(name='conv_classifier')
    self.conv1 = tf.keras.layers.Conv2D(32, 3, padding='same', activation='relu')
    self.pool1 = tf.keras.layers.MaxPool2D()
    self.conv2 = tf.keras.layers.Conv2D(64, 3, padding='same', activation='relu')
    self.pool2 = tf.keras.layers.MaxPool2D()
    self.flatten = tf.keras.layers.Flatten()
    self.features = tf.keras.layers.Dense(feature_dim, activation='relu')
    self.dropout = tf.keras.layers.Dropout(dropout)
    self.head = tf.keras.layers.Dense(num_classes)

  def call(self, x, training=False):
    h = self.pool1(self.conv1(x))
    h = self.pool2(self.conv2(h))
    features = self.features(self.flatten(h))
    logits = self.head(self.dropout(features, training=training))
    return {LOGITS: logits, FEATURES: features}


class ExportedClassifier(tf.Module):
  """The SavedModel interface: images -> {'logits', 'pool_3'} (see module docstring)."""

  def __init__(self, model, image_shape):
    super().__init__(name='exported_classifier')
    self.model = model
    spec = tf.TensorSpec([None] + list(image_shape), tf.float32, name='images')
    self.__call__ = tf.function(self._classify, input_signature=[spec])

  def _classify(self, images):
    return self.model(images, training=False)


def save_classifier(model, path, image_shape, metadata):
  """Writes the SavedModel atomically (temporary sibling, then rename); returns path.

  The weights are copied into a fresh, uncompiled model first: a compiled Keras
  model tracks its optimizer, whose variables would otherwise be saved too (and
  would be re-created on every load).
  """
  clean = ConvClassifier(num_classes=model.head.units,
                         feature_dim=model.features.units)
  clean(tf.zeros([1] + list(image_shape)))  # Builds the variables.
  clean.set_weights(model.get_weights())
  module = ExportedClassifier(clean, image_shape)
  tmp = path.rstrip('/') + '.tmp'
  if os.path.exists(tmp):
    shutil.rmtree(tmp)
  tf.saved_model.save(module, tmp, signatures={'serving_default': module.__call__})
  with open(os.path.join(tmp, CLASSIFIER_METADATA_FILE), 'w') as f:
    json.dump(metadata, f, indent=1, sort_keys=True)
  if os.path.exists(path):
    shutil.rmtree(path)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  os.replace(tmp, path)
  return path


def _check_dataset(dataset):
  if dataset not in CLASSIFIER_DATASETS:
    raise config_lib.ConfigError(
        f'dataset={dataset!r} has no package classifier; choose one of: '
        f'{", ".join(CLASSIFIER_DATASETS)} (cifar10/stl10 use Inception)')


def classification_accuracy(logits_fn, batches):
  """(accuracy, count): the fraction of all examples whose argmax logit is the label.

  `logits_fn` maps images [B, ...] to logits [B, K]; `batches` yields (images, int
  labels [B]). Counted over examples, so a short last batch weighs what it holds.
  """
  correct = total = 0
  for x, y in batches:
    predicted = tf.argmax(logits_fn(x), axis=1, output_type=tf.int32)
    correct += int(tf.reduce_sum(tf.cast(predicted == tf.cast(y, tf.int32), tf.int32)))
    total += int(tf.size(y))
  return correct / max(total, 1), total


def train_classifier(config, output_dir, epochs=DEFAULT_EPOCHS, batch_size=128,
                     steps_per_epoch=0, learning_rate=1e-3, log=print):
  """Trains `ConvClassifier` on `config.dataset` and saves it; returns the metadata.

  Saves whatever accuracy it reaches; `train_and_install` decides where it may go.

  Args:
    config: a config (dataset, data_dir, manual_dir, seed are read).
    output_dir: where the SavedModel goes (replaced if present).
    epochs: passes over the training split.
    batch_size: training batch.
    steps_per_epoch: 0 = the split size / batch_size (tests pass a few steps).
    learning_rate: Adam step size (Keras' default 1e-3).
    log: where progress lines go.
  """
  from tf_gancond import data  # Imports TFDS lazily: slow, and only training needs it.
  _check_dataset(config.dataset)
  if epochs <= 0 or batch_size <= 0 or steps_per_epoch < 0:
    raise config_lib.ConfigError(
        f'epochs={epochs!r}, batch_size={batch_size!r} must be > 0 and '
        f'steps_per_epoch={steps_per_epoch!r} >= 0')
  c = config_lib.get_config()
  c.dataset = config.dataset
  c.data_dir = config.data_dir
  c.manual_dir = config.manual_dir
  c.seed = config.seed
  c.shuffle_buffer = 60000  # Whole MNIST-like training split: a full shuffle.
  c.split = 'train'
  c = config_lib.resolve(c)
  steps_per_epoch = steps_per_epoch or config_lib.TRAIN_EXAMPLES[c.dataset] // batch_size
  tf.keras.utils.set_random_seed(c.seed)

  train_ds = data.make_dataset(c, batch_size=batch_size)
  test_ds = data.make_dataset(c, split='test', batch_size=1000, shuffle=False,
                              repeat=False)
  size = config_lib.IMAGE_SIZE[c.dataset]
  image_shape = (size, size, config_lib.IMAGE_CHANNELS[c.dataset])
  model = ConvClassifier(num_classes=config_lib.NUM_CLASSES[c.dataset])
  model.compile(
      optimizer=tf.keras.optimizers.Adam(learning_rate),
      loss={LOGITS: tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
      metrics={LOGITS: ['accuracy']})
  start = time.perf_counter()
  model.fit(train_ds.map(lambda x, y: (x, {LOGITS: y})), epochs=epochs,
            steps_per_epoch=steps_per_epoch, verbose=2)
  train_seconds = time.perf_counter() - start
  accuracy, total = classification_accuracy(
      lambda x: model(x, training=False)[LOGITS], test_ds)
  metadata = {
      'dataset': c.dataset, 'image_size': size, 'image_shape': list(image_shape),
      'num_classes': config_lib.NUM_CLASSES[c.dataset], 'feature_dim': FEATURE_DIM,
      'outputs': [LOGITS, FEATURES], 'input_range': [-1.0, 1.0],
      'test_accuracy': accuracy, 'num_test': total, 'epochs': epochs,
      'steps_per_epoch': steps_per_epoch, 'batch_size': batch_size,
      'learning_rate': learning_rate, 'seed': c.seed,
      'train_seconds': round(train_seconds, 1)}
  save_classifier(model, output_dir, image_shape, metadata)
  log(f'{c.dataset} classifier: test accuracy {accuracy:.4f} on {total} images, '
      f'{epochs} epochs in {train_seconds:.0f} s; saved to {output_dir}')
  return dict(metadata, path=output_dir)


def below_target(dataset, accuracy):
  """The one-line reason a classifier of `accuracy` is not used, or None if it may be."""
  target = TARGET_ACCURACY[dataset]
  if accuracy is None:
    return f'no test accuracy is recorded ({CLASSIFIER_METADATA_FILE})'
  if accuracy < target:
    return f'test accuracy {accuracy:.4f} is below the target {target} for {dataset}'
  return None


def train_and_install(config, output_dir=None, log=print, **train_kwargs):
  """Trains a classifier and puts it at `output_dir` only if it meets the target.

  Training goes to `<output_dir>.candidate`; a classifier that reaches
  TARGET_ACCURACY[dataset] then replaces whatever is at `output_dir` (default
  `default_classifier_path`), one that misses it stays at the candidate path and
  `output_dir` is left as it was. Returns the metadata with 'path' (where the new
  classifier is), 'installed' (bool) and, if not installed, 'reason' (one line).
  `log` and `train_kwargs` go to `train_classifier`.
  """
  _check_dataset(config.dataset)
  output_dir = (output_dir or default_classifier_path(config.dataset)).rstrip('/')
  result = train_classifier(config, output_dir + '.candidate', log=log, **train_kwargs)
  reason = below_target(config.dataset, result['test_accuracy'])
  if reason:
    kept = ('kept the classifier at' if is_saved_model_dir(output_dir) else
            'nothing installed at')
    return dict(result, installed=False,
                reason=f'{reason}: {kept} {output_dir}; the new one is at '
                       f'{result["path"]}')
  if os.path.exists(output_dir):
    shutil.rmtree(output_dir)
  os.replace(result['path'], output_dir)
  log(f'installed at {output_dir}')
  return dict(result, path=output_dir, installed=True)


def install_copy(source, output_dir):
  """Copies the classifier at `source` to `output_dir`; returns True if it copied.

  Returns False, changing nothing, when the same classifier (same `fingerprint`) is
  there already. Raises ClassifierUnavailableError, writing nothing, when `source` is
  not a SavedModel directory of a package classifier meeting its dataset's target, or
  a different classifier is at `output_dir`. The copy goes to `<output_dir>.tmp` and is
  renamed, so a kill leaves no half classifier where the scores look.
  """
  source, output_dir = source.rstrip('/'), output_dir.rstrip('/')
  if not is_saved_model_dir(source):
    raise ClassifierUnavailableError(
        f'install_from={source!r} is not a SavedModel directory (no saved_model.pb)')
  metadata = read_metadata(source)
  dataset = metadata.get('dataset')
  if dataset not in CLASSIFIER_DATASETS:
    raise ClassifierUnavailableError(
        f'install_from={source!r} records no dataset of {CLASSIFIER_DATASETS} in '
        f'{CLASSIFIER_METADATA_FILE}')
  reason = below_target(dataset, metadata.get('test_accuracy'))
  if reason:
    raise ClassifierUnavailableError(f'install_from={source!r}: {reason}')
  wanted = fingerprint(source)
  if os.path.exists(output_dir):
    present = fingerprint(output_dir)
    if present == wanted:
      return False
    raise ClassifierUnavailableError(
        f'a different classifier (fingerprint {present}) is already at {output_dir}, '
        f'not the one of install_from={source!r} ({wanted}); scores made with the two '
        'do not compare: remove it or give another --output_dir')
  partial = output_dir + '.tmp'
  shutil.rmtree(partial, ignore_errors=True)
  shutil.copytree(source, partial)
  os.replace(partial, output_dir)
  return True


def ensure_classifier(config, train_if_missing=True, **train_kwargs):
  """The path of the classifier the scores of `config` use, trained here if missing.

  For mnist/fashion_mnist with `config.classifier` empty, the package classifier at
  `default_classifier_path(dataset)` is used if its recorded test accuracy meets
  TARGET_ACCURACY (else refused), and trained when it is missing and
  `train_if_missing` (`train_kwargs` go to `train_classifier`; default DEFAULT_EPOCHS;
  installed only if it meets the target). An explicit `config.classifier` is never
  trained into and not checked against the target: a missing one raises. Other
  datasets return `config.classifier` ('' = TF-Hub Inception; `scores.check_classifier`
  checks it). Raises ClassifierUnavailableError.
  """
  if config.classifier:
    if '://' in config.classifier or is_saved_model_dir(config.classifier):
      return config.classifier
    raise ClassifierUnavailableError(
        f'classifier={config.classifier!r} is not a SavedModel directory (no '
        'saved_model.pb); give --classifier=DIR of a SavedModel or a TF-Hub handle')
  if config.dataset not in CLASSIFIER_DATASETS:
    return ''  # Inception through TF-Hub: `scores.check_classifier` decides.
  path = default_classifier_path(config.dataset)
  if is_saved_model_dir(path):
    reason = below_target(config.dataset, read_metadata(path).get('test_accuracy'))
    if reason:
      raise ClassifierUnavailableError(
          f'the {config.dataset} classifier at {path}: {reason}; '
          f'{_retrain_hint(config.dataset)}')
    return path
  if not train_if_missing:
    raise ClassifierUnavailableError(missing_message(config.dataset, path))
  result = train_and_install(config, path, **train_kwargs)
  if not result['installed']:
    raise ClassifierUnavailableError(
        f'{result["reason"]}; {_retrain_hint(config.dataset)}')
  return path


def _retrain_hint(dataset):
  return (f'train one with `python -m tf_gancond.classifier --dataset={dataset}` '
          '(more --epochs if it missed the target) or give --classifier=DIR')


def missing_message(dataset, path):
  return (f'no {dataset} classifier at {path}; train it with `python -m '
          f'tf_gancond.classifier --dataset={dataset}` (about 10 min on a CPU) or '
          'give --classifier=DIR of a SavedModel returning logits and pool_3')


# ----------------------------------------------------------------------------
# Command line. The flags live in a private FlagValues, so this module can be
# imported and its `main` called beside other absl programs (and in tests).


def define_flags(fv):
  from absl import flags
  flags.DEFINE_string('dataset', 'fashion_mnist', f'One of {CLASSIFIER_DATASETS}.',
                      flag_values=fv)
  flags.DEFINE_string('output_dir', '', 'SavedModel directory; default <TF_GANCOND_'
                      'HOME or ~/.cache/tf_gancond>/classifiers/<dataset>.', flag_values=fv)
  flags.DEFINE_integer('epochs', DEFAULT_EPOCHS, 'Passes over the training split.',
                       flag_values=fv)
  flags.DEFINE_integer('batch_size', 128, 'Training batch size.', flag_values=fv)
  flags.DEFINE_integer('steps_per_epoch', 0, '0 = training split size / batch size.',
                       flag_values=fv)
  flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate.', flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Random seed.', flag_values=fv)
  flags.DEFINE_string('install_from', '', 'Copy the classifier at this directory (e.g. '
                      'results/classifier_fashion_mnist) to --output_dir instead of '
                      'training one; never replaces a different one.', flag_values=fv)
  flags.DEFINE_string('data_dir', '', 'TFDS data_dir ("" = TFDS default).',
                      flag_values=fv)
  flags.DEFINE_string('manual_dir', '', 'TFDS manual_dir ("" = Debian Fashion-MNIST '
                      'if installed).', flag_values=fv)


def _fail(message, code=2):
  print(f'error: {message}', file=sys.stderr)
  sys.exit(code)


def main(argv):
  """Parses argv (argv[0] is the program), trains (or copies) and installs.

  Returns the installed classifier's metadata with 'path'. Exits 2 on bad input, 3 when the new classifier misses the target (then it is not
  installed: see `train_and_install`).
  """
  from absl import flags
  from tf_gancond import data
  fv = flags.FlagValues()
  define_flags(fv)
  try:
    rest = fv(list(argv))
  except flags.Error as e:
    _fail(str(e).splitlines()[0])
  if len(rest) > 1:
    _fail(f'unexpected arguments {rest[1:]!r}; every option is a --flag')
  if fv.install_from:
    return _install_from(fv)
  c = config_lib.get_config()
  c.dataset = fv.dataset
  c.data_dir = fv.data_dir
  c.manual_dir = fv.manual_dir
  c.seed = fv.seed
  try:
    result = train_and_install(
        c, output_dir=fv.output_dir or None, epochs=fv.epochs,
        batch_size=fv.batch_size, steps_per_epoch=fv.steps_per_epoch,
        learning_rate=fv.learning_rate)
  except (config_lib.ConfigError, data.DataUnavailableError) as e:
    _fail(str(e).splitlines()[0])
  if not result['installed']:
    _fail(f'{result["reason"]} (try more --epochs)', code=3)
  _write_real_data_scores(c, result['path'])
  return result


def _write_real_data_scores(config, path):
  """Writes `scores.real_data_scores` of the classifier at `path` beside it."""
  from tf_gancond import runlog
  from tf_gancond import scores  # Imports TF-GAN: only once a classifier exists.
  c = config_lib.resolve(config.copy_and_resolve_references())
  c.classifier = path
  ceiling = scores.real_data_scores(c)
  runlog.atomic_write_json(os.path.join(path, scores.REAL_DATA_SCORES_FILE), ceiling)
  print(f'real-data scores (the ceiling of a perfect generator) in {path}')


def _install_from(fv):
  """`main` for --install_from: the source's dataset must be --dataset."""
  dataset = read_metadata(fv.install_from).get('dataset')
  if is_saved_model_dir(fv.install_from) and dataset != fv.dataset:
    _fail(f'install_from={fv.install_from!r} holds a classifier of dataset '
          f'{dataset!r}, not --dataset={fv.dataset}')
  output_dir = fv.output_dir or default_classifier_path(fv.dataset)
  try:
    copied = install_copy(fv.install_from, output_dir)
  except ClassifierUnavailableError as e:
    _fail(str(e))
  print(f'{"installed" if copied else "already installed"}: {fv.dataset} classifier '
        f'{fingerprint(output_dir)} at {output_dir}')
  return dict(read_metadata(output_dir), path=output_dir)


def run():
  """Console entry point (`tf_gancond-classifier`)."""
  main(sys.argv)


if __name__ == '__main__':
  run()
