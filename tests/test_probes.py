"""Jacobian probes checked three ways, and spectra against float64 references."""

import numpy as np
import pytest
import tensorflow as tf

from tf_gancond import config as config_lib
from tf_gancond import export
from tf_gancond import models
from tf_gancond import probes


def _linear_generator(w):
  """G(z) = reshape(z W): J_z = W^T for every z."""
  w = tf.constant(w, tf.float32)
  return lambda z: tf.reshape(tf.matmul(z, w), [-1, 4, int(w.shape[1]) // 4, 1])


def _tiny_dcgan():
  """Fixed weights: with random ones a pre-activation of the probe batch may lie
  within rounding of a ReLU kink, where two exact ways of computing one Jacobian
  differ by the kink's jump: one such failure was seen on the modern stack."""
  tf.keras.utils.set_random_seed(0)
  c = config_lib.get_config()
  c.dataset = 'mnist'
  c.latent_dim = 6
  c.g_base_channels = 8
  g, _ = models.build_gan(config_lib.resolve(c))
  return g


@pytest.mark.parametrize('vectorize', [True, False])
def test_linear_generator_known_jacobian(vectorize):
  rng = np.random.default_rng(0)
  w = rng.standard_normal((5, 12)).astype(np.float32)
  z = rng.standard_normal((3, 5)).astype(np.float32)
  jac = probes.jacobian(_linear_generator(w), z, chunk_size=2,
                        vectorize=vectorize).numpy()
  assert jac.shape == (3, 12, 5)
  for j in jac:
    np.testing.assert_allclose(j, w.T, atol=1e-6)
  np.testing.assert_allclose(probes.average_jacobian_spectrum(jac),
                             np.linalg.svd(w.astype(np.float64), compute_uv=False),
                             rtol=1e-6)


def test_dcgan_matches_per_output_reverse_mode():
  """Slow reference: one reverse-mode gradient per output (batch_jacobian, no pfor).

  Also through a tf.function generator, as the training loop probes it (fused
  BatchNorm inside a function call, where ForwardAccumulator loses the tangent).
  """
  g = _tiny_dcgan()
  fn = lambda z: g(z, training=False)  # noqa: E731
  z = tf.random.normal([3, 6], seed=1)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(z)
    out = tf.reshape(fn(z), [3, -1])
  reference = tape.batch_jacobian(out, z, experimental_use_pfor=False).numpy()
  scale = np.abs(reference).max()
  assert scale > 0
  for generate in (fn, tf.function(fn)):
    jac = probes.jacobian(generate, z, chunk_size=2).numpy()
    np.testing.assert_allclose(jac, reference, atol=1e-5 * scale)


def test_central_finite_differences_float64():
  """A smooth nonlinear G; J against central differences of its float64 twin."""
  rng = np.random.default_rng(2)
  a, b = rng.standard_normal((4, 7)), rng.standard_normal((7, 8))

  def g(z, dtype=tf.float32):
    h = tf.tanh(tf.matmul(z, tf.constant(a, dtype)))
    return tf.reshape(tf.sin(tf.matmul(h, tf.constant(b, dtype))), [-1, 2, 4, 1])
  z = rng.standard_normal((2, 4))
  jac = probes.jacobian(g, z.astype(np.float32), chunk_size=1).numpy()
  h = 1e-5  # float64 central differences: truncation ~h^2, rounding ~1e-16/h.
  for i in range(2):
    for k in range(4):
      e = np.zeros(4)
      e[k] = h
      plus = g(tf.constant(z[i:i + 1] + e), tf.float64).numpy().ravel()
      minus = g(tf.constant(z[i:i + 1] - e), tf.float64).numpy().ravel()
      np.testing.assert_allclose(jac[i, :, k], (plus - minus) / (2 * h), atol=1e-5)


def test_ill_conditioned_log_cond_matches_float64_reference():
  """ln cond(M_z) >= 25: float64 spectra agree with numpy within 0.01; float32
  eigvalsh of J^T J, the shortcut this package avoids, does not."""
  rng = np.random.default_rng(3)
  n_z, n_x = 16, 64
  u, _ = np.linalg.qr(rng.standard_normal((n_x, n_z)))
  v, _ = np.linalg.qr(rng.standard_normal((n_z, n_z)))
  sigma = np.exp(np.linspace(6.0, -7.0, n_z))  # ln cond(J^T J) = 2 * 13 = 26.
  w = (u @ np.diag(sigma) @ v.T).T.astype(np.float32)  # [n_z, n_x]
  z = rng.standard_normal((2, n_z)).astype(np.float32)
  result = probes.probe_generator(_linear_generator(w), z)
  s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
  expected = 2 * np.log(s[0] / s[-1])
  assert expected >= 25
  np.testing.assert_allclose(result['log_cond'], expected, atol=0.01)
  np.testing.assert_allclose(result['log10_cond'], expected / np.log(10), atol=0.01)
  ev = np.linalg.eigvalsh(w.T.astype(np.float32).T @ w.T.astype(np.float32))
  float32_shortcut = np.log(ev.max() / max(ev.min(), 1e-45))
  assert abs(float32_shortcut - expected) > 0.01


def test_probe_result_fields_and_json():
  g = _tiny_dcgan()
  z = probes.fixed_probe_z(6, num_z=4, seed=5)
  np.testing.assert_array_equal(z, probes.fixed_probe_z(6, num_z=4, seed=5))
  result = probes.probe_generator(lambda z: g(z, training=False), z, chunk_size=3)
  with tf.GradientTape() as tape:  # Reverse-mode reference, float64 spectra.
    zt = tf.constant(z)
    tape.watch(zt)
    x = tf.reshape(g(zt, training=False), [4, -1])
  reference = tape.batch_jacobian(x, zt).numpy().astype(np.float64)
  s = np.linalg.svd(reference, compute_uv=False)
  np.testing.assert_allclose(result['log_cond'], 2 * np.log(s[:, 0] / s[:, -1]),
                             rtol=1e-4)
  np.testing.assert_allclose(result['mean_log_cond'], result['log_cond'].mean())
  np.testing.assert_allclose(result['avg_jacobian_singular_values'],
                             np.linalg.svd(reference.mean(0), compute_uv=False),
                             rtol=1e-4)
  sv = result['avg_jacobian_singular_values']
  assert sv.shape == (6,) and np.all(np.diff(sv) <= 0)
  js = probes.to_json_dict(result)
  assert 'singular_values' not in js and len(js['log_cond']) == 4


def test_saved_model_probe_equals_keras_probe(tmp_path):
  g = _tiny_dcgan()
  path = export.export_generator(g, str(tmp_path / 'g'), 6, (28, 28, 1))
  generate, latent_dim = export.load_generator(path)
  z = probes.fixed_probe_z(latent_dim, num_z=3)
  a = probes.jacobian(generate, z).numpy()
  b = probes.jacobian(lambda z: g(z, training=False), z).numpy()
  np.testing.assert_allclose(a, b, atol=1e-6)


def test_constant_generator_is_rejected():
  with pytest.raises(ValueError, match='does not depend on z'):
    probes.jacobian(lambda z: tf.zeros([tf.shape(z)[0], 2, 2, 1]), np.ones((1, 3),
                                                                          np.float32))


def test_spectrum_rejects_wide_jacobian():
  with pytest.raises(ValueError, match=r'n_x >= n_z'):
    probes.spectrum(np.ones((1, 2, 3), np.float32))


def test_batch_stats_probe_restores_moving_averages():
  """A training-mode probe updates BatchNorm's moving averages unless preserved;
  its Jacobian differs from inference mode (batch statistics couple the rows)."""
  g = _tiny_dcgan()
  z = probes.fixed_probe_z(6, num_z=4, seed=2)
  inference = probes.jacobian(lambda z: g(z, training=False), z).numpy()
  before = [v.numpy().copy() for v in g.non_trainable_variables]
  train_fn = lambda z: g(z, training=True)  # noqa: E731
  with probes.preserved(g.non_trainable_variables):
    batch_stats = probes.jacobian(train_fn, z).numpy()
    assert any(np.abs(v.numpy() - b).max() > 0
               for v, b in zip(g.non_trainable_variables, before))
  for v, b in zip(g.non_trainable_variables, before):
    np.testing.assert_array_equal(v.numpy(), b)
  assert np.abs(batch_stats - inference).max() > 1e-3 * np.abs(inference).max()


def _batch_norm_layers(g):
  from tf_gancond.models import layers
  return [l for l in g.submodules
          if isinstance(l, (tf.keras.layers.BatchNormalization,
                            layers.ConditionalBatchNorm))]


def _held_statistics_reference(g, z, labels):
  """Per-sample Jacobians [B, n_x, n_z] with every BatchNorm normalising by the
  statistics of the whole batch (z, labels), held constant; brute force.

  Each BN layer's `call` is replaced: on one pass over the batch it records the
  biased moments of its input, then G runs on each z_i alone with those moments
  as constants and tf GradientTape gives the full Jacobian of that one sample.
  """
  norms = _batch_norm_layers(g)
  moments = {}

  def held_call(layer, record):
    def call(x, labels=None, training=None, **unused):
      if record:
        moments[id(layer)] = [tf.stop_gradient(m) for m in tf.nn.moments(x, [0, 1, 2])]
      mean, var = moments[id(layer)]
      gamma, beta = layer.gamma, layer.beta
      if getattr(layer, 'num_classes', 0):
        gamma = tf.gather(gamma, labels)[:, None, None, :]
        beta = tf.gather(beta, labels)[:, None, None, :]
      return (x - mean) * tf.math.rsqrt(var + layer.epsilon) * gamma + beta
    return call

  try:
    for layer in norms:
      layer.call = held_call(layer, record=True)
    g(z, labels=labels, training=True)
    for layer in norms:
      layer.call = held_call(layer, record=False)
    blocks = []
    for i in range(len(z)):
      zi = tf.constant(z[i:i + 1])
      li = None if labels is None else tf.constant(labels[i:i + 1])
      with tf.GradientTape() as tape:
        tape.watch(zi)
        out = tf.reshape(g(zi, labels=li, training=True), [-1])
      blocks.append(tape.jacobian(out, zi)[:, 0, :].numpy())
  finally:
    for layer in norms:
      del layer.call  # The class's own call again.
  return np.stack(blocks)


def _always_batch_stats_generator():
  """The O6 generator (conditional BN on batch statistics always), tiny."""
  from tf_gancond.models import resnet
  g = resnet.ResNetGenerator(channels=8, latent_dim=5, num_classes=10,
                             always_batch_stats=True)
  z = probes.fixed_probe_z(5, num_z=4, seed=3)
  labels = probes.probe_labels(10, 4, seed=3)
  g(tf.constant(z), labels=tf.constant(labels), training=True)
  return g, z, labels


def test_probe_labels_are_fixed_and_cover_the_classes():
  a = probes.probe_labels(10, 1000, seed=7)
  np.testing.assert_array_equal(a, probes.probe_labels(10, 1000, seed=7))
  assert a.dtype == np.int32 and set(a.tolist()) == set(range(10))
  assert np.bincount(a).min() > 60  # Uniform: ~100 of each class.


def test_always_batch_stats_jacobian_is_per_sample_with_statistics_held():
  g, z, labels = _always_batch_stats_generator()
  reference = _held_statistics_reference(g, z, labels)
  before = [v.numpy().copy() for v in g.variables]
  with probes.held_batch_statistics(g, z, labels) as generate:
    jac = probes.jacobian(generate, z, labels=labels, chunk_size=3).numpy()
  scale = np.abs(reference).max()
  np.testing.assert_allclose(jac, reference, atol=1e-4 * scale)
  for v, b in zip(g.variables, before):  # The probe leaves G as it found it.
    np.testing.assert_array_equal(v.numpy(), b)
  # Pushing e_k through every row of the batch at once mixes the rows: that sum
  # over j of dG(z_i)/dz_j is not J_z, and the test can tell the two apart.
  mixed = probes.jacobian(lambda z, y: g(z, labels=y, training=True), z,
                          labels=labels, chunk_size=4).numpy()
  assert np.abs(mixed - reference).max() > 0.05 * scale


def test_dcgan_batch_stats_probe_holds_the_probe_batch_statistics():
  g = _tiny_dcgan()
  z = probes.fixed_probe_z(6, num_z=4, seed=2)
  g(tf.constant(z), training=True)  # Moving averages away from their initial values.
  reference = _held_statistics_reference(g, z, None)
  with probes.held_batch_statistics(g, z) as generate:
    jac = probes.jacobian(generate, z, chunk_size=3).numpy()
  np.testing.assert_allclose(jac, reference, atol=1e-4 * np.abs(reference).max())


def test_o6_run_probes_with_held_batch_statistics_and_fixed_labels(tmp_path):
  """The O6 generator (batch statistics always) is probed, and its Q measured, on
  uniform labels; the records say so."""
  import os
  import tensorflow_datasets as tfds
  from tf_gancond import runlog
  from tf_gancond import train
  path = os.path.join(os.path.dirname(__file__), '..', 'configs', 'o6_cifar_wgangp_jc.py')
  c = config_lib.load_config_file(path)
  c.update(dict(batch_size=4, g_batch_size=8, n_critic=1, train_steps=1,
                g_base_channels=8, d_base_channels=8, latent_dim=4, log_every=1,
                checkpoint_every=1, probe_every=1, probe_num_z=10, eval_every=0,
                export_every=0, sample_grid=4, shuffle_buffer=8,
                jacobian_clamping=False, workdir=str(tmp_path / 'run')))
  c = config_lib.validate(config_lib.resolve(c))
  with tfds.testing.mock_data(num_examples=16):
    train.train_and_evaluate(c)
  records = runlog.read_records(c.workdir, 'probe')
  assert [r['step'] for r in records] == [0, 1]
  expected = probes.probe_labels(10, 10, c.probe_seed).tolist()
  assert all(r['bn_mode'] == 'batch_stats' and r['labels'] == expected
             for r in records)
  (train_record,) = runlog.read_records(c.workdir, 'train')
  counts = train_record['q_label_counts']  # Uniform labels, counted per class.
  assert len(counts) == 10 and sum(counts) == train_record['q_num_samples']
  assert sum(n > 0 for n in counts) > 1
