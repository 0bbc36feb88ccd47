"""Experiment configuration: one flat `ml_collections.ConfigDict` per run.

`get_config()` returns the default (docs/experiments.md#o1: the DCGAN of Radford et
al. 2015 with the non-saturating loss, on the offline default dataset Fashion-MNIST).
Experiment files in `configs/` derive from it and change only what their experiment
changes. Every field that the papers leave open (*choice* in docs/experiments.md) is
a field here, so it can be set by a flag (`--name=value`) or by
`--config.name=value`.

`validate(config)` checks every field whose value is restricted and raises
`ConfigError` with one line that names the bad value and what is allowed.
"""

import ast
import importlib.util
import os

import ml_collections

EXPERIMENTS = ('gan', 'vae', 'memorize', 'frozen_generator', 'frozen_g')
ALIASES = {'frozen_g': 'frozen_generator'}  # Another name of one experiment.
DATASETS = ('mnist', 'fashion_mnist', 'cifar10', 'stl10', 'lsun_bedroom')
LOSSES = ('non_saturating', 'minimax', 'wasserstein', 'hinge')
ARCHITECTURES = ('dcgan', 'resnet_wgangp', 'resnet_sngan')
STRATEGIES = ('default', 'mirrored', 'multi_worker')
JC_NORMS = ('per_example', 'batch')
LR_DECAYS = ('none', 'linear')
PROBE_BN_MODES = ('inference', 'batch_stats')
FD_LAYERS = ('logits', 'pool_3')
PRECISIONS = ('float32', 'bfloat16')
# The layer of score records that carry no 'fd_layer': they were all made on the
# penultimate layer, before the layer became a setting.
UNRECORDED_FD_LAYER = 'pool_3'

# Image shape per dataset (height = width, channels) and the default latent size.
# MNIST-like: n_z = 64 ([O-A] "latent space of 64 dimensions"); others: 100 (Radford).
IMAGE_SIZE = {'mnist': 28, 'fashion_mnist': 28, 'cifar10': 32, 'stl10': 48,
              'lsun_bedroom': 64}
IMAGE_CHANNELS = {'mnist': 1, 'fashion_mnist': 1, 'cifar10': 3, 'stl10': 3,
                  'lsun_bedroom': 3}
DEFAULT_LATENT_DIM = {'mnist': 64, 'fashion_mnist': 64, 'cifar10': 100,
                      'stl10': 100, 'lsun_bedroom': 100}
NUM_CLASSES = {'mnist': 10, 'fashion_mnist': 10, 'cifar10': 10, 'stl10': 10,
               'lsun_bedroom': 0}
# Examples in the training split, used to turn epochs into steps.
TRAIN_EXAMPLES = {'mnist': 60000, 'fashion_mnist': 60000, 'cifar10': 50000,
                  'stl10': 100000, 'lsun_bedroom': 3033042}


class ConfigError(ValueError):
  """A configuration value is not allowed; the message is one line."""


def get_config():
  """The default configuration (docs/experiments.md#o1 hyperparameters,
  Fashion-MNIST data)."""
  c = ml_collections.ConfigDict()
  c.experiment = 'gan'            # gan | vae | memorize | frozen_generator (configs/).
  # --- data (docs/experiments.md#0-common-setup) ---
  c.dataset = 'fashion_mnist'
  c.data_dir = ''                 # TFDS data_dir; '' = TFDS default (~/tensorflow_datasets).
  c.manual_dir = ''               # TFDS manual_dir; '' = Debian's Fashion-MNIST if present.
  c.split = ''                    # '' = train (stl10: unlabelled, a *choice*).
  c.shuffle_buffer = 10000
  c.dequantize = False            # add U[0, 1/128] noise (igul222 / Sargent).
  c.synthetic_data = False        # random in-memory images (benchmarks, smoke runs).
  c.data_threads = 1              # tf.data's private thread pool (0 = TensorFlow's default).
  # --- model ---
  c.architecture = 'dcgan'
  c.latent_dim = 0                # 0 = per dataset (64 for MNIST-like, 100 otherwise).
  c.g_base_channels = 0           # 0 = per dataset (256 for 28x28, 512 otherwise).
  c.d_base_channels = 0           # 0 = per architecture (DCGAN 64, ResNets 128).
  c.conditional = False           # class-conditional G (O6).
  c.bn_momentum = 0.9             # DCGAN BatchNorm, Keras convention (dcgan.torch: PyTorch 0.1).
  c.bn_epsilon = 1e-5             # DCGAN BatchNorm epsilon (dcgan.torch, DCGAN-tensorflow).
  # float32 | bfloat16: Keras's mixed policy, float32 variables and bf16 compute
  # (models/dcgan.py says what stays float32). The checks of the papers use float32;
  # BUILD.md "bfloat16" says when bf16 is safe.
  c.precision = 'float32'
  # --- loss and optimisation (Radford et al. 2015, inherited) ---
  c.loss = 'non_saturating'
  c.batch_size = 64               # global batch (all replicas together).
  c.g_batch_size = 0              # 0 = batch_size; igul222 uses 2x the D batch.
  c.train_steps = 23440           # generator steps; 25 epochs of 60k at batch 64.
  c.n_critic = 1                  # D steps per G step.
  c.g_steps = 1                   # G updates per iteration (DCGAN-tensorflow: 2, on one z;
                                  # here each later one draws fresh z).
  c.g_lr = 2e-4
  c.d_lr = 2e-4
  c.beta1 = 0.5
  c.beta2 = 0.999
  c.lr_decay = 'none'
  c.gradient_penalty = 0.0        # WGAN-GP weight (Gulrajani et al.: 10).
  c.instance_noise = 0.0          # A3: std of N(0, s^2) added to D inputs, annealed to 0.
  c.g_step_reuses_fake = True     # n_critic=1: G step back-props through the D step's G(z)
                                  # (dcgan.torch); False: fresh z for the G step.
  c.acgan_d_weight = 1.0          # ACGAN class loss weights (igul222: 1 for D, 0.1 for G);
  c.acgan_g_weight = 0.1          # used only by critics with a class head.
  # --- ResNet GANs and Lipschitz experiments (docs/experiments.md#o6, #s0-#s5;
  # models/resnet.py, lipschitz.py) ---
  c.g_bn_always_batch_stats = False  # G BN uses batch stats in inference too (igul222).
  c.d_normalization = 'none'      # ResNet D: none | spectral (SN-GAN, S0) | toeplitz (S1).
  c.toeplitz_k = 1.0              # S1: each Toeplitz-normalized conv has operator norm k.
  c.toeplitz_k_shortcuts = True   # S1: k also on the two 1x1 shortcut convs (False: 1).
  c.rw_lambda = 0.0               # S2: L_G += rw_lambda * (-sum_i r(W_i)); 0 = off.
  c.rw_exact = False              # S2: sigma(W) by exact SVD, not power iteration.
  c.grad_clamp_g_ratio = 0.0      # S3: spectral gradient clamp ratio r in G; 0 = off.
  c.grad_clamp_d_ratio = 0.0      # S3: the same in D; 0 = off.
  # --- Jacobian Clamping (docs/experiments.md#o5, Algorithm 1) ---
  c.jacobian_clamping = False
  c.jc_epsilon = 1.0
  c.jc_lambda_min = 1.0
  c.jc_lambda_max = 20.0
  c.jc_norm = 'per_example'       # per_example (Algorithm 1) | batch (whole-batch norms).
  # Q logged in every run (docs/experiments.md#o5): measured at each train record on
  # this many batches of g_batch_size fresh (z, z') pairs. 5 (320 pairs at batch 64):
  # Q's 95th percentile with an sd of about 0.5 at step 5,000 of phase 2 (one batch:
  # 1.1), for 2.5% of a record's 50 DCGAN steps
  # (`python -m tf_gancond.benchmarks.train_step`, 2026-12-03).
  c.q_num_batches = 5
  # --- probes (docs/experiments.md#0-common-setup, #o1) ---
  c.probe_every = 250             # 0 = never.
  c.probe_num_z = 64
  c.probe_seed = 1234             # fixed z batch, shared by every run of a sweep.
  c.probe_bn_mode = 'inference'
  # z of the run's final log-cond; 0 = the probe batch. The probe batch comes first,
  # so a larger N only cuts the final value's standard error (about 0.13 nats at 64 z
  # on Fashion-MNIST, a third of the spread between seeds: results/phase2_odena_jc).
  c.final_probe_num_z = 0
  # --- evaluation (docs/experiments.md#0-common-setup) ---
  c.eval_every = 0                # 0 = never during training.
  c.final_eval = False            # Score at the end (also on whenever eval_every > 0).
  c.eval_num_samples = 10000
  c.final_eval_num_samples = 50000
  c.eval_splits = 10
  c.classifier = ''               # TF-Hub handle or local SavedModel dir; '' = default.
  # Classifier output the Frechet and kernel distances are taken on; '' = per dataset:
  # 'logits' for MNIST-like data (TF-GAN's mnist_frechet_distance, the paper's
  # toolchain, uses the MNIST classifier's 10 logits), 'pool_3' for Inception (FID).
  c.fd_layer = ''
  c.eval_real_split = 'test'
  c.num_missing_mode_samples = 360
  # --- bookkeeping ---
  c.seed = 0
  c.workdir = ''                  # '' = runs/<run name>_seed<seed>: default_run_name.
  c.log_every = 50
  c.checkpoint_every = 1000
  # -1: at each probe (docs/experiments.md#0-common-setup); 0: only at the end.
  c.export_every = -1
  c.export_at_steps = ''          # extra export steps, comma separated (A&B: epochs 1,10,25).
  c.max_checkpoints = 3
  c.sample_grid = 64              # fixed-z samples in the TensorBoard image grid.
  c.strategy = 'default'
  c.deterministic = False
  # --- experiments O3 (VAE), O7 (memorizing G), A1-A3 (frozen G): tf_gancond/experiments ---
  c.vae_lr = 1e-3                 # O3: Adam learning rate of the VAE (choice).
  c.vae_beta1 = 0.9               # O3: Adam beta1 of the VAE (Adam's default).
  c.memorize_num_random = 5000    # O7: random training images to memorize.
  c.memorize_num_copies = 5000    # O7: copies of one image of class memorize_label.
  c.memorize_label = 4            # O7: class of the repeated image ('a four').
  c.memorize_target_mse = 0.005   # O7: stop once the MSE over all pairs ([-1,1] pixels) is below.
  c.generator_saved_model = ''    # A1/A2: frozen G as a SavedModel dir (export.py contract).
  c.generator_checkpoint = ''     # A1/A2: or a train.py checkpoint (dir or prefix); both '' = fresh G.
  c.running_average_window = 20   # A1: window (iterations) of the running D cost / accuracy.
  c.instance_noise_anneal_steps = -1  # A3: -1 = linear to 0 over train_steps,
                                      # 0 = constant sigma, N = linear to 0 over N steps.
  return c


def resolve(config):
  """Fills the fields whose default depends on the dataset. Returns the config."""
  c = config
  _choice(c, 'dataset', DATASETS)  # The lookups below need a known dataset.
  _choice(c, 'architecture', ARCHITECTURES)
  if not c.latent_dim:
    c.latent_dim = DEFAULT_LATENT_DIM[c.dataset]
  if not c.g_base_channels:
    c.g_base_channels = {'dcgan': 256 if IMAGE_SIZE[c.dataset] == 28 else 512,
                         'resnet_wgangp': 128,   # igul222 DIM_G.
                         'resnet_sngan': 256}.get(c.architecture, 0)  # Miyato et al.
  if not c.d_base_channels:
    c.d_base_channels = 64 if c.architecture == 'dcgan' else 128
  if not c.g_batch_size:
    c.g_batch_size = c.batch_size
  if not c.split:
    c.split = 'unlabelled' if c.dataset == 'stl10' else 'train'
  if c.export_every == -1:
    c.export_every = c.probe_every
  if not c.fd_layer:
    c.fd_layer = 'logits' if c.dataset in ('mnist', 'fashion_mnist') else 'pool_3'
  if not c.workdir:
    c.workdir = os.path.join('runs', f'{default_run_name(c)}_seed{c.seed}')
  return c


def default_run_name(config):
  """The run folder's name without its seed: <dataset>_<loss>[_jc] for a GAN,
  <dataset>_<experiment> for any other experiment, so that no two experiments share
  a default folder."""
  c = config
  if c.experiment == 'gan':
    return f'{c.dataset}_{c.loss}' + ('_jc' if c.jacobian_clamping else '')
  return f'{c.dataset}_{ALIASES.get(c.experiment, c.experiment)}'


def _choice(config, field, allowed):
  if config[field] not in allowed:
    raise ConfigError(f'{field}={config[field]!r} is not allowed; '
                      f'choose one of: {", ".join(allowed)}')


def _positive(config, *fields):
  for f in fields:
    if not config[f] > 0:
      raise ConfigError(f'{f}={config[f]!r} must be > 0')


def _non_negative(config, *fields):
  for f in fields:
    if config[f] < 0:
      raise ConfigError(f'{f}={config[f]!r} must be >= 0')


def validate(config):
  """Raises ConfigError (one line) for any value outside what is allowed."""
  c = config
  _choice(c, 'experiment', EXPERIMENTS)
  _choice(c, 'dataset', DATASETS)
  _choice(c, 'loss', LOSSES)
  _choice(c, 'architecture', ARCHITECTURES)
  _choice(c, 'strategy', STRATEGIES)
  _choice(c, 'jc_norm', JC_NORMS)
  _choice(c, 'lr_decay', LR_DECAYS)
  _choice(c, 'probe_bn_mode', PROBE_BN_MODES)
  _choice(c, 'precision', PRECISIONS)
  if c.precision != 'float32' and (c.experiment, c.architecture) != ('gan', 'dcgan'):
    raise ConfigError(f'precision={c.precision!r} is built for experiment=gan with '
                      f'architecture=dcgan only, not experiment={c.experiment!r}, '
                      f'architecture={c.architecture!r}; use precision=float32')
  if c.fd_layer:  # '' until resolve() sets the dataset's default.
    _choice(c, 'fd_layer', FD_LAYERS)
  _positive(c, 'batch_size', 'train_steps', 'n_critic', 'g_steps', 'g_lr', 'd_lr',
            'log_every', 'checkpoint_every', 'probe_num_z', 'eval_splits',
            'eval_num_samples', 'final_eval_num_samples', 'max_checkpoints',
            'q_num_batches')
  _non_negative(c, 'g_batch_size', 'latent_dim', 'probe_every', 'eval_every',
                'gradient_penalty', 'instance_noise', 'num_missing_mode_samples',
                'sample_grid', 'shuffle_buffer', 'data_threads', 'final_probe_num_z')
  if 0 < c.final_probe_num_z < c.probe_num_z:
    raise ConfigError(f'final_probe_num_z={c.final_probe_num_z!r} must be 0 (the probe '
                      f'batch) or at least probe_num_z={c.probe_num_z!r}')
  if c.final_probe_num_z > c.probe_num_z and (
      c.probe_bn_mode == 'batch_stats' or c.g_bn_always_batch_stats):
    # Batch statistics of more z would change the probe batch's own values.
    raise ConfigError(f'final_probe_num_z={c.final_probe_num_z!r} needs '
                      "probe_bn_mode='inference' and a G with running BatchNorm "
                      'statistics; use 0 (the probe batch)')
  if c.export_every < -1:
    raise ConfigError(f'export_every={c.export_every!r} must be -1 (at each probe), '
                      '0 (only at the end) or a positive step interval')
  if not 0.0 <= c.bn_momentum < 1.0:
    raise ConfigError(f'bn_momentum={c.bn_momentum!r} must lie in [0, 1) '
                      '(Keras convention: 0.9 = PyTorch momentum 0.1)')
  _positive(c, 'bn_epsilon')
  if not 0.0 <= c.beta1 < 1.0 or not 0.0 <= c.beta2 < 1.0:
    raise ConfigError(f'beta1={c.beta1!r}, beta2={c.beta2!r} must lie in [0, 1)')
  if c.jacobian_clamping:
    if not c.jc_epsilon > 0:
      raise ConfigError(f'jc_epsilon={c.jc_epsilon!r} must be > 0')
    if not 0 <= c.jc_lambda_min <= c.jc_lambda_max:
      raise ConfigError(f'jc_lambda_min={c.jc_lambda_min!r} and jc_lambda_max='
                        f'{c.jc_lambda_max!r} need 0 <= jc_lambda_min <= jc_lambda_max')
  if c.g_steps > 1 and c.jacobian_clamping:
    # JC draws its z' per iteration: the extra G updates would share them.
    raise ConfigError(f'g_steps={c.g_steps!r} needs jacobian_clamping=False; '
                      'use g_steps=1 with Jacobian Clamping')
  if c.conditional and NUM_CLASSES[c.dataset] == 0:
    raise ConfigError(f'conditional=True needs labels; dataset={c.dataset!r} has none')
  # Experiments O3, O7, A1-A3 (tf_gancond/experiments).
  _positive(c, 'vae_lr', 'running_average_window')
  _non_negative(c, 'memorize_num_random', 'memorize_num_copies', 'memorize_label',
                'memorize_target_mse')
  if not 0.0 <= c.vae_beta1 < 1.0:
    raise ConfigError(f'vae_beta1={c.vae_beta1!r} must lie in [0, 1)')
  if c.instance_noise_anneal_steps < -1:
    raise ConfigError(f'instance_noise_anneal_steps={c.instance_noise_anneal_steps!r} '
                      'must be -1 (over train_steps), 0 (constant) or a step count')
  # ResNet GANs and Lipschitz experiments (docs/experiments.md#o6, #s0-#s5).
  _choice(c, 'd_normalization', ('none', 'spectral', 'toeplitz'))
  _positive(c, 'toeplitz_k')
  _non_negative(c, 'rw_lambda')
  for f in ('grad_clamp_g_ratio', 'grad_clamp_d_ratio'):
    if c[f] != 0 and not c[f] > 1:
      raise ConfigError(f'{f}={c[f]!r} must be 0 (off) or > 1')
  if c.d_normalization != 'none' and not c.architecture.startswith('resnet'):
    raise ConfigError(f'd_normalization={c.d_normalization!r} needs architecture '
                      f'resnet_wgangp or resnet_sngan, not {c.architecture!r}')
  parse_steps(c.export_at_steps, 'export_at_steps')
  if c.workdir and os.path.exists(c.workdir) and not os.path.isdir(c.workdir):
    raise ConfigError(f'workdir={c.workdir!r} exists and is not a directory')
  return c


def parse_steps(text, field='steps'):
  """'1,10,25' -> [1, 10, 25]; raises ConfigError on anything but positive ints."""
  if not text:
    return []
  try:
    steps = [int(s) for s in str(text).split(',') if s.strip()]
  except ValueError:
    raise ConfigError(f'{field}={text!r} must be a comma-separated list of '
                      'positive integers') from None
  if any(s <= 0 for s in steps):
    raise ConfigError(f'{field}={text!r} must hold positive integers only')
  return steps


def load_config_file(path):
  """Loads `get_config()` from a Python config file (see configs/)."""
  if not os.path.isfile(path):
    raise ConfigError(f'config={path!r} is not a file; give a path such as '
                      'configs/o1_mnist_conditioning.py')
  spec = importlib.util.spec_from_file_location('_tf_gancond_config', path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except SyntaxError as e:
    raise ConfigError(f'config={path!r} has a syntax error at line {e.lineno}: '
                      f'{e.msg}') from None
  if not hasattr(module, 'get_config'):
    raise ConfigError(f'config={path!r} defines no get_config()')
  return module.get_config()


def _parse_value(text, old):
  """Parses `text` to the type of the existing field value `old`."""
  if isinstance(old, bool):
    lowered = text.lower()
    if lowered in ('1', 'true', 'yes'):
      return True
    if lowered in ('0', 'false', 'no'):
      return False
    raise ValueError(f'{text!r} is not a boolean (true/false)')
  if isinstance(old, str):
    return text
  value = ast.literal_eval(text)
  if isinstance(old, float) and isinstance(value, int):
    value = float(value)
  if type(value) is not type(old):
    raise ValueError(f'{text!r} is not a {type(old).__name__}')
  return value


def apply_overrides(config, overrides):
  """Applies {'field': 'text value'} to config, checking fields and types."""
  for field, text in overrides.items():
    if field not in config:
      raise ConfigError(f'config field {field!r} does not exist; known fields: '
                        f'{", ".join(sorted(config.keys()))}')
    try:
      value = _parse_value(str(text), config[field]) if isinstance(
          text, str) else text
    except (ValueError, SyntaxError) as e:
      raise ConfigError(f'config field {field}={text!r}: {e}') from None
    if isinstance(config[field], float) and isinstance(value, int) and not isinstance(
        value, bool):
      value = float(value)
    config[field] = value
  return config


def to_text(config):
  """Human-readable resolved config, one `field: value` per line (sorted)."""
  return '\n'.join(f'{k}: {config[k]!r}' for k in sorted(config.keys())) + '\n'


def from_text(text):
  """Inverse of `to_text` (used by the report and by resume checks)."""
  c = ml_collections.ConfigDict()
  for line in text.splitlines():
    if ': ' in line:
      k, v = line.split(': ', 1)
      c[k] = ast.literal_eval(v)
  return c
