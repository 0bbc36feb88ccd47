"""The GAN trainer (`GANTrainer`) and `train_and_evaluate(config)`, which runs it in
the loop of every experiment (`tf_gancond.loop`).

One iteration = `n_critic` discriminator steps, then `g_steps` generator steps (1;
DCGAN-tensorflow runs 2 on the iteration's z; here every later one draws fresh z).
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

What varies between GANs is chosen by name in the config and held in objects with
one signature: the loss family with D's heads (`tf_gancond.losses`) and the lists
of input transforms, penalties and gradient transforms (`tf_gancond.regularizers`).
"""

import os

import numpy as np
import tensorflow as tf

from tf_gancond import config as config_lib
from tf_gancond import data as data_lib
from tf_gancond import distribute
from tf_gancond import loop
from tf_gancond import losses as losses_lib
from tf_gancond import models
from tf_gancond import regularizers
from tf_gancond import rng
from tf_gancond.rng import Stream

_Q_PERCENTILES = (5, 25, 50, 75, 95)
_Q_STREAM = 7919  # Q's numpy stream is keyed [seed, _Q_STREAM, step].


def _learning_rate(base, decay, total_updates):
  if decay == 'linear':
    # Linear decay to 0 over the run (igul222 WGAN-GP, Miyato SN-GAN).
    return tf.keras.optimizers.schedules.PolynomialDecay(base, total_updates, 0.0)
  return base


def _bn_moving_variables(model):
  return [v for v in model.variables if 'moving_' in v.name]


class GANTrainer(loop.Trainer):
  """Holds G, D, their optimizers, the loss and regularizers, and the compiled step."""

  def __init__(self, config, strategy):
    super().__init__(config, name='gan_trainer')
    self.strategy = strategy
    self.num_replicas = strategy.num_replicas_in_sync
    self.loss = losses_lib.get_loss(config.loss, config.acgan_d_weight,
                                    config.acgan_g_weight)
    self.streams = rng.ReplicaStreams(config.seed, self.num_replicas)
    with strategy.scope():
      # BatchNorm over the global batch when there are several replicas, so N
      # replicas train as one device on the whole batch (tests/test_distributed.py).
      self.generator, self.discriminator = models.build_gan(
          config, sync_batch_norm=self.num_replicas > 1)
      # Under precision=bfloat16, a float32 G that probes, scores and exports run
      # on, given the trained G's (float32) variables before each use; not
      # checkpointed (`float32_generator`).
      self._float32_twin = None if config.precision == 'float32' else models.build_gan(
          config, sync_batch_norm=self.num_replicas > 1, precision='float32')[0]
      self.g_optimizer = tf.keras.optimizers.Adam(
          _learning_rate(config.g_lr, config.lr_decay,
                         config.train_steps * config.g_steps),
          beta_1=config.beta1, beta_2=config.beta2)
      self.d_optimizer = tf.keras.optimizers.Adam(
          _learning_rate(config.d_lr, config.lr_decay,
                         config.train_steps * config.n_critic),
          beta_1=config.beta1, beta_2=config.beta2)
      # Generator iterations done; the checkpointed step of record.
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
      self.regularizers = regularizers.from_config(config, self.streams,
                                                   self.generator, self.discriminator)
    self.power_iteration_state = regularizers.power_iteration_state(self.regularizers)
    self.reuse_fake = (config.g_step_reuses_fake and config.n_critic == 1 and
                       config.g_batch_size == config.batch_size)
    self.num_classes = config_lib.NUM_CLASSES[config.dataset] if config.conditional else 0
    self.probe = None  # loop.Probe, made with the run's actions.
    self._scorer = None  # scores.Scorer, made at the first score.

  # ----- pieces of a step -----
  def _critic(self, x, labels, step, sub_step, purpose):
    """D's output on x after the input transforms (instance noise) of `purpose`."""
    for transform in self.regularizers.d_inputs:
      x = transform(x, step, sub_step, purpose)
    return self.discriminator(x, labels=labels, training=True)

  def _generate_for_g(self, z, labels, step):
    """(G(z), {penalty: (z_extra, G(z_extra))}): G in training mode, in one pass over
    z and the extra latents of the G penalties that ask for them (Jacobian
    Clamping's z'), which keep the labels of z (docs/experiments.md#o6)."""
    extra_z = [(p, p.extra_z(z, step)) for p in self.regularizers.g_penalties]
    extra_z = [(p, e) for p, e in extra_z if e is not None]
    if not extra_z:
      return self.generator(z, labels=labels, training=True), {}
    if labels is not None:
      labels = tf.concat([labels] * (1 + len(extra_z)), 0)
    x = self.generator(tf.concat([z] + [e for _, e in extra_z], 0), labels=labels,
                       training=True)
    fake, *extra_x = tf.split(x, 1 + len(extra_z), axis=0)
    return fake, {p: (e, x_e) for (p, e), x_e in zip(extra_z, extra_x)}

  def _d_update(self, real, labels, fake, step, sub_step):
    """One D step on real [B,...] and fake [B,...]; returns its metrics."""
    critic = lambda x, purpose: losses_lib.split_heads(  # noqa: E731
        self._critic(x, labels, step, sub_step, purpose))[0]
    d_inputs = regularizers.DStep(real, fake, labels, step, sub_step, critic)
    with tf.GradientTape() as tape:
      total, metrics = self.loss.d_loss(
          self._critic(real, labels, step, sub_step, Stream.NOISE_REAL),
          self._critic(fake, labels, step, sub_step, Stream.NOISE_FAKE), labels)
      for penalty in self.regularizers.d_penalties:
        term, penalty_metrics = penalty(d_inputs)
        total += term
        metrics.update(penalty_metrics)
      scaled = total / self.num_replicas
    variables = self.discriminator.trainable_variables
    grads = tape.gradient(scaled, variables)
    metrics['d_grad_norm'] = self._apply(self.d_optimizer, grads, variables,
                                         self.regularizers.d_gradients, metrics)
    return metrics

  def _g_loss(self, fake, extra, z, labels, step):
    """(L_G / replicas, metrics) for fake = G(z) and the G penalties' extra passes."""
    total, metrics = self.loss.g_loss(
        self._critic(fake, labels, step, 0, Stream.NOISE_G), labels)
    g_inputs = regularizers.GStep(z, fake, labels, step, extra)
    for penalty in self.regularizers.g_penalties:
      term, penalty_metrics = penalty(g_inputs)
      total += term
      metrics.update(penalty_metrics)
    return total / self.num_replicas, metrics

  def _apply_g(self, tape, scaled_loss, metrics):
    variables = self.generator.trainable_variables
    grads = tape.gradient(scaled_loss, variables)
    return self._apply(self.g_optimizer, grads, variables, self.regularizers.g_gradients,
                       metrics)

  def _apply(self, optimizer, grads, variables, transforms, metrics):
    """Applies grads after the gradient transforms; returns their global norm.

    With several replicas the grads are all-reduced (summed) here, and the
    optimizer told not to again: the same one all-reduce the optimizer would do,
    and the transforms (nonlinear) and the returned norm then see the gradient of
    the global-batch loss, as on one device.
    """
    if self.num_replicas > 1:
      grads = tf.distribute.get_replica_context().all_reduce('SUM', grads)
    for transform in transforms:
      grads, transform_metrics = transform(grads)
      metrics.update(transform_metrics)
    optimizer.apply_gradients(zip(grads, variables),
                              skip_gradients_aggregation=self.num_replicas > 1)
    return tf.linalg.global_norm(grads)  # Of the summed (global) gradient.

  def _labels_for_g(self, global_rows, step):
    if not self.num_classes:
      return None
    return self.streams.uniform(global_rows, (), step, Stream.G_LABELS,
                                maxval=self.num_classes, dtype=tf.int32)

  # ----- the step -----
  def _replica_step(self, batches, step):
    """Per-replica iteration. `batches`: n_critic (images, labels) pairs."""
    c = self.config
    metrics = {}
    if self.reuse_fake:
      real, labels = batches[0]
      z = self.streams.normal(c.batch_size, (c.latent_dim,), step, Stream.G_Z)
      cond = labels if self.num_classes else None
      with tf.GradientTape(watch_accessed_variables=False) as g_tape:
        g_tape.watch(self.generator.trainable_variables)
        fake, extra = self._generate_for_g(z, cond, step)
        metrics.update(self._d_update(real, cond, tf.stop_gradient(fake), step, 0))
        g_scaled, g_metrics = self._g_loss(fake, extra, z, cond, step)
      metrics.update(g_metrics)
      metrics['g_grad_norm'] = self._apply_g(g_tape, g_scaled, metrics)
      for k in range(1, c.g_steps):  # As DCGAN-tensorflow's second, but on fresh z.
        self._g_update_on_fresh_z(step, k, metrics)
      return metrics
    for k, (real, labels) in enumerate(batches):
      z = self.streams.normal(c.batch_size, (c.latent_dim,), step, Stream.D_Z, k)
      cond = labels if self.num_classes else None
      # Critic fakes use the real batch's labels (igul222).
      fake = self.generator(z, labels=cond, training=True)
      metrics.update(self._d_update(real, cond, fake, step, k))
    for k in range(c.g_steps):
      self._g_update_on_fresh_z(step, k, metrics)
    return metrics

  def _g_update_on_fresh_z(self, step, sub_step, metrics):
    """One G update on fresh z (stream G_Z, `sub_step`); adds its metrics (a later
    update of the iteration overwrites them: the last one's values are recorded)."""
    c = self.config
    z = self.streams.normal(c.g_batch_size, (c.latent_dim,), step, Stream.G_Z, sub_step)
    cond = self._labels_for_g(c.g_batch_size, step)
    with tf.GradientTape() as g_tape:
      fake, extra = self._generate_for_g(z, cond, step)
      g_scaled, g_metrics = self._g_loss(fake, extra, z, cond, step)
    metrics.update(g_metrics)
    metrics['g_grad_norm'] = self._apply_g(g_tape, g_scaled, metrics)

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
    """Q [N] of Algorithm 1, no penalty (logged in every run; docs/experiments.md#o5).

    z, z_prime: [N, n_z], N a multiple of g_batch_size; labels: [N] or None.
    Batch by batch, as a JC generator step sees Q: G in training mode on
    [z_b; z'_b] (g_batch_size rows each, z' keeping z's labels), so that BatchNorm
    normalises over those 2B rows. BatchNorm's moving statistics are restored
    afterwards, so the measurement leaves no trace.
    """
    moving = _bn_moving_variables(self.generator)
    saved = [tf.identity(v) for v in moving]
    b = self.config.g_batch_size
    num_batches = z.shape[0] // b
    q = tf.TensorArray(tf.float32, size=num_batches, infer_shape=False)
    for i in tf.range(num_batches):
      z_b, z_prime_b = z[i * b:(i + 1) * b], z_prime[i * b:(i + 1) * b]
      both_labels = None if labels is None else tf.concat(
          [labels[i * b:(i + 1) * b]] * 2, 0)
      x = self.generator(tf.concat([z_b, z_prime_b], 0), labels=both_labels,
                         training=True)
      fake, fake_prime = tf.split(x, 2, axis=0)
      _, q_b = regularizers.jacobian_clamping_penalty(
          fake, fake_prime, z_b, z_prime_b, self.config.jc_lambda_min,
          self.config.jc_lambda_max, self.config.jc_norm)
      q = q.write(i, q_b)
    q = q.concat()
    with tf.control_dependencies([q]):
      restores = [v.assign(s) for v, s in zip(moving, saved)]
    with tf.control_dependencies(restores):
      return tf.identity(q)

  def float32_generator(self):
    """The G that probes, scores and exports use: G itself in float32; under
    precision=bfloat16 its float32 twin, given G's current variables (the float32
    values the mixed policy keeps), so a probe sees what G's float32 export does."""
    if self._float32_twin is None:
      return self.generator
    self._copy_to_float32_twin()
    return self._float32_twin

  @tf.function
  def _copy_to_float32_twin(self):
    for twin, trained in zip(self._float32_twin.variables, self.generator.variables):
      twin.assign(trained)

  @tf.function
  def generate_inference(self, z, labels=None):
    """G(z) with BatchNorm in inference mode, in float32 (probes, samples, scores)."""
    return self.float32_generator()(z, labels=labels, training=False)

  # ----- what the loop asks of a trainer (tf_gancond.loop.Trainer) -----
  def checkpoint_items(self):
    items = {'generator': self.generator, 'discriminator': self.discriminator,
             'g_optimizer': self.g_optimizer, 'd_optimizer': self.d_optimizer}
    if self.power_iteration_state:
      items['power_iteration_vectors'] = tf.train.Checkpoint(
          **self.power_iteration_state)
    return items

  def make_iterator(self, config, start_step):
    """The stream from `start_step` on: `n_critic` batches a step (train_step)."""
    return iter(self.strategy.experimental_distribute_dataset(data_lib.make_dataset(
        config, skip_batches=start_step * config.n_critic)))

  def export_metadata(self):
    return {'architecture': self.config.architecture,
            'precision': self.config.precision,
            'jacobian_clamping': self.config.jacobian_clamping,
            'g_bn_always_batch_stats': self.config.g_bn_always_batch_stats}

  def actions(self, run):
    c = self.config
    sample_z = loop.sample_grid_z(c)
    sample_labels = (tf.range(c.sample_grid) % self.num_classes if self.num_classes
                     else None)
    actions = []
    if c.probe_every:
      self.probe = loop.Probe(run, {'samples': lambda: self.generate_inference(
          sample_z, sample_labels)})
      actions.append(self.probe.action())
    # Scores during training; the final one (final_eval_num_samples) is in the results.
    actions.append(loop.Action(
        lambda step: self._evaluate(run, step, c.eval_num_samples),
        lambda step: loop.every(c.eval_every)(step) and step < c.train_steps))
    return actions

  def q_pairs(self, rng, num_pairs):
    """(z, z', labels) of a Q measurement, drawn from the numpy Generator `rng`:
    z ~ N(0, I) [num_pairs, n_z], z' = z + eps d / ||d|| (Algorithm 1), and uniform
    labels [num_pairs] (None for an unconditional G), as a JC generator step on
    fresh z draws them (Stream.G_LABELS; one that reuses the D step's G(z) has the
    real batch's labels)."""
    c = self.config
    z = rng.standard_normal((num_pairs, c.latent_dim)).astype(np.float32)
    direction = rng.standard_normal(z.shape).astype(np.float32)
    labels = (rng.integers(0, self.num_classes, num_pairs).astype(np.int32)
              if self.num_classes else None)
    z = tf.constant(z)
    return (z, regularizers.jacobian_clamping_perturb(z, direction, c.jc_epsilon),
            labels)

  def summarize(self, interval):
    """Interval means and the Q statistics of docs/experiments.md#o5.

    Q is measured at the interval's end in every setting, on q_num_batches batches
    of g_batch_size fresh (z, z') pairs and uniform labels (`measure_q`): q_mean,
    q_p5 .. q_p95, the histogram 'q', q_num_samples and, for a conditional G,
    q_label_counts per class. One measurement for all settings, so that their
    percentiles carry the same sampling error (a JC run's own Q pools all its steps'
    batches: percentiles of many more pairs, which scatter less). A JC run adds
    jc_clamped_share: the share of its steps' Q outside [jc_lambda_min,
    jc_lambda_max], which the penalty acted on.
    """
    c = self.config
    record = {k: float(np.mean([v[k] for v in interval])) for k in interval[0]
              if k != 'q'}
    if 'q' in interval[0]:
      step_q = np.concatenate([v['q'] for v in interval])
      record['jc_clamped_share'] = float(np.mean(
          (step_q < c.jc_lambda_min) | (step_q > c.jc_lambda_max)))
    # z, z' and labels from a stream keyed by (seed, step), as a resume re-makes it.
    q_rng = np.random.default_rng([c.seed, _Q_STREAM, int(self.step.numpy())])
    z, z_prime, labels = self.q_pairs(q_rng, c.q_num_batches * c.g_batch_size)
    q = self.measure_q(z, z_prime, labels).numpy()
    record['q_num_samples'] = int(q.size)
    if labels is not None:
      record['q_label_counts'] = np.bincount(labels, minlength=self.num_classes).tolist()
    record['q_mean'] = float(q.mean())
    for p, v in zip(_Q_PERCENTILES, np.percentile(q, _Q_PERCENTILES)):
      record[f'q_p{p}'] = float(v)
    return record, {'q': q}

  def _evaluate(self, run, step, num_samples):
    """Classifier scores of `num_samples` samples as an 'eval' record."""
    from tf_gancond import scores
    if self._scorer is None:
      self._scorer = scores.Scorer.from_config(self.config)
    result = self._scorer.score(self.generate_inference, num_samples,
                                self.config.eval_splits)
    run.log.append('eval', step, **result)
    run.scalars('eval', result, step)
    return result

  def final_results(self, run):
    """The last probe's mean log-condition number; with scores asked for, the
    final scores and missing modes (docs/experiments.md#o4)."""
    c, final = self.config, {}
    if self.probe is not None:
      final['mean_log_cond'] = self.probe.final_mean_log_cond(run.step)
    if c.eval_every > 0 or c.final_eval:
      final.update(self._evaluate(run, run.step, c.final_eval_num_samples))
      if c.num_missing_mode_samples:
        from tf_gancond import scores
        final.update(scores.missing_modes(
            self.generate_inference, c.latent_dim, self._scorer.classify,
            num_samples=c.num_missing_mode_samples, seed=c.seed))
    return final


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


def gan_trainer(config, strategy=None):
  """The GANTrainer of a run, after the checks that must come before its files:
  global batches that the replicas can share, and (when scores are asked for) a
  usable classifier and real split and the same score settings as earlier scores."""
  strategy = strategy or distribute.make_strategy(config.strategy)
  replicas = strategy.num_replicas_in_sync
  for field in ('batch_size', 'g_batch_size'):
    if config[field] % replicas:  # Global batches are split evenly over replicas.
      raise config_lib.ConfigError(
          f'{field}={config[field]!r} must be a multiple of the {replicas} replicas '
          f'of strategy={config.strategy!r} (it is the global batch)')
  if config.eval_every > 0 or config.final_eval:
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
  return GANTrainer(config, strategy)


def train_and_evaluate(config, strategy=None):
  """Trains the GAN of `config` in config.workdir (`tf_gancond.loop.run`); returns
  its final results. Raises loop.DivergedError on a NaN/Inf."""
  return loop.run(config, lambda c: gan_trainer(c, strategy))
