"""`python -m tf_gancond.launch` with a NaN injected after one iteration (a test fault).

  python tests/nan_launch.py --nan_at_step=N --nan_in=loss|moving_stats LAUNCH_FLAGS...

Wraps the trainer that `tf_gancond.loop.run` builds, whatever the experiment:
after iteration N (1-based) of the wrapped `train_step`,
  loss          the first of 'g_loss' / 'loss' / the step's values it returns is
                NaN, and so is every trainable weight of its generator: what a
                NaN loss does through its gradients;
  moving_stats  the generator's BatchNorm moving means become NaN while every
                value the step returns stays finite: only the weight check before
                a checkpoint or an export can see it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class NaNAfterStep:
  """Delegates to `trainer`; its train_step poisons the run after iteration `at`."""

  def __init__(self, trainer, at, where):
    self._trainer = trainer
    self._at = at
    self._where = where

  def __getattr__(self, name):
    return getattr(self._trainer, name)

  def train_step(self, iterator):
    out = dict(self._trainer.train_step(iterator))
    if int(self._trainer.step.numpy()) != self._at:
      return out
    generator = self._trainer.generator
    if self._where == 'loss':
      key = next((k for k in ('g_loss', 'loss') if k in out), next(iter(out)))
      out[key] = out[key] * float('nan')
      poisoned = generator.trainable_variables
    else:
      poisoned = [v for v in generator.variables if 'moving_mean' in v.name]
    for v in poisoned:
      v.assign(v * float('nan'))
    return out


def launch_wrapped(argv, prefix, wrap):
  """`launch.run()` on `argv` without its `--<prefix>...` options, with the trainer
  that `loop.run` builds wrapped: `wrap(trainer)`."""
  from tf_gancond import launch
  from tf_gancond import loop
  run = loop.run
  loop.run = lambda config, make_trainer: run(config, lambda c: wrap(make_trainer(c)))
  sys.argv = [sys.argv[0]] + [a for a in argv if not a.startswith(f'--{prefix}')]
  launch.run()


def main(argv):
  options = dict(a[2:].split('=', 1) for a in argv if a.startswith('--nan_'))
  at, where = int(options['nan_at_step']), options.get('nan_in', 'loss')
  launch_wrapped(argv, 'nan_', lambda trainer: NaNAfterStep(trainer, at, where))


if __name__ == '__main__':
  main(sys.argv[1:])
