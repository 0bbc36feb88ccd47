"""Sweeps as data: each function returns the runs of one experiment (seeds x settings).

A `Run` names a config file in configs/ and the fields it overrides; the runner
(launch/run_sweep.py) turns it into

  python -m tf_gancond.launch --config=configs/<file> --config.seed=S \
      --config.<field>=<value> ... --config.workdir=<sweep_dir>/<run.name>

Seeds are 0..num_seeds-1 and are shared across settings, so the baseline and the
Jacobian Clamping run of one seed start from the same weights ("hold everything
else the same", Odena et al. 2018, Sec. 5).

  odena_jc(dataset, num_seeds=10)    O2 + O5: {baseline, jacobian_clamping} x seeds (Fig. 1)
  o1_mnist_conditioning(num_seeds=1) O1: per-z conditioning on MNIST (Fig. 2)
  o2_conditioning(dataset, num_seeds=10)  O2: unregularized runs with scores (Figs 5/6 left)
  o3_gan_vs_vae(num_seeds=10)        O3: GAN and VAE decoders, E_z[J_z] spectra (Fig. 3)
  o4_missing_modes(num_seeds=10)     O4: least-sampled class count vs log-cond
  o7_memorizing_generator(num_seeds=10)  O7: a well-conditioned memorizing G (App. B.1)
  a1_a2_frozen_generator(num_seeds=1)  A1/A2 (+ A3): a fresh D against one frozen G
  mnist_quick(num_seeds=3)           the README's offline main job (small odena_jc)
  fashion_mnist_quick(num_seeds=3)   the same on Fashion-MNIST

`SWEEPS` maps the names the runner accepts to these functions with their arguments.
"""

import dataclasses
import functools
import os

# configs/ sits beside launch/ in the repository.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(REPO_ROOT, 'configs')

BASELINE = 'baseline'
JACOBIAN_CLAMPING = 'jacobian_clamping'
VAE = 'vae'
MEMORIZE = 'memorize'
GAN = 'gan'
FROZEN_G = 'frozen_g'
FROZEN_G_INSTANCE_NOISE = 'frozen_g_instance_noise'
A3_NOISE_SIGMA = 0.1  # Constant instance noise of the A3 runs (SPEC A3 gives none).


class SweepError(ValueError):
  """Bad sweep input (unknown name, bad seed count); the message is one line."""


@dataclasses.dataclass
class Run:
  """One run of a sweep.

  name: unique within the sweep; the run's directory under the sweep dir.
  config: config file, relative to the repository root (configs/<file>.py).
  setting: the group the report compares (baseline, jacobian_clamping, vae, ...).
  seed: config.seed.
  overrides: {field: value} set on top of the config file (seed included).
  """
  name: str
  config: str
  setting: str
  seed: int
  overrides: dict

  def config_path(self):
    """Absolute path of the config file."""
    return os.path.join(REPO_ROOT, self.config)

  def to_json(self):
    return dataclasses.asdict(self)


def _config(name):
  return os.path.join('configs', name)


def _seeds(num_seeds):
  if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
    raise SweepError(f'num_seeds={num_seeds!r} must be a positive integer')
  return range(num_seeds)


def _runs(settings, num_seeds):
  """settings: [(setting, config file, {overrides})] -> runs, seed-major order.

  Seed-major order starts every setting's seed 0 first, so a sweep cut short still
  has comparable runs of each setting.
  """
  runs = []
  for seed in _seeds(num_seeds):
    for setting, config, overrides in settings:
      runs.append(Run(name=f'{setting}_seed{seed}', config=config, setting=setting,
                      seed=seed, overrides=dict(overrides, seed=seed)))
  return runs


def odena_jc(dataset='mnist', num_seeds=10):
  """SPEC O2 + O5 (Fig. 1, Figs 5/6): num_seeds x {baseline, jacobian_clamping}."""
  return _runs([
      (BASELINE, _config('o2_conditioning_predicts_scores.py'), {'dataset': dataset}),
      (JACOBIAN_CLAMPING, _config('o5_jacobian_clamping.py'), {'dataset': dataset}),
  ], num_seeds)


def o1_mnist_conditioning(num_seeds=1):
  """SPEC O1 (Fig. 2): per-z log-condition numbers of MNIST runs over training."""
  return _runs([(BASELINE, _config('o1_mnist_conditioning.py'), {})], num_seeds)


def o2_conditioning(dataset='mnist', num_seeds=10):
  """SPEC O2: unregularized runs "identical up to random initialization", with scores."""
  return _runs([(BASELINE, _config('o2_conditioning_predicts_scores.py'),
                 {'dataset': dataset})], num_seeds)


def o3_gan_vs_vae(num_seeds=10):
  """SPEC O3 (Fig. 3): MNIST GANs (O2 config, scores off) and VAEs (configs/
  o3_vae_spectra.py) with the same decoder; the report plots their E_z[J_z] spectra."""
  return _runs([(GAN, _config('o2_conditioning_predicts_scores.py'),
                 {'eval_every': 0, 'final_eval': False}),
                (VAE, _config('o3_vae_spectra.py'), {})], num_seeds)


def o4_missing_modes(num_seeds=10):
  """SPEC O4: unregularized MNIST runs, 360 samples classified at the end."""
  return _runs([(BASELINE, _config('o4_missing_modes.py'), {})], num_seeds)


def o7_memorizing_generator(num_seeds=10):
  """SPEC O7 (App. B.1): generators that memorize z -> image pairs, no D."""
  return _runs([(MEMORIZE, _config('o7_memorizing_generator.py'), {})], num_seeds)


def a1_a2_frozen_generator(num_seeds=1):
  """SPEC A1/A2 and A3: a fresh D against the frozen G named by
  --extra=generator_saved_model=DIR (one sweep folder per G: epochs 1, 10, 25), without
  and with constant instance noise (sigma A3_NOISE_SIGMA)."""
  config = _config('a1_a2_frozen_generator.py')
  return _runs([(FROZEN_G, config, {}),
                (FROZEN_G_INSTANCE_NOISE, config,
                 {'instance_noise': A3_NOISE_SIGMA, 'instance_noise_anneal_steps': 0})],
               num_seeds)


def _quick(dataset, num_seeds):
  config = _config('quick.py')
  return _runs([(BASELINE, config, {'dataset': dataset}),
                (JACOBIAN_CLAMPING, config,
                 {'dataset': dataset, 'jacobian_clamping': True})], num_seeds)


def mnist_quick(num_seeds=3):
  """The README's offline main job: a short odena_jc on MNIST (configs/quick.py)."""
  return _quick('mnist', num_seeds)


def fashion_mnist_quick(num_seeds=3):
  """The README's main job on Fashion-MNIST."""
  return _quick('fashion_mnist', num_seeds)


SWEEPS = {
    'mnist_quick': mnist_quick,
    'fashion_mnist_quick': fashion_mnist_quick,
    'o1_mnist_conditioning': o1_mnist_conditioning,
    'o2_mnist': functools.partial(o2_conditioning, 'mnist'),
    'o2_cifar10': functools.partial(o2_conditioning, 'cifar10'),
    'o2_stl10': functools.partial(o2_conditioning, 'stl10'),
    'o3_gan_vs_vae': o3_gan_vs_vae,
    'o4_missing_modes': o4_missing_modes,
    'o7_memorizing_generator': o7_memorizing_generator,
    'a1_a2_frozen_generator': a1_a2_frozen_generator,
    'odena_jc_mnist': functools.partial(odena_jc, 'mnist'),
    'odena_jc_fashion_mnist': functools.partial(odena_jc, 'fashion_mnist'),
    'odena_jc_cifar10': functools.partial(odena_jc, 'cifar10'),
    'odena_jc_stl10': functools.partial(odena_jc, 'stl10'),
}


def get_sweep(name, num_seeds=None):
  """The runs of the sweep called `name` (see SWEEPS); num_seeds=None: its default."""
  if name not in SWEEPS:
    raise SweepError(f'sweep={name!r} is not known; choose one of: '
                     f'{", ".join(sorted(SWEEPS))}')
  fn = SWEEPS[name]
  runs = fn() if num_seeds is None else fn(num_seeds=num_seeds)
  names = [r.name for r in runs]
  if len(set(names)) != len(names):  # A programming error in a sweep function.
    raise AssertionError(f'sweep {name} repeats a run name')
  return runs
