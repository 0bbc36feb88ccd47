"""GAN training loop: `train_and_evaluate(config)`.

One iteration = `n_critic` discriminator steps, then one generator step.
With n_critic = 1 and equal D and G batches, the generator step reuses the
G(z) of the discriminator step and back-propagates through it after D was
updated (`g_step_reuses_fake`, the dcgan.torch / PyTorch-example update; it
saves one generator forward pass per iteration). Otherwise every step draws
fresh z (WGAN-GP order: D steps first).

Distribution: models and optimizers live in `strategy.scope()`; the step runs
in `strategy.run` inside one `tf.function`. Each replica's loss is the mean
over its local batch divided by the number of replicas, so the all-reduced
(summed) gradient is the gradient of the global-batch mean. Random numbers are
stateless functions of (seed, step, sub-step, purpose) (`stream_seed`), drawn for
the global batch and sliced per replica: a run gives the same z on 1 or N
replicas, after a resume the same z as an uninterrupted run, and no two draws of
a run share a stream.
"""

import enum
import io
import os
import shutil
import time

import numpy as np
import tensorflow as tf
from absl import logging

from tf_gancond import config as config_lib
from tf_gancond import data as data_lib
from tf_gancond import distribute
from tf_gancond import export as export_lib
from tf_gancond import lipschitz
from tf_gancond import losses as losses_lib
from tf_gancond import models
from tf_gancond import regularizers
from tf_gancond import runlog
from tf_gancond.rng import stream_seed

_Q_PERCENTILES = (5, 25, 50, 75, 95)


class Stream(enum.IntEnum):
  """What a stateless random draw of a step is for (the purpose key of `stream_seed`)."""
  D_Z = 1          # z of a critic step's fakes.
  G_Z = 2          # z of the generator step.
  JC_DIRECTION = 3  # Jacobian Clamping's perturbation direction.
  GP_ALPHA = 4     # WGAN-GP interpolation weights.
  G_LABELS = 5     # class labels of the generator step.
  NOISE_REAL = 6   # instance noise on D's real input,
  NOISE_FAKE = 7   # on its fake input,
  NOISE_G = 8      # on the fakes of the G step,
  NOISE_GP = 9     # on the gradient-penalty interpolates.


class DivergedError(RuntimeError):
  """A loss or weight became NaN/Inf; the run stopped at its last good state."""


def _learning_rate(base, decay, total_updates):
  if decay == 'linear':
    # Linear decay to 0 over the run (igul222 WGAN-GP, Miyato SN-GAN).
    return tf.keras.optimizers.schedules.PolynomialDecay(base, total_updates, 0.0)
  return base


def _class_cross_entropy(labels, class_logits):
  """ACGAN head loss: mean softmax cross-entropy, labels int [B], logits [B, K]."""
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=class_logits))


def _bn_moving_variables(model):
  return [v for v in model.variables if 'moving_' in v.name]


class GANTrainer(tf.Module):
  """Holds G, D, their optimizers and the compiled train step."""

  def __init__(self, config, strategy):
    super().__init__(name='gan_trainer')
    self.config = config
    self.strategy = strategy
    self.loss = losses_lib.get_loss(config.loss)
    self.num_replicas = strategy.num_replicas_in_sync
    with strategy.scope():
      # BatchNorm over the global batch when there are several replicas, so N
      # replicas train as one device on the whole batch (tests/test_distributed.py).
      self.generator, self.discriminator = models.build_gan(
          config, sync_batch_norm=self.num_replicas > 1)
      self.g_optimizer = tf.keras.optimizers.Adam(
          _learning_rate(config.g_lr, config.lr_decay, config.train_steps),
          beta_1=config.beta1, beta_2=config.beta2)
      self.d_optimizer = tf.keras.optimizers.Adam(
          _learning_rate(config.d_lr, config.lr_decay,
                         config.train_steps * config.n_critic),
          beta_1=config.beta1, beta_2=config.beta2)
      # Generator iterations done; the checkpointed step of record.
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
      # Sargent's thesis: r(W) penalty in G (S2), spectral gradient clamping (S3).
      self.weight_ratio = (lipschitz.WeightRatioPenalty(
          self.generator.trainable_variables, exact=config.rw_exact)
                           if config.rw_lambda > 0 else None)
      self.g_clamp = (lipschitz.SpectralGradientClamp(
          self.generator.trainable_variables, config.grad_clamp_g_ratio)
                      if config.grad_clamp_g_ratio else None)
      self.d_clamp = (lipschitz.SpectralGradientClamp(
          self.discriminator.trainable_variables, config.grad_clamp_d_ratio,
          seed=1) if config.grad_clamp_d_ratio else None)
    self.reuse_fake = (config.g_step_reuses_fake and config.n_critic == 1 and
                       config.g_batch_size == config.batch_size)
    self.num_classes = config_lib.NUM_CLASSES[config.dataset] if config.conditional else 0

  # ----- random numbers (stateless, see the module docstring) -----
  def _normal(self, global_rows, cols, step, purpose, sub_step=0):
    """N(0, 1) [global_rows / replicas, cols]: this replica's slice of a global draw."""
    seed = stream_seed(self.config.seed, step, sub_step, purpose)
    full = tf.random.stateless_normal([global_rows, cols], seed=seed)
    return self._replica_slice(full, global_rows)

  def _uniform(self, global_rows, step, purpose, sub_step=0, shape=(), maxval=1.0,
               dtype=tf.float32):
    seed = stream_seed(self.config.seed, step, sub_step, purpose)
    if dtype.is_integer:
      full = tf.random.stateless_uniform([global_rows, *shape], seed=seed,
                                         minval=0, maxval=maxval, dtype=dtype)
    else:
      full = tf.random.stateless_uniform([global_rows, *shape], seed=seed,
                                         maxval=maxval, dtype=dtype)
    return self._replica_slice(full, global_rows)

  def _replica_slice(self, full, global_rows):
    if self.num_replicas == 1:
      return full
    local = global_rows // self.num_replicas
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    return full[replica * local:(replica + 1) * local]

  # ----- pieces of a step -----
  def _discriminate(self, x, labels, step, noise, sub_step=0):
    """D logits [B] (and ACGAN class logits) with optional instance noise (A3).

    `noise`: the Stream of the instance noise on this input (NOISE_REAL, ...).
    """
    if self.config.instance_noise > 0:
      # Annealed linearly to 0 over the run (Arjovsky & Bottou 2017, Sec. 3).
      frac = 1.0 - tf.cast(step, tf.float32) / float(self.config.train_steps)
      sigma = self.config.instance_noise * tf.maximum(frac, 0.0)
      seed = stream_seed(self.config.seed, step, sub_step, noise)
      x = x + sigma * tf.random.stateless_normal(tf.shape(x), seed=seed)
    out = self.discriminator(x, labels=labels, training=True)
    if isinstance(out, (tuple, list)):
      return out[0], out[1]
    return out, None

  def _generate(self, z, labels):
    return self.generator(z, labels=labels, training=True)

  def _generate_for_g(self, z, labels, step):
    """G in training mode for the G step: (G(z), None), or under Jacobian Clamping
    (G([z; z']), z') in one pass ("feed 2 mini-batches"), z' keeping z's labels."""
    if not self.config.jacobian_clamping:
      return self._generate(z, labels), None
    z_prime = self._jc_inputs(z, step)
    if labels is not None:
      labels = tf.concat([labels, labels], 0)  # z' keeps the labels of z (SPEC O6).
    return self._generate(tf.concat([z, z_prime], 0), labels), z_prime

  def _d_update(self, real, labels, fake, step, sub_step):
    """One D step on real [B,...] and fake [B,...]; returns metrics and nothing else."""
    c = self.config
    with tf.GradientTape() as tape:
      real_logits, real_class = self._discriminate(real, labels, step,
                                                   Stream.NOISE_REAL, sub_step)
      fake_logits, _ = self._discriminate(fake, labels, step, Stream.NOISE_FAKE,
                                          sub_step)
      d_loss = self.loss.discriminator(real_logits, fake_logits)
      total = d_loss
      metrics = {}
      if c.gradient_penalty > 0:
        gp, gp_norms = self._gradient_penalty(real, fake, labels, step, sub_step)
        total += c.gradient_penalty * gp
        metrics['gradient_penalty'] = gp
        metrics['d_input_grad_norm'] = tf.reduce_mean(gp_norms)
      if real_class is not None:
        # ACGAN: cross-entropy of the class head on real images only (igul222).
        acgan = _class_cross_entropy(labels, real_class)
        total += c.acgan_d_weight * acgan
        metrics['d_acgan_loss'] = acgan
      scaled = total / self.num_replicas
    variables = self.discriminator.trainable_variables
    grads = tape.gradient(scaled, variables)
    grads_norm = self._apply(self.d_optimizer, grads, variables, self.d_clamp,
                             metrics, 'd_grad_sigma_ratio')
    metrics.update(
        d_loss=d_loss,
        d_real_logit=tf.reduce_mean(real_logits),
        d_fake_logit=tf.reduce_mean(fake_logits),
        d_accuracy=0.5 * (tf.reduce_mean(tf.cast(real_logits > 0, tf.float32)) +
                          tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32))),
        d_grad_norm=grads_norm)
    return metrics

  def _apply(self, optimizer, grads, variables, clamp, metrics, ratio_name):
    """Applies grads (optionally spectrally clamped, S3); returns their global norm.

    With several replicas the grads are all-reduced (summed) here, and the
    optimizer told not to again: the same one all-reduce the optimizer would do,
    and the clamp (nonlinear) and the returned norm then see the gradient of the
    global-batch loss, as on one device.
    """
    if self.num_replicas > 1:
      grads = tf.distribute.get_replica_context().all_reduce('SUM', grads)
    if clamp is None:
      optimizer.apply_gradients(zip(grads, variables),
                                skip_gradients_aggregation=self.num_replicas > 1)
      return tf.linalg.global_norm(grads)
    grads, ratios = clamp.apply(grads)
    # Median over layers (S3: ~30 early, ~3 later in D): robust to the one layer
    # whose gradient is momentarily near rank 1 (sigma1 ~ 0).
    metrics[ratio_name] = tf.sort(ratios)[(len(clamp.layer_names) - 1) // 2]
    optimizer.apply_gradients(zip(grads, variables),
                              skip_gradients_aggregation=self.num_replicas > 1)
    return tf.linalg.global_norm(grads)  # Of the summed (global) gradient.

  def _gradient_penalty(self, real, fake, labels, step, sub_step):
    """WGAN-GP with stateless alpha (same draw on 1 or N replicas)."""
    alpha = self._uniform(self.config.batch_size, step, Stream.GP_ALPHA, sub_step,
                          shape=(1, 1, 1))
    critic = lambda x: self._discriminate(x, labels, step, Stream.NOISE_GP, sub_step)[0]
    return regularizers.gradient_penalty(critic, real, fake, alpha)

  def _jc_inputs(self, z, step):
    """z' = z + eps d/||d|| per row of z (Algorithm 1), d from its own stream."""
    direction = self._normal(tf.shape(z)[0] * self.num_replicas,
                             self.config.latent_dim, step, Stream.JC_DIRECTION)
    return regularizers.jacobian_clamping_perturb(z, direction, self.config.jc_epsilon)

  def _g_loss(self, x_all, z, z_prime, labels, step):
    """Generator loss from G outputs (x_all = G([z; z']) under JC, else G(z))."""
    c = self.config
    metrics = {}
    if z_prime is not None:
      fake, fake_prime = tf.split(x_all, 2, axis=0)
      jc, q = regularizers.jacobian_clamping_penalty(
          fake, fake_prime, z, z_prime, c.jc_lambda_min, c.jc_lambda_max, c.jc_norm)
      metrics.update(jc_penalty=jc, q=q)
    else:
      fake, jc = x_all, 0.0
    fake_logits, fake_class = self._discriminate(fake, labels, step, Stream.NOISE_G)
    g_loss = self.loss.generator(fake_logits)
    if c.debug_nan_at_step:
      # Test hook (tests/test_reliability.py): a NaN loss, and so NaN gradients and
      # weights, in iteration `debug_nan_at_step` (1-based; `step` counts from 0).
      g_loss *= tf.where(step + 1 == c.debug_nan_at_step, float('nan'), 1.0)
    total = g_loss + jc  # JC weight 1 (Algorithm 1).
    if self.weight_ratio is not None:
      penalty, ratios = self.weight_ratio()  # -sum_i r(W_i) (SPEC S2).
      total += c.rw_lambda * penalty
      metrics['rw_mean'] = tf.reduce_mean(ratios)
    if fake_class is not None:
      acgan = _class_cross_entropy(labels, fake_class)
      total += c.acgan_g_weight * acgan
      metrics['g_acgan_loss'] = acgan
    metrics['g_loss'] = g_loss
    return total / self.num_replicas, metrics

  def _apply_g(self, tape, scaled_loss, metrics):
    variables = self.generator.trainable_variables
    grads = tape.gradient(scaled_loss, variables)
    return self._apply(self.g_optimizer, grads, variables, self.g_clamp, metrics,
                       'g_grad_sigma_ratio')

  def _labels_for_g(self, global_rows, step):
    if not self.num_classes:
      return None
    return self._uniform(global_rows, step, Stream.G_LABELS, maxval=self.num_classes,
                         dtype=tf.int32)

  # ----- the step -----
  def _replica_step(self, batches, step):
    """Per-replica iteration. `batches`: n_critic (images, labels) pairs."""
    c = self.config
    metrics = {}
    if self.reuse_fake:
      real, labels = batches[0]
      local = tf.shape(real)[0]
      z = self._normal(c.batch_size, c.latent_dim, step, Stream.G_Z)
      cond = labels if self.num_classes else None
      with tf.GradientTape(watch_accessed_variables=False) as g_tape:
        g_tape.watch(self.generator.trainable_variables)
        x_all, z_prime = self._generate_for_g(z, cond, step)
        fake = x_all[:local]
        metrics.update(self._d_update(real, cond, tf.stop_gradient(fake), step, 0))
        g_scaled, g_metrics = self._g_loss(x_all, z, z_prime, cond, step)
      metrics.update(g_metrics)
      metrics['g_grad_norm'] = self._apply_g(g_tape, g_scaled, metrics)
      return metrics
    for k, (real, labels) in enumerate(batches):
      z = self._normal(c.batch_size, c.latent_dim, step, Stream.D_Z, sub_step=k)
      cond = labels if self.num_classes else None
      # Critic fakes use the real batch's labels (igul222).
      fake = self._generate(z, cond)
      metrics.update(self._d_update(real, cond, fake, step, k))
    z = self._normal(c.g_batch_size, c.latent_dim, step, Stream.G_Z)
    cond = self._labels_for_g(c.g_batch_size, step)
    with tf.GradientTape() as g_tape:
      x_all, z_prime = self._generate_for_g(z, cond, step)
      g_scaled, g_metrics = self._g_loss(x_all, z, z_prime, cond, step)
    metrics.update(g_metrics)
    metrics['g_grad_norm'] = self._apply_g(g_tape, g_scaled, metrics)
    return metrics

  @tf.function
  def train_step(self, iterator):
    """One iteration; returns a dict of global scalars (and Q [B] under JC)."""
    batches = [next(iterator) for _ in range(self.config.n_critic)]
    step = self.step.read_value()
    per_replica = self.strategy.run(self._replica_step, args=(batches, step))
    self.step.assign_add(1)
    out = {}
    for name, value in per_replica.items():
      if name == 'q':
        out['q'] = self.strategy.gather(value, axis=0)
      else:
        # Per-replica means of equal local batches: their mean is the global mean.
        out[name] = self.strategy.reduce('MEAN', value, axis=None)
    return out

  @tf.function
  def measure_q(self, z, z_prime, labels=None):
    """Q [B] of Algorithm 1 without a penalty, for runs without JC (SPEC O5: log Q
    in every run). G runs in training mode on [z; z'], z' keeping z's labels, as
    under JC, and the BatchNorm moving statistics are restored afterwards so the
    measurement leaves no trace."""
    moving = _bn_moving_variables(self.generator)
    saved = [tf.identity(v) for v in moving]
    if labels is not None:
      labels = tf.concat([labels, labels], 0)
    x = self.generator(tf.concat([z, z_prime], 0), labels=labels, training=True)
    fake, fake_prime = tf.split(x, 2, axis=0)
    _, q = regularizers.jacobian_clamping_penalty(
        fake, fake_prime, z, z_prime, self.config.jc_lambda_min,
        self.config.jc_lambda_max, self.config.jc_norm)
    with tf.control_dependencies([q]):
      restores = [v.assign(s) for v, s in zip(moving, saved)]
    with tf.control_dependencies(restores):
      return tf.identity(q)

  @tf.function
  def generate_inference(self, z, labels=None):
    """G(z) with BatchNorm in inference mode (probes, samples, scores, exports)."""
    return self.generator(z, labels=labels, training=False)

  def all_weights_finite(self):
    return all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in self.variables
               if v.dtype.is_floating)


# ----------------------------------------------------------------------------
# The loop.


def image_grid(images, columns=8):
  """[N, H, W, C] in [-1, 1] -> one uint8 grid image [1, rows*H, columns*W, C]."""
  images = np.clip((np.asarray(images) + 1.0) * 127.5, 0, 255).astype(np.uint8)
  n, h, w, c = images.shape
  rows = -(-n // columns)
  grid = np.zeros((rows * h, columns * w, c), np.uint8)
  for i in range(n):
    r, col = divmod(i, columns)
    grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i]
  return grid[None]


def _spectrum_plot(singular_values, step):
  """PNG of log singular values of E_z[J_z] (Hoffman-style spectrum) as [1,H,W,4]."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
  ax.semilogy(np.arange(1, len(singular_values) + 1), singular_values)
  ax.set_xlabel('index')
  ax.set_ylabel('singular value of E_z[J_z]')
  ax.set_title(f'step {step}')
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format='png')
  plt.close(fig)
  return tf.image.decode_png(buf.getvalue(), channels=4)[None]


def _summarize_interval(values):
  """Means of the per-step scalars and Q statistics over a log interval."""
  out = {}
  qs = [v.pop('q') for v in values if 'q' in v]
  for key in values[0]:
    out[key] = float(np.mean([v[key] for v in values]))
  if qs:
    q = np.concatenate(qs)
    out['q_mean'] = float(q.mean())
    for p, v in zip(_Q_PERCENTILES, np.percentile(q, _Q_PERCENTILES)):
      out[f'q_p{p}'] = float(v)
    return out, q
  return out, None


def _ensure_package_classifier(config):
  """Trains this package's MNIST-like classifier once if a run needs it and it is missing.

  Several runs of a sweep may start together: a file lock lets one train it while
  the others wait, then they all load the same SavedModel.
  """
  from tf_gancond import classifier
  if config.classifier or config.dataset not in classifier.CLASSIFIER_DATASETS:
    return
  import fcntl
  path = classifier.default_classifier_path(config.dataset)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + '.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    classifier.ensure_classifier(config)


def train_and_evaluate(config, strategy=None):
  """Trains the GAN described by `config` in `config.workdir`; returns final results.

  Resumes from the newest checkpoint in the workdir. Raises DivergedError when a
  loss or weight becomes non-finite (after marking the run diverged; the last
  good checkpoint and SavedModel stay in place).
  """
  config = config_lib.validate(config_lib.resolve(config))
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  tf.keras.utils.set_random_seed(config.seed)  # Weight initialisation.
  strategy = strategy or distribute.make_strategy(config.strategy)
  replicas = strategy.num_replicas_in_sync
  for field in ('batch_size', 'g_batch_size'):
    if config[field] % replicas:  # Global batches are split evenly over replicas.
      raise config_lib.ConfigError(
          f'{field}={config[field]!r} must be a multiple of the {replicas} replicas '
          f'of strategy={config.strategy!r} (it is the global batch)')
  chief = distribute.is_chief(strategy)
  workdir = config.workdir
  runlog.check_resumable(workdir, config)
  scorer = None
  wants_scores = config.eval_every > 0 or config.final_eval
  if wants_scores:
    counts = (['eval_num_samples'] if config.eval_every else []) + [
        'final_eval_num_samples']
    for field in counts:
      if config.eval_splits > config[field]:
        raise config_lib.ConfigError(
            f'eval_splits={config.eval_splits!r} is larger than {field}='
            f'{config[field]!r}: every split needs samples')
    from tf_gancond import scores  # Imports TF-GAN: only when scores are asked for.
    _ensure_package_classifier(config)
    scores.check_scores(config)  # Classifier and real split: fails now, not hours later.
    scores.check_resume(config)  # Same classifier and sample counts as earlier scores.
  local_dir = distribute.worker_dir(workdir, strategy)
  if chief:
    runlog.lock_folder(workdir)
  os.makedirs(local_dir, exist_ok=True)

  trainer = GANTrainer(config, strategy)
  ckpt = tf.train.Checkpoint(generator=trainer.generator,
                             discriminator=trainer.discriminator,
                             g_optimizer=trainer.g_optimizer,
                             d_optimizer=trainer.d_optimizer, step=trainer.step)
  manager = runlog.restore_checkpoint(ckpt, os.path.join(local_dir, 'checkpoints'),
                                     config.max_checkpoints)
  start = int(trainer.step.numpy())
  # Data (before anything is written: DataUnavailableError leaves the run as it was),
  # reseeded by the start step so a resumed run does not replay its first batches.
  data_config = config_lib.get_config()
  data_config.update(config)
  data_config.seed = config.seed + start
  dataset = data_lib.make_dataset(data_config)
  iterator = iter(strategy.experimental_distribute_dataset(dataset))
  if manager.latest_checkpoint:
    logging.info('Resumed from %s at step %d', manager.latest_checkpoint, start)

  runlog.remove_stale_tmp(local_dir)
  log = runlog.RunLog(workdir, enabled=chief)
  if chief:
    runlog.atomic_write_text(os.path.join(workdir, runlog.CONFIG_FILE),
                             config_lib.to_text(config))
    log.truncate_after(start)
    log.append('start', start, **runlog.provenance())
    log.set_status('running', start, train_steps=config.train_steps)
  writer = (tf.summary.create_file_writer(workdir) if chief else
            tf.summary.create_noop_writer())

  num_classes = trainer.num_classes
  if config.probe_every:
    from tf_gancond import probes  # Imported only when probes are asked for.
    probe_z = probes.fixed_probe_z(config.latent_dim, config.probe_num_z,
                                   config.probe_seed)
    probe_labels = (probes.probe_labels(num_classes, config.probe_num_z,
                                        config.probe_seed) if num_classes else None)
  # A generator that normalises with batch statistics even in inference (O6) is
  # probed with the probe batch's statistics held fixed, whatever probe_bn_mode says.
  probe_bn_mode = ('batch_stats' if config.g_bn_always_batch_stats else
                   config.probe_bn_mode)
  sample_z = tf.constant(np.random.default_rng(config.probe_seed + 1).standard_normal(
      (config.sample_grid, config.latent_dim)).astype(np.float32))
  sample_labels = (tf.range(config.sample_grid) % num_classes if num_classes else None)
  q_rng = np.random.default_rng(config.seed + 7919 * (start + 1))
  export_steps = set(config_lib.parse_steps(config.export_at_steps))
  h, w, ch = models.image_shape(config)

  def export_path(step):
    return os.path.join(local_dir, 'saved_models', f'step_{step:08d}')

  def is_export_step(step):
    return bool(config.export_every and step % config.export_every == 0) or (
        step in export_steps)

  def export(step):
    # Every worker exports: under multi_worker, saving reads the BatchNorm moving
    # statistics through collectives that all workers must join. Other workers
    # write to their scratch folder and delete the copy.
    path = export_path(step)
    try:
      export_lib.export_generator(
          trainer.generator, path, config.latent_dim, (h, w, ch),
          num_classes=trainer.num_classes,
          metadata={'step': step, 'dataset': config.dataset,
                    'architecture': config.architecture, 'seed': config.seed,
                    'jacobian_clamping': config.jacobian_clamping,
                    'g_bn_always_batch_stats': config.g_bn_always_batch_stats})
    except export_lib.NonFiniteWeightsError as e:
      raise DivergedError(f'{e} at step {step}') from None
    if not chief:
      shutil.rmtree(path, ignore_errors=True)
      return None
    return path

  def probe(step):
    if probe_bn_mode == 'inference':
      result = probes.probe_generator(trainer.generate_inference, probe_z,
                                      labels=probe_labels)
    else:
      with probes.held_batch_statistics(trainer.generator, probe_z,
                                        probe_labels) as generate:
        result = probes.probe_generator(generate, probe_z, labels=probe_labels)
    log.append('probe', step, bn_mode=probe_bn_mode, labels=probe_labels,
               **probes.to_json_dict(result))
    with writer.as_default(step=step):
      tf.summary.scalar('probe/mean_log_cond', result['mean_log_cond'])
      tf.summary.scalar('probe/mean_log10_cond', result['mean_log10_cond'])
      tf.summary.histogram('probe/log_cond', result['log_cond'])
      sv = result['avg_jacobian_singular_values']
      tf.summary.histogram('probe/log_avg_jacobian_singular_values', np.log(sv))
      tf.summary.image('probe/avg_jacobian_spectrum', _spectrum_plot(sv, step))
      tf.summary.image('samples', image_grid(
          trainer.generate_inference(sample_z, sample_labels)))
    return result

  def evaluate(step, num_samples):
    nonlocal scorer
    from tf_gancond import scores
    if scorer is None:
      scorer = scores.Scorer.from_config(config)
    result = scorer.score(trainer.generate_inference, num_samples, config.eval_splits)
    log.append('eval', step, **result)
    with writer.as_default(step=step):
      for k, v in result.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
          tf.summary.scalar(f'eval/{k}', v)
    return result

  def save_checkpoint(step):
    if not trainer.all_weights_finite():
      raise DivergedError(f'non-finite weights at step {step}')
    manager.save(checkpoint_number=step)

  if start == 0 and config.probe_every:
    probe(0)  # SPEC O1: "starts off well-conditioned".
  # A kill between the checkpoint at `start` and its export left the export missing
  # (the final one is made below). Under multi_worker only the chief keeps its copy
  # and every worker must join the export, so there it is always made again.
  if 0 < start < config.train_steps and is_export_step(start) and (
      strategy.cluster_resolver is not None or not os.path.isdir(export_path(start))):
    export(start)
  interval, t_last, last_probe = [], time.perf_counter(), None
  step = start
  try:
    while step < config.train_steps:
      out = trainer.train_step(iterator)
      step += 1
      values = {k: v.numpy() for k, v in out.items()}
      if not all(np.all(np.isfinite(v)) for v in values.values()):
        bad = sorted(k for k, v in values.items() if not np.all(np.isfinite(v)))
        raise DivergedError(f'non-finite {", ".join(bad)} at step {step}')
      interval.append(values)
      if step % config.log_every == 0 or step == config.train_steps:
        elapsed = time.perf_counter() - t_last
        summary, q = _summarize_interval(interval)
        extra = {}  # Logged to metrics.jsonl only (not scalars).
        if q is None:
          z = q_rng.standard_normal((config.batch_size, config.latent_dim)).astype(
              np.float32)
          d = q_rng.standard_normal(z.shape).astype(np.float32)
          z_prime = z + config.jc_epsilon * d / np.linalg.norm(d, axis=1,
                                                               keepdims=True)
          # Uniform labels, as the JC generator step draws them (Stream.G_LABELS).
          q_labels = (q_rng.integers(0, num_classes, len(z)).astype(np.int32)
                      if num_classes else None)
          q = trainer.measure_q(tf.constant(z), tf.constant(z_prime),
                                q_labels).numpy()
          if num_classes:
            extra['q_labels'] = q_labels
          summary['q_mean'] = float(q.mean())
          for p, v in zip(_Q_PERCENTILES, np.percentile(q, _Q_PERCENTILES)):
            summary[f'q_p{p}'] = float(v)
        summary['steps_per_sec'] = len(interval) / elapsed
        summary['step_time'] = elapsed / len(interval)
        log.append('train', step, **summary, **extra)
        with writer.as_default(step=step):
          for k, v in summary.items():
            tf.summary.scalar(f'train/{k}', v)
          tf.summary.histogram('train/q', q)
        logging.info('step %d/%d %s', step, config.train_steps,
                     ' '.join(f'{k}={summary[k]:.4g}' for k in
                              ('d_loss', 'g_loss', 'q_mean', 'steps_per_sec')
                              if k in summary))
        interval, t_last = [], time.perf_counter()
      if config.probe_every and step % config.probe_every == 0:
        last_probe = probe(step)
      if config.eval_every and step % config.eval_every == 0 and step < config.train_steps:
        evaluate(step, config.eval_num_samples)
      if step % config.checkpoint_every == 0 or step == config.train_steps:
        save_checkpoint(step)
      if is_export_step(step):
        export(step)
      if step != int(trainer.step.numpy()):
        raise RuntimeError('host and device step counters disagree')
  except DivergedError as e:
    log.set_status('diverged', step, reason=str(e),
                   last_checkpoint=manager.latest_checkpoint)
    raise
  final = {}
  if config.probe_every and (last_probe is None or step % config.probe_every):
    last_probe = probe(step)
  final_model = export(step)
  if last_probe is not None:
    final['mean_log_cond'] = float(last_probe['mean_log_cond'])
  if wants_scores:
    final.update(evaluate(step, config.final_eval_num_samples))
    if config.num_missing_mode_samples:
      from tf_gancond import scores
      final.update(scores.missing_modes(
          trainer.generate_inference, config.latent_dim, scorer.classify,
          num_samples=config.num_missing_mode_samples, seed=config.seed))
  log.append('final', step, **final)
  log.set_status('finished', step, final_saved_model=final_model,
                 train_steps=config.train_steps)
  writer.flush()
  return final
