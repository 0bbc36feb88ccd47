"""Sample-quality scores through TF-GAN: IS / classifier score, FID, KID; missing modes.

The only module of the package that imports `tensorflow_gan` (`_import_tfgan_eval`
says how on TensorFlow 2.16 and later); each score records `score_implementation`.

Definitions (docs/experiments.md#0-common-setup, "Scores"), computed by TF-GAN's
functions from classifier outputs of N generated images (and of the real images of
`config.eval_real_split`):
  * Inception Score (Salimans et al. 2016), `tfgan_eval.classifier_score_from_logits`:
      IS = exp(E_x KL(p(y|x) || p(y))),  p(y) = E_x p(y|x),
    on each of `splits` equal parts of the N samples; reported as mean and std over
    the parts. On MNIST-like data with this package's classifier it is the paper's
    "classifier score" (Odena et al. 2018), keys 'classifier_score*'.
  * Frechet distance (Heusel et al. 2017),
    `tfgan_eval.frechet_classifier_distance_from_activations`:
      FID = ||m - m_w||^2 + Tr(C + C_w - 2 (C C_w)^(1/2))
    of the classifier output `config.fd_layer` of real (m, C) and generated (m_w, C_w)
    images, on all N samples; key 'fid' (Inception) or 'frechet_distance' (MNIST-like).
    The layer sets the units: 'logits' (the 10 logits, the default for MNIST-like
    data, as TF-GAN's `mnist_frechet_distance` takes them: the paper's toolchain) or
    'pool_3' (Inception's final pool, the default for FID; the penultimate 128 units
    of this package's MNIST-like classifiers).
  * Kernel distance (Binkowski et al. 2018),
    `tfgan_eval.kernel_classifier_distance_and_std_from_activations`: the unbiased
    MMD^2 with kernel k(x, y) = (x.y / d + 1)^3 on the same activations; 'kid', 'kid_std'.
Every result carries its settings: 'num_samples', 'splits', 'real_split', 'num_real',
'classifier' (the handle or path), 'classifier_fingerprint' (`classifier.fingerprint`
of the loaded SavedModel's files: the same handle or path may hold another model
later) and 'fd_layer', because scores are comparable only at equal settings.
`check_resume` keeps a run's later scores comparable with its earlier ones.

Classifier injection: a classifier is a TF-Hub handle or a local SavedModel directory
whose call maps float32 images [B, H, W, C] in [-1, 1] to a dict with 'logits' [B, K]
and 'pool_3' [B, D] (the output names of TF-GAN's Inception module), or to logits
[B, K] alone (as TF-GAN's MNIST module does; then fd_layer must be 'logits'). Defaults:
  * cifar10 / stl10 / lsun_bedroom: `tfgan_eval.INCEPTION_TFHUB`, images resized
    bilinearly to 299x299 (`tfgan_eval.INCEPTION_DEFAULT_IMAGE_SIZE`) as TF-GAN expects;
  * mnist / fashion_mnist: this package's classifier (`tf_gancond.classifier`) at
    `<TF_GANCOND_HOME or ~/.cache/tf_gancond>/classifiers/<dataset>`.
`config.classifier` overrides either. The input size a module wants is read from its
serving signature when static, else from the JSON a module trained here carries, else
the defaults above. `check_classifier` resolves and test-runs the classifier in
seconds, so a run with evaluation on fails at start-up, not hours later, with one line
(`ClassifierUnavailableError`) saying how to provide it. A TF-Hub handle is served
from the TF-Hub cache when present; otherwise the network is probed with a short
timeout, so an offline machine fails at once instead of hanging on a download.
`check_scores` adds a check that `config.eval_real_split` exists.
"""

import dataclasses
import hashlib
import os
import time
import warnings
from urllib import parse

import numpy as np
import tensorflow as tf

from tf_gancond import classifier as classifier_lib
from tf_gancond import config as config_lib
from tf_gancond import network
from tf_gancond import runlog
from tf_gancond import stack

_TFGAN_PARENTS = ('tensorflow_gan', 'tensorflow_gan.python', 'tensorflow_gan.python.eval')


def _import_tfgan_eval():
  """TF-GAN's eval namespace and the name of the path that imported it.

  TF-GAN 2.1.0's package `__init__` imports its Estimator code, and `tf.estimator` is
  gone from TensorFlow 2.16 on (tensorflow/gan#55, open, no fix). Its two eval modules
  used here need only TensorFlow, TFP, TF-Hub and TF-GAN's `eval_utils`. So on
  TF >= 2.16 the three parent packages are registered empty (their directories as
  `__path__`, their `__init__` not run), the two modules are imported from TF-GAN's own
  files, and the empty parents are removed again: the same functions, the same code.
  Checked against tensorflow-gan 2.1.0.
  """
  if not stack.TF_AT_LEAST_2_16:
    import tensorflow_gan as tfgan
    return tfgan.eval, f'tensorflow_gan {stack.distribution_version("tensorflow-gan")}'
  import importlib
  import importlib.util
  import sys
  import types
  root = importlib.util.find_spec('tensorflow_gan').submodule_search_locations[0]
  added = [name for name in _TFGAN_PARENTS if name not in sys.modules]
  for name in added:
    parent = types.ModuleType(name)
    parent.__path__ = [os.path.join(root, *name.split('.')[1:])]
    sys.modules[name] = parent
  try:
    metrics = importlib.import_module('tensorflow_gan.python.eval.classifier_metrics')
    inception = importlib.import_module('tensorflow_gan.python.eval.inception_metrics')
  finally:
    for name in added:
      del sys.modules[name]
  namespace = types.SimpleNamespace()
  for module in (metrics, inception):  # What `tfgan.eval` takes from the two modules.
    for name in module.__all__:
      setattr(namespace, name, getattr(module, name))
  version = stack.distribution_version('tensorflow-gan')
  return namespace, f'tensorflow_gan {version} eval modules (package __init__ skipped)'


with warnings.catch_warnings():
  # tensorflow_hub 0.16 imports pkg_resources, whose deprecation warning (two lines
  # on stderr) would break the launcher's one-line errors.
  warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                          category=UserWarning)
  tfgan_eval, SCORE_IMPLEMENTATION = _import_tfgan_eval()
  import tensorflow_hub as tfhub

ClassifierUnavailableError = classifier_lib.ClassifierUnavailableError
LOGITS = tfgan_eval.INCEPTION_OUTPUT        # 'logits'
MNIST_LIKE = classifier_lib.CLASSIFIER_DATASETS
LOGIT_FLOOR = 700.0  # exp(-700) ~ 1e-304: still a normal float64 (> 2.2e-308), so p > 0.

_LOADED = {}  # load path -> loaded module: check_classifier and Scorer load once.


@dataclasses.dataclass
class ClassifierSpec:
  """A resolved classifier.

  identity: what the scores record (the handle or the path given/defaulted).
  path: the local SavedModel directory that is loaded.
  image_size: side the images are resized to before the classifier (None = as is).
  channels: channels the classifier takes (1 -> 3 tiles grey images; None = as is).
  """
  identity: str
  path: str
  image_size: int = None
  channels: int = None


def default_classifier(dataset):
  """The handle or path used when `config.classifier` is empty."""
  if dataset in MNIST_LIKE:
    return classifier_lib.default_classifier_path(dataset)
  return tfgan_eval.INCEPTION_TFHUB


def _how_to(config, identity):
  if config.dataset in MNIST_LIKE and not config.classifier:
    return classifier_lib.missing_message(config.dataset, identity)
  return (f'to provide it: download {tfgan_eval.INCEPTION_TFHUB} on a machine with '
          'network (tensorflow_hub.resolve) and pass --classifier=DIR of that '
          'SavedModel, or set TFHUB_CACHE_DIR to a TF-Hub cache holding it, or run '
          'with network; or turn scores off (--eval_every=0)')


def hub_cache_path(handle):
  """Where tensorflow_hub caches a downloaded `handle` (TFHUB_CACHE_DIR or temp)."""
  from tensorflow_hub import resolver  # tensorflow_hub's own cache rule.
  cache_dir = resolver.tfhub_cache_dir(use_temp=True)
  return os.path.join(cache_dir, hashlib.sha1(handle.encode('utf8')).hexdigest())


def _network_reachable(handle):
  """True if the host serving the TF-Hub `handle` answers (`network.host_reachable`)."""
  url = parse.urlparse(handle)
  host = url.hostname if url.scheme in ('http', 'https') else 'storage.googleapis.com'
  return network.host_reachable(host)


def _local_path(config, identity):
  """The local SavedModel directory for `identity`; raises ClassifierUnavailableError."""
  if '://' not in identity:
    if classifier_lib.is_saved_model_dir(identity):
      return identity
    if config.dataset in MNIST_LIKE and not config.classifier:
      raise ClassifierUnavailableError(_how_to(config, identity))
    raise ClassifierUnavailableError(
        f'classifier={identity!r} is not a SavedModel directory (no saved_model.pb); '
        'give --classifier=DIR of a SavedModel returning logits (and pool_3), or a '
        'TF-Hub handle')
  cached = hub_cache_path(identity)
  if classifier_lib.is_saved_model_dir(cached):
    return cached
  if not _network_reachable(identity):
    raise ClassifierUnavailableError(
        f'classifier {identity} is not in the TF-Hub cache ({cached}) and its host '
        f'is unreachable; {_how_to(config, identity)}')
  try:
    return tfhub.resolve(identity)  # Downloads into the cache.
  except Exception as e:  # Network, HTTP and archive errors all mean "not available".
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise ClassifierUnavailableError(
        f'classifier {identity} could not be downloaded ({first}); '
        f'{_how_to(config, identity)}') from None


def _load(path):
  if path not in _LOADED:
    _LOADED[path] = tfhub.load(path)
  return _LOADED[path]


def _declared_input_shape(module):
  """(side, channels) from the module's serving signature; None where not static."""
  sig = getattr(module, 'signatures', {}).get('serving_default')
  if sig is None:
    return None, None
  specs = tf.nest.flatten(sig.structured_input_signature)
  if len(specs) != 1 or specs[0].shape.rank != 4:
    return None, None
  _, h, w, c = specs[0].shape.as_list()
  return (h if h == w else None), c


def resolve_classifier(config):
  """The `ClassifierSpec` for `config`, with the module loaded (cached)."""
  identity = config.classifier or default_classifier(config.dataset)
  path = _local_path(config, identity)
  try:
    module = _load(path)
  except Exception as e:  # A corrupt or foreign directory: say so in one line.
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise ClassifierUnavailableError(
        f'classifier={identity!r} cannot be loaded as a SavedModel ({first})') from None
  size, channels = _declared_input_shape(module)
  meta = classifier_lib.read_metadata(path)
  if size is None:
    size = meta.get('image_size') or (
        config_lib.IMAGE_SIZE[config.dataset] if config.dataset in MNIST_LIKE
        else tfgan_eval.INCEPTION_DEFAULT_IMAGE_SIZE)
  if channels is None:
    channels = (meta.get('image_shape') or [None] * 3)[2] or (
        None if config.dataset in MNIST_LIKE else 3)
  return ClassifierSpec(identity=identity, path=path, image_size=size,
                        channels=channels)


def _classifier_outputs(out):
  """{name: tensor} of a classifier's outputs; a bare tensor is its logits.

  TF-GAN's MNIST module (`tfgan/eval/mnist/logits/1`) returns its logits alone.
  """
  return out if isinstance(out, dict) else {LOGITS: out}


def _make_classify(spec, dataset, fd_layer):
  """tf.function images [B, H, W, C] in [-1, 1] -> (logits [B, K], the `fd_layer`
  output [B, D]), the activations of the Frechet and kernel distances."""
  module = _load(spec.path)
  size = config_lib.IMAGE_SIZE[dataset]
  in_channels = config_lib.IMAGE_CHANNELS[dataset]

  # TF-GAN's `classifier_fn_from_tfhub` calls `tfhub.load` on every call, which is
  # free in TF1 graph mode (one call) but reloads the module per batch eagerly; this
  # loads once and otherwise does the same: select the two fields, flatten to 2-D.
  @tf.function(input_signature=[tf.TensorSpec([None, size, size, in_channels],
                                              tf.float32)])
  def classify(images):
    x = images
    if spec.channels == 3 and in_channels == 1:
      x = tf.tile(x, [1, 1, 1, 3])
    if spec.image_size and spec.image_size != size:
      x = tf.image.resize(x, [spec.image_size, spec.image_size], method='bilinear')
    out = _classifier_outputs(module(x))
    if LOGITS not in out or fd_layer not in out:
      raise ValueError(f'outputs {sorted(out)} lack {LOGITS!r} or {fd_layer!r}')
    flat = lambda t: tf.reshape(t, [tf.shape(t)[0], -1])  # noqa: E731
    return flat(out[LOGITS]), flat(out[fd_layer])
  return classify


def check_classifier(config):
  """Resolves, loads and test-runs the classifier of `config`; returns its spec.

  Call at start-up when scores are asked for. Raises ClassifierUnavailableError with
  one line that says how to provide the classifier.
  """
  spec = resolve_classifier(config)
  size = config_lib.IMAGE_SIZE[config.dataset]
  probe = tf.zeros([2, size, size, config_lib.IMAGE_CHANNELS[config.dataset]])
  try:
    logits, features = _make_classify(spec, config.dataset, config.fd_layer)(probe)
  except (ValueError, TypeError, tf.errors.OpError) as e:
    first = str(e).strip().splitlines()[0][:200]
    wanted = (f"{{'{LOGITS}': [B, K]}} or logits [B, K]" if config.fd_layer == LOGITS
              else f"{{'{LOGITS}': [B, K], '{config.fd_layer}': [B, D]}}")
    raise ClassifierUnavailableError(
        f'classifier={spec.identity!r} does not map images [B, {size}, {size}, C] to '
        f'{wanted}, as fd_layer={config.fd_layer!r} needs ({first})') from None
  if logits.shape[1] < 2:
    raise ClassifierUnavailableError(
        f'classifier={spec.identity!r} returns {logits.shape[1]} logits; need >= 2')
  return spec


def check_scores(config):
  """Start-up check for a run with scores: the classifier and the real split.

  `check_classifier` plus: `config.eval_real_split` exists in the dataset (checked
  on the prepared TFDS builder, no data read). Returns the ClassifierSpec; raises
  ClassifierUnavailableError or data.DataUnavailableError (one line each).
  """
  spec = check_classifier(config)
  from tf_gancond import data  # TFDS is slow to import: only when needed.
  builder = data.load_builder(config.dataset, config.data_dir, config.manual_dir)
  if builder.info.splits and config.eval_real_split not in builder.info.splits:
    raise data.DataUnavailableError(
        f'eval_real_split={config.eval_real_split!r} does not exist for dataset='
        f'{config.dataset!r}; available: {", ".join(builder.info.splits.keys())}')
  return spec


def check_resume(config):
  """Refuses a restart in `config.workdir` that would make its scores incomparable.

  A run's scores are comparable only when made by the same classifier at the same
  sample counts. Once the workdir holds score records ('eval' or 'final' records
  with 'num_samples'), `eval_num_samples` and `final_eval_num_samples` (the latter
  also sets how many real images the distances use) must equal those of its
  config.txt (refused when it is missing or cut), `fd_layer` the layer the records
  carry (`config.UNRECORDED_FD_LAYER` where they carry none: the loop's contract
  cannot see it in a config.txt written before the field existed), and the
  classifier's fingerprint those the records carry (a record with no or an empty
  fingerprint is not compared); without score records it passes. The loop's
  `runlog.check_resumable` refuses other values of these fields first; this check
  also catches other classifier files behind the same path. Raises
  config_lib.ConfigError (one line).
  """
  records = [r for r in runlog.read_records(config.workdir)
             if r.get('kind') in ('eval', 'final') and 'num_samples' in r]
  if not records:
    return
  where = f'workdir={config.workdir!r} holds scores made'
  old = runlog.read_config(config.workdir)
  for field in ('eval_num_samples', 'final_eval_num_samples'):
    if field not in old:  # A missing or cut config.txt: the counts are unknown.
      raise config_lib.ConfigError(
          f'{where} at an {field} that its {runlog.CONFIG_FILE} does not give (missing '
          'or cut), so a resume cannot keep it; repair it or use another --workdir')
    if old[field] != config[field]:
      raise config_lib.ConfigError(
          f'{where} with {field}={old[field]!r}, not {config[field]!r}; scores at '
          f'another sample count are not comparable: resume with {field}='
          f'{old[field]!r} (or use another --workdir)')
  for r in records:
    layer = r.get('fd_layer', config_lib.UNRECORDED_FD_LAYER)
    if layer != config.fd_layer:
      raise config_lib.ConfigError(
          f'{where} on fd_layer={layer!r}, not {config.fd_layer!r}; distances on '
          f'another layer are in other units: resume with fd_layer={layer!r} (or use '
          'another --workdir)')
  spec = resolve_classifier(config)
  fingerprint = classifier_lib.fingerprint(spec.path)
  for r in records:
    if r.get('classifier_fingerprint') and r['classifier_fingerprint'] != fingerprint:
      raise config_lib.ConfigError(
          f'{where} by a classifier with fingerprint {r["classifier_fingerprint"]}, '
          f'not {fingerprint or "unknown"} ({spec.identity}); scores of another '
          f'classifier are not comparable: resume with the classifier that made them '
          f'({r.get("classifier")}) or use another --workdir')


def score_keys(dataset):
  """(score key, distance key): the paper's names for MNIST-like data, IS/FID else."""
  if dataset in MNIST_LIKE:
    return 'classifier_score', 'frechet_distance'
  return 'inception_score', 'fid'


def _uniform_labels(num_classes):
  return lambda rng, n: rng.integers(0, num_classes, n).astype(np.int32)


def generate_batches(generate_fn, latent_dim, num_samples, batch_size, seed,
                     label_sampler=None):
  """Yields image batches of generate_fn(z[, labels]), z ~ N(0, I) from `seed`."""
  rng = np.random.default_rng(seed)
  done = 0
  while done < num_samples:
    n = min(batch_size, num_samples - done)
    z = tf.constant(rng.standard_normal((n, latent_dim)).astype(np.float32))
    if label_sampler is None:
      images = generate_fn(z)
    else:
      images = generate_fn(z, tf.constant(label_sampler(rng, n)))
    done += n
    yield images


class Scorer:
  """Scores generators against the real images of one split, with one classifier.

  The classifier is loaded and fingerprinted at construction, the real activations
  are computed once (at the first score) and kept. `classify(images) -> logits`
  serves `missing_modes`.
  """

  def __init__(self, config, spec=None, num_real=None, batch_size=None):
    """
    Args:
      config: resolved config (dataset, latent_dim, conditional, eval_real_split,
        seed, data_dir, manual_dir, classifier).
      spec: a `ClassifierSpec`; default `check_classifier(config)`.
      num_real: real images used (the first of the split); default the whole split
        up to `config.final_eval_num_samples`.
      batch_size: generation/classification batch; default 500, or 100 when the
        classifier resizes to >= 128 px (299x299x3 float32 is 1 MB per image).
    """
    self.config = config
    self.spec = spec or check_classifier(config)
    self._classify = _make_classify(self.spec, config.dataset, config.fd_layer)
    self.fingerprint = classifier_lib.fingerprint(self.spec.path)
    self.num_real = num_real or config.final_eval_num_samples
    self.batch_size = batch_size or (100 if (self.spec.image_size or 0) >= 128 else 500)
    self._real = None

  @classmethod
  def from_config(cls, config, **kwargs):
    return cls(config, **kwargs)

  def activations(self, images_iter):
    """(logits [N, K], features [N, D]) float32 numpy for an iterable of batches.

    Kept in float32 (50k x 2048 Inception features: 400 MB); TF-GAN's functions
    compute in float64.
    """
    logits, features = [], []
    for images in images_iter:
      lo, fe = self._classify(tf.convert_to_tensor(images, tf.float32))
      logits.append(lo.numpy())
      features.append(fe.numpy())
    return np.concatenate(logits), np.concatenate(features)

  def classify(self, images):
    """Logits [N, K] (numpy) of images [N, H, W, C] in [-1, 1], in batches."""
    images = np.asarray(images, np.float32)
    batches = (images[i:i + self.batch_size]
               for i in range(0, len(images), self.batch_size))
    return self.activations(batches)[0]

  def real_activations(self):
    """Features of the real split (cached), in a fixed random order.

    KID's block estimator assumes randomly ordered sets, so the split order
    (which may group classes) is permuted once with a fixed seed.
    """
    if self._real is None:
      from tf_gancond import data  # TFDS is slow to import: only when needed.
      images, _ = data.load_numpy(self.config, self.config.eval_real_split,
                                  limit=self.num_real)
      batches = (images[i:i + self.batch_size]
                 for i in range(0, len(images), self.batch_size))
      _, features = self.activations(batches)
      self._real = features[np.random.default_rng(0).permutation(len(features))]
    return self._real

  def score_activations(self, logits, features, splits):
    """The score dict (see module docstring) from generated logits and features."""
    n = len(logits)
    if not 1 <= splits <= n:
      raise ValueError(f'splits={splits!r} must lie in [1, num_samples={n}]')
    score_key, dist_key = score_keys(self.config.dataset)
    # Softmax is unchanged by subtracting each row's max; flooring at -LOGIT_FLOOR keeps
    # every p(y|x) > 0, else a class no sample can reach has p(y) = 0 and TF-GAN's
    # KL term p * log p(y) is 0 * -inf = NaN (a confident classifier on a collapsed G).
    logits = np.asarray(logits, np.float64)  # TF-GAN computes IS in float64 too.
    logits = np.maximum(logits - logits.max(axis=1, keepdims=True), -LOGIT_FLOOR)
    parts = [float(tfgan_eval.classifier_score_from_logits(tf.constant(p)))
             for p in np.array_split(logits, splits)]
    real = self.real_activations()
    fid = float(tfgan_eval.frechet_classifier_distance_from_activations(
        tf.constant(real, tf.float64), tf.constant(features, tf.float64)))
    # float64: the cubic kernel sums 10^8 terms; float32 would lose digits of MMD^2.
    kid, kid_std = tfgan_eval.kernel_classifier_distance_and_std_from_activations(
        tf.constant(real), tf.constant(features), dtype=tf.float64)
    kid_std = float(kid_std)
    return {
        score_key: float(np.mean(parts)),
        f'{score_key}_std': float(np.std(parts)),
        dist_key: fid,
        'kid': float(kid),
        # With one block (<= 1024 samples) TF-GAN returns NaN: no error estimate.
        'kid_std': kid_std if np.isfinite(kid_std) else None,
        'num_samples': int(n), 'splits': int(splits),
        'real_split': self.config.eval_real_split, 'num_real': int(len(real)),
        'classifier': self.spec.identity, 'classifier_fingerprint': self.fingerprint,
        'fd_layer': self.config.fd_layer,
        'score_implementation': SCORE_IMPLEMENTATION,
    }

  def score(self, generate_fn, num_samples, splits, batch_size=None,
            label_sampler=None, seed=None):
    """Scores `num_samples` images of `generate_fn`; returns the score dict.

    Args:
      generate_fn: z [B, n_z] -> images [B, H, W, C] in [-1, 1]; a class-conditional
        generator (config.conditional or label_sampler given) is called as
        generate_fn(z, labels int32 [B]).
      num_samples: generated images scored.
      splits: IS/CS splits (mean and std over them).
      batch_size: generation batch (bounds memory); default the Scorer's.
      label_sampler: (numpy Generator, n) -> int32 [n]; default uniform classes when
        config.conditional.
      seed: z seed; default config.seed (the same z at every evaluation of a run).
    """
    start = time.perf_counter()
    if label_sampler is None and self.config.conditional:
      label_sampler = _uniform_labels(config_lib.NUM_CLASSES[self.config.dataset])
    batches = generate_batches(
        generate_fn, self.config.latent_dim, num_samples,
        batch_size or self.batch_size, self.config.seed if seed is None else seed,
        label_sampler)
    logits, features = self.activations(batches)
    result = self.score_activations(logits, features, splits)
    result['eval_seconds'] = round(time.perf_counter() - start, 2)
    return result

  def score_images(self, images, splits):
    """Scores a given array of images [N, H, W, C] in [-1, 1] (e.g. O7's memorized z)."""
    images = np.asarray(images, np.float32)
    logits, features = self.activations(
        images[i:i + self.batch_size] for i in range(0, len(images), self.batch_size))
    return self.score_activations(logits, features, splits)


def missing_modes(generate_fn, latent_dim, classify_fn, num_samples=360, seed=0,
                  num_classes=None, batch_size=500, label_sampler=None):
  """docs/experiments.md#o4: class histogram of `num_samples` generated images
  (argmax of logits).

  Args:
    generate_fn: z [B, n_z] -> images (or (z, labels) -> images with label_sampler).
    latent_dim: n_z.
    classify_fn: images -> logits [B, K] (e.g. `Scorer.classify`).
    num_samples: 360 in Odena et al. 2018 (36 per class if uniform).
    seed: z seed.
    num_classes: histogram length; default the logits width K.
  Returns {'class_histogram': [K ints], 'min_class_count': int,
  'missing_modes_num_samples': int} ('num_samples' is left to the scores).
  """
  if num_samples <= 0:
    raise ValueError(f'num_samples={num_samples!r} must be > 0')
  predictions, width = [], None
  for images in generate_batches(generate_fn, latent_dim, num_samples, batch_size,
                                 seed, label_sampler):
    logits = np.asarray(classify_fn(images))
    width = logits.shape[1]
    predictions.append(np.argmax(logits, axis=1))
  hist = np.bincount(np.concatenate(predictions), minlength=num_classes or width)
  return {'class_histogram': [int(c) for c in hist], 'min_class_count': int(hist.min()),
          'missing_modes_num_samples': int(num_samples)}


REAL_DATA_SCORES_FILE = 'real_data_scores.json'


def real_data_scores(config, num_samples=10000):
  """What a generator as good as the data itself would score: the ceiling.

  With the classifier of `config` and on each layer of `config_lib.FD_LAYERS` that it
  has: the classifier score of the first `num_samples` images of
  `config.eval_real_split` (10 splits), and the Frechet and kernel distances of the
  first `num_samples` training images against those. At the sample count of the
  runs' scores, since the distances' bias depends on it. Returns
  {fd_layer: score dict}.
  """
  from tf_gancond import data  # TFDS is slow to import: only when needed.
  train_images, _ = data.load_numpy(config, 'train', limit=num_samples)
  test_images, _ = data.load_numpy(config, config.eval_real_split, limit=num_samples)
  out = {}
  for layer in config_lib.FD_LAYERS:
    c = config.copy_and_resolve_references()
    c.fd_layer = layer
    try:
      scorer = Scorer(c, num_real=num_samples)
    except ClassifierUnavailableError:  # A logits-only classifier has no pool_3.
      continue
    score_key, _ = score_keys(c.dataset)
    on_test = scorer.score_images(test_images, c.eval_splits)
    result = scorer.score_images(train_images, c.eval_splits)
    result[score_key], result[f'{score_key}_std'] = (
        on_test[score_key], on_test[f'{score_key}_std'])
    result['distance_images'] = f'train[:{num_samples}] against {c.eval_real_split}'
    result['score_images'] = f'{c.eval_real_split}[:{num_samples}]'
    out[layer] = result
  return out
