"""Experiments other than GAN training, chosen by `config.experiment`.

  'vae'               O3: VAE with the DCGAN generator as decoder (vae.py).
  'memorize'          O7: a generator that memorizes z -> image pairs (memorize.py).
  'frozen_generator'  A1/A2 (A3 with instance noise): a fresh D against a frozen G
                      (frozen_generator.py); 'frozen_g' is accepted as an alias.

Each is a trainer plugged into the loop of every experiment (`tf_gancond.loop`).
`run(config, workdir=None)` runs one and returns its final results (a dict); the
default 'gan' experiment is `tf_gancond.train.train_and_evaluate`.
"""

import importlib
import os

from tf_gancond import config as config_lib

EXPERIMENTS = {
    'vae': 'tf_gancond.experiments.vae',
    'memorize': 'tf_gancond.experiments.memorize',
    'frozen_generator': 'tf_gancond.experiments.frozen_generator',
    'frozen_g': 'tf_gancond.experiments.frozen_generator',
}


def run(config, workdir=None):
  """Runs the experiment named by `config.experiment` in `workdir` (default
  config.workdir); returns the dict of final results it also logs."""
  if config.experiment not in EXPERIMENTS:
    raise config_lib.ConfigError(
        f'experiment={config.experiment!r} is not an experiment of this module; '
        f'choose one of: gan, {", ".join(EXPERIMENTS)}')
  module = importlib.import_module(EXPERIMENTS[config.experiment])
  return module.run(config, workdir)


def with_workdir(config, workdir=None):
  """`config` with workdir = `workdir` if given, else config.workdir, else
  runs/<dataset>_<experiment>_seed<seed>."""
  if workdir:
    config.workdir = str(workdir)
  elif not config.workdir:
    config.workdir = os.path.join(
        'runs', f'{config.dataset}_{config.experiment}_seed{config.seed}')
  return config
