"""A1/A2 (Arjovsky & Bottou 2017, Figs 1-3) and A3 (instance noise, Sec. 3).

Procedure (docs/experiments.md#a1): a generator g_theta is frozen; a FRESH DCGAN
discriminator D is trained from scratch with cost (1) for `train_steps` (4,000)
iterations, Adam(d_lr = 2e-4, beta1 = 0.5), batch 64. D minimises the cross-entropy
    cost = -E_x log D(x) - E_z log(1 - D(g(z)))
         = E softplus(-l_real) + E softplus(l_fake)            (l: D logits)
(softplus forms stay finite for |l| >> 1). Every iteration logs, as a "train"
record of metrics.jsonl (and TensorBoard):
  d_cost, d_accuracy     on that iteration's batch, before its update;
  d_cost_avg, d_accuracy_avg   running means over `running_average_window` iterations
                         (A&B plot running averages; the window is unstated);
  grad_norm_minimax      || grad_theta E_z[log(1 - D(g(z)))] ||_2 = || grad E -softplus(l) ||
                         (Fig. 2, the original cost);
  grad_norm_nonsaturating  || grad_theta E_z[-log D(g(z))] ||_2 = || grad E softplus(-l) ||
                         (Fig. 3, the -log D cost);
both on a fresh batch of z with D as just updated, D in training mode (batch
statistics of the fake batch, as in a GAN generator step), theta = all trainable
parameters of G (the norm is over their concatenation).

The generator (G runs in inference mode, BatchNorm moving averages: it is frozen
and its state never changes) comes from, in this order:
  * `run(..., generator=keras_model)` (tests, notebooks);
  * `generator_saved_model`: a SavedModel with the tf_gancond.export contract. theta
    is the set of trainable variables its `serving_default` function reads
    (`ConcreteFunction.trainable_variables`), which works for any SavedModel whose
    variables were saved trainable, not only ours (for ours it equals
    `obj.generator.trainable_variables`). Gradients flow through the restored graph.
  * `generator_checkpoint`: a tf_gancond.train checkpoint (a file prefix, a checkpoint
    directory or a run workdir holding checkpoints/); the Keras generator named by
    the config (architecture, dataset, latent_dim, g_base_channels) is rebuilt and
    its weights restored from the checkpoint's `generator`.
  * neither: a fresh randomly initialised DCGAN G (smoke runs).

A3: with `instance_noise` = sigma_0 > 0, D sees x + sigma eps, eps ~ N(0, I), on real
and fake inputs, also in the generator-gradient path (Cor. 3.2: the gradient is taken
through g(z) + eps). sigma(t) = sigma_0 max(0, 1 - t / T) with T = train_steps
(`instance_noise_anneal_steps` = -1), T = that value (> 0), or constant (0)
(`regularizers.InstanceNoise`, as in the GAN step).
"""

import collections
import os

import numpy as np
import tensorflow as tf

from tf_gancond import config as config_lib
from tf_gancond import experiments
from tf_gancond import loop
from tf_gancond import losses as losses_lib
from tf_gancond import models
from tf_gancond import regularizers
from tf_gancond import rng
from tf_gancond import runlog
from tf_gancond.rng import Stream

FrozenGenerator = collections.namedtuple(
    'FrozenGenerator', ['generate', 'variables', 'latent_dim', 'source', 'owner'],
    defaults=[None])
FrozenGenerator.__doc__ = """generate(z [B, n_z]) -> images [B, H, W, C]; variables:
the trainable parameters theta that generate reads; source: where it came from;
owner: the object that holds the variables (kept alive with them)."""


def _keras_generator(generator, source):
  return FrozenGenerator(lambda z: generator(z, training=False),
                         list(generator.trainable_variables),
                         int(generator.latent_dim), source, owner=generator)


def load_saved_model_generator(path):
  """FrozenGenerator from a SavedModel directory (see the module docstring)."""
  if not os.path.isfile(os.path.join(path, 'saved_model.pb')):
    raise config_lib.ConfigError(f'generator_saved_model={path!r} is not a SavedModel '
                                 'directory (no saved_model.pb)')
  obj = tf.saved_model.load(path)
  sig = getattr(obj, 'signatures', {}).get('serving_default')
  inputs = sig.structured_input_signature[1] if sig is not None else {}
  z_spec = inputs.get('z')
  if (z_spec is None or z_spec.shape.rank != 2 or z_spec.shape[1] is None or
      'images' not in sig.structured_outputs):
    raise config_lib.ConfigError(
        f'generator_saved_model={path!r} lacks the contract signature serving_default'
        '(z: float32 [None, n_z]) -> {images}; see tf_gancond/export.py')
  variables = list(sig.trainable_variables)
  if not variables:
    raise config_lib.ConfigError(
        f'generator_saved_model={path!r} exposes no trainable variables, so there is '
        'no gradient w.r.t. theta; give generator_checkpoint instead')
  if set(inputs) == {'z'}:
    generate = lambda z: sig(z=z)['images']  # noqa: E731
  else:  # Class-conditional: class 0 for every z (the gradient is per class anyway).
    generate = lambda z: sig(z=z, labels=tf.zeros([tf.shape(z)[0]], tf.int32))[  # noqa: E731
        'images']
  return FrozenGenerator(generate, variables, int(z_spec.shape[1]),
                         f'saved_model:{path}', owner=obj)


def _checkpoint_prefix(path):
  """File prefix of the newest checkpoint at `path` (prefix, dir or run workdir)."""
  if os.path.isdir(path):
    for d in (path, os.path.join(path, 'checkpoints')):
      latest = tf.train.latest_checkpoint(d)
      if latest:
        return latest
    raise config_lib.ConfigError(f'generator_checkpoint={path!r} holds no checkpoint '
                                 '(nor does its checkpoints/ subdirectory)')
  if not tf.io.gfile.exists(path + '.index'):
    raise config_lib.ConfigError(f'generator_checkpoint={path!r} is neither a '
                                 'directory nor a checkpoint prefix (no .index file)')
  return path


def load_checkpoint_generator(config, path):
  """FrozenGenerator: the config's Keras G with weights from a train.py checkpoint."""
  prefix = _checkpoint_prefix(path)
  generator, _ = models.build_gan(config)
  status = tf.train.Checkpoint(generator=generator).restore(prefix)
  try:
    status.assert_existing_objects_matched()
  except AssertionError as e:
    raise config_lib.ConfigError(
        f'generator_checkpoint={prefix!r} does not match the generator of this config '
        f'({str(e).splitlines()[0][:120]}); set dataset/latent_dim/g_base_channels '
        'as in the run that wrote it') from None
  status.expect_partial()  # The checkpoint also holds D and the optimizers.
  return _keras_generator(generator, f'checkpoint:{prefix}')


def load_frozen_generator(config, generator=None):
  """The frozen G of the run (see the module docstring for the order)."""
  if config.generator_saved_model and config.generator_checkpoint:
    raise config_lib.ConfigError(
        'give generator_saved_model or generator_checkpoint, not both '
        f'({config.generator_saved_model!r}, {config.generator_checkpoint!r})')
  if generator is not None:
    return _keras_generator(generator, 'given')
  if config.generator_saved_model:
    return load_saved_model_generator(config.generator_saved_model)
  if config.generator_checkpoint:
    return load_checkpoint_generator(config, config.generator_checkpoint)
  generator, _ = models.build_gan(config)
  return _keras_generator(generator, 'random_init')


class FrozenGeneratorExperiment(loop.Trainer):
  """A fresh D, its optimiser and step counter against a frozen G; one 'train'
  record per iteration with the running averages of the module docstring."""

  log_keys = ('d_cost_avg', 'd_accuracy_avg', 'grad_norm_minimax',
              'grad_norm_nonsaturating')
  record_every = 1

  def __init__(self, config, frozen, discriminator):
    super().__init__(config, name='frozen_generator')
    self.frozen = frozen
    self.discriminator = discriminator
    self.loss = losses_lib.get_loss('minimax')  # Cost (1) for D; G costs below.
    self.optimizer = tf.keras.optimizers.Adam(config.d_lr, beta_1=config.beta1,
                                              beta_2=config.beta2)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    streams = rng.ReplicaStreams(config.seed, 1)
    self.d_inputs = ([regularizers.InstanceNoise(config, streams)]
                     if config.instance_noise else [])

  def _critic(self, x, step, purpose):
    """D logits [B] on x after instance noise from the stream of `purpose` (A3)."""
    for transform in self.d_inputs:
      x = transform(x, step, 0, purpose)
    return self.discriminator(x, training=True)

  def generator_gradient_norms(self, z, step):
    """(||grad_theta E log(1 - D(g(z)))||, ||grad_theta E -log D(g(z))||) for z [B, n_z].

    D runs in training mode on the (noisy) fake batch; theta = frozen.variables.
    """
    with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
      tape.watch(self.frozen.variables)
      logits = self._critic(self.frozen.generate(z), step, Stream.NOISE_G)
      # E log(1 - D) = -E softplus(l) (minimax_generator); E -log D = E softplus(-l).
      minimax = losses_lib.minimax_generator(logits)
      nonsaturating = losses_lib.non_saturating_generator(logits)
    norm_minimax = tf.linalg.global_norm(tape.gradient(minimax, self.frozen.variables))
    norm_ns = tf.linalg.global_norm(tape.gradient(nonsaturating, self.frozen.variables))
    del tape
    return norm_minimax, norm_ns

  @tf.function
  def train_step(self, iterator):
    """One D update on a real batch [B, H, W, C] and g(z); then the G gradient norms."""
    real, _ = next(iterator)
    c = self.config
    step = self.step.read_value()
    shape = [tf.shape(real)[0], self.frozen.latent_dim]
    fake = tf.stop_gradient(self.frozen.generate(rng.normal(shape, c.seed, step,
                                                            Stream.D_Z)))
    variables = self.discriminator.trainable_variables
    with tf.GradientTape() as tape:
      # Real and fake batches go through D separately (dcgan.torch), BN per batch.
      real_logits = self._critic(real, step, Stream.NOISE_REAL)
      fake_logits = self._critic(fake, step, Stream.NOISE_FAKE)
      cost = self.loss.discriminator(real_logits, fake_logits)
    grads = tape.gradient(cost, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    accuracy = 0.5 * (tf.reduce_mean(tf.cast(real_logits > 0, tf.float32)) +
                      tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32)))
    norm_minimax, norm_ns = self.generator_gradient_norms(
        rng.normal(shape, c.seed, step, Stream.G_Z), step)
    self.step.assign_add(1)
    return {'d_cost': cost, 'd_accuracy': accuracy,
            'grad_norm_minimax': norm_minimax,
            'grad_norm_nonsaturating': norm_ns,
            'instance_noise_sigma': regularizers.instance_noise_sigma(c, step),
            'd_grad_norm': tf.linalg.global_norm(grads)}

  def checkpoint_items(self):
    return {'discriminator': self.discriminator, 'optimizer': self.optimizer}

  def start(self, run):
    window = self.config.running_average_window
    history = runlog.read_records(run.workdir, 'train')[-window:]  # For resumes.
    self.costs = collections.deque([r['d_cost'] for r in history], maxlen=window)
    self.accuracies = collections.deque([r['d_accuracy'] for r in history],
                                        maxlen=window)

  def summarize(self, interval):
    record, histograms = super().summarize(interval)
    self.costs.append(record['d_cost'])
    self.accuracies.append(record['d_accuracy'])
    record['d_cost_avg'] = float(np.mean(self.costs))
    record['d_accuracy_avg'] = float(np.mean(self.accuracies))
    return record, histograms

  def final_results(self, run):
    c = self.config
    final = summarize(runlog.read_records(run.workdir, 'train'),
                      c.running_average_window)
    final.update(generator_source=self.frozen.source, latent_dim=self.frozen.latent_dim,
                 num_generator_parameters=int(sum(
                     np.prod(v.shape) for v in self.frozen.variables)),
                 instance_noise=c.instance_noise,
                 instance_noise_anneal_steps=c.instance_noise_anneal_steps)
    return final


def frozen_generator_trainer(config, generator=None):
  """The trainer of a run: its frozen G (module docstring), checked against the
  dataset's image shape, and a fresh D. config.latent_dim becomes G's, as recorded."""
  frozen = load_frozen_generator(config, generator)
  image_shape = models.image_shape(config)
  out_shape = tuple(frozen.generate(tf.zeros([1, frozen.latent_dim])).shape[1:])
  if out_shape != tuple(image_shape):
    raise config_lib.ConfigError(
        f'the generator ({frozen.source}) makes images of shape {out_shape}, but '
        f'dataset={config.dataset!r} has {tuple(image_shape)}; set --dataset to match')
  config.latent_dim = frozen.latent_dim
  _, discriminator = models.build_gan(config)
  return FrozenGeneratorExperiment(config, frozen, discriminator)


def summarize(records, window):
  """Final A1/A2 numbers from the per-iteration "train" records (sorted by step)."""
  if not records:
    return {}
  out = {'final_d_cost_avg': records[-1]['d_cost_avg'],
         'final_d_accuracy_avg': records[-1]['d_accuracy_avg'],
         'iterations_to_accuracy_1': next(
             (r['step'] for r in records if r['d_accuracy_avg'] >= 1.0), None)}
  for key in ('grad_norm_minimax', 'grad_norm_nonsaturating'):
    first = float(np.mean([r[key] for r in records[:window]]))
    last = float(np.mean([r[key] for r in records[-window:]]))
    out[f'{key}_first'] = first
    out[f'{key}_last'] = last
    # Ratio of window means (last / first); 0 / 0 cannot occur for a trained D.
    out[f'{key}_ratio'] = last / first if first > 0 else float('nan')
  return out


def run(config, workdir=None, generator=None):
  """Runs A1/A2 (A3 with instance_noise > 0) with `tf_gancond.loop.run`; returns the
  final results.

  `generator`: an optional Keras generator (z -> images) to freeze instead of the
  config's source. Raises ConfigError for a missing/mismatched generator.
  """
  return loop.run(experiments.with_workdir(config, workdir),
                  lambda c: frozen_generator_trainer(c, generator))
