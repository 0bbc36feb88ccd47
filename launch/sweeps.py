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
  o6_cifar_wgangp_jc(num_seeds=5)    O6: {baseline, JC} x n_critic {5, 1} (Fig. 7)
  a1_a2_frozen_generator(num_seeds=1)  A1/A2 (+ A3): a fresh D against one frozen G
  s1_toeplitz_k(num_seeds=1)         S1: Toeplitz-normalized D, k in {1, 2, 4, 8}
  s2_rw_penalty(num_seeds=1)         S2: the r(W) penalty in G, lambda in {0.1, 1, 10}
  s3_gradient_clamping(num_seeds=1)  S3: clamping in G (r 1.05, 1.5, 2) or D (4, 15, 30)
  s4_misc_models(num_seeds=1)        S4: the thesis's other models against S0
  s5_spectra(num_seeds=1)            S5: the runs whose per-layer spectra App. B plots
  mnist_quick(num_seeds=3)           the README's offline main job (small odena_jc)
  fashion_mnist_quick(num_seeds=3)   the same on Fashion-MNIST

`SWEEPS` maps the names the runner accepts to these functions with their arguments:
it is the one list of sweeps (the config files hold settings, not sweeps).
"""

import dataclasses
import functools
import importlib.util
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
# Constant instance noise of the A3 runs (docs/experiments.md#a3: the paper gives none).
A3_NOISE_SIGMA = 0.1


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

  @classmethod
  def from_json(cls, entry):
    """The Run of a manifest entry (to_json's fields; others, such as workdir, left)."""
    return cls(**{f.name: entry[f.name] for f in dataclasses.fields(cls)})


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
  """docs/experiments.md#o2 and #o5 (Fig. 1, Figs 5/6): num_seeds x {baseline,
  jacobian_clamping}."""
  return _runs([
      (BASELINE, _config('o2_conditioning_predicts_scores.py'), {'dataset': dataset}),
      (JACOBIAN_CLAMPING, _config('o5_jacobian_clamping.py'), {'dataset': dataset}),
  ], num_seeds)


def o1_mnist_conditioning(num_seeds=1):
  """docs/experiments.md#o1 (Fig. 2): per-z log-condition numbers of MNIST runs over
  training."""
  return _runs([(BASELINE, _config('o1_mnist_conditioning.py'), {})], num_seeds)


def o2_conditioning(dataset='mnist', num_seeds=10):
  """docs/experiments.md#o2: unregularized runs "identical up to random
  initialization", with scores."""
  return _runs([(BASELINE, _config('o2_conditioning_predicts_scores.py'),
                 {'dataset': dataset})], num_seeds)


def o3_gan_vs_vae(num_seeds=10):
  """docs/experiments.md#o3 (Fig. 3): MNIST GANs (O2 config, scores off) and VAEs
  (configs/o3_vae_spectra.py) with the same decoder; the report plots their E_z[J_z]
  spectra."""
  return _runs([(GAN, _config('o2_conditioning_predicts_scores.py'),
                 {'eval_every': 0, 'final_eval': False}),
                (VAE, _config('o3_vae_spectra.py'), {})], num_seeds)


def o4_missing_modes(num_seeds=10):
  """docs/experiments.md#o4: unregularized MNIST runs, 360 samples classified at the
  end."""
  return _runs([(BASELINE, _config('o4_missing_modes.py'), {})], num_seeds)


def o7_memorizing_generator(num_seeds=10):
  """docs/experiments.md#o7 (App. B.1): generators that memorize z -> image pairs, no
  D."""
  return _runs([(MEMORIZE, _config('o7_memorizing_generator.py'), {})], num_seeds)


def a1_a2_frozen_generator(num_seeds=1):
  """docs/experiments.md#a1, #a2 and #a3: a fresh D against the frozen G named by
  --extra=generator_saved_model=DIR (one sweep folder per G: epochs 1, 10, 25), without
  and with constant instance noise (sigma A3_NOISE_SIGMA)."""
  config = _config('a1_a2_frozen_generator.py')
  return _runs([(FROZEN_G, config, {}),
                (FROZEN_G_INSTANCE_NOISE, config,
                 {'instance_noise': A3_NOISE_SIGMA, 'instance_noise_anneal_steps': 0})],
               num_seeds)


def o6_cifar_wgangp_jc(num_seeds=5):
  """docs/experiments.md#o6 (Fig. 7): {baseline, JC} x n_critic {5, 1} x seeds, the
  conditional WGAN-GP of configs/o6_cifar_wgangp_jc.py ("5 trials for each setting")."""
  config = _config('o6_cifar_wgangp_jc.py')
  return _runs([(f'{setting}_ncritic{n_critic}', config,
                 {'jacobian_clamping': setting == JACOBIAN_CLAMPING, 'n_critic': n_critic})
                for n_critic in (5, 1) for setting in (BASELINE, JACOBIAN_CLAMPING)],
               num_seeds)


def _settings_of(config_file):
  """The SETTINGS table ({setting: overrides}) of a config file in configs/."""
  spec = importlib.util.spec_from_file_location('_tf_gancond_settings',
                                                os.path.join(CONFIG_DIR, config_file))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.SETTINGS


def _grid(config_file, field, values, num_seeds, name=None):
  """One setting per value of `field`, named `<name or field>_<value>`."""
  return _runs([(f'{name or field}_{value:g}', _config(config_file), {field: value})
                for value in values], num_seeds)


def s1_toeplitz_k(num_seeds=1):
  """docs/experiments.md#s1 (Fig. 5.5): k in {1, 2, 4, 8}, one run each in the thesis."""
  return _grid('s1_toeplitz_k_sweep.py', 'toeplitz_k', (1.0, 2.0, 4.0, 8.0), num_seeds,
               name='k')


def s2_rw_penalty(num_seeds=1):
  """docs/experiments.md#s2 (Fig. 5.6): lambda in {0.1, 1, 10}."""
  return _grid('s2_rw_penalty.py', 'rw_lambda', (0.1, 1.0, 10.0), num_seeds,
               name='lambda')


def s3_gradient_clamping(num_seeds=1):
  """docs/experiments.md#s3 (Figs 5.7/5.8): clamping in G (r = 1.05, 1.5, 2) or in D
  (r = 4, 15, 30), one network at a time."""
  config = _config('s3_gradient_clamping.py')
  return _runs(
      [(f'g_clamp_{r:g}', config, {'grad_clamp_g_ratio': r, 'grad_clamp_d_ratio': 0.0})
       for r in (1.05, 1.5, 2.0)] +
      [(f'd_clamp_{r:g}', config, {'grad_clamp_g_ratio': 0.0, 'grad_clamp_d_ratio': r})
       for r in (4.0, 15.0, 30.0)], num_seeds)


def s4_misc_models(num_seeds=1):
  """docs/experiments.md#s4 (Fig. 5.9): every setting of the config's SETTINGS, each
  given in full on top of S0's values (the config file's own default is wgan_gp_sn)."""
  s0 = {'loss': 'hinge', 'gradient_penalty': 0.0, 'batch_size': 64,
        'g_batch_size': 128, 'd_normalization': 'spectral'}
  return _runs([(setting, _config('s4_misc_models.py'), dict(s0, **overrides))
                for setting, overrides in _settings_of('s4_misc_models.py').items()],
               num_seeds)


def s5_spectra(num_seeds=1):
  """docs/experiments.md#s5 (App. B): the six runs whose per-layer spectra are plotted
  (python -m tf_gancond.lipschitz --run=DIR/<setting>_seed0 --baseline=DIR/baseline_seed0)."""
  return _runs([(setting, _config('s5_spectra.py'), overrides)
                for setting, overrides in _settings_of('s5_spectra.py').items()],
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
    'o6_cifar_wgangp_jc': o6_cifar_wgangp_jc,
    'a1_a2_frozen_generator': a1_a2_frozen_generator,
    's1_toeplitz_k': s1_toeplitz_k,
    's2_rw_penalty': s2_rw_penalty,
    's3_gradient_clamping': s3_gradient_clamping,
    's4_misc_models': s4_misc_models,
    's5_spectra': s5_spectra,
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
