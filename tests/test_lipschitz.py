"""Spectral tools (docs/experiments.md#s2, #s3, #s5) against float64 numpy
references."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_gancond import lipschitz
from tf_gancond.models import layers


def _ratio_numpy(kernel):
  w = kernel.astype(np.float64).reshape(-1, kernel.shape[-1])
  return np.linalg.norm(w) / (w.shape[0] * np.linalg.svd(w, compute_uv=False)[0])


def _variables():
  rng = np.random.default_rng(0)
  conv = tf.Variable(rng.standard_normal((3, 3, 4, 5)).astype(np.float32), name='kernel')
  dense = tf.Variable(rng.standard_normal((6, 2)).astype(np.float32), name='kernel')
  bias = tf.Variable(np.ones(5, np.float32), name='bias')
  gamma = tf.Variable(np.ones((10, 5), np.float32), name='gamma')  # Conditional BN table.
  return [conv, bias, dense, gamma]


def test_r_of_w_hand_computed():
  """r(W) = ||W||_F / (m sigma): W = diag(3, 4) padded to 3x2 -> 5 / (3 * 4)."""
  w = tf.Variable([[3.0, 0.0], [0.0, 4.0], [0.0, 0.0]], name='kernel')
  assert abs(float(lipschitz.weight_ratio_penalty([w], exact=True)) + 5 / 12) < 1e-6
  assert abs(float(lipschitz.weight_ratio_penalty([w])) + 5 / 12) < 1e-5


def test_weight_ratio_penalty_matches_numpy():
  variables = _variables()
  ref = -(_ratio_numpy(variables[0].numpy()) + _ratio_numpy(variables[2].numpy()))
  # m = in*k*k = 36 for the conv and 6 for the dense kernel; bias and BN table skipped.
  assert [lipschitz.kernel_matrix(v).shape[0] for v in variables
          if lipschitz.is_kernel(v)] == [36, 6]
  for exact in (True, False):
    value = float(lipschitz.weight_ratio_penalty(variables, exact=exact,
                                                 power_iterations=200))
    assert abs(value - ref) < 1e-4 * abs(ref)
  rw = lipschitz.WeightRatioPenalty(variables)
  for _ in range(200):  # Persistent u: one power step per call.
    penalty, ratios = rw()
  assert abs(float(penalty) - ref) < 1e-4 * abs(ref)
  assert ratios.shape == (2,)


def test_weight_ratio_gradient_matches_numpy():
  """grad r = W/(||W||_F m sigma) - ||W||_F u v^T/(m sigma^2) (thesis Sec. 5.5.2)."""
  w_np = np.random.default_rng(3).standard_normal((12, 4))
  w = tf.Variable(w_np.astype(np.float32), name='kernel')
  u, s, vt = np.linalg.svd(w_np)
  fro, m = np.linalg.norm(w_np), 12
  ref = w_np / (fro * m * s[0]) - fro * np.outer(u[:, 0], vt[0]) / (m * s[0]**2)
  for exact in (True, False):
    with tf.GradientTape() as tape:
      r = -lipschitz.weight_ratio_penalty([w], exact=exact, power_iterations=200)
    grad = tape.gradient(r, w).numpy()
    np.testing.assert_allclose(grad, ref, atol=1e-4 * np.abs(ref).max())


def _matrix(singular_values, m, n, seed):
  rng = np.random.default_rng(seed)
  u, _ = np.linalg.qr(rng.standard_normal((m, m)))
  v, _ = np.linalg.qr(rng.standard_normal((n, n)))
  s = np.zeros((m, n))
  s[np.arange(len(singular_values)), np.arange(len(singular_values))] = singular_values
  return u @ s @ v.T


def test_gradient_clamp_caps_sigma0():
  """sigma0 of the clamped gradient -> r sigma1; the rest of the spectrum is kept."""
  grad = _matrix([10.0, 2.0, 1.0, 0.5], 6, 4, 0).astype(np.float32)
  var = tf.Variable(np.zeros((6, 4), np.float32), name='kernel')
  clamp = lipschitz.SpectralGradientClamp([var], ratio=2.0)
  for _ in range(60):  # The same gradient each update: the vectors converge.
    (out,), ratios = clamp.apply([tf.constant(grad)])
  s = np.linalg.svd(out.numpy().astype(np.float64), compute_uv=False)
  assert s[0] <= 2.0 * 2.0 + 1e-3
  np.testing.assert_allclose(s, [4.0, 2.0, 1.0, 0.5], atol=1e-3)
  assert abs(float(ratios[0]) - 5.0) < 1e-3  # sigma0/sigma1 of the incoming gradient.


def test_gradient_clamp_leaves_small_ratio_alone():
  grad = _matrix([3.0, 2.0, 1.0], 5, 3, 1).astype(np.float32)
  var = tf.Variable(np.zeros((5, 3), np.float32), name='kernel')
  clamp = lipschitz.SpectralGradientClamp([var], ratio=2.0)
  for _ in range(60):
    (out,), _ = clamp.apply([tf.constant(grad)])
  np.testing.assert_allclose(out.numpy(), grad, atol=1e-6)  # sigma0 <= r sigma1.


def test_gradient_clamp_conv_kernels_tiny_gradients_and_passthrough():
  """4-D kernels use the m x out view; biases and None pass through; scale-free."""
  shape = (3, 3, 2, 4)
  grad = (1e-9 * _matrix([50.0, 1.0, 1.0, 0.5], 18, 4, 2)).reshape(shape)
  kernel = tf.Variable(np.zeros(shape, np.float32), name='kernel')
  bias = tf.Variable(np.zeros(4, np.float32), name='bias')
  other = tf.Variable(np.zeros((2, 2), np.float32), name='kernel')
  clamp = lipschitz.SpectralGradientClamp([kernel, bias, other], ratio=4.0)
  assert len(clamp.layer_names) == 2
  b = tf.constant(np.arange(4, dtype=np.float32))

  @tf.function
  def step(g):
    return clamp.apply([g, b, None])

  for _ in range(60):
    (g_out, b_out, none_out), ratios = step(tf.constant(grad.astype(np.float32)))
  assert none_out is None
  np.testing.assert_array_equal(b_out.numpy(), b.numpy())
  assert g_out.shape == shape
  s = np.linalg.svd(g_out.numpy().astype(np.float64).reshape(-1, 4), compute_uv=False)
  np.testing.assert_allclose(s / 1e-9, [4.0, 1.0, 1.0, 0.5], atol=1e-3)
  assert np.isnan(ratios.numpy()[1])
  with pytest.raises(ValueError, match='ratio'):
    lipschitz.SpectralGradientClamp([kernel], ratio=1.0)


def test_layer_spectra_and_plot(tmp_path):
  model = tf.keras.Sequential([layers.Conv2D(4, 3, normalization='spectral'),
                               tf.keras.layers.Flatten(), layers.Dense(3)])
  model(tf.zeros([1, 5, 5, 2]))
  spectra = lipschitz.layer_spectra(model)
  assert len(spectra) == 2  # Two kernels; biases and SN's u are not kernels.
  kernels = [v for v in model.variables if lipschitz.is_kernel(v)]
  for var in kernels:
    s = spectra[var.name]
    ref = np.linalg.svd(var.numpy().astype(np.float64).reshape(-1, var.shape[-1]),
                        compute_uv=False)
    np.testing.assert_allclose(s, ref / ref[0], rtol=1e-12)
    assert s[0] == 1.0 and np.all(np.diff(s) <= 0)
  path = lipschitz.plot_spectra(spectra, str(tmp_path / 'spectra.png'),
                                baseline={k: v ** 2 for k, v in spectra.items()})
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_run_spectra_restores_checkpoint(tmp_path):
  from tf_gancond import config as config_lib
  from tf_gancond import models
  c = config_lib.get_config()
  c.dataset, c.architecture, c.d_normalization = 'cifar10', 'resnet_sngan', 'spectral'
  c.g_base_channels, c.d_base_channels, c.latent_dim = 8, 8, 8
  c.workdir = str(tmp_path / 'run')
  c = config_lib.resolve(c)
  g, d = models.build_gan(c)
  rng = np.random.default_rng(0)
  for v in g.trainable_variables + d.trainable_variables:  # Unlike fresh weights.
    v.assign_add(0.1 * rng.standard_normal(v.shape).astype(v.dtype.as_numpy_dtype))
  os.makedirs(c.workdir)
  with open(os.path.join(c.workdir, 'config.txt'), 'w') as f:
    f.write(config_lib.to_text(c))
  tf.train.CheckpointManager(tf.train.Checkpoint(generator=g, discriminator=d),
                             os.path.join(c.workdir, 'checkpoints'), 1).save()
  spectra = lipschitz.run_spectra(c.workdir)  # Fresh models, restored weights.
  assert len(spectra['D']) == 11 and len(spectra['G']) == 11  # 10 convs + linear each.
  for net, model in (('G', g), ('D', d)):
    for name, s in lipschitz.layer_spectra(model).items():
      np.testing.assert_allclose(spectra[net][name], s, rtol=1e-12)
  paths = lipschitz.write_run_spectra(c.workdir, str(tmp_path / 'out'), c.workdir)
  assert all(os.path.getsize(p) > 0 for p in paths)
  assert len(np.load(paths[-1]).files) == 22
  with pytest.raises(lipschitz.SpectraError, match='no readable config.txt'):
    lipschitz.run_spectra(str(tmp_path))


def test_spectra_cli_bad_run_exits_2(tmp_path):
  proc = subprocess.run(
      [sys.executable, '-m', 'tf_gancond.lipschitz', f'--run={tmp_path}',
       f'--out={tmp_path / "out"}'], capture_output=True, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith('error: run=')


def test_gradient_clamp_lets_rank_one_kernels_pass():
  """A [F, 1] kernel (D's output layer) has sigma1 = 0: clamping would zero its
  gradient, so kernels with min(m, n) = 1 pass unclamped."""
  head = tf.Variable(np.zeros((6, 1), np.float32), name='kernel')
  body = tf.Variable(np.zeros((6, 4), np.float32), name='kernel')
  clamp = lipschitz.SpectralGradientClamp([head, body], ratio=2.0)
  assert clamp.layer_names == [body.name]
  head_grad = tf.constant(np.arange(1, 7, dtype=np.float32).reshape(6, 1))
  body_grad = tf.constant(_matrix([10.0, 2.0, 1.0, 0.5], 6, 4, 0).astype(np.float32))
  (head_out, body_out), ratios = clamp.apply([head_grad, body_grad])
  np.testing.assert_array_equal(head_out.numpy(), head_grad.numpy())
  assert ratios.shape == (1,)


def test_gradient_clamp_needs_a_kernel_of_rank_two():
  head = tf.Variable(np.zeros((6, 1), np.float32), name='kernel')
  with pytest.raises(ValueError, match='min'):
    lipschitz.SpectralGradientClamp([head], ratio=2.0)
