"""ResNet GANs (docs/experiments.md#o6, #s0, #s1): shapes, blocks, conditional BN, SN,
Toeplitz norm."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tf_gancond import config as config_lib
from tf_gancond.models import layers
from tf_gancond.models import resnet


def _config(arch, conditional=False, normalization='none', g=8, d=8, dataset='cifar10'):
  c = config_lib.get_config()
  c.dataset = dataset
  c.architecture = arch
  c.conditional = conditional
  c.d_normalization = normalization
  c.g_base_channels = g
  c.d_base_channels = d
  c.latent_dim = 16
  return config_lib.validate(config_lib.resolve(c))


@pytest.mark.parametrize('arch,conditional,normalization', [
    ('resnet_wgangp', True, 'none'), ('resnet_wgangp', False, 'none'),
    ('resnet_sngan', False, 'spectral'), ('resnet_sngan', False, 'toeplitz')])
def test_shapes_and_range(arch, conditional, normalization):
  c = _config(arch, conditional, normalization)
  g, d = resnet.build(c)
  labels = tf.constant([0, 3, 9]) if conditional else None
  x = g(tf.random.normal([3, 16]), labels=labels, training=True)
  assert x.shape == (3, 32, 32, 3)
  assert np.all(np.abs(x.numpy()) <= 1.0)
  out = d(x, labels=labels, training=True)
  if arch == 'resnet_wgangp' and conditional:
    logits, class_logits = out  # Wasserstein head and ACGAN head (igul222).
    assert logits.shape == (3,) and class_logits.shape == (3, 10)
  else:
    assert out.shape == (3,)


def test_build_rejects_other_datasets():
  c = _config('resnet_sngan', dataset='mnist')
  with pytest.raises(config_lib.ConfigError, match='32x32x3'):
    resnet.build(c)


def test_config_validation():
  c = config_lib.get_config()
  c.d_normalization = 'weird'
  with pytest.raises(config_lib.ConfigError, match='d_normalization'):
    config_lib.validate(c)
  c = config_lib.get_config()
  c.d_normalization = 'spectral'  # DCGAN has no normalized layers.
  with pytest.raises(config_lib.ConfigError, match='resnet'):
    config_lib.validate(c)
  c = config_lib.get_config()
  c.grad_clamp_d_ratio = 0.5
  with pytest.raises(config_lib.ConfigError, match='grad_clamp_d_ratio'):
    config_lib.validate(c)


def test_upsample_is_nearest_neighbour_and_pool_is_mean():
  x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
  up = resnet.upsample(tf.constant(x)).numpy()
  np.testing.assert_array_equal(up, x.repeat(2, axis=1).repeat(2, axis=2))
  pooled = resnet.mean_pool(tf.constant(up)).numpy()
  np.testing.assert_allclose(pooled, x, atol=1e-6)
  y = x[:, :2]
  ref = (y[:, 0::2, 0::2] + y[:, 1::2, 0::2] + y[:, 0::2, 1::2] + y[:, 1::2, 1::2]) / 4
  np.testing.assert_allclose(resnet.mean_pool(tf.constant(y)).numpy(), ref, atol=1e-6)


def test_architecture_layers():
  """docs/experiments.md#s0, #s1: D has 8 3x3 + 2 1x1 convs and one linear, all
  spectrally normalized; G has the Linear to 4x4xch, 3 up-blocks, conv to 3 channels."""
  c = _config('resnet_sngan', normalization='spectral', g=12, d=8)
  g, d = resnet.build(c)
  convs = [l for b in d.blocks for l in (b.conv1, b.conv2, b.shortcut) if l is not None]
  assert sorted(l.kernel_size for l in convs) == [1, 1] + [3] * 8
  assert all(l.normalization == 'spectral' for l in convs + [d.linear])
  assert [b.kind for b in d.blocks] == ['first', 'down', 'same', 'same']
  assert d.pooling == 'sum' and d.class_head is None
  assert g.linear.units == 4 * 4 * 12 and len(g.blocks) == 3
  assert g.out_conv.filters == 3
  c = _config('resnet_wgangp', conditional=True)
  _, d = resnet.build(c)
  assert d.pooling == 'mean' and d.class_head.units == 10
  assert all(l.normalization == 'none' for b in d.blocks for l in (b.conv1, b.conv2))


def test_sum_pooling_is_64_times_mean_pooling():
  d_mean = resnet.ResNetDiscriminator(8, pooling='mean')
  d_sum = resnet.ResNetDiscriminator(8, pooling='sum')
  x = tf.random.normal([2, 32, 32, 3])
  d_mean(x), d_sum(x)
  d_sum.set_weights(d_mean.get_weights())  # Linear bias is 0 at init.
  np.testing.assert_allclose(d_sum(x).numpy(), 64 * d_mean(x).numpy(), rtol=1e-4)


def test_init_is_uniform_he_and_glorot():
  conv = layers.Conv2D(64, 3, init='he')
  conv.build([None, 8, 8, 64])
  w = conv.kernel.numpy()
  std = np.sqrt(4.0 / (64 * 9 + 64 * 9))  # igul222: sqrt(4/(fan_in+fan_out)).
  assert abs(w.std() / std - 1) < 0.03
  assert np.abs(w).max() <= std * np.sqrt(3) + 1e-7  # Uniform on [-sqrt3 std, sqrt3 std].
  dense = layers.Dense(256, init='glorot')
  dense.build([None, 128])
  assert abs(dense.kernel.numpy().std() / np.sqrt(2.0 / (128 + 256)) - 1) < 0.03


def test_conditional_bn_uses_each_examples_class_params():
  bn = layers.ConditionalBatchNorm(num_classes=3, epsilon=1e-5)
  rng = np.random.default_rng(1)
  x = rng.standard_normal((4, 2, 2, 5)).astype(np.float32)
  bn.build(x.shape)
  gamma = rng.standard_normal((3, 5)).astype(np.float32)
  beta = rng.standard_normal((3, 5)).astype(np.float32)
  bn.gamma.assign(gamma)
  bn.beta.assign(beta)
  labels = np.array([2, 0, 2, 1])
  y = bn(tf.constant(x), labels=tf.constant(labels), training=True).numpy()
  x64 = x.astype(np.float64)
  norm = (x64 - x64.mean((0, 1, 2))) / np.sqrt(x64.var((0, 1, 2)) + 1e-5)
  ref = norm * gamma[labels][:, None, None] + beta[labels][:, None, None]
  np.testing.assert_allclose(y, ref, atol=1e-5)
  # Moving averages, momentum 0.9, updated by the training call above.
  np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * x64.mean((0, 1, 2)),
                             atol=1e-6)
  y_inf = bn(tf.constant(x), labels=tf.constant(labels), training=False).numpy()
  ref_inf = ((x64 - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + 1e-5)
             * gamma[labels][:, None, None] + beta[labels][:, None, None])
  np.testing.assert_allclose(y_inf, ref_inf, atol=1e-5)
  with pytest.raises(ValueError, match='needs labels'):
    bn(tf.constant(x), training=True)


def test_always_batch_stats_generator_mixes_the_batch():
  """igul222's BN uses batch statistics in inference: a sample depends on the batch;
  with moving averages it does not."""
  z = tf.random.normal([4, 16])
  for always, depends in ((True, True), (False, False)):
    g = resnet.ResNetGenerator(8, 16, num_classes=10, always_batch_stats=always)
    labels = tf.constant([1, 2, 3, 4])
    full = g(z, labels=labels, training=False).numpy()
    alone = g(z[:2], labels=labels[:2], training=False).numpy()
    assert (np.abs(full[:2] - alone).max() > 1e-3) == depends
    moving = [v for v in g.variables if 'moving_' in v.name]
    assert len(moving) == 2 * 7  # 2 per BN: 6 block BNs + the output BN.


def test_conditional_generator_label_dependence():
  g = resnet.ResNetGenerator(8, 16, num_classes=10)
  z = tf.random.normal([2, 16])
  a = g(z, labels=tf.constant([0, 0]), training=True)
  for block in g.blocks:  # Make the class rows differ (they start equal).
    block.norm1.beta.assign(tf.random.normal(block.norm1.beta.shape))
  b = g(z, labels=tf.constant([0, 0]), training=True)
  c = g(z, labels=tf.constant([5, 5]), training=True)
  none = g(z, training=True)  # labels=None -> class 0.
  assert np.abs(b.numpy() - c.numpy()).max() > 1e-3
  np.testing.assert_allclose(none.numpy(), b.numpy(), atol=1e-6)
  assert a.shape == b.shape


def _converge(layer, steps=300):
  for _ in range(steps):
    sigma, _ = layer.sigma_and_update(training=True)
  return float(sigma)


def test_spectral_norm_matches_float64_svd():
  conv = layers.Conv2D(6, 3, normalization='spectral')
  conv.build([None, 5, 5, 4])
  r_k = conv.kernel.numpy().astype(np.float64).reshape(-1, 6).T  # out x (in*k*k).
  assert r_k.shape == (6, 36)
  s = np.linalg.svd(r_k, compute_uv=False)
  assert abs(_converge(conv) - s[0]) < 1e-3 * s[0]
  w_sn = conv.effective_kernel(training=False).numpy().astype(np.float64)
  assert abs(np.linalg.svd(w_sn.reshape(-1, 6), compute_uv=False)[0] - 1) < 1e-3
  dense = layers.Dense(7, normalization='spectral')
  dense.build([None, 9])
  s = np.linalg.svd(dense.kernel.numpy().astype(np.float64), compute_uv=False)
  for _ in range(300):
    w = dense.effective_kernel(training=True).numpy()
  assert abs(np.linalg.svd(w.astype(np.float64), compute_uv=False)[0] - 1) < 1e-3


def test_spectral_norm_u_persists_only_in_training():
  conv = layers.Conv2D(4, 3, normalization='spectral')
  x = tf.random.normal([2, 6, 6, 3])
  conv(x, training=True)
  u = conv.u.numpy().copy()
  conv(x, training=False)
  np.testing.assert_array_equal(conv.u.numpy(), u)
  conv(x, training=True)  # One step per training forward pass.
  assert np.abs(conv.u.numpy() - u).max() > 0


def test_spectral_norm_gradient_through_sigma():
  """d sigma / dK = u v^T (top singular vectors) once converged (Miyato et al.)."""
  conv = layers.Conv2D(5, 3, normalization='spectral')
  conv.build([None, 4, 4, 3])
  _converge(conv)
  with tf.GradientTape() as tape:
    sigma, _ = conv.sigma_and_update(training=False)
  grad = tape.gradient(sigma, conv.kernel).numpy().reshape(-1, 5).astype(np.float64)
  u, _, vt = np.linalg.svd(conv.kernel.numpy().reshape(-1, 5).astype(np.float64))
  np.testing.assert_allclose(grad, np.outer(u[:, 0], vt[0]), atol=2e-4)


def _conv_operator(kernel, h, w):
  """The explicit matrix of x [h, w, in] -> conv(x, K, SAME, stride 1) [h, w, out]."""
  k, _, cin, cout = kernel.shape
  pad = k // 2
  cols = []
  for idx in range(h * w * cin):
    x = np.zeros(h * w * cin)
    x[idx] = 1.0
    xp = np.pad(x.reshape(h, w, cin), ((pad, pad), (pad, pad), (0, 0)))
    y = np.zeros((h, w, cout))
    for i in range(h):
      for j in range(w):
        y[i, j] = np.tensordot(xp[i:i + k, j:j + k], kernel, axes=3)
    cols.append(y.ravel())
  return np.stack(cols, axis=1)  # [h*w*out, h*w*in]


def test_toeplitz_sigma_matches_explicit_operator():
  # Seeded: power iteration converges as (s2/s1)^(2 steps); an unseeded kernel whose
  # top two singular values nearly tie needs more than 300 steps (seen: 0.25 % off).
  tf.keras.utils.set_random_seed(0)
  conv = layers.Conv2D(3, 3, normalization='toeplitz', toeplitz_k=2.0)
  x = tf.random.normal([1, 4, 4, 2])
  conv(x, training=False)
  assert conv.u.shape == (1, 4, 4, 3)  # u in R^{h_o x w_o x o}.
  kernel = conv.kernel.numpy().astype(np.float64)
  t = _conv_operator(kernel, 4, 4)
  assert t.shape == (48, 32)
  # The explicit operator agrees with TF's conv (checks the reference itself).
  np.testing.assert_allclose(
      t @ x.numpy().ravel(),
      tf.nn.conv2d(x, conv.kernel, 1, 'SAME').numpy().ravel(), atol=1e-5)
  s_true = np.linalg.svd(t, compute_uv=False)[0]
  assert abs(_converge(conv) - s_true) < 1e-3 * s_true
  # The SN bound of the reshaped kernel is looser (Lemma 2.4.8).
  s_rk = np.linalg.svd(kernel.reshape(-1, 3), compute_uv=False)[0]
  assert s_true <= 3 * s_rk + 1e-9
  # Normalized conv: operator norm k.
  t_eff = _conv_operator(conv.effective_kernel(False).numpy().astype(np.float64), 4, 4)
  assert abs(np.linalg.svd(t_eff, compute_uv=False)[0] - 2.0) < 2e-3


def test_toeplitz_shortcut_k_option():
  d = resnet.ResNetDiscriminator(4, normalization='toeplitz', toeplitz_k=4.0,
                                 toeplitz_shortcut_k=1.0)
  assert d.blocks[0].conv1.toeplitz_k == 4.0 and d.blocks[0].shortcut.toeplitz_k == 1.0
  x = tf.random.normal([1, 32, 32, 3])
  d(x, training=True)
  assert d.blocks[0].conv1.u.shape == (1, 32, 32, 4)
  assert d.blocks[0].shortcut.u.shape == (1, 16, 16, 4)  # After the mean pool.
  assert d.blocks[2].conv1.u.shape == (1, 8, 8, 4)


def test_real_width_sngan_shapes_and_parameter_counts():
  """The widths of docs/experiments.md#s0 (G 256, D 128, z 128): one training pass
  on a batch of 2."""
  c = _config('resnet_sngan', normalization='spectral', g=256, d=128)
  c.latent_dim = 128
  g, d = resnet.build(c)
  x = g(tf.random.normal([2, 128]), training=True)
  logits = d(x, training=True)
  assert logits.shape == (2,) and x.shape == (2, 32, 32, 3)
  n_g = sum(int(np.prod(v.shape)) for v in g.trainable_variables)
  n_d = sum(int(np.prod(v.shape)) for v in d.trainable_variables)
  # Counted by hand: G linear 128*4096+4096; per block 2*(9*256^2+256) + (256^2+256)
  # + 2 BN (2*256 each); output BN 512, conv 9*256*3+3.
  g_block = 2 * (9 * 256**2 + 256) + 256**2 + 256 + 2 * 2 * 256
  assert n_g == 128 * 4096 + 4096 + 3 * g_block + 512 + 9 * 256 * 3 + 3
  d_ref = ((9 * 3 * 128 + 128) + (9 * 128**2 + 128) + (3 * 128 + 128) +
           2 * (9 * 128**2 + 128) + (128**2 + 128) + 4 * (9 * 128**2 + 128) + 129)
  assert n_d == d_ref


# Each ResNet config file and the sweep of launch/sweeps.py that runs it (None: one run).
_CONFIGS = {'o6_cifar_wgangp_jc': 'o6_cifar_wgangp_jc', 's0_sngan_baseline': None,
            's1_toeplitz_k_sweep': 's1_toeplitz_k', 's2_rw_penalty': 's2_rw_penalty',
            's3_gradient_clamping': 's3_gradient_clamping',
            's4_misc_models': 's4_misc_models', 's5_spectra': 's5_spectra'}


@pytest.mark.parametrize('name', sorted(_CONFIGS))
def test_experiment_configs_and_sweeps_validate(name):
  from launch import sweeps
  path = os.path.join(os.path.dirname(__file__), '..', 'configs', f'{name}.py')
  c = config_lib.validate(config_lib.resolve(config_lib.load_config_file(path)))
  assert c.dataset == 'cifar10' and c.architecture.startswith('resnet')
  runs = sweeps.get_sweep(_CONFIGS[name]) if _CONFIGS[name] else []
  for run in runs:
    assert os.path.samefile(run.config_path(), path)
    config_lib.validate(config_lib.resolve(config_lib.apply_overrides(
        config_lib.load_config_file(path), run.overrides)))
  overrides = [tuple(sorted(r.overrides.items())) for r in runs]
  assert len(set(overrides)) == len(runs)  # No two runs alike.
  expected = {'o6_cifar_wgangp_jc': 20, 's0_sngan_baseline': 0, 's1_toeplitz_k_sweep': 4,
              's2_rw_penalty': 3, 's3_gradient_clamping': 6, 's4_misc_models': 5,
              's5_spectra': 6}
  assert len(runs) == expected[name]


def test_o6_config_is_igul222():
  path = os.path.join(os.path.dirname(__file__), '..', 'configs', 'o6_cifar_wgangp_jc.py')
  c = config_lib.load_config_file(path)
  assert (c.batch_size, c.g_batch_size, c.train_steps, c.n_critic) == (64, 128, 100000, 5)
  assert (c.g_lr, c.beta1, c.beta2, c.lr_decay) == (2e-4, 0.0, 0.9, 'linear')
  assert (c.gradient_penalty, c.acgan_d_weight, c.acgan_g_weight) == (10.0, 1.0, 0.1)
  assert c.conditional and c.g_bn_always_batch_stats and c.dequantize


def test_wgangp_resnet_trains_end_to_end(tmp_path):
  """Two iterations of the O6 setup (GP, ACGAN, n_critic 2, G batch 2x) on mock
  CIFAR-10 through train.py; the exported SavedModel takes labels."""
  import tensorflow_datasets as tfds
  from tf_gancond import export
  from tf_gancond import runlog
  from tf_gancond import train
  path = os.path.join(os.path.dirname(__file__), '..', 'configs', 'o6_cifar_wgangp_jc.py')
  c = config_lib.load_config_file(path)
  c.update(dict(batch_size=4, g_batch_size=8, n_critic=2, train_steps=2,
                g_base_channels=8, d_base_channels=8, latent_dim=8, log_every=1,
                checkpoint_every=2, probe_every=0, eval_every=0, export_every=0,
                sample_grid=4, shuffle_buffer=8, workdir=str(tmp_path / 'run')))
  c = config_lib.validate(config_lib.resolve(c))
  with tfds.testing.mock_data(num_examples=16):
    train.train_and_evaluate(c)
  status = runlog.read_status(c.workdir)
  assert status['state'] == 'finished' and status['step'] == 2
  records = runlog.read_records(c.workdir, 'train')
  assert all(np.isfinite(r['d_acgan_loss']) and np.isfinite(r['gradient_penalty'])
             for r in records)
  generate, n_z = export.load_generator(status['final_saved_model'])
  images = generate(tf.random.normal([3, n_z]), tf.constant([0, 4, 9])).numpy()
  assert images.shape == (3, 32, 32, 3) and np.all(np.abs(images) <= 1)
