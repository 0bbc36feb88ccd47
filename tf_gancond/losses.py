"""GAN losses: interchangeable pairs chosen by name (`get_loss`).

Every loss is a `GANLoss(discriminator, generator)`:
  discriminator(real_logits [B_r], fake_logits [B_f]) -> scalar, mean over the
    local batch;
  generator(fake_logits [B_f]) -> scalar, mean over the local batch.
Logits are pre-sigmoid D outputs. log D = -softplus(-l) and log(1 - D) =
-softplus(l) are used instead of log(sigmoid(l)): they stay finite for |l| >> 1.
"""

import collections

import tensorflow as tf

GANLoss = collections.namedtuple('GANLoss', ['discriminator', 'generator'])


def _bce_discriminator(real_logits, fake_logits):
  """L_D = -E log D(x) - E log(1 - D(G(z)))  (Goodfellow et al. 2014, eq. 1)."""
  return (tf.reduce_mean(tf.nn.softplus(-real_logits)) +
          tf.reduce_mean(tf.nn.softplus(fake_logits)))


def non_saturating_generator(fake_logits):
  """L_G = -E log D(G(z))  (the '-log D trick'; SPEC O1)."""
  return tf.reduce_mean(tf.nn.softplus(-fake_logits))


def minimax_generator(fake_logits):
  """L_G = E log(1 - D(G(z)))  (the original cost; Arjovsky & Bottou Fig. 2)."""
  return -tf.reduce_mean(tf.nn.softplus(fake_logits))


def wasserstein_discriminator(real_logits, fake_logits):
  """L_D = E D(G(z)) - E D(x)  (Arjovsky et al. 2017; add a Lipschitz penalty)."""
  return tf.reduce_mean(fake_logits) - tf.reduce_mean(real_logits)


def wasserstein_generator(fake_logits):
  """L_G = -E D(G(z))  (also the generator loss of the hinge GAN)."""
  return -tf.reduce_mean(fake_logits)


def hinge_discriminator(real_logits, fake_logits):
  """L_D = E relu(1 - d(x)) + E relu(1 + d(G(z)))  (Miyato et al. 2018)."""
  return (tf.reduce_mean(tf.nn.relu(1.0 - real_logits)) +
          tf.reduce_mean(tf.nn.relu(1.0 + fake_logits)))


LOSSES = {
    'non_saturating': GANLoss(_bce_discriminator, non_saturating_generator),
    'minimax': GANLoss(_bce_discriminator, minimax_generator),
    'wasserstein': GANLoss(wasserstein_discriminator, wasserstein_generator),
    'hinge': GANLoss(hinge_discriminator, wasserstein_generator),
}


def get_loss(name):
  """The `GANLoss` called `name`; ValueError (one line) for an unknown name."""
  if name not in LOSSES:
    raise ValueError(f'loss={name!r} is not known; choose one of: '
                     f'{", ".join(LOSSES)}')
  return LOSSES[name]
