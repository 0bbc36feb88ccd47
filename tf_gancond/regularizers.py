"""What a GAN step adds to its losses and gradients, as lists of objects.

`from_config(config, streams, generator, discriminator)` picks them once from the
config; the step runs every element of each list without asking which it has:
  * D input transforms  x -> x'           instance noise (A3);
  * D penalties         DStep -> (term, metrics): the WGAN-GP gradient penalty;
  * G penalties         GStep -> (term, metrics): Jacobian Clamping (O5), r(W) (S2);
  * gradient transforms grads -> (grads, metrics), per network: spectral clamp (S3).
Each penalty returns its weighted term (added to the loss as is) and the
statistics the step logs. A G penalty may also ask for G at extra latents
(`extra_z`): the step runs G once on [z; z_extra] and hands it (z_extra, G(z_extra))
in `GStep.extra[penalty]`.
"""

import collections

import tensorflow as tf

from tf_gancond import lipschitz
from tf_gancond.rng import Stream

DStep = collections.namedtuple(
    'DStep', ['real', 'fake', 'labels', 'step', 'sub_step', 'critic'])
DStep.__doc__ = """One critic sub-step: real, fake [B, H, W, C] (this replica's rows),
labels int [B] or None, step (int64 scalar) and sub_step (int), and
critic(x, purpose) -> D logits [B] on x after the input transforms of `purpose`."""

GStep = collections.namedtuple('GStep', ['z', 'fake', 'labels', 'step', 'extra'])
GStep.__doc__ = """The generator step: z [B, n_z], fake = G(z), labels int [B] or None,
step, and extra {penalty: (z_extra [B, n_z], G(z_extra))} for penalties with extra_z."""

Regularizers = collections.namedtuple(
    'Regularizers', ['d_inputs', 'd_penalties', 'g_penalties', 'd_gradients',
                     'g_gradients'])


def power_iteration_state(regularizers):
  """{name: tf.Module} of the regularizers that carry power-iteration vectors from
  step to step (r(W), the spectral clamp). The run checkpoints them, so a resume
  continues the iteration where it was, and checks them finite with the weights."""
  return {f'{group}_{i}': r.state
          for group, members in regularizers._asdict().items()
          for i, r in enumerate(members) if getattr(r, 'state', None) is not None}


def jacobian_clamping_perturb(z, direction, epsilon):
  """z' = z + eps * d / ||d|| per row (Odena et al. 2018, Algorithm 1).

  Args:
    z: float32 [B, n_z].
    direction: d [B, n_z], drawn N(0, I) by the caller (a stateless stream in the
      train step), so that the perturbation is uniform on the sphere of radius eps.
    epsilon: norm of each perturbation (paper: 1).
  Returns:
    z' [B, n_z] with ||z'_i - z_i|| = epsilon for every row i.
  """
  return z + epsilon * tf.math.l2_normalize(direction, axis=-1)


def jacobian_clamping_penalty(x, x_prime, z, z_prime, lambda_min, lambda_max,
                              norm='per_example'):
  """Jacobian Clamping penalty (Odena et al. 2018, Algorithm 1).

    Q = ||G(z) - G(z')|| / ||z - z'||
    L = (max(Q, lambda_max) - lambda_max)^2 + (min(Q, lambda_min) - lambda_min)^2

  Args:
    x, x_prime: G(z), G(z') [B, ...].
    z, z_prime: [B, n_z].
    norm: 'per_example' (Q in R^B, L averaged over the batch; the reading of
      docs/experiments.md#o5) or 'batch' (one Q from whole-batch Frobenius norms,
      as some public copies do).
  Returns:
    (penalty scalar, Q [B] or [1]).
  """
  dx = tf.reshape(x - x_prime, [tf.shape(x)[0], -1])
  dz = z - z_prime
  if norm == 'per_example':
    q = tf.norm(dx, axis=-1) / tf.norm(dz, axis=-1)
  elif norm == 'batch':
    q = tf.reshape(tf.norm(dx) / tf.norm(dz), [1])
  else:
    raise ValueError(f'jc_norm={norm!r} is not known; choose per_example or batch')
  l_max = tf.square(tf.maximum(q, lambda_max) - lambda_max)
  l_min = tf.square(tf.minimum(q, lambda_min) - lambda_min)
  return tf.reduce_mean(l_max + l_min), q


def gradient_penalty(critic, real, fake, alpha):
  """WGAN-GP: mean_i (||grad_x D(x_hat_i)||_2 - 1)^2, x_hat = real + alpha (fake - real).

  Gulrajani et al. 2017: one alpha ~ U[0, 1] per example, drawn by the caller.
  Args:
    critic: images [B, H, W, C] -> critic values [B].
    real, fake: [B, H, W, C].
    alpha: [B, 1, 1, 1] in [0, 1].
  Returns:
    (penalty scalar, input-gradient norms [B]).
  """
  x_hat = real + alpha * (fake - real)
  with tf.GradientTape() as tape:
    tape.watch(x_hat)
    values = critic(x_hat)
  grads = tape.gradient(values, x_hat)
  # 1e-12 inside the sqrt keeps its gradient finite where the input gradient is 0.
  norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
  return tf.reduce_mean(tf.square(norms - 1.0)), norms


def instance_noise_sigma(config, step):
  """sigma(step) of instance noise (Arjovsky & Bottou 2017, Sec. 3); float32 scalar.

  sigma(t) = instance_noise * max(0, 1 - t / T): T = train_steps
  (`instance_noise_anneal_steps` = -1), T = that value (> 0), or constant (0).
  """
  sigma0 = float(config.instance_noise)
  if config.instance_noise_anneal_steps == 0:
    return tf.constant(sigma0)
  horizon = float(config.train_steps if config.instance_noise_anneal_steps == -1
                  else config.instance_noise_anneal_steps)
  frac = 1.0 - tf.cast(step, tf.float32) / horizon
  return sigma0 * tf.maximum(frac, 0.0)


class Penalty:
  """A term of one network's loss: `penalty(step_inputs) -> (weighted term, metrics)`."""

  def extra_z(self, z, step):
    """Extra latents [B, n_z] to run G on with z (the step passes G of them back in
    `GStep.extra`), or None."""
    del z, step
    return None


class InstanceNoise:
  """x + sigma(step) eps, eps ~ N(0, I) from the stream of `purpose` (A3)."""

  def __init__(self, config, streams):
    self.config = config
    self.streams = streams

  def __call__(self, x, step, sub_step, purpose):
    """x [B, H, W, C] (this replica's rows) -> x plus its rows of a global draw."""
    eps = self.streams.normal(tf.shape(x)[0] * self.streams.num_replicas, x.shape[1:],
                              step, purpose, sub_step)
    return x + instance_noise_sigma(self.config, step) * eps


class GradientPenalty(Penalty):
  """WGAN-GP on D: weight * mean_i (||grad D(x_hat_i)|| - 1)^2 (`gradient_penalty`).

  alpha ~ U[0, 1] per example from the (step, sub_step, GP_ALPHA) stream of the
  global batch; the critic sees x_hat through the NOISE_GP input transforms.
  """

  def __init__(self, weight, streams, global_batch):
    self.weight = weight
    self.streams = streams
    self.global_batch = global_batch

  def __call__(self, d):
    alpha = self.streams.uniform(self.global_batch, (1, 1, 1), d.step, Stream.GP_ALPHA,
                                 d.sub_step)
    gp, norms = gradient_penalty(lambda x: d.critic(x, Stream.NOISE_GP), d.real,
                                 d.fake, alpha)
    return self.weight * gp, {'gradient_penalty': gp,
                              'd_input_grad_norm': tf.reduce_mean(norms)}


class JacobianClamping(Penalty):
  """Odena et al. 2018, Algorithm 1, with weight 1 in L_G.

  extra_z: z' = z + epsilon d/||d|| per row, d from the JC_DIRECTION stream; the
  step runs G on [z; z'] in one pass ("feed 2 mini-batches"), z' keeping z's labels.
  Logs jc_penalty and Q [B] (`q`).
  """

  def __init__(self, config, streams):
    self.config = config
    self.streams = streams

  def extra_z(self, z, step):
    rows = tf.shape(z)[0] * self.streams.num_replicas
    direction = self.streams.normal(rows, (self.config.latent_dim,), step,
                                    Stream.JC_DIRECTION)
    return jacobian_clamping_perturb(z, direction, self.config.jc_epsilon)

  def __call__(self, g):
    z_prime, fake_prime = g.extra[self]
    c = self.config
    jc, q = jacobian_clamping_penalty(g.fake, fake_prime, g.z, z_prime,
                                      c.jc_lambda_min, c.jc_lambda_max, c.jc_norm)
    return jc, {'jc_penalty': jc, 'q': q}


class WeightRatio(Penalty):
  """Sargent's S2 penalty on G: weight * (-sum_i r(W_i)),
  r(W) = ||W||_F / (m sigma(W)) (`lipschitz.WeightRatioPenalty`)."""

  def __init__(self, weight, variables, exact):
    self.weight = weight
    self.penalty = lipschitz.WeightRatioPenalty(variables, exact=exact)
    self.state = self.penalty  # Its vectors u (`power_iteration_state`).

  def __call__(self, g):
    del g  # A function of G's weights only.
    penalty, ratios = self.penalty()
    return self.weight * penalty, {'rw_mean': tf.reduce_mean(ratios)}


class SpectralClamp:
  """Sargent's S3 clamp of each kernel gradient (`lipschitz.SpectralGradientClamp`).

  Logs `metric`: the median over layers of sigma0 / sigma1 before clamping (~30
  early, ~3 later in D; the median is robust to the one layer whose gradient is
  momentarily near rank 1, sigma1 ~ 0).
  """

  def __init__(self, variables, ratio, metric, seed=0):
    self.clamp = lipschitz.SpectralGradientClamp(variables, ratio, seed=seed)
    self.state = self.clamp  # Its vectors u0, v0, u1, v1 (`power_iteration_state`).
    self.metric = metric

  def __call__(self, grads):
    grads, ratios = self.clamp.apply(grads)
    return grads, {self.metric: tf.sort(ratios)[(len(self.clamp.layer_names) - 1) // 2]}


def from_config(config, streams, generator, discriminator):
  """The `Regularizers` a config asks for; build in strategy.scope() (variables)."""
  c = config
  d_penalties = ([GradientPenalty(c.gradient_penalty, streams, c.batch_size)]
                 if c.gradient_penalty > 0 else [])
  g_penalties = []
  if c.jacobian_clamping:
    g_penalties.append(JacobianClamping(c, streams))
  if c.rw_lambda > 0:
    g_penalties.append(WeightRatio(c.rw_lambda, generator.trainable_variables,
                                   c.rw_exact))
  g_gradients = ([SpectralClamp(generator.trainable_variables, c.grad_clamp_g_ratio,
                                'g_grad_sigma_ratio')] if c.grad_clamp_g_ratio else [])
  d_gradients = ([SpectralClamp(discriminator.trainable_variables, c.grad_clamp_d_ratio,
                                'd_grad_sigma_ratio', seed=1)]
                 if c.grad_clamp_d_ratio else [])
  d_inputs = [InstanceNoise(c, streams)] if c.instance_noise > 0 else []
  return Regularizers(d_inputs, d_penalties, g_penalties, d_gradients, g_gradients)
