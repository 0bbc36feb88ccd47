"""GAN losses: one object per family, chosen by name (`get_loss`).

Every loss is a `GANLoss` with the two adversarial terms of its family,
  discriminator(real_logits [B_r], fake_logits [B_f]) -> scalar, mean over the
    local batch;
  generator(fake_logits [B_f]) -> scalar, mean over the local batch;
and the heads of D beyond the logit: `d_loss` / `g_loss` take D's whole output
(`logits [B]`, or `(logits [B], class_logits [B, K])` for a critic with an ACGAN
head) and add the class cross-entropy, weighted as configured:
  L_D += acgan_d_weight * CE(y, class_logits(x))        on real images only,
  L_G += acgan_g_weight * CE(y, class_logits(G(z, y)))  (igul222's ACGAN-WGAN-GP).
Logits are pre-sigmoid D outputs. log D = -softplus(-l) and log(1 - D) =
-softplus(l) are used instead of log(sigmoid(l)): they stay finite for |l| >> 1.
"""

import tensorflow as tf


def non_saturating_generator(fake_logits):
  """L_G = -E log D(G(z))  (the '-log D trick'; docs/experiments.md#o1)."""
  return tf.reduce_mean(tf.nn.softplus(-fake_logits))


def minimax_generator(fake_logits):
  """L_G = E log(1 - D(G(z)))  (the original cost; Arjovsky & Bottou Fig. 2)."""
  return -tf.reduce_mean(tf.nn.softplus(fake_logits))


def class_cross_entropy(labels, class_logits):
  """ACGAN head loss: mean softmax cross-entropy, labels int [B], logits [B, K]."""
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=class_logits))


def split_heads(d_output):
  """(logits [B], class_logits [B, K] or None) of a critic's output."""
  if isinstance(d_output, (tuple, list)):
    return d_output[0], d_output[1]
  return d_output, None


class GANLoss:
  """The adversarial terms of one family plus D's ACGAN head when it has one."""

  def __init__(self, acgan_d_weight=1.0, acgan_g_weight=0.1):
    self.acgan_d_weight = acgan_d_weight
    self.acgan_g_weight = acgan_g_weight

  def discriminator(self, real_logits, fake_logits):
    raise NotImplementedError

  def generator(self, fake_logits):
    raise NotImplementedError

  def d_loss(self, real_output, fake_output, labels):
    """(L_D, metrics) from D's outputs on real and fake images; labels int [B] or None.

    metrics: d_loss (the adversarial term), mean real and fake logits, D's accuracy
    at threshold 0, and d_acgan_loss with a class head.
    """
    real_logits, real_class = split_heads(real_output)
    fake_logits, _ = split_heads(fake_output)
    adversarial = self.discriminator(real_logits, fake_logits)
    metrics = dict(
        d_loss=adversarial,
        d_real_logit=tf.reduce_mean(real_logits),
        d_fake_logit=tf.reduce_mean(fake_logits),
        d_accuracy=0.5 * (tf.reduce_mean(tf.cast(real_logits > 0, tf.float32)) +
                          tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32))))
    if real_class is None:
      return adversarial, metrics
    # Cross-entropy of the class head on real images only (igul222).
    metrics['d_acgan_loss'] = class_cross_entropy(labels, real_class)
    return adversarial + self.acgan_d_weight * metrics['d_acgan_loss'], metrics

  def g_loss(self, fake_output, labels):
    """(L_G, metrics) from D's output on G's images; metrics g_loss (adversarial)
    and g_acgan_loss with a class head."""
    fake_logits, fake_class = split_heads(fake_output)
    adversarial = self.generator(fake_logits)
    metrics = {'g_loss': adversarial}
    if fake_class is None:
      return adversarial, metrics
    metrics['g_acgan_loss'] = class_cross_entropy(labels, fake_class)
    return adversarial + self.acgan_g_weight * metrics['g_acgan_loss'], metrics


class NonSaturating(GANLoss):
  """Goodfellow et al. 2014 with the -log D generator cost (DCGAN,
  docs/experiments.md#o1)."""

  def discriminator(self, real_logits, fake_logits):
    """L_D = -E log D(x) - E log(1 - D(G(z)))  (Goodfellow et al. 2014, eq. 1)."""
    return (tf.reduce_mean(tf.nn.softplus(-real_logits)) +
            tf.reduce_mean(tf.nn.softplus(fake_logits)))

  def generator(self, fake_logits):
    return non_saturating_generator(fake_logits)


class Minimax(NonSaturating):
  """Goodfellow et al. 2014 with the original (saturating) generator cost."""

  def generator(self, fake_logits):
    return minimax_generator(fake_logits)


class Wasserstein(GANLoss):
  """Arjovsky et al. 2017; with `gradient_penalty` > 0, WGAN-GP (Gulrajani et al.)."""

  def discriminator(self, real_logits, fake_logits):
    """L_D = E D(G(z)) - E D(x)."""
    return tf.reduce_mean(fake_logits) - tf.reduce_mean(real_logits)

  def generator(self, fake_logits):
    """L_G = -E D(G(z))."""
    return -tf.reduce_mean(fake_logits)


class Hinge(Wasserstein):
  """Miyato et al. 2018: hinge critic, the Wasserstein generator cost."""

  def discriminator(self, real_logits, fake_logits):
    """L_D = E relu(1 - d(x)) + E relu(1 + d(G(z)))."""
    return (tf.reduce_mean(tf.nn.relu(1.0 - real_logits)) +
            tf.reduce_mean(tf.nn.relu(1.0 + fake_logits)))


LOSSES = {'non_saturating': NonSaturating, 'minimax': Minimax,
          'wasserstein': Wasserstein, 'hinge': Hinge}


def get_loss(name, acgan_d_weight=1.0, acgan_g_weight=0.1):
  """The `GANLoss` called `name`; ValueError (one line) for an unknown name."""
  if name not in LOSSES:
    raise ValueError(f'loss={name!r} is not known; choose one of: '
                     f'{", ".join(LOSSES)}')
  return LOSSES[name](acgan_d_weight, acgan_g_weight)
