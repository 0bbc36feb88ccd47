"""O3 VAE: decoder = DCGAN generator, -ELBO against numpy, training, run files."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_gancond import export
from tf_gancond import runlog
from tf_gancond.experiments import vae as vae_lib
from tf_gancond.models import dcgan


@pytest.fixture
def vae_config(tiny_config):
  c = tiny_config
  c.experiment = 'vae'
  c.probe_every = 0
  c.export_every = 0  # The fixture resolved it to its probe interval.
  c.eval_num_samples = 8
  return c


def test_decoder_is_the_dcgan_generator_and_its_mean():
  dec = vae_lib.VAEDecoder(28, 1, 6, 16)
  z = tf.random.normal([3, 6], seed=1)
  x = dec(z, training=False)
  # Same layers, same forward pass as the GAN generator.
  np.testing.assert_allclose(x.numpy(), dcgan.DCGANGenerator.call(dec, z).numpy(),
                             atol=1e-6)
  # Bernoulli mean mapped to [-1, 1] is the generator output: 2 sigmoid(l) - 1.
  logits = dec.bernoulli_logits(z)
  np.testing.assert_allclose(2.0 * tf.sigmoid(logits).numpy() - 1.0, x.numpy(),
                             atol=1e-6)


def test_encoder_heads_shapes():
  enc = vae_lib.VAEEncoder(28, 5, base_channels=4)
  mu, log_var = enc(tf.zeros([2, 28, 28, 1]))
  assert mu.shape == (2, 5) and log_var.shape == (2, 5)
  assert not hasattr(enc, 'logit')  # The D's one-logit head is gone.


def test_negative_elbo_terms_match_float64_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (2, 4, 4, 1))
  logits[0, 0, 0, 0] = 40.0  # Saturated logit: the softplus form must stay exact.
  targets = rng.uniform(0, 1, (2, 4, 4, 1))
  mu, log_var = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
  recon, kl = vae_lib.negative_elbo_terms(
      *(tf.constant(a, tf.float32) for a in (logits, targets, mu, log_var)))
  # -log sigmoid(l) = log(1 + e^-l), -log(1 - sigmoid(l)) = log(1 + e^l), exact in
  # float64 with logaddexp (1 - sigmoid(40) rounds to 0 otherwise).
  ref_recon = np.sum(targets * np.logaddexp(0, -logits) +
                     (1 - targets) * np.logaddexp(0, logits), axis=(1, 2, 3))
  ref_kl = 0.5 * np.sum(mu**2 + np.exp(log_var) - 1 - log_var, axis=1)
  np.testing.assert_allclose(recon.numpy(), ref_recon, rtol=1e-5)
  np.testing.assert_allclose(kl.numpy(), ref_kl, rtol=1e-5)


def test_negative_elbo_decreases_on_a_fixed_batch(vae_config):
  c = vae_config
  tf.keras.utils.set_random_seed(0)
  model = vae_lib.VAE(c)
  x = tf.constant(np.random.default_rng(1).uniform(-1, 1, (8, 28, 28, 1)),
                  tf.float32)
  eps = tf.zeros([8, c.latent_dim])  # The posterior mean: a fixed measurement.

  def neg_elbo():
    recon, kl = model.terms(x, eps, training=True)
    return float(tf.reduce_mean(recon + kl))

  before = neg_elbo()
  batches = iter(tf.data.Dataset.from_tensors((x, 0)).repeat())
  losses = [float(model.train_step(batches)['loss']) for _ in range(40)]
  after = neg_elbo()
  assert after < before - 5.0, (before, after)
  assert np.mean(losses[-5:]) < np.mean(losses[:5])


def _run(config, workdir):
  with tfds.testing.mock_data(num_examples=16):
    return vae_lib.run(config, workdir)


def test_run_writes_files_exports_decoder_and_resumes(vae_config, tmp_path):
  c = vae_config
  workdir = str(tmp_path / 'vae')
  final = _run(c, workdir)
  for name in ('metrics.jsonl', 'config.txt', 'status.json'):
    assert os.path.exists(os.path.join(workdir, name)), name
  assert glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))
  assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))
  records = runlog.read_records(workdir)
  assert [r['step'] for r in records if r['kind'] == 'train'] == [2, 4]
  assert records[-1]['kind'] == 'final' and records[-1]['step'] == 4
  assert np.isfinite(final['eval_neg_elbo']) and final['eval_examples'] == 8
  assert abs(final['train_elbo'] + final['train_loss']) < 1e-6
  # The decoder is an ordinary generator SavedModel: z -> images in [-1, 1].
  generate, latent_dim = export.load_generator(final['saved_model'])
  assert latent_dim == c.latent_dim
  images = generate(tf.random.normal([2, latent_dim])).numpy()
  assert images.shape == (2, 28, 28, 1) and np.abs(images).max() <= 1.0
  with open(os.path.join(final['saved_model'], export.METADATA_FILE)) as f:
    assert json.load(f)['experiment'] == 'vae'

  c.train_steps = 6  # Resume: steps 5, 6 only.
  _run(c, workdir)
  steps = [r['step'] for r in runlog.read_records(workdir, 'train')]
  assert steps == [2, 4, 6]
  assert runlog.read_status(workdir)['state'] == 'finished'


def test_run_probes_the_decoder(vae_config, tmp_path):
  pytest.importorskip('tf_gancond.probes')
  c = vae_config
  c.train_steps = 2
  c.probe_every = 2
  final = _run(c, str(tmp_path / 'vae'))
  probes = runlog.read_records(str(tmp_path / 'vae'), 'probe')
  assert [r['step'] for r in probes] == [0, 2]
  assert len(final['avg_jacobian_singular_values']) == c.latent_dim
  assert np.isfinite(final['mean_log_cond'])


def test_config_file_and_sweep_validate():
  import importlib.util
  from tf_gancond import config as config_lib
  path = os.path.join(os.path.dirname(__file__), '..', 'configs', 'o3_vae_spectra.py')
  spec = importlib.util.spec_from_file_location('o3', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config()
  # docs/experiments.md#o3.
  assert (c.experiment, c.dataset, c.vae_lr) == ('vae', 'mnist', 1e-3)
  from launch import sweeps
  vaes = [r for r in sweeps.get_sweep('o3_gan_vs_vae') if r.setting == sweeps.VAE]
  assert [r.seed for r in vaes] == list(range(10))
  assert {os.path.realpath(r.config_path()) for r in vaes} == {os.path.realpath(path)}
  c = config_lib.resolve(c)
  assert c.latent_dim == 64 and c.g_base_channels == 256  # The O1 decoder shape.
  config_lib.validate(c)


def test_corrupt_checkpoint_state_is_refused_and_records_kept(vae_config, tmp_path):
  """A finished run whose checkpoint state file is unreadable is not restarted from
  step 0: one ConfigError, and metrics.jsonl stays byte for byte as it was."""
  from tf_gancond import config as config_lib
  c = vae_config
  workdir = str(tmp_path / 'vae')
  _run(c, workdir)
  with open(os.path.join(workdir, 'checkpoints', 'checkpoint'), 'w') as f:
    f.write('model_checkpoint_path: "ckpt-4\n')  # Unterminated string.
  with open(os.path.join(workdir, runlog.METRICS_FILE), 'rb') as f:
    before = f.read()
  with pytest.raises(config_lib.ConfigError, match='state file "checkpoint"'):
    _run(c, workdir)
  with open(os.path.join(workdir, runlog.METRICS_FILE), 'rb') as f:
    assert f.read() == before
  assert runlog.read_status(workdir)['state'] == 'finished'
