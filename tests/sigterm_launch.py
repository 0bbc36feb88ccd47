"""`python -m tf_gancond.launch` that sends itself SIGTERM during one iteration (a
cluster's time limit or preemption, at a known step).

  python tests/sigterm_launch.py --sigterm_at_step=N LAUNCH_FLAGS...

Wraps the trainer that `tf_gancond.loop.run` builds, whatever the experiment: its
`train_step` of iteration N (1-based) signals the process, as `scancel --signal=TERM`
or SLURM's `--signal=TERM@...` would, before it returns.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nan_launch  # noqa: E402


class SigtermInStep:
  """Delegates to `trainer`; its train_step of iteration `at` sends SIGTERM."""

  def __init__(self, trainer, at):
    self._trainer = trainer
    self._at = at

  def __getattr__(self, name):
    return getattr(self._trainer, name)

  def train_step(self, iterator):
    out = self._trainer.train_step(iterator)
    if int(self._trainer.step.numpy()) == self._at:
      os.kill(os.getpid(), signal.SIGTERM)
    return out


def main(argv):
  options = dict(a[2:].split('=', 1) for a in argv if a.startswith('--sigterm_'))
  at = int(options['sigterm_at_step'])
  nan_launch.launch_wrapped(argv, 'sigterm_', lambda trainer: SigtermInStep(trainer, at))


if __name__ == '__main__':
  main(sys.argv[1:])
