"""Replication report of a sweep: figures and statistics from the per-run files.

  python -m tf_gancond.report --sweep_dir=runs/quick [--output=runs/quick/report]

Reads each run's `config.txt`, `metrics.jsonl` and `status.json` (records.py), and
writes to the output directory (default <sweep_dir>/report) a self-contained
Markdown report, `report.md`, its PNG figures (matplotlib, Agg), `report.json` with
the checks' rows and `analysis.json` with every number of the report. The runs of
one report share one dataset.

  records.py   RunData per run, load_sweep.
  shared.py    Context: the analyses several checks share (score columns, cluster
               split, z-sampling noise, pairs by seed), computed once.
  checks/      one module per check of the papers; checks/__init__.py is the
               registry, in page order (docs/experiments.md describes each).
  render.py    report.md.

Each check returns rows ({'id', 'check', 'target', 'rule', 'measured', 'ci_low',
'ci_high', 'ci_method', 'n', 'verdict', 'note', 'family', 'stand_in'};
checks/base.py) with a verdict PASS, FAIL, INCONCLUSIVE or NOT RUN by the rule
stated in the row.

"log-cond" is ln cond(M_z) = 2 ln(sigma_max / sigma_min of J_z), natural log, averaged
over the fixed probe batch (docs/experiments.md#0-common-setup); a final log-cond
over final_probe_num_z z (train.py) where a run set it.
"""

import json
import os
import sys
import time

import numpy as np

from tf_gancond import runlog
from tf_gancond import stats
from tf_gancond.report import checks as checks_lib
from tf_gancond.report import render
# The package's names that results.py, the tests and users import from here.
from tf_gancond.report.checks.o1 import late_log_cond
from tf_gancond.report.checks.o5 import drawn_lambdas
from tf_gancond.report.records import (COLLAPSE_SCORE, SWEEP_MANIFEST, SWEEP_STATUS,
                                       ReportError, RunData, load_sweep, sweep_dataset)
from tf_gancond.report.render import (render_final_values, render_log_cond_noise,
                                      render_paired)
from tf_gancond.report.shared import Context, log_cond_noise

REPORT_FILE = 'report.md'
JSON_FILE = 'report.json'
ANALYSIS_FILE = 'analysis.json'


def analyse(runs, cluster_method='kmeans', num_resamples=stats.DEFAULT_BOOTSTRAP,
            seed=0, collapse_score=COLLAPSE_SCORE):
  """The Context of `runs` with every number of the report in ctx.analysis: the
  shared analyses, each check's own (Check.analyse) and the rows of every check
  ('checks'). Sets run.scores and run.cluster."""
  ctx = Context(runs, sweep_dataset(runs), cluster_method, num_resamples, seed,
                collapse_score)
  for check in checks_lib.CHECKS:
    ctx.analysis.update(check.analyse(ctx))
  ctx.analysis['checks'] = [row for check in checks_lib.CHECKS
                            for row in check.judge(ctx)]
  return ctx


def draw_figures(ctx, output):
  """[(Figure, file name or None, caption fields)] of every check, in page order."""
  drawn = []
  for check in checks_lib.CHECKS:
    for figure in check.figures:
      filename, extra = figure.draw(ctx, output)
      if filename or figure.always:
        drawn.append((figure, filename, extra))
  return drawn


def write_report(sweep_dir, output=None, cluster_method='kmeans',
                 num_resamples=stats.DEFAULT_BOOTSTRAP, seed=0,
                 collapse_score=COLLAPSE_SCORE, source=None):
  """Writes report.md, report.json (the checks), analysis.json (every number) and
  the figures; returns the report.md path. `source` replaces report.md's line on
  where the runs are (default: sweep_dir and the time of writing)."""
  if cluster_method not in stats.CLUSTER_METHODS:
    raise ReportError(f'cluster_method={cluster_method!r} is not allowed; choose one '
                      f'of: {", ".join(stats.CLUSTER_METHODS)}')
  if not isinstance(num_resamples, int) or num_resamples < 1:
    raise ReportError(f'num_resamples={num_resamples!r} must be a positive integer')
  name, runs = load_sweep(sweep_dir, collapse_score)
  output = output or os.path.join(sweep_dir, 'report')
  if os.path.exists(output) and not os.path.isdir(output):
    raise ReportError(f'output={output!r} exists and is not a directory')
  os.makedirs(output, exist_ok=True)
  ctx = analyse(runs, cluster_method, num_resamples, seed, collapse_score)
  figures = draw_figures(ctx, output)
  source = source or (f'Sweep directory: `{os.path.abspath(sweep_dir)}`; written '
                      f'{time.strftime("%Y-%m-%d %H:%M")} by `python -m '
                      'tf_gancond.report`.')
  text = render.render_markdown(name, source, ctx, figures)
  runlog.atomic_write_text(os.path.join(output, REPORT_FILE), text)
  analysis = ctx.analysis
  analysis['figures'] = {figure.key: filename for figure, filename, _ in figures}
  analysis['runs'] = [dict({
      'name': r.name, 'setting': r.setting, 'seed': r.seed, 'state': r.state,
      'precision': r.precision, 'step': r.step, 'outcome': r.outcome,
      'outcome_reason': r.outcome_reason, 'final_log_cond': r.final_log_cond,
      'cluster': r.cluster, 'final_scores': r.final_scores,
      'min_class_count': r.min_class_count,
      'median_step_time': r.median_step_time,
      'evaluated_steps': r.evaluated_steps}, **_per_z_percentiles(r))
      for r in runs]
  runlog.atomic_write_json(os.path.join(output, ANALYSIS_FILE),
                           runlog._jsonable(analysis))
  runlog.atomic_write_text(os.path.join(output, JSON_FILE), json.dumps(
      runlog._jsonable(analysis['checks']), indent=1) + '\n')
  return os.path.join(output, REPORT_FILE)


def _per_z_percentiles(run):
  """{'final_log_cond_p10', 'final_log_cond_p90'}: percentiles over z of the run's
  final per-z ln cond, None without it."""
  values = run.final_per_z_log_cond
  if values is None or not np.all(np.isfinite(values)):
    return {'final_log_cond_p10': None, 'final_log_cond_p90': None}
  p10, p90 = np.percentile(values, [10, 90])
  return {'final_log_cond_p10': float(p10), 'final_log_cond_p90': float(p90)}


# ----------------------------------------------------------------------------
# Command line.


def define_flags():
  from absl import flags
  flags.DEFINE_string('sweep_dir', None, 'Sweep directory (launch/run_sweep.py) or any '
                      'directory of run directories, or one run directory.')
  flags.DEFINE_string('output', None, 'Output directory (default <sweep_dir>/report).')
  flags.DEFINE_enum('cluster_method', 'kmeans', list(stats.CLUSTER_METHODS),
                    'Cluster split of runs by final log-cond.')
  flags.DEFINE_integer('bootstrap', stats.DEFAULT_BOOTSTRAP, 'Bootstrap resamples.')
  flags.DEFINE_integer('bootstrap_seed', 0, 'Seed of the bootstrap resampling.')
  flags.DEFINE_float('collapse_score', COLLAPSE_SCORE, 'A finished run whose final '
                     'classifier / Inception score is below this is "collapsed".')


def _fail(message):
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def main(argv):
  from absl import flags
  flags_ = flags.FLAGS
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]!r}; every option is a --flag')
  if not flags_.sweep_dir:
    _fail('--sweep_dir is required')
  try:
    path = write_report(flags_.sweep_dir, flags_.output, flags_.cluster_method,
                        flags_.bootstrap, flags_.bootstrap_seed, flags_.collapse_score)
  except ReportError as e:
    _fail(str(e))
  print(f'report: {path}')


def run():
  """Console entry point (tf_gancond-report)."""
  from absl import app
  from absl import flags
  define_flags()

  def parser(argv):
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      _fail(str(e).splitlines()[0])
  app.run(main, flags_parser=parser)
