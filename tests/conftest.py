"""Shared test setup: quiet TensorFlow, one CPU thread pool, tiny configs."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402

from tf_gancond import config as config_lib  # noqa: E402


@pytest.fixture
def tiny_config(tmp_path):
  """A resolved DCGAN config small enough for a few CPU steps in a test."""
  c = config_lib.get_config()
  c.dataset = 'mnist'
  c.batch_size = 8
  c.train_steps = 4
  c.g_base_channels = 16
  c.d_base_channels = 8
  c.latent_dim = 8
  c.log_every = 2
  c.checkpoint_every = 2
  c.probe_every = 2
  c.probe_num_z = 4
  c.sample_grid = 4
  c.shuffle_buffer = 16
  c.workdir = str(tmp_path / 'run')
  return config_lib.resolve(c)


@pytest.fixture(scope='session')
def slurm_cluster():
  """A SLURM that answers (tests/slurm_cluster.py starts a one-node one if none does):
  {'partition': its partition (None: the cluster's default), 'started_s': the start's
  seconds (0 when it was running)}. Skips, with the reason, where none can be had."""
  import slurm_cluster as cluster
  try:
    return cluster.ensure()
  except cluster.Unavailable as e:
    pytest.skip(f'no SLURM: {e}')
