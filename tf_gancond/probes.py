"""Generator Jacobian probes (Odena et al. 2018, Sec. 3;
docs/experiments.md#0-common-setup).

For a generator G: R^{n_z} -> R^{n_x} and a latent z,
  J_z = dG/dz in R^{n_x x n_z},   M_z = J_z^T J_z,
  cond(M_z) = lambda_max / lambda_min = (sigma_max / sigma_min)^2,
where sigma are the singular values of J_z. "Log-condition number" is the natural
log ln cond(M_z) = 2 ln(sigma_max / sigma_min) (reading 1 of
docs/experiments.md#readings; log10 is kept too).

J_z is computed column by column as n_z Jacobian-vector products J e_k (forward
mode), vectorised over k with pfor: the primal pass runs once and each column
costs about one forward pass, far cheaper than n_x vector-Jacobian products since
n_z (64-128) << n_x (784-6912). The JVPs use the double-backward trick (see
`_jvp_setup`), not `tf.autodiff.ForwardAccumulator`: in TF 2.15 the accumulator
loses the tangent of a fused BatchNorm (FusedBatchNormV3, every BatchNorm on
images) inside a called function, so through a `tf.function` generator (the
training loop's `generate_inference`) or a loaded SavedModel `jvp` is None or
silently all zeros (measured; it is right only when the Keras model is traced
inline). Where both work the two cost about the same (28x28 DCGAN, batch 64, on
a shared 2-core CPU: 8.1 s vs 6.1 s in one benchmark run, 14.3 s vs 15.9 s as
medians of 4 interleaved repeats; `python -m tf_gancond.benchmarks.jacobian`
times both).

BatchNorm: call with a `generate_fn` in inference mode (moving averages), e.g.
`lambda z: g(z, training=False)`; rows are then independent and J_z is exactly the
Jacobian of one sample. With batch statistics the output of row i depends on every
row j, and a tangent pushed through all rows at once gives sum_j dG(z_i)/dz_j, not
J_z (measured on a small DCGAN: 48 % off). For generators that normalise with
batch statistics (the O6 generator always does), `held_batch_statistics` sets
every BatchNorm to the statistics of the whole probe batch, held constant: G then
gives the same images as on the batch, and J_z is the true per-sample block.

Conditional generators are probed on fixed labels (`probe_labels`), uniform over
the classes and drawn from the probe seed, so every run of a sweep sees the same
(z, label) pairs.

Spectra are computed in float64 from J (which may be float32): in float32,
eigvalsh(J^T J) is already wrong from ln cond ~ 14 (it squares the condition
number) and the SVD returns sigma_min = 0 from ln cond ~ 27, while trained
generators reach 12-20 and beyond.
"""

import contextlib

import numpy as np
import tensorflow as tf

_LN10 = np.log(10.0)


def fixed_probe_z(latent_dim, num_z=64, seed=1234):
  """The probe batch: float32 [num_z, latent_dim] ~ N(0, I), the same for every run."""
  return np.random.default_rng(seed).standard_normal(
      (num_z, latent_dim)).astype(np.float32)


def probe_labels(num_classes, num_z=64, seed=1234):
  """Labels of the probe batch: int32 [num_z], uniform over classes, fixed by seed.

  Drawn from a stream of their own (seed, 1), so they do not shift the probe z.
  """
  return np.random.default_rng([seed, 1]).integers(
      0, num_classes, num_z).astype(np.int32)


@contextlib.contextmanager
def preserved(variables):
  """Restores `variables` (e.g. `generator.non_trainable_variables`) on exit.

  Probing with BatchNorm in training mode (batch statistics), e.g.
  `lambda z: g(z, training=True)`, runs G's forward pass, which updates the
  moving averages (measured: the probe moves them); wrap such a probe in this so
  it leaves the generator as it found it.
  """
  variables = list(variables)
  saved = [tf.identity(v) for v in variables]  # Snapshots (copies) of the values.
  try:
    yield
  finally:
    for v, value in zip(variables, saved):
      v.assign(value)


@contextlib.contextmanager
def held_batch_statistics(generator, z, labels=None):
  """Yields generate(z, labels) with every BatchNorm on (z, labels)'s statistics, fixed.

  Each BatchNorm layer (Keras `BatchNormalization` or `layers.ConditionalBatchNorm`)
  gets the biased moments of its input on one training-mode pass over the whole
  batch as its moving statistics, and then normalises with them in inference mode.
  Rows are independent under that function, so `jacobian` of it is the per-sample
  J_z with the batch statistics held at the probe batch's values, in chunks of any
  size. The generator's variables and layer settings are restored on exit.

  Args:
    generator: Keras model called as generator(z, labels=..., training=...).
    z: [B, n_z]; labels: int [B] for a conditional generator, else None.
  """
  norms = [l for l in generator.submodules
           if isinstance(l, tf.keras.layers.BatchNormalization) or
           hasattr(l, 'always_batch_stats')]
  settable = ('momentum', 'always_batch_stats', 'fused')
  settings = [{k: getattr(l, k) for k in settable if hasattr(l, k)} for l in norms]
  with preserved(generator.non_trainable_variables):
    try:
      for layer in norms:
        layer.momentum = 0.0  # Moving statistics := this batch's.
        if hasattr(layer, 'always_batch_stats'):
          layer.always_batch_stats = False  # Inference mode reads the moving ones.
        else:
          # The fused kernel stores var * n/(n-1) as the moving variance; the
          # unfused path stores the biased variance that training normalises with.
          layer.fused = False
      generator(tf.convert_to_tensor(z, tf.float32), labels=labels, training=True)

      @tf.function
      def generate(z, labels=None):
        return generator(z, labels=labels, training=False)
      yield generate
    finally:
      for layer, saved in zip(norms, settings):
        for key, value in saved.items():
          setattr(layer, key, value)


def _jvp_setup(generate_fn, z):
  """Returns (v -> J v) for all rows of z at once: the double-backward trick.

  g(u) = J^T u is linear in u, so J v = d<g(u), v>/du. Only reverse-mode
  gradients are used, which every TensorFlow op and every loaded SavedModel
  function supports. (`tf.autodiff.ForwardAccumulator` through a `tf.function`
  with inference-mode BatchNorm silently returns a zero or missing tangent in TF
  2.15, so it is not used.)
  """
  with tf.GradientTape() as outer:
    with tf.GradientTape() as inner:
      inner.watch(z)
      out = generate_fn(z)
    u = tf.zeros_like(out)  # Any value: g is linear in u.
    outer.watch(u)
    g = inner.gradient(out, z, output_gradients=u)
  if g is None:
    raise ValueError('the generator output does not depend on z')

  def jvp(v):
    return outer.gradient(g, u, output_gradients=v)
  return jvp


def _with_labels(generate_fn, labels):
  return generate_fn if labels is None else (lambda z: generate_fn(z, labels))


@tf.function(reduce_retracing=True)
def _jacobian_pfor(generate_fn, z, labels=None):
  """[b, n_x, n_z]: the n_z JVPs vectorised with pfor (one primal pass)."""
  b, n_z = tf.shape(z)[0], z.shape[1]
  jvp = _jvp_setup(_with_labels(generate_fn, labels), z)
  columns = tf.vectorized_map(
      lambda k: jvp(tf.tile(tf.one_hot(k, n_z)[None], [b, 1])), tf.range(n_z),
      fallback_to_while_loop=False)                       # [n_z, b, ...]
  return tf.transpose(tf.reshape(columns, [n_z, b, -1]), [1, 2, 0])


@tf.function(reduce_retracing=True)
def _jacobian_tiled(generate_fn, z, labels=None):
  """[b, n_x, n_z]: the batch tiled n_z times, one basis tangent per row.

  Fallback for generators that pfor cannot vectorise; recomputes the primal
  n_z times, so it costs about twice `_jacobian_pfor`.
  """
  b, n_z = tf.shape(z)[0], z.shape[1]
  z_tiled = tf.repeat(z, n_z, axis=0)                    # row i*n_z + k is z_i
  tangents = tf.tile(tf.eye(n_z, dtype=z.dtype), [b, 1])  # ... with tangent e_k
  if labels is not None:
    labels = tf.repeat(labels, n_z, axis=0)
  columns = _jvp_setup(_with_labels(generate_fn, labels), z_tiled)(tangents)
  return tf.transpose(tf.reshape(columns, [b, n_z, -1]), [0, 2, 1])


def jacobian(generate_fn, z, labels=None, chunk_size=16, vectorize=True):
  """Per-z Jacobians of the flattened generator output, forward mode.

  Args:
    generate_fn: z float32 [B, n_z] -> images [B, ...], or (z, labels int32 [B])
      -> images when `labels` is given; rows must be independent (BatchNorm in
      inference mode or `held_batch_statistics`, see the module docstring). It is
      a key of the tf.function cache: pass the same object on every call (e.g. a
      tf.function method), not a new lambda, or each call retraces.
    z: [B, n_z] (numpy or tensor).
    labels: int [B] for a conditional generator, else None.
    chunk_size: z per pass; a pass holds about chunk_size * n_z rows of
      activations, which bounds memory (16 * 64 rows of a 28x28 DCGAN: ~0.4 GB).
    vectorize: vectorise the n_z JVPs with pfor (primal computed once); False, or
      a generator pfor cannot convert, tiles the batch instead (about 2x slower).
  Returns:
    float32 tf.Tensor [B, n_x, n_z], n_x = prod(image shape).
  """
  z = tf.convert_to_tensor(z, tf.float32)
  if z.shape.rank != 2:
    raise ValueError(f'z must have shape [B, n_z]; got {z.shape}')
  if labels is not None:
    labels = tf.convert_to_tensor(labels, tf.int32)
  method = _jacobian_pfor if vectorize else _jacobian_tiled
  chunks = []
  for i in range(0, int(z.shape[0]), chunk_size):
    rows = slice(i, i + chunk_size)
    chunk_labels = None if labels is None else labels[rows]
    try:
      chunks.append(method(generate_fn, z[rows], chunk_labels))
    except ValueError as e:  # pfor has no converter for some op of this generator.
      if method is _jacobian_tiled or 'does not depend on z' in str(e):
        raise
      method = _jacobian_tiled
      chunks.append(method(generate_fn, z[rows], chunk_labels))
  return tf.concat(chunks, axis=0)


def spectrum(jac):
  """float64 singular values and log-condition numbers of per-z Jacobians.

  Args:
    jac: [B, n_x, n_z].
  Returns dict of numpy arrays:
    singular_values [B, min(n_x, n_z)] (descending, float64),
    log_cond [B] = ln cond(M_z) = 2 ln(sigma_max / sigma_min) (inf if sigma_min = 0),
    log10_cond [B].
  """
  j = np.asarray(jac, np.float64)  # float64: see the module docstring.
  if j.ndim != 3 or j.shape[1] < j.shape[2]:
    raise ValueError(f'jac must have shape [B, n_x, n_z] with n_x >= n_z (else '
                     f'M_z = J^T J is singular); got {j.shape}')
  s = np.linalg.svd(j, compute_uv=False)
  with np.errstate(divide='ignore'):
    log_cond = 2.0 * (np.log(s[:, 0]) - np.log(s[:, -1]))
  return {'singular_values': s, 'log_cond': log_cond, 'log10_cond': log_cond / _LN10}


def average_jacobian_spectrum(jac):
  """Sorted (descending) float64 singular values of E_z[J_z] (Hoffman 2017;
  docs/experiments.md#o3)."""
  mean = np.mean(np.asarray(jac, np.float64), axis=0)
  return np.linalg.svd(mean, compute_uv=False)


def probe_generator(generate_fn, z, chunk_size=16, labels=None):
  """Everything the paper plots about J_z on one probe batch (`jacobian`'s args).

  Returns a dict of numpy values: log_cond [B], log10_cond [B], mean_log_cond,
  std_log_cond, mean_log10_cond, singular_values [B, k], max_singular_value and
  min_singular_value (means over z), avg_jacobian_singular_values [k].
  """
  jac = jacobian(generate_fn, z, labels=labels, chunk_size=chunk_size)
  spec = spectrum(jac)
  s = spec['singular_values']
  return {
      'log_cond': spec['log_cond'],
      'log10_cond': spec['log10_cond'],
      'mean_log_cond': float(np.mean(spec['log_cond'])),
      'std_log_cond': float(np.std(spec['log_cond'])),
      'mean_log10_cond': float(np.mean(spec['log10_cond'])),
      'singular_values': s,
      'max_singular_value': float(np.mean(s[:, 0])),
      'min_singular_value': float(np.mean(s[:, -1])),
      'avg_jacobian_singular_values': average_jacobian_spectrum(jac),
  }


def to_json_dict(result, per_z_singular_values=False):
  """JSON-ready copy of a `probe_generator` result (lists of floats).

  The per-z singular values (B x n_z numbers) are left out unless asked for.
  """
  out = {}
  for key, value in result.items():
    if key == 'singular_values' and not per_z_singular_values:
      continue
    out[key] = value.tolist() if isinstance(value, np.ndarray) else value
  return out
