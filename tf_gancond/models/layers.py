"""Layers of the ResNet GANs: conditional BN and normalized convolutions.

* `ConditionalBatchNorm`: BatchNorm with one scale/offset row per class
  (Dumoulin et al. 2016; igul222's `cond_batchnorm`), or a plain BN when
  `num_classes=0`. `always_batch_stats=True` normalizes with the batch
  statistics in training and inference alike, as igul222's WGAN-GP code does.
* `Conv2D` / `Dense`: stride-1 SAME convolution / linear map whose kernel can be
  - 'none': used as is;
  - 'spectral': divided by sigma(R_K), R_K the kernel viewed as
    out x (in*k*k) (Miyato et al. 2018, SN-GAN; Sargent thesis Alg. 1);
  - 'toeplitz' (conv only): divided by sigma(T_K), the norm of the true
    convolution operator at the layer's input size and SAME padding, and
    multiplied by a factor k (Sargent thesis Sec. 4.1.2, docs/experiments.md#s1).
    Dense layers given 'toeplitz' use standard SN.
  sigma comes from a persistent power iteration: one step per call, the new
  singular vector stored only on training calls (chainer SN-GAN semantics); the
  gradient flows through sigma = u^T W v with u, v held constant (Miyato et al.).

Why not `tf.keras.layers.SpectralNormalization` (Keras 2.15): it *assigns*
W/sigma into the kernel variable on each training call (the optimizer then steps
the already-normalized kernel, a projection method), no gradient flows through
sigma, and the kernel is not normalized again in inference. SN-GAN keeps the raw
W as the parameter and reparametrizes W_SN = W / sigma(W) in the forward pass.

Initializers follow igul222's `lib.ops` (and chainer's GlorotUniform(sqrt 2) in
SN-GAN, the same distribution): uniform with std sqrt(4/(fan_in+fan_out)) ('he',
3x3 convs) or sqrt(2/(fan_in+fan_out)) ('glorot': shortcuts, output conv, linear),
fan_in = in*k*k, fan_out = out*k*k.
"""

import tensorflow as tf

NORMALIZATIONS = ('none', 'spectral', 'toeplitz')


def initializer(kind):
  """A fresh uniform initializer: 'he' std sqrt(4/(fi+fo)), 'glorot' sqrt(2/(fi+fo)).

  VarianceScaling(scale, 'fan_avg', 'uniform') draws U[-a, a] with
  a = sqrt(3 scale / ((fi+fo)/2)), i.e. std sqrt(2 scale/(fi+fo)): scale 2 gives
  igul222's He-style sqrt(4/(fi+fo)), scale 1 Glorot. Keras counts fan_in = in*k*k
  and fan_out = out*k*k, as igul222 does for stride-1 convs.
  """
  if kind == 'he':
    return tf.keras.initializers.VarianceScaling(2.0, 'fan_avg', 'uniform')
  if kind == 'glorot':
    return tf.keras.initializers.VarianceScaling(1.0, 'fan_avg', 'uniform')
  raise ValueError(f'init={kind!r} is not known; choose he or glorot')


def _check_normalization(normalization):
  if normalization not in NORMALIZATIONS:
    raise ValueError(f'normalization={normalization!r} is not known; choose one of: '
                     f'{", ".join(NORMALIZATIONS)}')


def _persistent_vector(layer, shape, name):
  """A non-trainable N(0, 1) vector for a power iteration.

  ONLY_FIRST_REPLICA: under MirroredStrategy every replica computes the same
  update from the same (mirrored) weights; the first replica's value is kept.
  """
  return layer.add_weight(
      name=name, shape=shape, trainable=False,
      initializer=tf.keras.initializers.RandomNormal(stddev=1.0),
      synchronization=tf.VariableSynchronization.ON_WRITE,
      aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


def spectral_norm_step(w_mat, u):
  """One power-iteration step for sigma(W) of W = w_mat^T (out x m).

  Args:
    w_mat: [m, out] kernel reshaped (reshape(kernel, [-1, out])); its transpose
      is the out x (in*k*k) matrix R_K of the thesis, with the same spectrum.
    u: [out] current left singular vector estimate of R_K.
  Returns:
    (sigma scalar, new u [out]). v <- R_K^T u/||.||, u <- R_K v/||.||,
    sigma = u^T R_K v with u, v stop-gradient, so d sigma / d W = u v^T
    (Miyato et al. 2018, Alg. 1). l2_normalize adds 1e-12 to the squared norm so
    a zero kernel gives sigma = 0 rather than NaN.
  """
  v = tf.math.l2_normalize(tf.linalg.matvec(w_mat, u))              # [m]
  u_new = tf.math.l2_normalize(tf.linalg.matvec(w_mat, v, transpose_a=True))
  u_new, v = tf.stop_gradient(u_new), tf.stop_gradient(v)
  sigma = tf.tensordot(v, tf.linalg.matvec(w_mat, u_new), 1)
  return sigma, u_new


def toeplitz_norm_step(kernel, u, input_channels):
  """One implicit power-iteration step for sigma(T_K), the true operator norm.

  C_K(x) = conv2d(x, K, stride 1, SAME); C_K^T = conv2d_transpose with the same
  kernel (Sargent thesis Lemma 2.4.9; docs/experiments.md#s1):
    v <- C_K^T(u)/||.||,  u <- C_K(v)/||.||,  sigma = <u, C_K(v)>.
  (The thesis writes C^T in the u-step; it must be C for the shapes to work.)

  Args:
    kernel: [k, k, in, out].
    u: [1, h, w, out] current estimate (h, w: the layer's input = output size).
    input_channels: in.
  Returns:
    (sigma scalar with gradient into `kernel` only, new u [1, h, w, out]).
  """
  shape = tf.shape(u)
  in_shape = tf.stack([1, shape[1], shape[2], input_channels])
  v = tf.nn.conv2d_transpose(u, kernel, in_shape, strides=1, padding='SAME')
  v = tf.stop_gradient(tf.math.l2_normalize(v))  # 1e-12 guard as above.
  u_new = tf.stop_gradient(tf.math.l2_normalize(
      tf.nn.conv2d(v, kernel, strides=1, padding='SAME')))
  sigma = tf.reduce_sum(u_new * tf.nn.conv2d(v, kernel, strides=1, padding='SAME'))
  return sigma, u_new


def _sigma_guard(sigma):
  # A zero kernel (sigma = 0) is left as is instead of being divided by 0.
  return tf.where(sigma > 0.0, sigma, tf.ones_like(sigma))


class Conv2D(tf.keras.layers.Layer):
  """Stride-1 SAME conv, x [B, H, W, in] -> [B, H, W, filters], optional normalization.

  y = conv(x, scale * K) + b with scale = 1 ('none'), 1/sigma(R_K) ('spectral') or
  k/sigma(T_K) ('toeplitz', k = `toeplitz_k`). The bias is not scaled.
  """

  def __init__(self, filters, kernel_size, normalization='none', toeplitz_k=1.0,
               init='he', use_bias=True, name=None):
    super().__init__(name=name)
    _check_normalization(normalization)
    if not toeplitz_k > 0:
      raise ValueError(f'toeplitz_k={toeplitz_k!r} must be > 0')
    self.filters = filters
    self.kernel_size = kernel_size
    self.normalization = normalization
    self.toeplitz_k = float(toeplitz_k)
    self.init = init
    self.use_bias = use_bias

  def build(self, input_shape):
    self.input_channels = int(input_shape[-1])
    k = self.kernel_size
    self.kernel = self.add_weight(
        name='kernel', shape=[k, k, self.input_channels, self.filters],
        initializer=initializer(self.init))
    self.bias = (self.add_weight(name='bias', shape=[self.filters],
                                 initializer='zeros') if self.use_bias else None)
    if self.normalization == 'spectral':
      self.u = _persistent_vector(self, [self.filters], 'sn_u')
    elif self.normalization == 'toeplitz':
      h, w = input_shape[1], input_shape[2]
      if h is None or w is None:
        raise ValueError(f'{self.name}: toeplitz normalization needs a known input '
                         f'size; got input shape {input_shape}')
      self.u = _persistent_vector(self, [1, int(h), int(w), self.filters],
                                  'toeplitz_u')
    super().build(input_shape)

  def sigma_and_update(self, training=False):
    """(sigma, new u) from one power step, storing u when `training`; sigma=1 for 'none'."""
    if self.normalization == 'none':
      return tf.constant(1.0), None
    if self.normalization == 'spectral':
      sigma, u_new = spectral_norm_step(
          tf.reshape(self.kernel, [-1, self.filters]), self.u)
    else:
      sigma, u_new = toeplitz_norm_step(self.kernel, self.u, self.input_channels)
    if training:
      self.u.assign(u_new)
    return sigma, u_new

  def effective_kernel(self, training=False):
    """The kernel the layer applies: K, K/sigma(R_K) or k K/sigma(T_K)."""
    if self.normalization == 'none':
      return self.kernel
    sigma, _ = self.sigma_and_update(training)
    scale = self.toeplitz_k if self.normalization == 'toeplitz' else 1.0
    return self.kernel * (scale / _sigma_guard(sigma))

  def call(self, x, training=False):
    y = tf.nn.conv2d(x, self.effective_kernel(bool(training)), strides=1,
                     padding='SAME')
    if self.bias is not None:
      y = tf.nn.bias_add(y, self.bias)
    return y


class Dense(tf.keras.layers.Layer):
  """x [B, in] -> [B, units], kernel [in, units]; 'spectral' (or 'toeplitz') divides
  the kernel by sigma(W) from a persistent power iteration, as in `Conv2D`."""

  def __init__(self, units, normalization='none', init='glorot', name=None):
    super().__init__(name=name)
    _check_normalization(normalization)
    self.units = units
    self.normalization = normalization
    self.init = init

  def build(self, input_shape):
    self.kernel = self.add_weight(name='kernel', shape=[int(input_shape[-1]), self.units],
                                  initializer=initializer(self.init))
    self.bias = self.add_weight(name='bias', shape=[self.units], initializer='zeros')
    if self.normalization != 'none':
      self.u = _persistent_vector(self, [self.units], 'sn_u')
    super().build(input_shape)

  def effective_kernel(self, training=False):
    if self.normalization == 'none':
      return self.kernel
    sigma, u_new = spectral_norm_step(self.kernel, self.u)
    if training:
      self.u.assign(u_new)
    return self.kernel / _sigma_guard(sigma)

  def call(self, x, training=False):
    return tf.matmul(x, self.effective_kernel(bool(training))) + self.bias


class ConditionalBatchNorm(tf.keras.layers.Layer):
  """BatchNorm over [B, H, W] per channel, with per-class scale and offset.

    y = gamma[label] * (x - mean) / sqrt(var + epsilon) + beta[label]

  x [B, H, W, C], labels int [B]. gamma, beta are [num_classes, C] (ones, zeros;
  Dumoulin et al. 2016, igul222 `cond_batchnorm`), or [C] when num_classes = 0.
  Statistics: the batch's in training; the moving averages in inference, unless
  `always_batch_stats` (igul222 normalizes with batch statistics always).
  `epsilon`: igul222 uses 1e-5 (tf.nn.fused_batch_norm), chainer SN-GAN 2e-5.
  `momentum`: moving average decay (chainer BatchNormalization: 0.9).
  """

  def __init__(self, num_classes=0, momentum=0.9, epsilon=1e-5,
               always_batch_stats=False, name=None):
    super().__init__(name=name)
    if num_classes < 0:
      raise ValueError(f'num_classes={num_classes!r} must be >= 0')
    self.num_classes = num_classes
    self.momentum = momentum
    self.epsilon = epsilon
    self.always_batch_stats = always_batch_stats

  def build(self, input_shape):
    ch = int(input_shape[-1])
    shape = [self.num_classes, ch] if self.num_classes else [ch]
    self.gamma = self.add_weight(name='gamma', shape=shape, initializer='ones')
    self.beta = self.add_weight(name='beta', shape=shape, initializer='zeros')
    # As Keras BatchNormalization: each replica keeps its own moving statistics,
    # averaged when read across replicas.
    stat = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.MEAN)
    self.moving_mean = self.add_weight(name='moving_mean', shape=[ch],
                                       initializer='zeros', **stat)
    self.moving_variance = self.add_weight(name='moving_variance', shape=[ch],
                                           initializer='ones', **stat)
    super().build(input_shape)

  def call(self, x, labels=None, training=False):
    if self.num_classes:
      if labels is None:
        raise ValueError(f'{self.name}: a conditional BatchNorm needs labels')
      gamma = tf.gather(self.gamma, labels)[:, None, None, :]   # [B, 1, 1, C]
      beta = tf.gather(self.beta, labels)[:, None, None, :]
    else:
      gamma, beta = self.gamma, self.beta
    if training or self.always_batch_stats:
      mean, var = tf.nn.moments(x, axes=[0, 1, 2])
      if training and not self.always_batch_stats:
        # Biased batch variance in the moving average, as Keras BatchNormalization.
        self.moving_mean.assign(self.momentum * self.moving_mean +
                                (1.0 - self.momentum) * mean)
        self.moving_variance.assign(self.momentum * self.moving_variance +
                                    (1.0 - self.momentum) * var)
    else:
      mean, var = self.moving_mean, self.moving_variance
    return (x - mean) * tf.math.rsqrt(var + self.epsilon) * gamma + beta
