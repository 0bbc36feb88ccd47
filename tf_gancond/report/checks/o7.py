"""O7: a well-conditioned generator that behaves badly (docs/experiments.md#o7).

[O-A] Sec. B.1: a generator trained to memorize z -> image pairs "Its Classifier
Score is 4.95 for memorized z values and 2.22 on non-memorized z values. Its
Frechet Distance is 118 for memorized z values and 240 for non-memorized z values".
Those values come from the paper's MNIST classifier, which no run here has: a score
of another classifier is on another scale, so the check judges the order and the
ratio only. Per memorize run, the score on memorized z over the score on random z;
the mean over runs, with its Student t interval, against the paper's ratio ± 10 %.
The absolute values are shown beside it.
"""

import numpy as np

from tf_gancond.report import records
from tf_gancond.report import shared
from tf_gancond.report.checks import base

MEMORIZE = 'memorize'
# (row id, words, key: the paper's (memorized z, random z) values).
TARGETS = (('o7_cs', 'CS', 'classifier_score', (4.95, 2.22)),
           ('o7_fd', 'FD', 'frechet_distance', (118.0, 240.0)))
PREFIXES = ('memorized_z_', 'random_z_')  # The memorize runs' final record keys.
TOLERANCE = 0.10  # The O7 target region: the paper's ratio +- 10%.


def ratio_of(key):
  """run -> its final memorized-z score over its random-z score of `key` (both by
  the run's one classifier); None where either is missing."""
  def value_of(run):
    memorized, random = (records.as_float(run.final.get(p + key)) for p in PREFIXES)
    if memorized is None or random is None:
      return None
    return memorized / random if random else float('inf')
  return value_of


def rows(ctx):
  memorize = ctx.group(MEMORIZE)
  out = []
  for id_, label, key, (memorized, random) in TARGETS:
    paper = memorized / random
    check = f'O7 {label}, memorized z over random z'
    target = f'{paper:.3g} ({memorized:g} / {random:g})'
    region = (paper * (1 - TOLERANCE), paper * (1 + TOLERANCE))
    region_text = (f' (the paper\'s ratio {paper:.3g} ± {TOLERANCE:.0%}; its '
                   'absolute values came from another classifier and are not '
                   'judged)')
    if not memorize:
      out.append(base.row(id_, check, target,
                          base.interval_rule(*region, region_text),
                          note='no memorize runs'))
      continue
    values, excluded = shared.finite_rows(memorize, (ratio_of(key), False))
    row = base.mean_check(id_, check, target, region, [v for v, in values],
                          excluded, region_text)
    absolute = []  # Shown beside the ratio, not judged.
    for prefix in PREFIXES:
      found = [records.as_float(r.final.get(prefix + key)) for r in memorize]
      found = [v for v in found if v is not None]
      if found:
        absolute.append(f'mean {prefix.split("_")[0]} z {np.mean(found):.3g}')
    out.append(base.with_note(row, absolute + [
        f'paper {memorized:g} and {random:g} with its own classifier']))
  return out


CHECK = base.Check(
    id='o7', anchor='o7', source='[O-A] Sec. B.1, Figs 8-11', dataset='mnist',
    quote='Its Classifier Score is 4.95 for memorized z values and 2.22 on '
          'non-memorized z values',
    statistic='per memorize run, the final CS and FD on memorized z over those on '
              'random z; the mean of each ratio over runs',
    plain={'o7_cs': 'A memorizing G, well conditioned, still behaves badly on new '
                    'z: classifier score, memorized z / random z',
           'o7_fd': 'The same: Fréchet distance, memorized z / random z'},
    rows=rows, min_runs=base.ODENA_RUNS)
