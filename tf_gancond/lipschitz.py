"""Spectral tools of Sargent's thesis (docs/experiments.md#s2, #s3, #s5).

Every weight kernel is viewed as a matrix W = reshape(kernel, [-1, out]) of shape
m x out, m = in*k*k for a conv kernel [k, k, in, out] and m = in for a Dense
kernel [in, out]. This is the transpose of the thesis's R_K (out x in*k*k) and
has the same singular values. "Kernels" are the variables whose name ends in
`kernel:0` and whose rank is >= 2 (biases, BN scales/offsets and the per-class
conditional-BN tables are left out).

* S2, `weight_ratio_penalty` / `WeightRatioPenalty`:
    r(W) = ||W||_F / (m sigma(W)),   R = -lambda sum_i r(W_i) added to L_G.
  They return the lambda-free -sum_i r(W_i); the caller multiplies by lambda.
  sigma(W) is differentiable: sigma = u^T W v with the power-iteration vectors
  held constant, so d sigma/dW = u v^T, the exact gradient of the top singular
  value once u, v have converged (as in SN, Miyato et al. 2018); `exact=True`
  takes sigma from a float64 SVD instead.
* S3, `SpectralGradientClamp`: per weight gradient W', persistent u0, v0, u1, v1,
  one power step per update, and W' <- W' - max(0, sigma0 - r sigma1) u0 v0^T
  on the raw gradient before Adam (the corrected reading of the thesis,
  docs/experiments.md#s3).
* S5, `layer_spectra`: the sorted singular values of every kernel, divided by the
  largest (float64 SVD), for Miyato-style spectral plots; `plot_spectra` draws
  them with a baseline in red; `run_spectra` loads a run directory's last
  checkpoint. Command line (exit code 2 on bad input):

    python -m tf_gancond.lipschitz --run=runs/s2/rw_0.1 --baseline=runs/s0/seed0 \
        --out=plots/s2_rw_0.1
  writes <out>/spectra_D.png, spectra_G.png (baseline in red) and spectra.npz.
"""

import os
import sys

import numpy as np
import tensorflow as tf


def is_kernel(variable):
  """True for weight kernels (rank >= 2, named ...kernel:0)."""
  return variable.shape.rank >= 2 and variable.name.split('/')[-1].startswith('kernel')


def kernel_matrix(kernel):
  """kernel [..., out] -> W [m, out], m = product of the leading dimensions."""
  return tf.reshape(kernel, [-1, kernel.shape[-1]])


def _unit(x):
  # l2_normalize adds 1e-12 to the squared norm: a zero vector stays 0, not NaN.
  return tf.math.l2_normalize(x)


def _power_step(w, u):
  """One step on W [m, n] from u [n]: v = W u/||.||, u' = W^T v/||.||.

  Returns (sigma = v^T W u' with v, u' constant: differentiable in W, u' [n]).
  """
  v = _unit(tf.linalg.matvec(w, u))
  u_new = _unit(tf.linalg.matvec(w, v, transpose_a=True))
  u_new, v = tf.stop_gradient(u_new), tf.stop_gradient(v)
  return tf.tensordot(v, tf.linalg.matvec(w, u_new), 1), u_new


def _exact_sigma(w):
  """Largest singular value by a float64 SVD (float32 SVD loses small spectra;
  the gradient of s[0] is u1 v1^T, which TF's SVD gradient provides)."""
  s = tf.linalg.svd(tf.cast(w, tf.float64), compute_uv=False)
  return tf.cast(s[0], w.dtype)


def weight_ratio(kernel, sigma):
  """r(W) = ||W||_F / (m sigma(W)), m = rows of the m x out view (= in*k*k)."""
  w = kernel_matrix(kernel)
  m = float(w.shape[0])
  return tf.norm(w) / (m * sigma)


def weight_ratio_penalty(variables, exact=False, power_iterations=30, seed=0):
  """Lambda-free S2 penalty -sum_i r(W_i) over the kernels among `variables`.

  Stateless: sigma from `power_iterations` steps started at a fixed
  pseudo-random vector (`seed`), or from an exact SVD. For training, the
  persistent `WeightRatioPenalty` (warm-started, one step per call) is cheaper.
  Returns a float32 scalar; add lambda times it to L_G.
  """
  total = tf.constant(0.0)
  for i, var in enumerate(v for v in variables if is_kernel(v)):
    w = kernel_matrix(var)
    if exact:
      sigma = _exact_sigma(w)
    else:
      u = tf.random.stateless_normal([w.shape[1]], seed=[seed, i])
      for _ in range(power_iterations):
        sigma, u = _power_step(w, u)
    total -= weight_ratio(var, sigma)
  return total


def _vector(shape, rng, name):
  """A persistent unit vector; ONLY_FIRST_REPLICA: replicas compute the same update
  from mirrored weights (after an all-reduce for gradients), the first is kept."""
  x = rng.standard_normal(shape)
  return tf.Variable((x / np.linalg.norm(x)).astype(np.float32), trainable=False,
                     name=name, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


class WeightRatioPenalty(tf.Module):
  """Persistent-vector version of `weight_ratio_penalty` for the train step.

  penalty, ratios = rw()  ->  -sum_i r(W_i) (scalar), r(W_i) [L]. Each call takes
  `power_iterations` steps from the stored u (stored back), as SN does. Create it
  in strategy.scope(), after the model's weights exist.
  """

  def __init__(self, variables, exact=False, power_iterations=1, seed=0,
               name='weight_ratio_penalty'):
    super().__init__(name=name)
    self.kernels = [v for v in variables if is_kernel(v)]
    if not self.kernels:
      raise ValueError('WeightRatioPenalty: no kernel among the given variables')
    if power_iterations < 1:
      raise ValueError(f'power_iterations={power_iterations!r} must be >= 1')
    self.exact = exact
    self.power_iterations = power_iterations
    self.layer_names = [v.name for v in self.kernels]
    rng = np.random.default_rng(seed)
    with tf.name_scope(name):
      self.u = [_vector([v.shape[-1]], rng, f'u{i}') for i, v in enumerate(self.kernels)]

  def __call__(self):
    ratios = []
    for var, u_var in zip(self.kernels, self.u):
      w = kernel_matrix(var)
      if self.exact:
        sigma = _exact_sigma(w)
      else:
        u = u_var.read_value()
        for _ in range(self.power_iterations):
          sigma, u = _power_step(w, u)
        u_var.assign(u)
      ratios.append(weight_ratio(var, sigma))
    ratios = tf.stack(ratios)
    return -tf.reduce_sum(ratios), ratios


class SpectralGradientClamp(tf.Module):
  """Spectral gradient clamping (Sargent thesis Sec. 4.2.3; docs/experiments.md#s3).

  For each kernel gradient, viewed as A = reshape(W', [-1, out]) [m, n], with
  persistent unit vectors u0 [m], v0 [n], u1 [m], v1 [n], one step per update:
    v0 <- A^T u0/||.||,  u0 <- A v0/||.||,  sigma0 = u0^T A v0
    R = A - sigma0 u0 v0^T
    v1 <- R^T u1/||.||,  u1 <- R v1/||.||,  sigma1 = u1^T R v1
    A <- A - max(0, sigma0 - r sigma1) u0 v0^T
  so that sigma0 of the returned gradient is at most r sigma1 (the thesis's
  min(0, .) raises sigma0, a sign error; docs/experiments.md#s3). Apply to the raw
  gradients, before the optimizer. Non-kernel gradients (biases, BN) pass through, and
  so do kernels with min(m, n) = 1 (such as D's output layer [F, 1]): their gradient is
  rank 1, sigma1 = 0, and the clamp would remove it whole, so the layer would never
  train.

  Usage: clamp = SpectralGradientClamp(model.trainable_variables, ratio) inside
  strategy.scope(); then grads, ratios = clamp.apply(grads) in the step, with
  grads in the order of the variables given here. `ratios` [L] is sigma0/sigma1
  of each kernel's incoming gradient (before clamping), for logging
  (`layer_names` names them).
  """

  def __init__(self, variables, ratio, seed=0, name='spectral_gradient_clamp'):
    super().__init__(name=name)
    if not ratio > 1:
      raise ValueError(f'ratio={ratio!r} must be > 1')
    self.ratio = float(ratio)
    variables = list(variables)
    self.num_variables = len(variables)
    self.index = [i for i, v in enumerate(variables)
                  if is_kernel(v) and min(kernel_matrix(v).shape) > 1]
    if not self.index:
      raise ValueError('SpectralGradientClamp: no kernel with min(m, n) > 1 among the '
                       'given variables')
    self.layer_names = [variables[i].name for i in self.index]
    rng = np.random.default_rng(seed)
    self.vectors = []
    with tf.name_scope(name):
      for j, i in enumerate(self.index):
        w = kernel_matrix(variables[i])
        m, n = int(w.shape[0]), int(w.shape[1])
        self.vectors.append(tuple(
            _vector([size], rng, f'{tag}_{j}')
            for tag, size in (('u0', m), ('v0', n), ('u1', m), ('v1', n))))

  def clamp_matrix(self, a, vectors):
    """One update for one gradient matrix a [m, n]; returns (clamped a, sigma0, sigma1)."""
    u0, v0, u1, v1 = vectors
    # The power steps run on a / ||a||_F: gradients can be tiny (||a|| ~ 1e-8),
    # below what l2_normalize's 1e-12 guard on the squared norm leaves exact.
    scale = tf.norm(a)
    safe = tf.where(scale > 0.0, scale, 1.0)
    a_raw, a = a, a / safe
    v0_new = _unit(tf.linalg.matvec(a, u0, transpose_a=True))
    u0_new = _unit(tf.linalg.matvec(a, v0_new))
    sigma0 = tf.tensordot(u0_new, tf.linalg.matvec(a, v0_new), 1)
    top = sigma0 * tf.tensordot(u0_new, v0_new, 0)                 # sigma0 u0 v0^T
    r = a - top
    v1_new = _unit(tf.linalg.matvec(r, u1, transpose_a=True))
    u1_new = _unit(tf.linalg.matvec(r, v1_new))
    sigma1 = tf.tensordot(u1_new, tf.linalg.matvec(r, v1_new), 1)
    for var, value in zip(vectors, (u0_new, v0_new, u1_new, v1_new)):
      var.assign(value)
    sigma0, sigma1 = sigma0 * safe, sigma1 * safe
    excess = tf.maximum(0.0, sigma0 - self.ratio * sigma1)
    return a_raw - excess * tf.tensordot(u0_new, v0_new, 0), sigma0, sigma1

  def apply(self, grads):
    """grads (list aligned with the variables) -> (clamped grads list, sigma0/sigma1 [L])."""
    grads = list(grads)
    if len(grads) != self.num_variables:
      raise ValueError(f'SpectralGradientClamp: got {len(grads)} gradients for '
                       f'{self.num_variables} variables')
    ratios = []
    for i, vectors in zip(self.index, self.vectors):
      g = grads[i]
      if g is None:
        ratios.append(tf.constant(np.nan, tf.float32))
        continue
      g = tf.convert_to_tensor(g)
      clamped, s0, s1 = self.clamp_matrix(kernel_matrix(g), vectors)
      grads[i] = tf.reshape(clamped, tf.shape(g))
      # 1e-30 keeps the logged ratio finite for a gradient of rank 1 (sigma1 = 0).
      ratios.append(s0 / tf.maximum(s1, 1e-30))
    return grads, tf.stack(ratios)


def layer_spectra(model):
  """{kernel variable name: sorted singular values / the largest} (float64 numpy).

  The S5 (Miyato Fig. 3 style) spectra: every kernel of `model` reshaped to
  m x out, singular values by a float64 SVD, descending, divided by sigma_max.
  Plot them against np.arange(n) / n. SN rescales a kernel by a constant, so the
  raw kernel's normalized spectrum equals the normalized kernel's.
  """
  out = {}
  for var in model.variables:
    if not is_kernel(var):
      continue
    w = kernel_matrix(var).numpy().astype(np.float64)  # float64: small sigma kept.
    s = np.linalg.svd(w, compute_uv=False)
    out[var.name] = s / s[0] if s[0] > 0 else s
  return out


def plot_spectra(spectra, path, baseline=None, title=''):
  """One panel per layer of `spectra` (from `layer_spectra`), normalized singular
  values against index/len, the baseline's layer (same name) in red. Writes `path`
  (PNG) and returns it."""
  import matplotlib  # Imported here: plotting is optional.
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  names = list(spectra)
  cols = min(4, len(names))
  rows = -(-len(names) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
  for ax, name in zip(axes.flat, names):
    s = spectra[name]
    ax.plot(np.arange(len(s)) / len(s), s, color='tab:blue', lw=1)
    if baseline is not None and name in baseline:
      b = baseline[name]
      ax.plot(np.arange(len(b)) / len(b), b, color='red', lw=1)
    ax.set_title(name.replace(':0', ''), fontsize=7)
    ax.set_ylim(0, 1.05)
  for ax in axes.flat[len(names):]:
    ax.axis('off')
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


class SpectraError(ValueError):
  """A run directory cannot be read; the message is one line."""


def run_spectra(workdir):
  """{'G': spectra, 'D': spectra} of the last checkpoint of a training run.

  Reads `<workdir>/config.txt` (the resolved config train.py writes), builds the
  models with registry.build_gan and restores `<workdir>/checkpoints`.
  """
  from tf_gancond import models  # Imported here: no cycle at import.
  try:
    _, g, d, _ = models.restore_run_gan(workdir)
  except ValueError as e:
    raise SpectraError(str(e)) from None
  return {'G': layer_spectra(g), 'D': layer_spectra(d)}


def write_run_spectra(run, out, baseline=None):
  """Plots and saves the spectra of `run` (and `baseline` in red) under `out`."""
  spectra = run_spectra(run)
  base = run_spectra(baseline) if baseline else {'G': None, 'D': None}
  os.makedirs(out, exist_ok=True)
  paths = []
  for net in ('D', 'G'):
    paths.append(plot_spectra(spectra[net], os.path.join(out, f'spectra_{net}.png'),
                              baseline=base[net], title=f'{net}: {run}'))
  arrays = {f'{net}/{name}': s for net in spectra for name, s in spectra[net].items()}
  np.savez(os.path.join(out, 'spectra.npz'), **arrays)
  return paths + [os.path.join(out, 'spectra.npz')]


def main(argv):
  from absl import flags
  del argv
  f = flags.FLAGS
  try:
    for path in write_run_spectra(f.run, f.out, f.baseline):
      print(path)
  except SpectraError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  from absl import app
  from absl import flags
  flags.DEFINE_string('run', None, 'Training run directory (config.txt, checkpoints/).')
  flags.DEFINE_string('baseline', None, 'Run drawn in red (the SN-GAN baseline, S0).')
  flags.DEFINE_string('out', None, 'Output directory for the plots and spectra.npz.')
  flags.mark_flags_as_required(['run', 'out'])
  app.run(main)
