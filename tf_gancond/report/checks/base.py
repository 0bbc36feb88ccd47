"""What a check of a paper declares, and the scorecard rows it returns.

A check (Check) is one module of tf_gancond/report/checks/ holding one CHECK: the
paper's claim it tests (source, dataset, quote, and the anchor of its description
in docs/experiments.md), the statistic it measures from the run records, its rows
(each with its verdict rule in words, as the page prints it), its figures with
their captions and its section of the report. The registry (checks/__init__.py)
lists the checks in page order.

A row: {'id', 'check' (display text), 'target', 'rule', 'measured', 'ci_low',
'ci_high', 'ci_method', 'n', 'verdict', 'note', 'family', 'stand_in'}. 'id' is the
row's key everywhere (report.json, the results page); 'family' is the id the rows
of one paper target share (the O2 top-k rows, one per score); 'stand_in' is the
sweep's dataset when the row judges another dataset's target on it (STAND_INS),
else None, so that a page says so once, not in every row; 'verdict' is stats.PASS,
FAIL, INCONCLUSIVE or NOT_RUN, or SETTING for a row that states a property of the
runs (a setting the paper states) and judges nothing.

One rule over every check (Check.judge): PASS or FAIL needs n >= the check's
min_runs (the paper's own n, or the stated minimum MIN_RUNS for a statistic over
runs) and runs at the paper's length (paper_steps); otherwise the row is
INCONCLUSIVE, and its note says why and what the rule alone would have said. The
note of a row its rule alone leaves INCONCLUSIVE names the same shortfalls before
the rule's own reason, so it gives every reason the row is open.
"""

import dataclasses
from typing import Callable, Optional

import numpy as np

from tf_gancond import stats
from tf_gancond.report import fmt

MIN_RUNS = stats.MIN_BOOTSTRAP_N  # Fewer runs: INCONCLUSIVE.
# [O]'s n: "10 runs per dataset" (O2, O5), the same 10 models (O4, and [O-A]'s
# spectra), 10 VAEs beside those 10 GANs (O3), 10 memorizing runs (O7). Their
# checks judge no fewer: at n = 4, O2's "the 4 lowest have the 4 best" becomes 2 of
# 2, which chance gives 1 time in 6.
ODENA_RUNS = 10
SETTING = 'SETTING'  # The verdict of a row that states a setting of the runs.
# 25 epochs of the 60,000 MNIST (and Fashion-MNIST) training images at batch 64:
# the DCGAN runs of [O] (docs/experiments.md#o1, "run length").
MNIST_STEPS = 23440
# Datasets judged against another's targets: Fashion-MNIST has MNIST's format and
# sizes and is the one real dataset offline here, so MNIST-type checks run on it;
# every such row says so in its 'stand_in'.
STAND_INS = {'fashion_mnist': 'mnist'}


def _nothing(ctx):
  del ctx
  return {}


def _no_lines(ctx):
  del ctx
  return []


def _unregularized(ctx):
  return ctx.unregularized


@dataclasses.dataclass(frozen=True)
class Figure:
  """A figure of a check. draw(ctx, output) writes it into `output` and returns
  (file name, {caption field: value}), or (None, {}) when the runs have nothing to
  draw; `missing` then says why on the page, unless `always` is False (a figure of
  experiments a sweep seldom holds is then left out)."""
  key: str          # Its key in analysis.json's 'figures'.
  title: str        # 'Fig. 2'
  link: str         # Its name in the results page's links.
  caption: str      # May hold {fields} that draw returns.
  missing: str
  draw: Callable
  always: bool = True


@dataclasses.dataclass(frozen=True)
class Check:
  """One check of a paper; see the module docstring."""
  id: str
  anchor: str       # docs/experiments.md#<anchor>: the package's description.
  source: str       # '[O] Sec. 3, Fig. 2'
  dataset: Optional[str]  # The target's dataset; None: the rows judge per dataset.
  quote: str
  statistic: str    # In words: what is measured from which records.
  # {row family: what the row tests, in plain words}: the results page's words, and
  # the families this check's rows have.
  plain: dict
  rows: Callable    # rows(ctx) -> [row]
  analyse: Callable = _nothing      # analyse(ctx) -> {analysis.json key: value}
  figures: tuple = ()
  section: Callable = _no_lines     # section(ctx) -> Markdown lines
  min_runs: int = MIN_RUNS          # The paper's n, or a stated minimum.
  # {target dataset (None: any): the length of the paper's runs in steps}.
  paper_steps: dict = dataclasses.field(default_factory=dict)
  judged_runs: Callable = _unregularized  # judged_runs(ctx) -> the runs it reads.

  def short_of(self, ctx):
    """Why the runs are shorter than the paper's ('runs at 21 % of the paper's
    length (5000 of 23440 steps)'), by the shortest finished run; '' otherwise."""
    target = STAND_INS.get(ctx.dataset, ctx.dataset)
    steps = self.paper_steps.get(target, self.paper_steps.get(None))
    lengths = [r.step for r in self.judged_runs(ctx) if r.state == 'finished']
    if not steps or not lengths or min(lengths) >= steps:
      return ''
    return (f'runs at {100 * min(lengths) / steps:.0f} % of the paper\'s length '
            f'({min(lengths)} of {steps} steps)')

  def judge(self, ctx):
    """The check's rows under the one rule (module docstring), then against its
    dataset's targets (for_dataset)."""
    short = self.short_of(ctx)
    rows = []
    for r in self.rows(ctx):
      if self.min_runs > MIN_RUNS:  # The rules' own 'n < 4' is their statistic's.
        r = dict(r, rule=f"{r['rule']} PASS or FAIL also needs n ≥ {self.min_runs}, "
                 "the paper's n.")
      if r['verdict'] in (stats.PASS, stats.FAIL, stats.INCONCLUSIVE):
        # n = 0: the rule's statistic had no runs to read; its note says why.
        reasons = ([f'n = {r["n"]} < {self.min_runs}'] if 0 < r['n'] < self.min_runs
                   else []) + ([short] if short else [])
        if reasons:
          r = held_open(r, reasons)
      rows.append(r)
    if self.dataset is None:
      return rows
    return [for_dataset(row, self.dataset, ctx.dataset) for row in rows]


def row(id_, check, target, rule, measured=None, ci=None, n=0, verdict=stats.NOT_RUN,
        note='', family=None, ci_method=None):
  """One scorecard row (module docstring); `ci` is (low, high) or None."""
  low, high = ci if ci else (None, None)
  return {'id': id_, 'check': check, 'target': target, 'rule': rule,
          'measured': measured, 'ci_low': low, 'ci_high': high,
          'ci_method': ci_method if ci else None, 'n': n, 'verdict': verdict,
          'note': note, 'family': family or id_, 'stand_in': None}


def interval_rule(low, high, region=''):
  return (f'PASS: the 95% CI lies inside [{low:.4g}, {high:.4g}]{region}; FAIL: it '
          f'lies outside; INCONCLUSIVE: it straddles an edge, or n < {MIN_RUNS}.')


def excluded_note(excluded, ranked_worst=None):
  parts = [f'ranked worst: {fmt.counts(ranked_worst)}'] if ranked_worst else []
  parts += [f'excluded: {fmt.counts(excluded)}'] if excluded else []
  return '; '.join(parts)


def mean_check(id_, check, target, region, values, excluded, region_text=''):
  """A row for the mean over runs of `values`, its Student t CI against `region`."""
  ci = stats.mean_interval(values)
  ci = (ci['low'], ci['high']) if ci else None
  return row(id_, check, target, interval_rule(*region, region_text),
             float(np.mean(values)) if values else None, ci, len(values),
             stats.verdict(*(ci or (None, None)), *region, len(values)),
             excluded_note(excluded), ci_method='Student t')


def with_note(r, notes):
  """The row with `notes` after its own note, for a row that was judged."""
  if r['verdict'] == stats.NOT_RUN or not notes:
    return r
  return dict(r, note='; '.join(([r['note']] if r['note'] else []) + notes))


def held_open(r, reasons):
  """The row INCONCLUSIVE for `reasons` (what it lacks), its note those reasons, then
  what its rule alone gives where that is PASS or FAIL, then its own note."""
  alone = ([f'by the rule alone {r["verdict"]}'] if r['verdict'] != stats.INCONCLUSIVE
           else [])
  return dict(r, verdict=stats.INCONCLUSIVE, note='; '.join(
      reasons + alone + ([r['note']] if r['note'] else [])))


def no_clusters_note(clusters, missing):
  """Why the runs have no good and bad clusters (shared.cluster_split's `clusters`),
  then what is `missing` for that reason."""
  if clusters.get('n_tested', 0) < stats.MIN_CLUSTER_N:
    return f'fewer than {stats.MIN_CLUSTER_N} unregularized runs to split: {missing}'
  return f'the unregularized runs are not clustered: {missing}'


def noise_notes(ctx):
  """The z-sampling noise share of the unregularized runs' final log-cond, as a
  note for the rows that rank or correlate it ([] when undefined)."""
  noise = ctx.unregularized_noise
  if not noise or noise['noise_share'] is None:
    return []
  return [f'z-sampling noise share {noise["noise_share"]:.3g} of the run-to-run '
          'variance of final log-cond']


def for_dataset(r, target_dataset, dataset):
  """NOT RUN, with the measured value in the note, when the sweep's data differ;
  judged, with 'stand_in' set, on a stand-in dataset (STAND_INS)."""
  if dataset == target_dataset or r['verdict'] == stats.NOT_RUN:
    return r
  if STAND_INS.get(dataset) == target_dataset:
    return dict(r, stand_in=dataset)
  measured = fmt.num(r['measured'])
  if r['ci_low'] is not None:
    measured += f' [{fmt.num(r["ci_low"])}, {fmt.num(r["ci_high"])}]'
  note = (f'the target is for {target_dataset}; this sweep is {dataset}: measured '
          f'{measured}, n = {r["n"]}')
  return dict(r, measured=None, ci_low=None, ci_high=None, ci_method=None,
              verdict=stats.NOT_RUN,
              note=note + (f'; {r["note"]}' if r['note'] else ''))
