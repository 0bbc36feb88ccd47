"""O7 (Odena et al. 2018, App. B.1, Figs 8-11): a well-conditioned misbehaving G.

Setup (docs/experiments.md#o7):
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
classifier is available ("scores_skipped": the reason, otherwise). Sanity
(docs/experiments.md#o7): perfect memorization with p(4) ~ 0.55 gives
CS ~ e^{H(p(y))} ~ 5.35.
"""

import itertools
import os

import numpy as np
import tensorflow as tf

from tf_gancond import config as config_lib
from tf_gancond import data as data_lib
from tf_gancond import experiments
from tf_gancond import loop
from tf_gancond import models
from tf_gancond import runlog

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


class Memorizer(loop.Trainer):
  """G, its optimiser, the pairs (on device) and the compiled train step.

  `classify_fn`: optional images [N, H, W, C] in [-1, 1] -> logits [N, classes] for
  the final class histograms (default: the classifier of tf_gancond.scores, if any).
  """

  log_keys = ('mse',)

  def __init__(self, config, classify_fn=None):
    super().__init__(config, name='memorizer')
    if config.conditional:
      raise config_lib.ConfigError('experiment=memorize needs conditional=False')
    self.num_pairs = config.memorize_num_random + config.memorize_num_copies
    if not self.num_pairs:
      raise config_lib.ConfigError(
          'memorize_num_random + memorize_num_copies must be > 0')
    images, labels = data_lib.load_numpy(config, config.split)
    self.target_index, self.repeated_index = select_targets(
        labels, config.memorize_num_random, config.memorize_num_copies,
        config.memorize_label, config.seed)
    self.target_label = labels[self.target_index]
    z = memorized_z(self.num_pairs, config.latent_dim, config.seed)
    self.generator, _ = models.build_gan(config)
    self.optimizer = tf.keras.optimizers.Adam(config.g_lr, beta_1=config.beta1,
                                              beta_2=config.beta2)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.z = tf.constant(z)
    self.targets = tf.constant(images[self.target_index])
    self.classify_fn = classify_fn
    self.mse, self.memorized = float('nan'), False
    self.probe = None  # loop.Probe, made with the run's actions.

  @tf.function
  def _train_step(self, index):
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

  def train_step(self, iterator):
    return self._train_step(next(iterator))

  def make_iterator(self, config, start_step):
    """Pair indices of each step from `batch_index`: a function of (seed, step)."""
    return (tf.constant(batch_index(s, self.num_pairs, config.batch_size, config.seed))
            for s in itertools.count(start_step))

  @tf.function
  def generate_inference(self, z, labels=None):
    del labels  # Unconditional.
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

  def checkpoint_items(self):
    return {'generator': self.generator, 'optimizer': self.optimizer}

  def start(self, run):
    np.savez(os.path.join(run.workdir, PAIRS_FILE), z=self.z.numpy(),
             target_index=self.target_index, target_label=self.target_label,
             repeated_index=self.repeated_index, split=self.config.split)
    # The screening state of a run never stopped, from the checks its records hold
    # up to the restored step (loop.run cut them there): the earliest step a low
    # batch MSE triggers a measurement, and the last check's verdict when it was
    # made at this step (a kill between that checkpoint and the run's end).
    checks = [r for r in runlog.read_records(run.workdir, 'eval')
              if r['step'] <= run.step]
    screened = [r['step'] for r in checks if self._logged(r['step'])]
    self.next_screen = max(screened) + 5 * self.config.log_every if screened else 0
    if checks and checks[-1]['step'] == run.step:
      self.mse = checks[-1]['memorization_mse']
      self.memorized = checks[-1]['memorized']

  def _logged(self, step):
    return step % self.config.log_every == 0 or step == self.config.train_steps

  def _check(self, run, step):
    """The memorization error as an 'eval' record; sets `memorized`."""
    self.mse = self.memorization_mse()
    self.memorized = self.mse < self.config.memorize_target_mse
    run.log.append('eval', step, memorization_mse=self.mse, memorized=self.memorized,
                   target_mse=self.config.memorize_target_mse)
    run.scalars('eval', {'memorization_mse': self.mse}, step)

  def actions(self, run):
    """The memorization check (module docstring: at each probe, at the end, and at a
    log step whose batch MSE is below the target, then at most every 5 log
    intervals), and the probe with sample grids at memorized and random z."""
    c = self.config
    probing = loop.every(c.probe_every)

    def check_due(step):
      return probing(step) or step == c.train_steps or (
          self._logged(step) and run.record['mse'] < c.memorize_target_mse and
          step >= self.next_screen)

    def check(step):
      self._check(run, step)
      if self._logged(step):
        self.next_screen = step + 5 * c.log_every

    actions = [loop.Action(check, check_due)]
    if c.probe_every:
      grid = min(c.sample_grid, self.num_pairs)
      grid_random_z = random_z(grid, c.latent_dim, c.seed + 1)
      self.probe = loop.Probe(run, {
          'samples/memorized_z': lambda: self.sample(self.z.numpy()[:grid]),
          'samples/random_z': lambda: self.sample(grid_random_z)})
      actions.append(self.probe.action())
    return actions

  def done(self):
    return self.memorized

  def export_metadata(self):
    return {'model': 'memorizing_generator'}

  def final_results(self, run):
    final = {'memorized': bool(self.memorized), 'memorization_mse': float(self.mse),
             'target_mse': self.config.memorize_target_mse, 'num_pairs': self.num_pairs,
             'repeated_index': self.repeated_index, 'saved_model': run.saved_model}
    if self.probe is not None:
      final['mean_log_cond'] = self.probe.final_mean_log_cond(run.step)
    final.update(evaluate(self, self.config, self.classify_fn))
    return final

  def final_status(self, final):
    return {'memorized': final['memorized']}


def batch_index(step, num_pairs, batch_size, seed):
  """Pair indices [B] of `step`: epoch e = step // (M // B) uses permutation(seed, e)."""
  batch = min(batch_size, num_pairs)
  per_epoch = num_pairs // batch
  epoch, i = divmod(step, per_epoch)
  perm = np.random.default_rng([seed, 3, epoch]).permutation(num_pairs)
  return perm[i * batch:(i + 1) * batch]


def class_histogram(classify_fn, images, num_classes, batch_size=500):
  """Counts of argmax classes of `images` [N, H, W, C] under `classify_fn` -> logits."""
  counts = np.zeros(num_classes, np.int64)
  for i in range(0, len(images), batch_size):
    logits = np.asarray(classify_fn(tf.constant(images[i:i + batch_size])))
    counts += np.bincount(np.argmax(logits, axis=-1), minlength=num_classes)[
        :num_classes]
  return counts


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
    counts = class_histogram(classify, images, num_classes)
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
  """Trains the memorizing G in `workdir` until memorized (or train_steps) with
  `tf_gancond.loop.run`; returns the final results (`Memorizer.final_results`)."""
  return loop.run(experiments.with_workdir(config, workdir),
                  lambda c: Memorizer(c, classify_fn))
