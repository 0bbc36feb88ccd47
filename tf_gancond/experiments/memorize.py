"""O7 (Odena et al. 2018, App. B.1, Figs 8-11): a well-conditioned misbehaving G.

Setup (SPEC O7):
  targets  `memorize_num_random` (5,000) images drawn without replacement from the
           training split, plus `memorize_num_copies` (5,000) copies of ONE image of
           class `memorize_label` (a 'four'), chosen at random;
  inputs   as many fixed z ~ N(0, I) [M, n_z], drawn from `seed`, paired with the
           targets by a random permutation ("a consistent but arbitrary mapping");
  model    the DCGAN generator of the config (n_z = 64 on MNIST), no discriminator;
  loss     L2 reconstruction, the mean over pixels and batch of (G(z_i) - x_i)^2
           (pixels in [-1, 1]);
  optimiser Adam(g_lr = 2e-4, beta1 = 0.5) (*choice*), minibatches of `batch_size`
           pairs, reshuffled every epoch;
  stop     "until memorized": once the memorization error, the same MSE over ALL M
           pairs with G in inference mode (BatchNorm moving averages, as exported),
           is below `memorize_target_mse`; or after `train_steps` steps. It is
           measured when the mean training-batch MSE of a log interval falls below
           the target (then at most every 5 log intervals: with BatchNorm the
           inference-mode error lags the training-mode one), at each probe and at
           the end (an "eval" record each time).

Logged: "train" records (batch MSE), "eval" records (memorization_mse), "probe"
records (log-condition numbers over training: Fig. 11), SavedModels of G at probes
and at the end, sample grids at memorized and at random z (Figs 8/9), and
`memorize_pairs.npz` (z, target indices into the split, target labels).

Final record: memorized (bool), memorization_mse, the class histogram of
`eval_num_samples` random-z samples (Fig. 10) and of the memorized-z samples under
a classifier, and CS/FD for both kinds of z through `tf_gancond.scores` when a
classifier is available ("scores_skipped": the reason, otherwise). Sanity (SPEC O7):
perfect memorization with p(4) ~ 0.55 gives CS ~ e^{H(p(y))} ~ 5.35.
"""

import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from tf_gancond import config as config_lib
from tf_gancond import data as data_lib
from tf_gancond import models
from tf_gancond.experiments import common

PAIRS_FILE = 'memorize_pairs.npz'
_CHUNK = 500  # Images per forward pass when measuring or sampling.


def select_targets(labels, num_random, num_copies, label, seed):
  """Indices into the split of the M = num_random + num_copies targets, in pair order.

  Returns (target_index [M] int64, repeated_index int): num_random distinct random
  examples and num_copies copies of one random example of class `label`, shuffled
  (the arbitrary z -> target mapping). Raises ConfigError if the split is too small.
  """
  rng = np.random.default_rng([seed, 1])  # Its own stream: independent of z.
  n = len(labels)
  if num_random > n:
    raise config_lib.ConfigError(f'memorize_num_random={num_random} exceeds the '
                                 f'{n} examples of the split')
  candidates = np.flatnonzero(labels == label)
  if num_copies and not len(candidates):
    raise config_lib.ConfigError(f'memorize_label={label} does not occur in the split')
  repeated = int(rng.choice(candidates)) if num_copies else -1
  index = np.concatenate([rng.choice(n, num_random, replace=False),
                          np.full(num_copies, repeated, np.int64)])
  return index[rng.permutation(len(index))], repeated


def memorized_z(num, latent_dim, seed):
  """The fixed z [num, n_z] float32 of the pairs, from `seed`."""
  return np.random.default_rng([seed, 0]).standard_normal((num, latent_dim)).astype(
      np.float32)


def random_z(num, latent_dim, seed):
  """Fresh z for the random-z samples: a stream distinct from the memorized z."""
  return np.random.default_rng([seed, 2]).standard_normal((num, latent_dim)).astype(
      np.float32)


class Memorizer(tf.Module):
  """G, its optimiser, the pairs (on device) and the compiled train step."""

  def __init__(self, config, z, targets):
    super().__init__(name='memorizer')
    self.config = config
    self.generator, _ = models.build_gan(config)
    self.optimizer = tf.keras.optimizers.Adam(config.g_lr, beta_1=config.beta1,
                                              beta_2=config.beta2)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.z = tf.constant(z)
    self.targets = tf.constant(targets)

  @tf.function
  def train_step(self, index):
    """One Adam step on the pairs `index` [B]; returns the batch MSE and grad norm."""
    z = tf.gather(self.z, index)
    x = tf.gather(self.targets, index)
    variables = self.generator.trainable_variables
    with tf.GradientTape() as tape:
      mse = tf.reduce_mean(tf.square(self.generator(z, training=True) - x))
    grads = tape.gradient(mse, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    self.step.assign_add(1)
    return {'mse': mse, 'grad_norm': tf.linalg.global_norm(grads)}

  @tf.function
  def generate_inference(self, z):
    return self.generator(z, training=False)

  @tf.function
  def _squared_error_sum(self, start, stop):
    out = self.generate_inference(self.z[start:stop])
    return tf.reduce_sum(tf.square(out - self.targets[start:stop]))

  def memorization_mse(self):
    """MSE over all pairs, G in inference mode (float64 accumulation over chunks)."""
    m = int(self.z.shape[0])
    # Tensor bounds: one trace for every chunk (Python ints would retrace each).
    total = sum(float(self._squared_error_sum(tf.constant(i), tf.constant(
        min(i + _CHUNK, m)))) for i in range(0, m, _CHUNK))
    return total / (m * int(np.prod(self.targets.shape[1:])))

  def sample(self, z):
    return np.concatenate([self.generate_inference(z[i:i + _CHUNK]).numpy()
                           for i in range(0, len(z), _CHUNK)])


def batch_index(step, num_pairs, batch_size, seed):
  """Pair indices [B] of `step`: epoch e = step // (M // B) uses permutation(seed, e)."""
  batch = min(batch_size, num_pairs)
  per_epoch = num_pairs // batch
  epoch, i = divmod(step, per_epoch)
  perm = np.random.default_rng([seed, 3, epoch]).permutation(num_pairs)
  return perm[i * batch:(i + 1) * batch]


def _classifier(config, classify_fn):
  """(classify_fn or None, scorer or None, reason it is missing or None)."""
  if classify_fn is not None:
    return classify_fn, None, None
  try:
    from tf_gancond import scores  # Imports TF-GAN; may be absent.
    scorer = scores.Scorer.from_config(config)
    return scorer.classify, scorer, None
  except Exception as e:  # ImportError, ClassifierUnavailableError, ...: skip scores.
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return None, None, f'scores skipped: {reason}'


def evaluate(memorizer, config, classify_fn=None):
  """Class histograms (and CS/FD when tf_gancond.scores is there) for both kinds of z."""
  classify, scorer, skipped = _classifier(config, classify_fn)
  if classify is None:
    return {'scores_skipped': skipped}
  num_classes = max(config_lib.NUM_CLASSES[config.dataset], 1)
  z_random = random_z(config.eval_num_samples, config.latent_dim, config.seed)
  random_images = memorizer.sample(z_random)
  memorized_images = memorizer.sample(memorizer.z.numpy())
  out = {'histogram_num_random_z': len(z_random)}
  for name, images in (('random_z', random_images), ('memorized_z', memorized_images)):
    counts = common.class_histogram(classify, images, num_classes)
    out[f'{name}_class_histogram'] = counts.tolist()
    out[f'{name}_class_fractions'] = (counts / counts.sum()).tolist()
  if scorer is None:
    out['scores_skipped'] = 'scores skipped: a classify function was given, no scorer'
    return out
  try:  # The same images as the histograms; scores carry their settings.
    for name, images in (('random_z', random_images),
                         ('memorized_z', memorized_images)):
      out.update({f'{name}_{k}': v for k, v in scorer.score_images(
          images, min(config.eval_splits, len(images))).items()})
  except Exception as e:  # A scorer failure must not lose the memorization result.
    out['scores_skipped'] = f'scores skipped: {str(e).strip()[:200]}'
  return out


def run(config, workdir=None, classify_fn=None):
  """Trains the memorizing G until memorized (or train_steps); returns final results.

  `classify_fn`: optional images [N, H, W, C] in [-1, 1] -> logits [N, classes] for
  the class histograms (default: the classifier of tf_gancond.scores, if any).
  """
  config = common.prepare_config(config, workdir)
  if config.conditional:
    raise config_lib.ConfigError('experiment=memorize needs conditional=False')
  num_pairs = config.memorize_num_random + config.memorize_num_copies
  if not num_pairs:
    raise config_lib.ConfigError('memorize_num_random + memorize_num_copies must be > 0')
  common.check_resumable(config.workdir, config)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  tf.keras.utils.set_random_seed(config.seed)  # Weight initialisation.

  images, labels = data_lib.load_numpy(config, config.split)
  index, repeated = select_targets(labels, config.memorize_num_random,
                                   config.memorize_num_copies, config.memorize_label,
                                   config.seed)
  z = memorized_z(num_pairs, config.latent_dim, config.seed)
  memorizer = Memorizer(config, z, images[index])
  del images
  ckpt = tf.train.Checkpoint(generator=memorizer.generator,
                             optimizer=memorizer.optimizer, step=memorizer.step)
  files = common.RunFiles(config, ckpt)
  start = files.restore(memorizer.step)
  np.savez(os.path.join(config.workdir, PAIRS_FILE), z=z, target_index=index,
           target_label=labels[index], repeated_index=repeated, split=config.split)
  image_shape = models.image_shape(config)
  probe_z = common.probe_z(config)
  grid = min(config.sample_grid, num_pairs)
  grid_random_z = random_z(grid, config.latent_dim, config.seed + 1)

  def export(step):
    return files.export(memorizer.generator, step, config.latent_dim, image_shape,
                        model='memorizing_generator')

  def check(step):
    mse = memorizer.memorization_mse()
    memorized = mse < config.memorize_target_mse
    files.log.append('eval', step, memorization_mse=mse, memorized=memorized,
                     target_mse=config.memorize_target_mse)
    files.scalars(step, {'memorization_mse': mse}, 'eval')
    return mse, memorized

  def probe(step):
    files.images('samples/memorized_z', memorizer.sample(z[:grid]), step)
    files.images('samples/random_z', memorizer.sample(grid_random_z), step)
    return files.probe(memorizer.generate_inference, probe_z, step) if (
        probe_z is not None) else None

  step, interval, t_last, last_probe = start, [], time.perf_counter(), None
  mse, memorized = check(step) if start else (float('nan'), False)
  next_screen = step  # Earliest step a low batch MSE may trigger a full measurement.
  screen_gap = 5 * config.log_every
  if start == 0 and config.probe_every:
    last_probe = probe(0)
  try:
    while step < config.train_steps and not memorized:
      index_b = batch_index(step, num_pairs, config.batch_size, config.seed)
      values = {k: v.numpy() for k, v in memorizer.train_step(
          tf.constant(index_b)).items()}
      step += 1
      common.check_finite(values, step)
      interval.append(values)
      probing = bool(config.probe_every and step % config.probe_every == 0)
      if step % config.log_every == 0 or step == config.train_steps:
        elapsed = time.perf_counter() - t_last
        summary = {k: float(np.mean([v[k] for v in interval])) for k in interval[0]}
        summary['steps_per_sec'] = len(interval) / elapsed
        files.log.append('train', step, **summary)
        files.scalars(step, summary, 'train')
        logging.info('memorize step %d/%d batch mse=%.4g', step, config.train_steps,
                     summary['mse'])
        interval, t_last = [], time.perf_counter()
        low = summary['mse'] < config.memorize_target_mse and step >= next_screen
        if low or probing or step == config.train_steps:
          mse, memorized = check(step)
          next_screen = step + screen_gap
      elif probing:
        mse, memorized = check(step)
      if probing:
        last_probe = probe(step)
      if (step % config.checkpoint_every == 0 or step == config.train_steps or
          memorized):
        files.save(step, memorizer.generator.variables)
      if config.export_every and step % config.export_every == 0:
        export(step)
  except common.DivergedError as e:
    files.log.set_status('diverged', step, reason=str(e),
                         last_checkpoint=files.manager.latest_checkpoint)
    raise
  if not np.isfinite(mse):  # Not measured yet (the loop always measures its last step).
    mse, memorized = check(step)
  if config.probe_every and (last_probe is None or step % config.probe_every):
    last_probe = probe(step)
  final = {'memorized': bool(memorized), 'memorization_mse': float(mse),
           'target_mse': config.memorize_target_mse, 'num_pairs': num_pairs,
           'repeated_index': repeated, 'saved_model': export(step)}
  if last_probe is not None:
    final['mean_log_cond'] = float(last_probe['mean_log_cond'])
  final.update(evaluate(memorizer, config, classify_fn))
  files.finish(step, final, memorized=bool(memorized),
               final_saved_model=final['saved_model'], train_steps=config.train_steps)
  return final
