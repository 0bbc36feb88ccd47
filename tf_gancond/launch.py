"""Command line: train one run.

  python -m tf_gancond.launch --dataset=cifar10 --jacobian_clamping
  python -m tf_gancond.launch --config=configs/o1_mnist_conditioning.py \
      --config.train_steps=5000 --seed=3

The config starts from `--config` (a Python file with `get_config()`, see
configs/) or the package default; `--config.FIELD=VALUE` sets any field, and the
flags below set the field of the same name. Exit codes: 0 done, 2 bad input
(one line on stderr, nothing written), 3 the run diverged (NaN/Inf; the last
good checkpoint is kept), 4 stopped by SIGTERM after checkpointing at step N
(one `stopped:` line on stderr; the same command resumes it, as does SLURM's
--requeue for a preempted task; a time limit needs a resubmission).
"""

import sys

from absl import app
from absl import flags
from absl import logging

FLAGS = flags.FLAGS
STOPPED_EXIT_CODE = 4  # SIGTERM: checkpointed at a step boundary, resumable.
_CONFIG_OVERRIDES = {}  # `--config.FIELD=VALUE` pairs of the command line.

# Flags that set the config field of the same name (None = leave the config's value).
_STRING_FIELDS = ('dataset', 'loss', 'architecture', 'workdir', 'strategy', 'data_dir',
                  'manual_dir', 'classifier', 'jc_norm', 'experiment', 'export_at_steps',
                  'precision')
_INT_FIELDS = ('train_steps', 'batch_size', 'seed', 'n_critic', 'latent_dim',
               'probe_every', 'eval_every', 'log_every', 'checkpoint_every',
               'export_every')
_FLOAT_FIELDS = ('jc_epsilon', 'jc_lambda_min', 'jc_lambda_max', 'g_lr', 'd_lr',
                 'gradient_penalty', 'instance_noise')
_BOOL_FIELDS = ('jacobian_clamping', 'deterministic', 'synthetic_data')


def define_flags():
  """Defines the launcher's flags (called once, from `run`)."""
  flags.DEFINE_string('config', None, 'Python config file with get_config(); '
                      'default: the package default (fashion_mnist; '
                      'docs/experiments.md#o1).')
  for name in _STRING_FIELDS:
    flags.DEFINE_string(name, None, f'Sets config.{name}.')
  for name in _INT_FIELDS:
    flags.DEFINE_integer(name, None, f'Sets config.{name}.')
  for name in _FLOAT_FIELDS:
    flags.DEFINE_float(name, None, f'Sets config.{name}.')
  for name in _BOOL_FIELDS:
    flags.DEFINE_bool(name, None, f'Sets config.{name}.')


def _fail(message, code=2):
  print(f'error: {message}', file=sys.stderr)
  sys.exit(code)


def _parse(argv):
  """absl parsing, with `--config.FIELD=VALUE` pulled out first."""
  overrides, rest = {}, []
  for arg in argv:
    if arg.startswith('--config.'):
      if '=' not in arg:
        _fail(f'{arg!r} needs a value: --config.FIELD=VALUE')
      key, value = arg[len('--config.'):].split('=', 1)
      overrides[key] = value
    else:
      rest.append(arg)
  try:
    remaining = FLAGS(rest)
  except flags.Error as e:
    _fail(str(e).splitlines()[0])
  if len(remaining) > 1:
    _fail(f'unexpected arguments {remaining[1:]!r}; every option is a --flag')
  _CONFIG_OVERRIDES.clear()
  _CONFIG_OVERRIDES.update(overrides)  # Read in main().
  return remaining


def _load_config_file(path):
  """`config_lib.load_config_file`, with any exception the file raises as ConfigError."""
  from tf_gancond import config as config_lib
  try:
    return config_lib.load_config_file(path)
  except config_lib.ConfigError:
    raise
  except Exception as e:  # The file is code: it may raise anything.
    message = str(e).strip().splitlines()[0][:200] if str(e).strip() else ''
    raise config_lib.ConfigError(
        f'config={path!r} raised {type(e).__name__}' +
        (f': {message}' if message else '')) from None


def build_config(config_path, overrides, flag_values):
  """The resolved, validated config from a file, overrides and flag values."""
  from tf_gancond import config as config_lib
  config = _load_config_file(config_path) if config_path else config_lib.get_config()
  config_lib.apply_overrides(config, overrides)
  config_lib.apply_overrides(
      config, {k: v for k, v in flag_values.items() if v is not None})
  return config_lib.validate(config_lib.resolve(config))


def run_config(config):
  """Dispatches to the experiment named by `config.experiment`."""
  if config.experiment == 'gan':
    from tf_gancond import train
    return train.train_and_evaluate(config)
  from tf_gancond import experiments
  return experiments.run(config)


def main(argv):
  del argv
  from tf_gancond import config as config_lib
  from tf_gancond import data as data_lib
  from tf_gancond import loop
  names = _STRING_FIELDS + _INT_FIELDS + _FLOAT_FIELDS + _BOOL_FIELDS
  try:
    config = build_config(FLAGS.config, _CONFIG_OVERRIDES,
                          {n: FLAGS[n].value for n in names})
  except config_lib.ConfigError as e:
    _fail(str(e))
  from tf_gancond import scores
  expected = (config_lib.ConfigError, data_lib.DataUnavailableError,
              scores.ClassifierUnavailableError)
  try:
    final = run_config(config)
  except loop.DivergedError as e:
    _fail(f'run diverged: {e}; last good checkpoint kept in {config.workdir}', code=3)
  except loop.StoppedError as e:
    print(f'stopped: {e}', file=sys.stderr)
    sys.exit(STOPPED_EXIT_CODE)
  except expected as e:
    _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
  logging.info('Finished %s: %s', config.workdir, final)
  print(f'finished: {config.workdir} {final}')


def run():
  """Console entry point."""
  define_flags()
  app.run(main, flags_parser=_parse)


if __name__ == '__main__':
  run()
