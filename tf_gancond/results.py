"""The results page: compact records of campaign runs, and the page built from them.

  python -m tf_gancond.results collect --sweep_dir=~/tf_gancond_campaign/phase2_odena_jc
  python -m tf_gancond.results build
  python -m tf_gancond.results restore --part=results/phase2_odena_jc --sweep_dir=DIR
  python -m tf_gancond.results match --part=DIR --reference=results/mnist_stage1

`collect` copies what a report needs of every run of a sweep that finished (made at
the sweep's length) or diverged (a result too, shown as such) into
`results/<sweep folder name>/`: per run `config.txt`, `status.json` and
`metrics.jsonl.gz`, never checkpoints or SavedModels; beside them the sweep's
manifest `sweep.json` (machine paths removed) and `progress.json`, the state of
every run of the sweep when it was collected (finished, running at step N,
pending).

`build` rebuilds everything else from `results/` alone: each part's report
(`tf_gancond.report` on its unpacked records) in `results/<part>/report/`, each
part's page `results/<part>/README.md` (the rows its runs judge, the command that
made them, what is not finished yet, the CPU hours its runs record and its
hand-written `NOTES.md`), and `results/README.md`. The page opens with
`HEADER.md`'s opening (up to its first `## ` heading) and one scorecard: a row per
statistic the checks of the registry (tf_gancond/report/checks/) judge, in its
order, each with the paper's dataset and value beside ours per dataset, taken from
the part that judges it most completely (_most_complete) and linked. Under it come
HEADER.md's first section (the findings), the key figures of those parts, embedded,
the table of the unstated choices (each `mnist_choice_<field>` part against its
`mnist_stage1` twins, a batch size also at equal images, against `mnist_stage2` once
its runs reach them, and the probes under batch statistics in `mnist_batch_stats/`),
and HEADER.md's other sections (glossary, settings that differ from the papers).
Then a table of the parts per dataset, MNIST (the papers' own) first, each linking
its page. Provenance and history are in the hand-written `PROVENANCE.md`, which the
page links.

`restore` is collect's inverse for a new machine: it writes the committed finished
runs back into a sweep folder, so the sweep runner skips them and the campaign goes
on with the rest (a diverged run among them, which has no checkpoint to go on from).

`match` tells whether the runs of one part or sweep folder, made again from step 0
(stage 2 on a new machine, say), re-made the runs of the same name in another up to a
shared step: per run, the steps either resumed at, the train fields (timings aside)
whose values differ in any shared record and the first such step, and the largest
differences of per-z ln cond and of the scores there.

Exit codes: 0 done; 2 bad input (one line).
"""

import collections
import dataclasses
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import zlib

import numpy as np

from tf_gancond import config as config_lib
from tf_gancond import report as report_lib
from tf_gancond import runlog
from tf_gancond import stats
from tf_gancond.report import checks as checks_lib
from tf_gancond.report import fmt
from tf_gancond.report import precision as precision_lib
from tf_gancond.report import records
from tf_gancond.report import render as render_lib
from tf_gancond.report.checks import base as checks_base

README = 'README.md'
HEADER = 'HEADER.md'
PROVENANCE = 'PROVENANCE.md'
DOCS = '../docs/experiments.md'  # From results/README.md.
PROGRESS_FILE = 'progress.json'
NOTES_FILE = 'NOTES.md'
RECORDS_GZ = runlog.METRICS_FILE + '.gz'
PAPERS_DATASET = 'mnist'  # Its parts come first on the page.
DATASET_NAMES = {'mnist': 'MNIST', 'fashion_mnist': 'Fashion-MNIST',
                 'cifar10': 'CIFAR-10', 'stl10': 'STL-10',
                 'lsun_bedroom': 'LSUN bedroom'}
NOT_JUDGED = (stats.NOT_RUN, checks_base.SETTING)
PARTS_TABLE_HEADER = ('| part (its page) | sweep: settings; seeds | unlike its sweep\'s '
                      'other parts | runs finished | steps | CPU-hours |')
# The figures the page links, (report figure key, words), in the checks' order.
KEY_FIGURES = tuple((figure.key, figure.link) for check in checks_lib.CHECKS
                    for figure in check.figures)
# Parts that change one unstated choice of the reference part's baselines
# (results/campaign.sh): mnist_choice_<config field> against mnist_stage1.
CHOICE_PREFIX, CHOICE_REFERENCE = 'mnist_choice_', 'mnist_stage1'
CHOICE_QUANTITIES = (('final_log_cond', 'ln cond'), ('classifier_score', 'CS'),
                     ('frechet_distance', 'FD'))
# The reference runs extended to the paper's length (results/campaign.sh): their
# later steps pair with a batch-size choice at equal images.
EXTENDED_REFERENCE = 'mnist_stage2'
# The same quantities at an evaluated step (analysis.json's 'evaluated_steps').
POINT_QUANTITIES = ('mean_log_cond',) + tuple(key for key, _ in CHOICE_QUANTITIES[1:])
# The probes of the reference runs' G under both BatchNorm readings, no new training
# (results/campaign.sh): <run>.<bn_mode>.json of `python -m tf_gancond.probe --run_dir`.
BATCH_STATS_PROBES = 'mnist_batch_stats'
# bfloat16 runs against their float32 twins in CHOICE_REFERENCE
# (tf_gancond/report/precision.py, docs/experiments.md#bf16).
PRECISION_PART = 'mnist_bf16'
BN_MODES = ('inference', 'batch_stats')


class ResultsError(ValueError):
  """Bad input to collect, build or restore; the message is one line."""


def _read_json(path):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ResultsError(f'{path!r} cannot be read as JSON ({e})') from None


def _portable_manifest(manifest):
  """sweep.json without this machine's paths (commands and work dirs)."""
  runs = [{k: v for k, v in run.items() if k not in ('command', 'workdir')}
          for run in manifest.get('runs', [])]
  portable = {'sweep': manifest.get('sweep'), 'extra': manifest.get('extra', {}),
              'runs': runs}
  if manifest.get('setting_extra'):
    portable['setting_extra'] = manifest['setting_extra']
  return portable


# The states of a run that has ended for good and is a result: a diverged run is
# kept and shown as one (its records end at the step it diverged).
COLLECTED_STATES = ('finished', 'diverged')


def collect(sweep_dir, results_dir='results'):
  """Copies the compact records of `sweep_dir`'s runs that ended (COLLECTED_STATES);
  returns their names."""
  sweep_dir = os.path.abspath(os.path.expanduser(sweep_dir))
  manifest_path = os.path.join(sweep_dir, report_lib.SWEEP_MANIFEST)
  if not os.path.isfile(manifest_path):
    raise ResultsError(f'sweep_dir={sweep_dir!r} has no {report_lib.SWEEP_MANIFEST}; '
                       'give the folder of a launch.run_sweep sweep')
  manifest = _read_json(manifest_path)
  part = os.path.join(results_dir, os.path.basename(sweep_dir.rstrip('/')))
  os.makedirs(part, exist_ok=True)
  for name in os.listdir(part):  # What a killed collect left (_collect_run).
    if name.startswith('.') and name.endswith('.collecting'):
      shutil.rmtree(os.path.join(part, name))
  runlog.atomic_write_json(os.path.join(part, report_lib.SWEEP_MANIFEST),
                           _portable_manifest(manifest))
  progress, copied = {}, []
  for run in manifest.get('runs', []):
    workdir = os.path.join(sweep_dir, run['name'])
    status = runlog.read_status(workdir)
    records = runlog.read_records(workdir)  # A running run's status keeps its start step.
    state = status.get('state', 'pending')
    train_steps = status.get('train_steps', run.get('train_steps'))
    if state == 'finished' and (train_steps or 0) < run.get('train_steps', 0):
      # Made shorter, waiting for this sweep to extend it (a stage-1 run copied into
      # stage 2): not yet a result of it. A run that ended early by design (an O7
      # run that memorized) was made at the sweep's length and is one.
      state, train_steps = 'pending', run['train_steps']
    progress[run['name']] = {'state': state,
                             'step': max([status.get('step', 0)] +
                                         [r.get('step', 0) for r in records]),
                             'train_steps': train_steps}
    if state not in COLLECTED_STATES or runlog.folder_in_use(workdir):
      continue  # In use: a launcher has taken it up again (a diverged run retried).
    _collect_run(workdir, os.path.join(part, run['name']))
    copied.append(run['name'])
  runlog.atomic_write_json(os.path.join(part, PROGRESS_FILE), progress)
  return copied


def _collect_run(workdir, target):
  """Writes `target`'s config.txt, status.json and metrics.jsonl.gz from the run in
  `workdir`: made whole under a hidden name beside it (which restore and the report
  pass over), then swapped into place (runlog.replace_folder), so a kill leaves the
  records collected before or the new ones, never a cut file or a mix of the two."""
  parent, name = os.path.split(target)
  tmp = os.path.join(parent, f'.{name}.collecting')
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  for f in (runlog.CONFIG_FILE, runlog.STATUS_FILE):
    shutil.copyfile(os.path.join(workdir, f), os.path.join(tmp, f))
  with open(os.path.join(workdir, runlog.METRICS_FILE), 'rb') as src:
    # mtime=0: the same records give the same bytes, so a re-collect is no change.
    with gzip.GzipFile(os.path.join(tmp, RECORDS_GZ), 'wb', mtime=0) as dst:
      shutil.copyfileobj(src, dst)
  runlog.replace_folder(tmp, target)


def _unpack(part, into):
  """A sweep folder the report reads, made from a results part's compact records."""
  shutil.copyfile(os.path.join(part, report_lib.SWEEP_MANIFEST),
                  os.path.join(into, report_lib.SWEEP_MANIFEST))
  progress = os.path.join(part, PROGRESS_FILE)
  if os.path.isfile(progress):  # The report shows unfinished runs with their state.
    runlog.atomic_write_json(os.path.join(into, report_lib.SWEEP_STATUS),
                             {'runs': _read_json(progress)})
  for name in _committed_runs(part):
    _unpack_run(os.path.join(part, name), os.path.join(into, name))


def _committed_runs(part):
  return [name for name in sorted(os.listdir(part)) if not name.startswith('.') and
          os.path.isfile(os.path.join(part, name, RECORDS_GZ))]


def _unpack_run(committed, run_dir):
  """Writes a run folder's config.txt, status.json and metrics.jsonl from its records."""
  os.makedirs(run_dir)
  for f in (runlog.CONFIG_FILE, runlog.STATUS_FILE):
    shutil.copyfile(os.path.join(committed, f), os.path.join(run_dir, f))
  with gzip.open(os.path.join(committed, RECORDS_GZ), 'rb') as src, open(
      os.path.join(run_dir, runlog.METRICS_FILE), 'wb') as dst:
    shutil.copyfileobj(src, dst)


def restore(part, sweep_dir):
  """Puts `part`'s committed finished runs into `sweep_dir` where it has no such entry.

  For a new machine: the sweep runner skips a run whose status.json says finished, so
  the campaign goes on with the runs that were not committed. A run folder (or link)
  already in `sweep_dir` is left as it is. The sweep folder is locked as the runner
  locks it, so a runner still at work there is not raced. Returns the restored run
  names; raises ResultsError (one line) for a part that cannot be read, leaving no
  half-written run folder.
  """
  if not os.path.isfile(os.path.join(part, report_lib.SWEEP_MANIFEST)):
    raise ResultsError(f'part={part!r} has no {report_lib.SWEEP_MANIFEST}; give a '
                       'results/<part> folder made by collect')
  try:
    runlog.lock_folder(sweep_dir, flag='sweep_dir')
  except config_lib.ConfigError as e:  # In use by a sweep runner.
    raise ResultsError(str(e)) from None
  except OSError as e:
    raise ResultsError(f'sweep_dir={sweep_dir!r} cannot be made or locked ({e})') from None
  restored = []
  for name in _committed_runs(part):
    run_dir = os.path.join(sweep_dir, name)
    if os.path.lexists(run_dir) or _read_json(os.path.join(
        part, name, runlog.STATUS_FILE)).get('state') != 'finished':
      continue  # A diverged run has no checkpoint here: the sweep makes it again.
    # Unpacked under a hidden name and renamed: a kill or a bad record leaves no
    # folder that the runner or the report would take for a run.
    tmp = os.path.join(sweep_dir, f'.{name}.restoring')
    shutil.rmtree(tmp, ignore_errors=True)
    try:
      _unpack_run(os.path.join(part, name), tmp)
    except (OSError, EOFError, zlib.error) as e:  # A missing file, a damaged gzip.
      shutil.rmtree(tmp, ignore_errors=True)
      raise ResultsError(f'{os.path.join(part, name)!r} cannot be restored '
                         f'({str(e).splitlines()[0][:160]})') from None
    os.rename(tmp, run_dir)
    restored.append(name)
  return restored


# Fields that time a run rather than describe its numbers; `match` leaves them out.
TIMING_FIELDS = frozenset(
    ('step_time', 'steps_per_sec', 'process_cpu_seconds', 'eval_seconds'))


def _run_records(run_dir):
  """A run's records: its live metrics.jsonl (a sweep folder), else its compact copy
  (a results part). A cut line is skipped; a file that cannot be read is bad input."""
  live = os.path.join(run_dir, runlog.METRICS_FILE)
  path = live if os.path.isfile(live) else os.path.join(run_dir, RECORDS_GZ)
  try:
    return runlog.read_records(path)
  except (OSError, EOFError, zlib.error) as e:  # A damaged gzip, say.
    raise ResultsError(f'{path!r} cannot be read '
                       f'({str(e).splitlines()[0][:160]})') from None


def _by_step(recs, kind, last_step):
  """{step: the last record of `kind` at it}, for steps up to `last_step`."""
  return {r['step']: r for r in recs
          if r.get('kind') == kind and r.get('step', last_step + 1) <= last_step}


def _largest_difference(run, a, b, fields):
  """max |a[f] - b[f]| over the records of the steps both hold, element-wise for
  lists; two NaNs (or equal infinities) do not differ, and a non-finite value against
  any other differs by inf. 0.0 when they share none."""
  largest = 0.0
  for step in set(a) & set(b):
    for field in fields:
      if a[step].get(field) is None or b[step].get(field) is None:
        continue
      # np.float64 reads runlog's 'nan' and 'inf' strings as the numbers.
      x, y = (np.asarray(r[step][field], np.float64) for r in (a, b))
      if x.shape != y.shape:
        raise ResultsError(f'{run}: {field} at step {step} holds {x.size} per-z '
                           f'values in --reference and {y.size} in --part; runs of '
                           'another probe size do not compare')
      same = (x == y) | (np.isnan(x) & np.isnan(y))
      diff = np.where(same, 0.0, np.abs(x - y))
      diff[np.isnan(diff)] = math.inf  # NaN against a number.
      largest = max(largest, float(diff.max(initial=0.0)))
  return largest


def match(part, reference, step):
  """Per run of `part` that `reference` also holds, how it compares up to `step`.

  Returns [{'run', 'resumes', 'reference_resumes' (steps in (0, step] resumed at),
  'train_records' (shared up to `step`), 'differing_fields' (the fields, timings
  aside, with another value in any of them), 'first_difference_step' (the first
  such record's step; None), 'largest_log_cond_difference' (over the shared probes'
  per-z values), 'largest_score_difference' (classifier score and FD, shared
  evals), 'mean_log_cond' ((reference, part) at the probe of `step`; None)}].
  """
  for folder in (part, reference):
    if not os.path.isdir(folder):
      raise ResultsError(f'{folder!r} is not a folder: give a results part or a '
                         'sweep folder')
  rows = []
  for name in sorted(os.listdir(part)):
    if name.startswith('.') or not os.path.isdir(os.path.join(reference, name)):
      continue
    ours, theirs = (_run_records(os.path.join(p, name)) for p in (part, reference))
    if not ours or not theirs:
      continue
    train = [_by_step(r, 'train', step) for r in (theirs, ours)]
    shared = sorted(set(train[0]) & set(train[1]))
    differing, first = set(), None
    for s in shared:
      a, b = train[0][s], train[1][s]
      changed = {f for f in set(a) | set(b)
                 if f not in TIMING_FIELDS and a.get(f) != b.get(f)}
      if changed and first is None:
        first = s
      differing |= changed
    probes = [_by_step(r, 'probe', step) for r in (theirs, ours)]
    evals = [_by_step(r, 'eval', step) for r in (theirs, ours)]
    at_step = [records.as_float(p.get(step, {}).get('mean_log_cond')) for p in probes]
    rows.append({
        'run': name,
        'resumes': [s for s in _by_step(ours, 'start', step) if s > 0],
        'reference_resumes': [s for s in _by_step(theirs, 'start', step) if s > 0],
        'train_records': len(shared), 'differing_fields': sorted(differing),
        'first_difference_step': first,
        'largest_log_cond_difference': _largest_difference(name, *probes,
                                                           ('log_cond',)),
        'largest_score_difference': _largest_difference(
            name, *evals, ('classifier_score', 'frechet_distance')),
        'mean_log_cond': None if None in at_step else tuple(at_step)})
  return rows


def _match_lines(rows, step):
  lines = [f'run | reference resumes | resumes | train records to step {step} | '
           'train fields that differ | largest per-z ln cond difference | largest '
           f'score difference | mean ln cond at step {step}: reference, this']
  for r in rows:
    first = ('none' if r['first_difference_step'] is None else
             f"{', '.join(r['differing_fields'])}; first at step "
             f"{r['first_difference_step']}")
    means = ('not reached' if r['mean_log_cond'] is None else
             '{:.4f}, {:.4f}'.format(*r['mean_log_cond']))
    lines.append(f"{r['run']} | {r['reference_resumes']} | {r['resumes']} | "
                 f"{r['train_records']} | {first} | "
                 f"{r['largest_log_cond_difference']:.2g} | "
                 f"{r['largest_score_difference']:.2g} | {means}")
  return lines


def _command(manifest):
  seeds = sorted({run['seed'] for run in manifest.get('runs', [])})
  def fields(overrides):
    return ','.join(f'{k}={v}' for k, v in sorted(overrides.items()))
  extra = fields(manifest.get('extra', {}))
  command = (f'python -m launch.run_sweep --sweep={manifest.get("sweep")} '
             f'--num_seeds={len(seeds)} --sweep_dir=<dir>')
  command += f' --extra={extra}' if extra else ''
  for setting, overrides in sorted(manifest.get('setting_extra', {}).items()):
    command += f' --setting_extra={setting}:{fields(overrides)}'
  return command


def _cell(value, digits=3):
  if value is None:
    return '—'
  if isinstance(value, float):
    return f'{value:.{digits}g}'
  return str(value)


def _ci_cell(row):
  """The row's 95% interval with its method (report.json 'ci_method')."""
  if row.get('ci_low') is None:
    return '—'
  method = f' ({row["ci_method"]})' if row.get('ci_method') else ''
  return f'[{_cell(row["ci_low"])}, {_cell(row["ci_high"])}]{method}'


def _verdict_cell(row):
  verdict = f'**{row.get("verdict")}**'
  return verdict + (f' ({row["note"]})' if row.get('note') else '')


def _judged(checks):
  return [row for row in checks if row.get('verdict') != stats.NOT_RUN]


def _scorecard_lines(checks):
  """A part's scorecard: the rows its runs judge, then the others named in one line."""
  if not checks:
    return ['No scorecard rows: the report found no check that this sweep covers.', '']
  judged = _judged(checks)
  lines = []
  if judged:
    lines += ['| check | target | measured | 95% CI | n | verdict |',
              '|---|---|---|---|---|---|']
    lines += [f'| {row.get("check")} | {row.get("target")} | '
              f'{_cell(row.get("measured"))} | {_ci_cell(row)} | '
              f'{_cell(row.get("n"))} | {_verdict_cell(row)} |' for row in judged]
    lines.append('')
  def label(row):  # 'O5' of 'O5 JC runs in the good cluster'.
    return row.get('check').split()[0]
  judged_labels = {label(row) for row in judged}
  # Checks with no judged row, by their labels (O3, A1): the rows are in the
  # scorecard; the other checks' rows that are not run, grouped by their reason.
  unjudged, by_reason = {}, {}
  for row in checks:
    if row.get('verdict') != stats.NOT_RUN:
      continue
    if label(row) in judged_labels:
      by_reason.setdefault(row.get('note') or 'no reason recorded', []).append(
          row.get('check'))
    else:
      unjudged.setdefault(label(row))
  if unjudged:
    lines += ['Not judged by these runs: ' + ', '.join(unjudged) + '.', '']
  if by_reason:
    lines += ['Rows of the checks above that these runs cannot judge: ' + '; '.join(
        f'{", ".join(names)} ({reason})' for reason, names in by_reason.items()) +
              '.', '']
  return lines


@dataclasses.dataclass
class Part:
  """A built results part: what the page's summary and its table of parts read."""
  name: str
  progress: dict        # progress.json: {run: {'state', 'step', 'train_steps'}}.
  rows: list            # report.json; [] before any run has finished.
  cpu_seconds: dict     # _cpu_seconds_by_run.
  dataset: str          # '' when no record says.
  steps: int            # Its finished runs' shortest length; 0 without one.
  finished: int         # Its finished runs.
  figures: dict         # {report figure key: file name}.
  runs: list = dataclasses.field(default_factory=list)  # analysis.json's 'runs'.
  manifest: dict = dataclasses.field(default_factory=dict)  # sweep.json.

  @property
  def extra(self):
    """sweep.json's --extra: {config field: value}."""
    return self.manifest.get('extra', {})


def _natural(name):
  """A sort key that orders the numbers in a name by value (g938 before g23440)."""
  return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]


def _dataset_name(dataset):
  return DATASET_NAMES.get(dataset, dataset or 'dataset not recorded')


def _ordered_datasets(parts):
  """The datasets of `parts`, the papers' own first, then the others by name."""
  return sorted({p.dataset for p in parts}, key=lambda d: (d != PAPERS_DATASET, d))


def _most_complete(candidates, check):
  """The (part, row) that judges a row most completely: a row with n at least the
  check's minimum first, and among those the longest runs; then the most runs
  judged, the most runs finished, the longest runs, and the part that sorts last
  (phase3 after phase1)."""
  def completeness(candidate):
    part, row = candidate
    enough = row['n'] >= check.min_runs
    return (enough, part.steps if enough else 0, row['n'], part.finished,
            part.steps, _natural(part.name))
  return max(candidates, key=completeness)


def _summary_rows(parts):
  """[(check, row id, {dataset: (part, row)})] in the registry's order: every row
  id some part judges, each dataset's most complete part; a check none judges once,
  with no dataset."""
  found = []
  for check in checks_lib.CHECKS:
    ids = {}  # row id -> {dataset: [(part, row)]}, in the reports' order.
    for family in check.plain:
      for part in parts:
        for row in part.rows:
          if row['family'] == family and row['verdict'] not in NOT_JUDGED:
            ids.setdefault(row['id'], {}).setdefault(part.dataset, []).append(
                (part, row))
    found += [(check, id_, {d: _most_complete(c, check) for d, c in by.items()})
              for id_, by in ids.items()]
    if not ids:
      found.append((check, None, {}))
  return found


def _docs_link(row, check):
  label = row['check'].split()[0] if row else check.id.upper().replace('_', '/')
  anchor = label.lower() if re.fullmatch(r'[oas]\d', label.lower()) else check.anchor
  return f'[{label}]({DOCS}#{anchor})'


def _summary_lines(parts):
  """The page's first table (one row per statistic of the registry's checks), the
  stand-in sentence once per dataset, and {check id: {dataset: part}}."""
  datasets = _ordered_datasets(parts)
  several = len(datasets) > 1
  lines = ['## Scorecard', '',
           'Each statistic the checks judge, from the part that judges it most '
           'completely (enough runs, then the longest, then the most; every part\'s '
           'rows are on its own page, linked). PASS or FAIL needs at least the '
           'paper\'s n (10 runs for most of [O]\'s claims; 4 where it gives none) '
           'and runs as long as the paper\'s; otherwise INCONCLUSIVE, with the '
           'reason in the caveat. Settings of the runs are in the parts\' own '
           'tables.', '',
           '| check, in plain words | paper (dataset, value) | ours, per dataset | '
           '95 % CI (method) | n, steps | verdict | caveat |',
           '|---|---|---|---|---|---|---|']
  shown = {}
  for check, id_, by_dataset in _summary_rows(parts):
    if id_ is None:
      target = next((r['target'] for p in parts for r in p.rows
                     if r['family'] in check.plain), check.quote)
      lines.append(f'| {_docs_link(None, check)} {next(iter(check.plain.values()))} '
                   f'| {_paper_dataset(check, None)}{target} | — | — | — | '
                   '**NOT RUN** | no part has runs for it yet |')
      continue
    order = [d for d in datasets if d in by_dataset]
    first = by_dataset[order[0]][1]
    words = check.plain[first['family']]
    if ':' in id_:
      words += f': {fmt.label(id_.partition(":")[2])}'
    cells = {k: [] for k in ('ours', 'ci', 'n', 'verdict', 'caveat')}
    for d in order:
      part, row = by_dataset[d]
      shown.setdefault(check.id, {}).setdefault(d, part)
      prefix = f'{_dataset_name(d)}: ' if several else ''
      cells['ours'].append(prefix + _cell(row.get('measured')))
      cells['ci'].append(_ci_cell(row))
      steps = f', {part.steps:,} steps' if part.steps else ''
      cells['n'].append(f'{row["n"]}{steps} ({_part_link(part.name)})')
      cells['verdict'].append(f'**{row["verdict"]}**')
      cells['caveat'].append(row['note'].replace('|', '/') or '—')
    joined = {k: '<br>'.join(v) for k, v in cells.items()}
    lines.append(f'| {_docs_link(first, check)} {words} | '
                 f'{_paper_dataset(check, first)}{first["target"]} | {joined["ours"]} '
                 f'| {joined["ci"]} | {joined["n"]} | {joined["verdict"]} | '
                 f'{joined["caveat"]} |')
  lines.append('')
  for d in datasets:
    if any(r.get('stand_in') == d for p in parts for r in p.rows):
      lines += [render_lib.stand_in_sentence(d, _dataset_name), '']
  return lines, shown


def _paper_dataset(check, row):
  """'MNIST: ' for a check whose target names its dataset (or a row judged on a
  stand-in for one); '' where the paper names none."""
  dataset = check.dataset or (checks_base.STAND_INS.get(row.get('stand_in'))
                              if row else None)
  return f'{_dataset_name(dataset)}: ' if dataset else ''


def _figure_lines(parts, shown):
  """The key figures, embedded: each check's figures from the part its scorecard row
  comes from, of the first dataset (MNIST first) with such a row that drew them, so
  a figure never stands for a check its part does not judge (O3's spectra from a
  part without VAEs)."""
  datasets = _ordered_datasets(parts)
  lines = ['## Key figures', '']
  for check in checks_lib.CHECKS:
    for figure in check.figures:
      judging = [shown[check.id][d] for d in datasets if d in shown.get(check.id, {})]
      drew = [p for p in judging if p.figures.get(figure.key)]
      if drew:
        part = drew[0]
        filename = os.path.basename(part.figures[figure.key])
        lines += [f'![{figure.link}]({part.name}/report/{filename})', '',
                  f'*{_docs_link(None, check)}, {figure.link}: from '
                  f'{_part_link(part.name)}.*', '']
  return lines if len(lines) > 2 else []


def _promoted(text):
  """Markdown with every heading below the second level one level higher (the
  report's and NOTES.md's '### ' sections are a part page's '## ' sections)."""
  return re.sub(r'^#(#{2,5}) ', r'\1 ', text, flags=re.M)


def _part_link(name, words=None):
  """A link from results/README.md to the part's page, with its name or `words`."""
  return f'[{words or name}]({name}/{README})'


def _seeds_text(seeds):
  """'seeds 0-9', 'seeds 0, 2', 'seed 0'."""
  if len(seeds) == 1:
    return f'seed {seeds[0]}'
  if seeds == list(range(seeds[0], seeds[-1] + 1)):
    return f'seeds {seeds[0]}-{seeds[-1]}'
  return 'seeds ' + ', '.join(map(str, seeds))


def _overrides(manifest):
  """The sweep's overrides of a part, {(setting or '', field): value}: --extra's
  under '', each --setting_extra under its setting."""
  found = {('', k): v for k, v in manifest.get('extra', {}).items()}
  for setting, fields in manifest.get('setting_extra', {}).items():
    found.update({(setting, k): v for k, v in fields.items()})
  return found


def _distinct_overrides(parts):
  """{part name: 'field=value; setting: field=value, ...' or '—'}: the overrides of
  each part that another part of the same sweep lacks or sets otherwise, so the
  table of parts tells apart the parts of one sweep (a path by its last
  component)."""
  by_part = {p.name: _overrides(p.manifest) for p in parts}
  text = {}
  for part in parts:
    others = [by_part[p.name] for p in parts if p.name != part.name and
              p.manifest.get('sweep') == part.manifest.get('sweep')]
    own = {key: value for key, value in sorted(by_part[part.name].items())
           if any(other.get(key) != value for other in others)}
    groups = {}
    for (setting, field), value in own.items():
      shown = f'…/{os.path.basename(value)}' if '/' in str(value) else value
      groups.setdefault(setting, []).append(f'{field}={shown}')
    text[part.name] = '; '.join(
        (f'{setting}: ' if setting else '') + ', '.join(fields)
        for setting, fields in groups.items()) or '—'
  return text


def _parts_lines(parts):
  """The table of parts (PARTS_TABLE_HEADER): per part its page, sweep, settings and
  seeds, what sets it apart from its sweep's other parts, runs finished (and
  diverged) of those planned, its finished runs' shortest length and the CPU hours
  they record."""
  distinct = _distinct_overrides(parts)
  lines = [PARTS_TABLE_HEADER, '|---|---|---|---|---|---|']
  for part in parts:
    runs = part.manifest.get('runs', [])
    settings = ', '.join(dict.fromkeys(run['setting'] for run in runs))
    what = f'`{part.manifest.get("sweep")}`: {settings}; ' + _seeds_text(
        sorted({run['seed'] for run in runs}))
    states = collections.Counter(p.get('state') for p in part.progress.values())
    done = f'{states["finished"]} of {len(part.progress)}'
    done += f' ({states["diverged"]} diverged)' if states['diverged'] else ''
    hours = _cpu_hours(part.cpu_seconds)
    lines.append(f'| {_part_link(part.name)} | {what} | {distinct[part.name]} | '
                 f'{done} | {f"{part.steps:,}" if part.steps else "—"} | '
                 f'{"—" if hours is None else f"{hours:.2f}"} |')
  return lines + ['']


def _progress_lines(progress):
  runs = sorted(progress.items())
  diverged = {name: p for name, p in runs if p.get('state') == 'diverged'}
  unfinished = {name: p for name, p in runs if p.get('state') not in COLLECTED_STATES}
  done = sum(p.get('state') == 'finished' for _, p in runs)
  lines = [f'Runs finished: {done} of {len(progress)}.']
  if diverged:
    lines.append('Diverged (kept as results): ' + ', '.join(
        f'{name} (at step {p.get("step")} of {p.get("train_steps")})'
        for name, p in diverged.items()) + '.')
  if unfinished:
    lines.append('Not finished when collected: ' + ', '.join(
        f'{name} ({p.get("state")}, step {p.get("step")} of {p.get("train_steps")})'
        for name, p in unfinished.items()) + '.')
  return lines + ['']


def _cpu_seconds_by_run(sweep_dir):
  """{digest of a finished run's records: the CPU seconds they record (None if not;
  `runlog.cpu_seconds`)} of an unpacked part. The digest names a run the same way in
  every part that holds it (the phase-2 baselines sit beside both JC settings)."""
  seconds = {}
  for name in sorted(os.listdir(sweep_dir)):
    run = os.path.join(sweep_dir, name)
    if runlog.read_status(run).get('state') == 'finished':
      records = runlog.read_records(run)
      digest = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
      seconds[digest] = runlog.cpu_seconds(records)
  return seconds


def _cpu_hours(seconds_by_run):
  """The CPU hours of the runs that record them; None if none does."""
  recorded = [s for s in seconds_by_run.values() if s is not None]
  return sum(recorded) / 3600 if recorded else None


def _cpu_line(seconds_by_run, label='CPU time', runs='finished runs'):
  hours = _cpu_hours(seconds_by_run)
  if hours is None:
    return f'{label}: not recorded by these runs.'
  recorded = [s for s in seconds_by_run.values() if s is not None]
  line = (f'{label}: {hours:.2f} CPU-hours in {len(recorded)} of the '
          f'{len(seconds_by_run)} {runs}')
  if len(recorded) < len(seconds_by_run):
    line += ' (the others were made before runs recorded it)'
  return line + '.'


def _manifest_dataset(manifest):
  """The dataset the sweep's runs override, '' if none does."""
  return next((run['overrides']['dataset'] for run in manifest.get('runs', [])
               if run.get('overrides', {}).get('dataset')), '')


def build_part(part, name):
  """Writes `part`/report/ and the part's page `part`/README.md from the part's
  records; returns its Part."""
  manifest = _read_json(os.path.join(part, report_lib.SWEEP_MANIFEST))
  progress_path = os.path.join(part, PROGRESS_FILE)
  progress = _read_json(progress_path) if os.path.exists(progress_path) else {}
  lines = [f'# {name}', '', f'A part of [all results](../{README}). Sweep '
           f'`{manifest.get("sweep")}`, made by:', '', f'    {_command(manifest)}', '']
  lines += _progress_lines(progress)
  output = os.path.join(part, 'report')
  cpu_seconds = {}
  with tempfile.TemporaryDirectory() as tmp:
    _unpack(part, tmp)
    has_runs = any(os.path.isdir(os.path.join(tmp, d)) for d in os.listdir(tmp))
    if has_runs:
      cpu_seconds = _cpu_seconds_by_run(tmp)
      lines += [_cpu_line(cpu_seconds), '']
      report_lib.write_report(tmp, output=output, source=(
          f'Runs: the committed records of results part `{name}`, rebuilt by '
          '`python -m tf_gancond.results build`.'))
  if not has_runs:
    _write_part_page(part, lines + ['No run has finished yet: no scorecard.', ''])
    return Part(name, progress, [], {}, _manifest_dataset(manifest), 0, 0, {},
                manifest=manifest)
  checks = _read_json(os.path.join(output, report_lib.JSON_FILE))
  lines += ['## Scorecard', ''] + _scorecard_lines(checks)
  analysis = _read_json(os.path.join(output, report_lib.ANALYSIS_FILE))
  lines += _promoted('\n'.join(report_lib.render_final_values(analysis) +
                                report_lib.render_log_cond_noise(analysis) +
                                report_lib.render_paired(analysis))).split('\n')
  figures = analysis.get('figures', {})
  links = [f'[{title}](report/{os.path.basename(figures[key])})'
           for key, title in KEY_FIGURES if figures.get(key)]
  if links:
    lines += ['Figures: ' + ' · '.join(links) + '; the full report: '
              '[report/report.md](report/report.md).', '']
  _write_part_page(part, lines)
  steps = [r['step'] for r in analysis.get('runs', []) if r.get('state') == 'finished']
  return Part(name, progress, checks, cpu_seconds,
              analysis.get('dataset') or _manifest_dataset(manifest),
              min(steps, default=0), len(steps),
              {k: v for k, v in figures.items() if v}, analysis.get('runs', []),
              manifest)


def _write_part_page(part, lines):
  """Writes `part`/README.md: `lines`, the part's NOTES.md and where it comes from."""
  notes = os.path.join(part, NOTES_FILE)
  if os.path.isfile(notes):
    with open(notes) as f:
      lines = lines + [_promoted(f.read().strip()), '']
  lines = lines + [_generated(f'its `{NOTES_FILE}`')]
  runlog.atomic_write_text(os.path.join(part, README), '\n'.join(lines) + '\n')


def _generated(edit):
  """The sentence that says a page is built, and what to `edit` instead."""
  return ('This page is generated by `python -m tf_gancond.results build` from the '
          f'compact run records in this folder; do not edit it by hand (edit {edit}).')


def _baseline_ends(part):
  """{seed: {quantity of CHOICE_QUANTITIES: final value}} of the finished baseline
  runs of a built Part."""
  ends = {}
  for run in part.runs:
    if run.get('setting') == 'baseline' and run.get('state') == 'finished':
      values = dict(run.get('final_scores') or {},
                    final_log_cond=run.get('final_log_cond'))
      ends[run['seed']] = {key: records.as_float(values.get(key))
                           for key, _ in CHOICE_QUANTITIES}
  return ends


def _baseline_points(parts):
  """{seed: {step: {quantity of POINT_QUANTITIES: value or None}}} of the finished
  baseline runs of `parts` at each step with a probe and an evaluation (non-finite
  values as float); a later part's runs (the same runs extended) add the steps the
  earlier parts lack."""
  points = {}
  for part in parts:
    for run in part.runs:
      if run.get('setting') == 'baseline' and run.get('state') == 'finished':
        for point in run.get('evaluated_steps') or []:
          points.setdefault(run['seed'], {}).setdefault(point['step'], {
              key: records.as_float(point.get(key)) for key in POINT_QUANTITIES})
  return points


def _positive_number(text):
  """float(text) when it is a finite number above 0 (a setting from config.txt or
  sweep.json's --extra), else None."""
  try:
    value = float(text)
  except (TypeError, ValueError):
    return None
  return value if math.isfinite(value) and value > 0 else None


def _equal_images_cells(choice, reference, batch_ratio):
  """(its step, the reference step, seeds paired, [cell per POINT_QUANTITIES]) of a
  batch-size choice at equal images: its runs at the last step s they all evaluated
  such that the reference baselines of their seeds evaluated step s * batch_ratio
  (the same images) and at least stats.MIN_BOOTSTRAP_N reference runs did, for
  their spread; None when there is no such step. `choice`, `reference`:
  _baseline_points."""
  seeds = sorted(set(choice) & set(reference))
  steps = set.intersection(*(set(choice[s]) for s in seeds)) if seeds else set()
  for step in sorted(steps, reverse=True):
    twin_step = step * batch_ratio
    if twin_step != int(twin_step):
      continue
    twin_step = int(twin_step)
    spread_runs = [points[twin_step] for points in reference.values()
                   if twin_step in points]
    if (len(spread_runs) < stats.MIN_BOOTSTRAP_N or
        any(twin_step not in reference[s] for s in seeds)):
      continue
    cells = []
    for key in POINT_QUANTITIES:
      pairs = [(choice[s][step][key], reference[s][twin_step][key]) for s in seeds]
      deltas = [a - b for a, b in pairs
                if a is not None and b is not None and math.isfinite(a - b)]
      cells.append(_choice_cell(deltas, [p[key] for p in spread_runs
                                         if p[key] is not None]))
    return step, twin_step, len(seeds), cells
  return None


def _delta_cell(deltas, interval):
  """'+0.41 [-0.62, +1.44]': the mean of `deltas` and its interval (low, high) or
  None."""
  cell = f'{sum(deltas) / len(deltas):+.3g}'
  return cell + (f' [{interval[0]:+.3g}, {interval[1]:+.3g}]' if interval else '')


def _choice_cell(deltas, reference):
  """'+0.41 [-0.62, +1.44] (+0.30, +0.52)': the mean paired difference, its 95%
  interval from the reference runs' spread (stats.paired_difference_interval) and
  the difference of each seed."""
  if not deltas:
    return '—'
  return (_delta_cell(deltas, stats.paired_difference_interval(deltas, reference)) +
          ' (' + ', '.join(f'{d:+.3g}' for d in deltas) + ')')


def _batch_stats_rows(results_dir):
  """The table rows of the probes under batch statistics, one per setting: per run,
  its G's mean ln cond with BatchNorm on the probe batch's statistics minus on the
  moving averages (same G, same z); the mean over the setting's runs with its
  Student t interval."""
  folder = os.path.join(results_dir, BATCH_STATS_PROBES)
  if not os.path.isdir(folder):
    return []
  probed = {}
  for name in sorted(os.listdir(folder)):
    run, _, mode = name[:-len('.json')].rpartition('.')
    if name.endswith('.json') and mode in BN_MODES:
      probed.setdefault(run, {})[mode] = records.as_float(
          _read_json(os.path.join(folder, name)).get('mean_log_cond'))
  deltas = {}
  for run, v in probed.items():
    if all(v.get(m) is not None for m in BN_MODES) and math.isfinite(
        v['batch_stats'] - v['inference']):
      deltas.setdefault(run.rpartition('_seed')[0], []).append(
          v['batch_stats'] - v['inference'])
  rows = []
  for setting in records.ordered_settings(deltas):
    values = deltas[setting]
    interval = stats.mean_interval(values)
    cell = _delta_cell(values, (interval['low'], interval['high']) if interval else None)
    rows.append(f'| probe BatchNorm = the probe batch\'s own statistics (moving '
                f'averages), the same {setting} G\'s and z | {len(values)} runs | '
                f'{cell} (Student t over the runs) | ' + ' | '.join(
                    '— (same samples)' for _ in CHOICE_QUANTITIES[1:]) + ' |')
  return rows


def _seeds_cell(paired, part):
  """The number of seeds a choice's row pairs, and its runs that diverged (a result
  of the choice, in no Δ): '2 (and 1 diverged: seed 2, at step 1,200)'."""
  diverged = sorted((run['seed'], run.get('step') or 0) for run in part.runs
                    if run.get('setting') == 'baseline' and run.get('state') == 'diverged')
  if not diverged:
    return str(paired)
  return f'{paired} (and {len(diverged)} diverged: ' + ', '.join(
      f'seed {seed}, at step {step:,}' for seed, step in diverged) + ')'


def _choice_lines(results_dir, parts):
  """The table of the unstated choices (CHOICE_PREFIX parts against
  CHOICE_REFERENCE, seed by seed; a batch size also at equal images, against
  CHOICE_REFERENCE or EXTENDED_REFERENCE; and the BATCH_STATS_PROBES rows); [] until
  one of them has values."""
  by_name = {p.name: p for p in parts}
  choices = sorted(n for n in by_name if n.startswith(CHOICE_PREFIX))
  reference = (_baseline_ends(by_name[CHOICE_REFERENCE])
               if CHOICE_REFERENCE in by_name else {})
  reference_points = _baseline_points(
      [by_name[n] for n in (CHOICE_REFERENCE, EXTENDED_REFERENCE) if n in by_name])
  if not reference:
    choices = []
  batch_stats = _batch_stats_rows(results_dir)
  if not choices and not batch_stats:
    return []
  package = (runlog.read_config(os.path.join(
      results_dir, CHOICE_REFERENCE, f'baseline_seed{min(reference)}'))
             if reference else {})
  lines = ['## Unstated choices, one at a time', '',
           f'Each `{CHOICE_PREFIX}*` part changes one setting the papers leave '
           f'unstated and reruns seeds of the `{CHOICE_REFERENCE}` baselines with it. '
           'Δ: its final value minus that of the baseline of the same seed, the mean '
           "over seeds (each seed's in parentheses after it); 95 % interval, in "
           f"brackets: Student t with the `{CHOICE_REFERENCE}` baselines' run-to-run "
           'spread, assuming the choice keeps it (two seeds cannot estimate their '
           'own). An interval that excludes 0 means the choice moves that value by '
           'more than a new seed does. A choice run that diverged is named beside the '
           'seeds and is in no Δ. The BatchNorm rows probe each '
           f'`{CHOICE_REFERENCE}` generator at its last checkpoint twice, on its own '
           f'probe z, under both BatchNorm readings (`{BATCH_STATS_PROBES}/`), so '
           'their interval is over their own runs. A batch-size choice has a second '
           'row at equal images (steps × batch): its runs at their last evaluated step '
           'whose images the baselines of their seeds reached at an evaluated step '
           f'(in `{CHOICE_REFERENCE}`, or in `{EXTENDED_REFERENCE}`, the same runs at '
           f'the paper\'s length), that at least {stats.MIN_BOOTSTRAP_N} baselines '
           "reached, whose values there give the spread; ln cond there is the mean "
           "over the probe "
           "batch's z.",
           '', "| choice (package's value) | seeds | " + ' | '.join(
               f'Δ {words}' for _, words in CHOICE_QUANTITIES) + ' |',
           '|---|---|' + '---|' * len(CHOICE_QUANTITIES)]
  for name in choices:
    field = name[len(CHOICE_PREFIX):]
    value = by_name[name].extra.get(field, '?')
    ends = _baseline_ends(by_name[name])
    seeds = sorted(set(ends) & set(reference))
    cells = []
    for key, _ in CHOICE_QUANTITIES:
      deltas = [ends[s][key] - reference[s][key] for s in seeds
                if ends[s][key] is not None and reference[s][key] is not None and
                math.isfinite(ends[s][key] - reference[s][key])]
      cells.append(_choice_cell(deltas, [v[key] for v in reference.values()
                                         if v[key] is not None]))
    link = _part_link(name, f'{field} = {value}')
    lines.append(f'| {link} ({package.get(field, "?")}) | '
                 f'{_seeds_cell(len(seeds), by_name[name])} | ' + ' | '.join(cells) + ' |')
    equal = None
    if field == 'batch_size':
      ours, theirs = _positive_number(value), _positive_number(package.get(field))
      if ours and theirs:
        equal = _equal_images_cells(_baseline_points([by_name[name]]),
                                    reference_points, ours / theirs)
    if equal:
      step, twin_step, paired, cells = equal
      lines.append(f'| {link} at equal images: its step {step:,} against step '
                   f'{twin_step:,} ({package[field]}) | {paired} | ' +
                   ' | '.join(cells) + ' |')
  return lines + batch_stats + ['']


def _precision_lines(parts):
  """The section of bf16 against float32 (PRECISION_PART against CHOICE_REFERENCE);
  [] until both parts are committed."""
  by_name = {p.name: p for p in parts}
  if PRECISION_PART not in by_name or CHOICE_REFERENCE not in by_name:
    return []
  result = precision_lib.compare(by_name[CHOICE_REFERENCE].runs,
                                 by_name[PRECISION_PART].runs)
  lines = ['## bf16 against float32', '',
           f'The `{PRECISION_PART}` runs train with precision=bfloat16 (Keras mixed '
           'policy: float32 variables, bf16 compute) and are otherwise the '
           f'`{CHOICE_REFERENCE}` runs of the same settings and seeds. Per pair, bf16 '
           'minus float32 at the end of the run; the mean over pairs with its 95 % '
           'Student t interval. The rule, stated before the runs '
           f'([bf16]({DOCS}#bf16)): a quantity is EQUIVALENT if it has at least '
           f'{precision_lib.MIN_PAIRS} values and its interval lies inside its margin, '
           'NOT EQUIVALENT if the interval lies wholly outside it, otherwise '
           'INCONCLUSIVE; the whole comparison is NOT EQUIVALENT if a quantity is or if '
           'bf16 runs fail (diverge, collapse) more often than their twins by a '
           'one-sided sign test at 0.05, EQUIVALENT if every judged quantity is.', '',
           '| quantity | pairs | bf16 − float32 [95 % CI] | margin | verdict |',
           '|---|---|---|---|---|']
  for row in result['rows']:
    interval = (row['low'], row['high']) if row['low'] is not None else None
    cell = _delta_cell(row['deltas'], interval) if row['deltas'] else '—'
    margin = '—' if row['margin'] is None else f'± {row["margin"]:g}'
    verdict = row['verdict'] or 'shown, not judged'
    lines.append(f'| {row["words"]} | {row["n"]} | {cell} | {margin} | {verdict} |')
  step = result['step_time']
  if step:
    interval = (f' [{step["low"]:.3g}, {step["high"]:.3g}]' if step['low'] is not None
                else '')
    lines.append(f'| seconds per step, bf16 / float32 (geometric mean) | {step["n"]} | '
                 f'{step["ratio"]:.3g}{interval} | — | shown, not judged |')
  return lines + ['', f'Verdict: **{result["verdict"]}** ({result["reason"]}).', '']


def _header_sections(results_dir):
  """HEADER.md as (its opening, its first section, its other sections): text before
  its first '## ' heading, the section that heading opens, and the rest."""
  path = os.path.join(results_dir, HEADER)
  if not os.path.isfile(path):
    return '# Results', '', ''
  with open(path) as f:
    text = f.read().strip()
  starts = [m.start() for m in re.finditer(r'^## ', text, flags=re.M)] + [len(text)] * 2
  return (text[:starts[0]].strip(), text[starts[0]:starts[1]].strip(),
          text[starts[1]:].strip())


def _dataset_heading(dataset, first):
  name = _dataset_name(dataset)
  if dataset in checks_base.STAND_INS:
    target = _dataset_name(checks_base.STAND_INS[dataset])
    return f'## {name}, a second dataset (the stand-in for {target})'
  return f'## {name}' + (', the papers\' dataset' if dataset == PAPERS_DATASET else
                          '' if first else ', another dataset')


def build(results_dir='results'):
  """Rebuilds every part's report and page, and `results_dir`/README.md; returns
  its path."""
  if not os.path.isdir(results_dir):
    raise ResultsError(f'results_dir={results_dir!r} is not a directory')
  names = sorted(d for d in os.listdir(results_dir) if os.path.isfile(
      os.path.join(results_dir, d, report_lib.SWEEP_MANIFEST)))
  parts = [build_part(os.path.join(results_dir, name), name) for name in names]
  opening, findings, rest = _header_sections(results_dir)
  lines = [opening, '']
  summary, shown = _summary_lines(parts)
  lines += summary
  lines += [findings, ''] if findings else []
  lines += _figure_lines(parts, shown)
  lines += _choice_lines(results_dir, parts)
  lines += _precision_lines(parts)
  lines += [rest, ''] if rest else []
  provenance = (f' Provenance and history (machines, restarts, commits, CPU rates): '
                f'[{PROVENANCE}]({PROVENANCE}).'
                if os.path.isfile(os.path.join(results_dir, PROVENANCE)) else '')
  lines += [_generated(f'`{HEADER}` or a part\'s `{NOTES_FILE}`') + provenance, '']
  if not parts:
    lines += ['No campaign part has been collected yet.', '']
  else:
    cpu_seconds = {}
    for part in parts:
      cpu_seconds.update(part.cpu_seconds)
    lines += [_cpu_line(cpu_seconds, 'CPU time of every part', 'distinct finished runs'),
              '']
  datasets = _ordered_datasets(parts)
  if parts and PAPERS_DATASET not in datasets:
    lines += [_dataset_heading(PAPERS_DATASET, True), '',
              f'No {_dataset_name(PAPERS_DATASET)} part has been collected yet; its '
              'parts appear here as their runs finish.', '']
  for i, dataset in enumerate(datasets):
    lines += [_dataset_heading(dataset, i == 0), '']
    lines += _parts_lines([p for p in parts if p.dataset == dataset])
  path = os.path.join(results_dir, README)
  runlog.atomic_write_text(path, '\n'.join(lines).rstrip() + '\n')
  return path


def main(argv):
  import argparse
  parser = argparse.ArgumentParser(prog='python -m tf_gancond.results',
                                   description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest='command', required=True)
  c = sub.add_parser('collect', help='copy the compact records of the runs that '
                     'finished or diverged')
  c.add_argument('--sweep_dir', required=True)
  c.add_argument('--results_dir', default='results')
  r = sub.add_parser('restore', help='put a part\'s committed finished runs back '
                     'into a sweep folder (a new machine)')
  r.add_argument('--part', required=True)
  r.add_argument('--sweep_dir', required=True)
  b = sub.add_parser('build', help='rebuild the reports and results/README.md')
  b.add_argument('--results_dir', default='results')
  m = sub.add_parser('match', help='compare runs made again with the runs of the '
                     'same name in another part, up to a shared step')
  m.add_argument('--part', required=True)
  m.add_argument('--reference', required=True)
  m.add_argument('--step', type=int, default=5000)
  args = parser.parse_args(argv)
  try:
    if args.command == 'collect':
      copied = collect(args.sweep_dir, args.results_dir)
      print(f'collected {len(copied)} finished or diverged runs: '
            f'{", ".join(copied) or "none"}')
    elif args.command == 'restore':
      restored = restore(args.part, os.path.expanduser(args.sweep_dir))
      print(f'restored {len(restored)} finished runs: {", ".join(restored) or "none"}')
    elif args.command == 'match':
      print('\n'.join(_match_lines(
          match(os.path.expanduser(args.part), os.path.expanduser(args.reference),
                args.step), args.step)))
    else:
      print(build(args.results_dir))
  except (ResultsError, report_lib.ReportError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
