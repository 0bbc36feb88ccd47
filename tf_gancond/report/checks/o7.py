"""O7: a well-conditioned generator that behaves badly (docs/experiments.md#o7).

[O-A] Sec. B.1: a generator trained to memorize z -> image pairs "Its Classifier
Score is 4.95 for memorized z values and 2.22 on non-memorized z values. Its
Frechet Distance is 118 for memorized z values and 240 for non-memorized z values".
Per target, the mean over the memorize runs of the final score, with its Student t
interval, against the paper's value ± 10 %; one row per classifier / sample-count
group of the score (shared.score_columns).
"""

from tf_gancond.report import shared
from tf_gancond.report.checks import base

MEMORIZE = 'memorize'
TARGETS = (('cs_memorized', 'CS, memorized z', 'memorized_z_classifier_score', 4.95),
           ('cs_random', 'CS, random z', 'random_z_classifier_score', 2.22),
           ('fd_memorized', 'FD, memorized z', 'memorized_z_frechet_distance', 118.0),
           ('fd_random', 'FD, random z', 'random_z_frechet_distance', 240.0))
TOLERANCE = 0.10  # The O7 target region: the paper's value +- 10%.


def rows(ctx):
  """One row per target, and per classifier / sample-count group of its score."""
  memorize = ctx.group(MEMORIZE)
  out = []
  for name, label, key, value in TARGETS:
    target = f'{value:g}'
    region = (value * (1 - TOLERANCE), value * (1 + TOLERANCE))
    if not memorize:
      out.append(base.row(f'o7_{name}', f'O7 {label}', target,
                          base.interval_rule(*region), note='no memorize runs'))
      continue
    for column in [c for c, v in ctx.columns.items() if v['key'] == key] or [key]:
      values, excluded = shared.finite_rows(
          memorize, (lambda r, column=column: shared.score_of(r, column), False))
      group = column[len(key):]
      out.append(dict(base.mean_check(
          f'o7_{name}{group}', f'O7 {label}{group}', target, region,
          [v for v, in values], excluded,
          f' (the paper\'s {value:g} ± {TOLERANCE:.0%})'), family=f'o7_{name}'))
  return out


CHECK = base.Check(
    id='o7', anchor='o7', source='[O-A] Sec. B.1, Figs 8-11', dataset='mnist',
    quote='Its Classifier Score is 4.95 for memorized z values and 2.22 on '
          'non-memorized z values',
    statistic='per memorize run, the final CS and FD on memorized and on random z; '
              'the mean over runs',
    rows=rows)
