"""Kills at each step of a file operation, for tests that a kill never loses a result.

A kill is simulated by KeyboardInterrupt raised in place of the n-th call of a
function (os.rename, shutil.rmtree, ...): everything before that call happened, that
call and everything after it did not.
"""


class KillAt:
  """Patches `getattr(module, name)` (through a pytest MonkeyPatch) so that its
  `call`-th call raises KeyboardInterrupt; the calls before it run as usual."""

  def __init__(self, module, name, call):
    self.module, self.name, self.call = module, name, call

  def __call__(self, monkeypatch):
    real = getattr(self.module, self.name)
    calls = [0]

    def patched(*args, **kwargs):
      calls[0] += 1
      if calls[0] == self.call:
        raise KeyboardInterrupt
      return real(*args, **kwargs)

    monkeypatch.setattr(self.module, self.name, patched)

  def __repr__(self):
    return f'kill at call {self.call} of {self.module.__name__}.{self.name}'


def killed_at_each_call(*functions, calls=3):
  """KillAt for each (module, name) of `functions` at its calls 1 .. `calls`."""
  return [KillAt(module, name, n) for module, name in functions
          for n in range(1, calls + 1)]
