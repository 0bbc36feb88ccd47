"""Numbers and keys as the report's tables and notes show them."""

import math

from tf_gancond.report import records


def label(key):
  """A key for text: underscores of the name become spaces, a group suffix stays:
  'classifier_score (classifier /a_b, N=5)' -> 'classifier score (classifier /a_b,
  N=5)'."""
  name, sep, rest = key.partition(' (')
  return name.replace('_', ' ') + sep + rest


def small(v):
  """Three significant digits: A1/A2 values span 1e-5 to 1e2."""
  if v is None:
    return 'never'
  return f'{v:.3g}' if isinstance(v, float) else str(v)


def num(v, digits=3):
  """A number for a table; '-' for None and for inf / nan, as floats or as the
  strings that analysis.json holds them as (results.py renders from that file)."""
  if v is None or v in records.NON_FINITE or (
      isinstance(v, float) and not math.isfinite(v)):
    return '-'
  if isinstance(v, float):
    return f'{v:.{digits}f}'
  return str(v)


def ci(interval, digits=3):
  if not interval:
    return 'n < 4'
  return f'[{num(interval["low"], digits)}, {num(interval["high"], digits)}]'


def summary(s, digits=3):
  return (f'{num(s["mean"], digits)} ± {num(s["std"], digits)} | '
          f'{num(s["var"], digits)} | {ci(s["ci_mean"], digits)}')


def counts(c):
  """{reason: runs} as '1 diverged, 2 failed' ('-' when empty)."""
  return ', '.join(f'{n} {reason}' for reason, n in c.items()) or '-'


def end(run, value, digits=3):
  """A final value of `run` for a table: its state when the run did not finish,
  'non-finite' for inf or nan; never a value from before the end."""
  if run.state != 'finished':
    return run.state
  if value is not None and not math.isfinite(value):
    return 'non-finite'
  return num(value, digits)


def measured(v):
  if isinstance(v, float) and 0 < abs(v) < 1e-2:
    return small(v)  # 0.000 would hide it.
  return num(v) if isinstance(v, float) else ('-' if v is None else str(v))
