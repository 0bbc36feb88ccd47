"""Command line: Jacobian spectrum of any generator SavedModel, or of a run's checkpoint.

  python -m tf_gancond.probe --saved_model=DIR [--num_z=64 --seed=1234
      --label=K | --num_classes=N  --latent_dim=N --output=FILE.json]
  python -m tf_gancond.probe --run_dir=DIR [--bn_mode=batch_stats --step=N --num_z=64
      --output=FILE.json]

Loads a SavedModel with the contract of BUILD.md (serving_default: z float32
[None, n_z] -> {'images'}), not only ones this package wrote, probes the fixed
batch of z (`probes.fixed_probe_z(n_z, num_z, seed)`: the batch every training
run probes, by default) and writes JSON: per-z ln cond(M_z) and log10 values,
their mean and std, the singular values of E_z[J_z], and the settings. Loading a
SavedModel runs the TensorFlow graph stored in it: probe only directories you
trust. `--latent_dim`, when given, must equal the SavedModel's n_z (a guard for
scripts that expect a given generator). Bad input: one line on stderr, exit code 2.

`--run_dir` probes a training run's generator at a checkpoint (the newest, or
`--step`) on the run's own probe batch (its probe_seed, and its probe_num_z unless
--num_z is given) and labels, with BatchNorm in `--bn_mode`: 'inference' (moving
averages, as the SavedModels and the runs' default probes) or 'batch_stats' (the probe
batch's own statistics, held fixed: `probes.held_batch_statistics`), which a
SavedModel cannot give. So a run's generators can be probed under the other BatchNorm
reading afterwards, with no new training.
"""

import json
import os
import sys

import numpy as np
from absl import flags

_FLAGS = flags.FlagValues()  # Private: importable beside the launcher's flags.
flags.DEFINE_string('saved_model', None, 'Generator SavedModel directory.',
                    flag_values=_FLAGS)
flags.DEFINE_integer('num_z', 64, 'Probe batch size.', flag_values=_FLAGS)
flags.DEFINE_integer('seed', 1234, 'Seed of the probe batch (training runs: 1234).',
                     flag_values=_FLAGS)
flags.DEFINE_integer('label', None, 'Class-conditional generators: probe every z '
                     'with this class (default: labels uniform over the classes, '
                     'fixed by --seed, as training runs probe).', flag_values=_FLAGS)
flags.DEFINE_integer('num_classes', None, 'Classes of a conditional SavedModel '
                     'without tf_gancond.json (needed for the uniform labels).',
                     flag_values=_FLAGS)
flags.DEFINE_integer('latent_dim', None,
                     "Expected n_z; exit 2 if the SavedModel's z size differs.",
                     flag_values=_FLAGS)
flags.DEFINE_integer('chunk_size', 16, 'z per vectorised pass (memory bound).',
                     flag_values=_FLAGS)
flags.DEFINE_string('output', None, 'JSON file to write (default: stdout).',
                    flag_values=_FLAGS)
flags.DEFINE_string('run_dir', None, 'A training run directory: probe the generator '
                    'of its checkpoint instead of a SavedModel.', flag_values=_FLAGS)
flags.DEFINE_enum('bn_mode', 'inference', ['inference', 'batch_stats'],
                  'With --run_dir: BatchNorm on moving averages or on the probe '
                  "batch's statistics.", flag_values=_FLAGS)
flags.DEFINE_integer('step', None, 'With --run_dir: the checkpoint step (default: '
                     'the newest).', flag_values=_FLAGS)


class ProbeError(ValueError):
  """Bad input to the probe command; one line."""


def _metadata(path):
  """The SavedModel's tf_gancond.json (export.py), or {} for other SavedModels."""
  from tf_gancond import export
  try:
    with open(os.path.join(path, export.METADATA_FILE)) as f:
      meta = json.load(f)
  except (OSError, ValueError):
    return {}
  return meta if isinstance(meta, dict) else {}


def probe_saved_model(path, num_z=64, seed=1234, label=None, chunk_size=16,
                      latent_dim=None, num_classes=None):
  """Probes the SavedModel at `path`; returns the JSON-ready result dict.

  A class-conditional generator is probed on `label` for every z, or by default on
  `probes.probe_labels(num_classes, num_z, seed)`, the labels training runs probe
  with; `num_classes` comes from the SavedModel's tf_gancond.json if not given.
  Raises ProbeError (one line) on bad input: num_z or chunk_size <= 0, label < 0,
  a directory without the contract's signature, a z size other than
  `latent_dim` (if given), a conditional generator whose classes are unknown, a
  generator that normalises with batch statistics (its rows are not independent,
  so its per-z Jacobian cannot be had from the signature), or a graph that fails
  on the probe batch.
  """
  import tensorflow as tf
  from tf_gancond import export
  from tf_gancond import probes
  if num_z <= 0:
    raise ProbeError(f'num_z={num_z!r} must be > 0')
  if chunk_size <= 0:
    raise ProbeError(f'chunk_size={chunk_size!r} must be > 0')
  if label is not None and label < 0:
    raise ProbeError(f'label={label!r} must be >= 0 (a class index)')
  meta = _metadata(path)
  if meta.get('g_bn_always_batch_stats'):
    raise ProbeError(
        f'saved_model={path!r} normalises with batch statistics, so each image '
        'depends on the whole batch and its per-z Jacobian needs the statistics held '
        'fixed inside the model; use the probe records of its training run')
  try:
    generate, n_z = export.load_generator(path)
  except (ValueError, OSError, tf.errors.OpError) as e:
    raise ProbeError(str(e).splitlines()[0]) from None
  if latent_dim is not None and latent_dim != n_z:
    raise ProbeError(f'latent_dim={latent_dim!r} does not match the SavedModel, '
                     f'whose serving_default takes z of shape [None, {n_z}]')
  labels = None
  if generate.__code__.co_argcount == 2:  # Class-conditional.
    num_classes = num_classes or meta.get('num_classes')
    if label is not None:
      labels = np.full([num_z], label, np.int32)
    elif num_classes:
      labels = probes.probe_labels(int(num_classes), num_z, seed)
    else:
      raise ProbeError(f'saved_model={path!r} is class-conditional and does not say '
                       'how many classes it has: give --num_classes=N (uniform labels) '
                       'or --label=K (one class)')
  z = probes.fixed_probe_z(n_z, num_z, seed)
  try:
    result = probes.probe_generator(generate, z, chunk_size=chunk_size, labels=labels)
  except (ValueError, tf.errors.OpError) as e:  # E.g. a label out of range.
    raise ProbeError(f'saved_model={path!r} failed on the probe batch: '
                     f'{str(e).strip().splitlines()[0]}') from None
  out = probes.to_json_dict(result)
  out.update(saved_model=os.path.abspath(path), num_z=num_z, seed=seed,
             latent_dim=n_z, bn_mode='inference (SavedModel contract)',
             labels=None if labels is None else labels.tolist(),
             log='natural: log_cond = ln cond(J^T J) = 2 ln(s_max / s_min)')
  return out


def probe_run(run_dir, bn_mode='inference', step=None, num_z=None, chunk_size=16):
  """Probes the generator of a training run's checkpoint; the JSON-ready result.

  On the run's probe batch (`probes.fixed_probe_z(n_z, num_z, probe_seed)`, num_z
  default the run's probe_num_z) and, for a conditional G, its probe labels; the
  same numbers as the run's own probe at that step in the same `bn_mode`. Raises
  ProbeError (one line) for a folder with no GAN run or no such checkpoint.
  """
  from tf_gancond import models
  from tf_gancond import probes
  from tf_gancond import config as config_lib
  if chunk_size <= 0:
    raise ProbeError(f'chunk_size={chunk_size!r} must be > 0')
  if num_z is not None and num_z <= 0:
    raise ProbeError(f'num_z={num_z!r} must be > 0')
  try:
    config, g, _, restored = models.restore_run_gan(run_dir, step)
  except ValueError as e:
    raise ProbeError(str(e)) from None
  num_z = num_z or config.probe_num_z
  z = probes.fixed_probe_z(config.latent_dim, num_z, config.probe_seed)
  labels = (probes.probe_labels(config_lib.NUM_CLASSES[config.dataset], num_z,
                                config.probe_seed) if config.conditional else None)
  if bn_mode == 'inference' and not config.g_bn_always_batch_stats:
    result = probes.probe_generator(
        lambda z, labels=None: g(z, labels=labels, training=False), z,
        chunk_size=chunk_size, labels=labels)
  else:
    with probes.held_batch_statistics(g, z, labels) as generate:
      result = probes.probe_generator(generate, z, chunk_size=chunk_size,
                                      labels=labels)
    bn_mode = 'batch_stats'
  out = probes.to_json_dict(result)
  out.update(run_dir=os.path.abspath(run_dir), step=restored, num_z=num_z,
             seed=config.probe_seed, latent_dim=config.latent_dim, bn_mode=bn_mode,
             labels=None if labels is None else labels.tolist(),
             log='natural: log_cond = ln cond(J^T J) = 2 ln(s_max / s_min)')
  return out


def main(argv):
  argv = _parse(argv)
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]!r}')
  if bool(_FLAGS.saved_model) == bool(_FLAGS.run_dir):
    _fail('give one of --saved_model=DIR (a generator SavedModel directory) or '
          '--run_dir=DIR (a training run directory)')
  if _FLAGS.saved_model and (_FLAGS.bn_mode != 'inference' or _FLAGS.step is not None):
    _fail(f'--bn_mode={_FLAGS.bn_mode} and --step need --run_dir: a SavedModel holds '
          'one generator, with BatchNorm in inference mode')
  if _FLAGS.output and os.path.isdir(_FLAGS.output):
    _fail(f'output={_FLAGS.output!r} is a directory; give the path of a JSON file')
  if _FLAGS.output and not os.path.isdir(os.path.dirname(os.path.abspath(
      _FLAGS.output))):
    _fail(f'output={_FLAGS.output!r}: its directory does not exist')
  try:
    if _FLAGS.run_dir:
      num_z = _FLAGS.num_z if _FLAGS['num_z'].present else None
      result = probe_run(_FLAGS.run_dir, _FLAGS.bn_mode, _FLAGS.step, num_z,
                         _FLAGS.chunk_size)
    else:
      result = probe_saved_model(_FLAGS.saved_model, _FLAGS.num_z, _FLAGS.seed,
                                 _FLAGS.label, _FLAGS.chunk_size, _FLAGS.latent_dim,
                                 _FLAGS.num_classes)
  except ProbeError as e:
    _fail(str(e))
  text = json.dumps(result, indent=1)
  if _FLAGS.output:
    from tf_gancond import runlog
    runlog.atomic_write_text(_FLAGS.output, text + '\n')
    print(f'mean ln cond(M_z) = {result["mean_log_cond"]:.3f} over {result["num_z"]} '
          f'z; written to {_FLAGS.output}')
  else:
    print(text)


def _fail(message):
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def _parse(argv):
  _FLAGS.unparse_flags()  # Each call parses afresh (tests call main twice).
  try:
    return _FLAGS(argv)
  except flags.Error as e:
    _fail(str(e).splitlines()[0])


def run():
  """Console entry point."""
  main(sys.argv)


if __name__ == '__main__':
  run()
