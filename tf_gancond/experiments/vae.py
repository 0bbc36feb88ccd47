"""O3 (Odena et al. 2018, Fig. 3): a VAE whose decoder is the DCGAN generator.

Model (docs/experiments.md#o3; only the N(0, I) prior is stated, the rest is *choice*):
  encoder  q(z|x) = N(mu(x), diag(exp(log_var(x)))): the DCGAN discriminator body
           (5x5 stride-2 convs, BN, LeakyReLU 0.2) with two linear heads [B, n_z].
  decoder  the DCGAN generator (same layers and initialisation). Its pre-tanh output
           a(z) [B, H, W, C] gives Bernoulli logits l = 2a, so the Bernoulli mean is
           p = sigmoid(2a) and the mean mapped to [-1, 1] is 2p - 1 = tanh(a): exactly
           the generator output. The exported decoder is therefore an ordinary
           generator SavedModel (z -> images in [-1, 1]) that the probes and the
           report treat like a GAN generator.
  prior    p(z) = N(0, I).
  targets  t = (x + 1) / 2 in [0, 1] for data x in [-1, 1] (grey levels used as
           Bernoulli targets, the usual MNIST VAE practice; the likelihood is then a
           cross-entropy, not a normalised density of grey images).

Loss (Kingma & Welling 2014, eq. 10), per example, in nats:
  -ELBO(x) = sum_pixels [softplus(l) - t l]                       (= -log p(t|z))
             + 0.5 sum_j [mu_j^2 + exp(log_var_j) - 1 - log_var_j]  (= KL(q || p))
with one reparameterised sample z = mu + exp(log_var / 2) eps, eps ~ N(0, I).
Optimiser: Adam(vae_lr = 1e-3, beta1 = vae_beta1).

Measure (docs/experiments.md#o3): the log singular values of E_z[J_z] of the decoder at
the end of training (the probe's `avg_jacobian_singular_values`), also at every probe.
"""

import tensorflow as tf

from tf_gancond import config as config_lib
from tf_gancond import data as data_lib
from tf_gancond import experiments
from tf_gancond import loop
from tf_gancond import models
from tf_gancond import rng
from tf_gancond.models import dcgan


def _head_init():
  """N(0, 0.02), the DCGAN initialisation (Radford et al. 2015), per layer."""
  return tf.keras.initializers.RandomNormal(stddev=0.02)


class VAEDecoder(dcgan.DCGANGenerator):
  """The DCGAN generator with its pre-tanh activation exposed.

  `pre_tanh(z)` [B, H, W, C] runs the generator's layers; `call(z)` = tanh(pre_tanh)
  equals `DCGANGenerator.call` (tested); `bernoulli_logits(z)` = 2 pre_tanh(z).
  """

  def pre_tanh(self, z, training=False):
    h = self.dense(z)
    h = tf.reshape(h, [-1, self.stem_size, self.stem_size, self.stem_channels])
    h = tf.nn.relu(self.stem_bn(h, training=training))
    for up, bn in zip(self.ups, self.bns):
      h = tf.nn.relu(bn(up(h), training=training))
    return self.out(h)

  def bernoulli_logits(self, z, training=False):
    # tanh(a) = 2 sigmoid(2a) - 1: logits 2a make the Bernoulli mean, mapped to
    # [-1, 1], equal to the generator output.
    return 2.0 * self.pre_tanh(z, training=training)

  def call(self, z, labels=None, training=False):
    del labels  # Unconditional.
    return tf.tanh(self.pre_tanh(z, training=training))


class VAEEncoder(dcgan.DCGANDiscriminator):
  """images [B, H, W, C] -> (mu [B, n_z], log_var [B, n_z]); the DCGAN D body."""

  def __init__(self, image_size, latent_dim, base_channels=64, name='encoder'):
    super().__init__(image_size, base_channels, name=name)
    del self.logit  # The D's one-logit head is replaced by the two heads below.
    self.mu_head = tf.keras.layers.Dense(latent_dim, kernel_initializer=_head_init())
    self.log_var_head = tf.keras.layers.Dense(latent_dim,
                                              kernel_initializer=_head_init())

  def call(self, x, labels=None, training=False):
    del labels
    h = x
    for conv, bn in zip(self.convs, self.bns):
      h = conv(h)
      if bn is not None:
        h = bn(h, training=training)
      h = tf.nn.leaky_relu(h, alpha=0.2)
    h = self.flatten(h)
    return self.mu_head(h), self.log_var_head(h)


def negative_elbo_terms(logits, targets, mu, log_var):
  """Per-example (reconstruction, KL) [B], [B] of the module docstring's -ELBO.

  logits, targets: [B, H, W, C] (targets in [0, 1]); mu, log_var: [B, n_z].
  """
  recon = tf.reduce_sum(
      tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits),
      axis=[1, 2, 3])
  kl = 0.5 * tf.reduce_sum(tf.square(mu) + tf.exp(log_var) - 1.0 - log_var, axis=-1)
  return recon, kl


class VAE(loop.Trainer):
  """Encoder, decoder (the exported and probed generator), optimiser, step counter
  and the compiled train step."""

  log_keys = ('loss', 'recon', 'kl')

  def __init__(self, config):
    super().__init__(config, name='vae')
    if config.architecture != 'dcgan' or config.conditional:
      raise config_lib.ConfigError(
          f'experiment=vae needs architecture=dcgan and conditional=False; got '
          f'architecture={config.architecture!r}, conditional={config.conditional!r}')
    size, _, channels = models.image_shape(config)
    self.image_shape = (size, size, channels)
    self.encoder = VAEEncoder(size, config.latent_dim, config.d_base_channels)
    self.decoder = VAEDecoder(size, channels, config.latent_dim,
                              config.g_base_channels, name='generator')
    self.encoder(tf.zeros([1, *self.image_shape]))
    self.decoder(tf.zeros([1, config.latent_dim]))
    self.generator = self.decoder
    self.optimizer = tf.keras.optimizers.Adam(config.vae_lr, beta_1=config.vae_beta1,
                                              beta_2=config.beta2)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.probe = None  # loop.Probe, made with the run's actions.

  def terms(self, x, eps, training):
    """(recon [B], kl [B]) for images x [B, H, W, C] in [-1, 1] and eps [B, n_z]."""
    mu, log_var = self.encoder(x, training=training)
    z = mu + tf.exp(0.5 * log_var) * eps
    logits = self.decoder.bernoulli_logits(z, training=training)
    return negative_elbo_terms(logits, (x + 1.0) / 2.0, mu, log_var)

  @tf.function
  def train_step(self, iterator):
    x, _ = next(iterator)
    step = self.step.read_value()
    eps = rng.normal([tf.shape(x)[0], self.config.latent_dim], self.config.seed, step,
                     rng.Stream.VAE_EPS)
    variables = self.encoder.trainable_variables + self.decoder.trainable_variables
    with tf.GradientTape() as tape:
      recon, kl = self.terms(x, eps, training=True)
      loss = tf.reduce_mean(recon + kl)
    grads = tape.gradient(loss, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    self.step.assign_add(1)
    return {'loss': loss, 'recon': tf.reduce_mean(recon), 'kl': tf.reduce_mean(kl),
            'grad_norm': tf.linalg.global_norm(grads)}

  @tf.function
  def eval_terms(self, x, index):
    eps = rng.normal([tf.shape(x)[0], self.config.latent_dim], self.config.seed, index,
                     rng.Stream.VAE_EVAL_EPS)
    return self.terms(x, eps, training=False)

  @tf.function
  def generate_inference(self, z, labels=None):
    del labels  # Unconditional.
    return self.decoder(z, training=False)

  def checkpoint_items(self):
    return {'encoder': self.encoder, 'decoder': self.decoder,
            'optimizer': self.optimizer}

  def actions(self, run):
    if not self.config.probe_every:
      return []
    sample_z = loop.sample_grid_z(self.config)
    self.probe = loop.Probe(run, {'samples': lambda: self.generate_inference(sample_z)})
    return [self.probe.action()]

  def summarize(self, interval):
    record, histograms = super().summarize(interval)
    record['elbo'] = -record['loss']
    return record, histograms

  def export_metadata(self):
    return {'model': 'vae_decoder'}

  def final_results(self, run):
    """-ELBO terms (the last train interval and the held-out split), the final
    SavedModel, and the decoder's mean log-condition number and E_z[J_z] singular
    values at the last probe."""
    final = {'train_' + k: v for k, v in run.record.items()
             if k in ('loss', 'recon', 'kl', 'elbo')}
    final.update(evaluate_elbo(self, self.config, self.config.eval_num_samples))
    final['saved_model'] = run.saved_model
    if self.probe is not None:
      final['mean_log_cond'] = self.probe.final_mean_log_cond(run.step)
      final['avg_jacobian_singular_values'] = [
          float(s) for s in self.probe.last['avg_jacobian_singular_values']]
    return final


def evaluate_elbo(vae, config, limit):
  """Mean -ELBO, reconstruction and KL (nats per example; BN in inference mode) on
  up to `limit` examples of `config.eval_real_split`; one z sample per example."""
  ds = data_lib.make_dataset(config, split=config.eval_real_split,
                             batch_size=min(500, limit), shuffle=False, repeat=False)
  recon, kl, n = 0.0, 0.0, 0
  for i, (x, _) in enumerate(ds):
    x = x[:limit - n]
    r, k = vae.eval_terms(x, tf.constant(i, tf.int64))
    recon += float(tf.reduce_sum(r))
    kl += float(tf.reduce_sum(k))
    n += int(x.shape[0])
    if n >= limit:
      break
  if not n:
    return {}
  return {'eval_neg_elbo': (recon + kl) / n, 'eval_recon': recon / n,
          'eval_kl': kl / n, 'eval_examples': n, 'eval_split': config.eval_real_split}


def run(config, workdir=None):
  """Trains the O3 VAE in `workdir` (`tf_gancond.loop.run`); returns the final results."""
  return loop.run(experiments.with_workdir(config, workdir), VAE)
