"""The results page: compact records of campaign runs, and the page built from them.

  python -m tf_gancond.results collect --sweep_dir=~/tf_gancond_campaign/phase2_odena_jc
  python -m tf_gancond.results build
  python -m tf_gancond.results restore --part=results/phase2_odena_jc --sweep_dir=DIR

`collect` copies what a report needs of every finished run of a sweep into
`results/<sweep folder name>/`: per run `config.txt`, `status.json` and
`metrics.jsonl.gz`, never checkpoints or SavedModels; beside them the sweep's
manifest `sweep.json` (machine paths removed) and `progress.json`, the state of
every run of the sweep when it was collected (finished, running at step N, pending).

`build` rebuilds everything else from `results/` alone: each part's report
(`tf_gancond.report` on its unpacked records) in `results/<part>/report/`, and
`results/README.md`: one scorecard of every part (check, target, part, measured,
95% CI, n, verdict) and the CPU hours of all of them (a run in two parts counted
once), then per part the scorecard rows its runs judge, links to the
key figures, the command that made the runs, what is not finished yet, the CPU
hours its runs record, and the part's hand-written `NOTES.md` (where a result
disagrees with the paper, and what that does and does not show).

`restore` is collect's inverse for a new machine: it writes the committed finished
runs back into a sweep folder, so the sweep runner skips them and the campaign goes
on with the rest.

Exit codes: 0 done; 2 bad input (one line).
"""

import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zlib

from tf_gancond import config as config_lib
from tf_gancond import report as report_lib
from tf_gancond import runlog
from tf_gancond.report import checks as checks_lib

README = 'README.md'
PROGRESS_FILE = 'progress.json'
NOTES_FILE = 'NOTES.md'
RECORDS_GZ = runlog.METRICS_FILE + '.gz'
# The figures the page links, (report figure key, words), in the checks' order.
KEY_FIGURES = tuple((figure.key, figure.link) for check in checks_lib.CHECKS
                    for figure in check.figures)


class ResultsError(ValueError):
  """Bad input to collect, build or restore; the message is one line."""


def _read_json(path):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ResultsError(f'{path!r} cannot be read as JSON ({e})') from None


def _write_json(path, value):
  runlog.atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True) + '\n')


def _portable_manifest(manifest):
  """sweep.json without this machine's paths (commands and work dirs)."""
  runs = [{k: v for k, v in run.items() if k not in ('command', 'workdir')}
          for run in manifest.get('runs', [])]
  return {'sweep': manifest.get('sweep'), 'extra': manifest.get('extra', {}),
          'runs': runs}


def collect(sweep_dir, results_dir='results'):
  """Copies the compact records of `sweep_dir`'s finished runs; returns their names."""
  sweep_dir = os.path.abspath(os.path.expanduser(sweep_dir))
  manifest_path = os.path.join(sweep_dir, report_lib.SWEEP_MANIFEST)
  if not os.path.isfile(manifest_path):
    raise ResultsError(f'sweep_dir={sweep_dir!r} has no {report_lib.SWEEP_MANIFEST}; '
                       'give the folder of a launch.run_sweep sweep')
  manifest = _read_json(manifest_path)
  part = os.path.join(results_dir, os.path.basename(sweep_dir.rstrip('/')))
  os.makedirs(part, exist_ok=True)
  _write_json(os.path.join(part, report_lib.SWEEP_MANIFEST),
              _portable_manifest(manifest))
  progress, copied = {}, []
  for run in manifest.get('runs', []):
    workdir = os.path.join(sweep_dir, run['name'])
    status = runlog.read_status(workdir)
    records = runlog.read_records(workdir)  # A running run's status keeps its start step.
    progress[run['name']] = {'state': status.get('state', 'pending'),
                             'step': max([status.get('step', 0)] +
                                         [r.get('step', 0) for r in records]),
                             'train_steps': status.get('train_steps',
                                                       run.get('train_steps'))}
    if status.get('state') != 'finished':
      continue
    target = os.path.join(part, run['name'])
    os.makedirs(target, exist_ok=True)
    for name in (runlog.CONFIG_FILE, runlog.STATUS_FILE):
      shutil.copyfile(os.path.join(workdir, name), os.path.join(target, name))
    with open(os.path.join(workdir, runlog.METRICS_FILE), 'rb') as src:
      # mtime=0: the same records give the same bytes, so a re-collect is no change.
      with gzip.GzipFile(os.path.join(target, RECORDS_GZ), 'wb', mtime=0) as dst:
        shutil.copyfileobj(src, dst)
    copied.append(run['name'])
  _write_json(os.path.join(part, PROGRESS_FILE), progress)
  return copied


def _unpack(part, into):
  """A sweep folder the report reads, made from a results part's compact records."""
  shutil.copyfile(os.path.join(part, report_lib.SWEEP_MANIFEST),
                  os.path.join(into, report_lib.SWEEP_MANIFEST))
  progress = os.path.join(part, PROGRESS_FILE)
  if os.path.isfile(progress):  # The report shows unfinished runs with their state.
    _write_json(os.path.join(into, report_lib.SWEEP_STATUS),
                {'runs': _read_json(progress)})
  for name in _committed_runs(part):
    _unpack_run(os.path.join(part, name), os.path.join(into, name))


def _committed_runs(part):
  return [name for name in sorted(os.listdir(part))
          if os.path.isfile(os.path.join(part, name, RECORDS_GZ))]


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
    if os.path.lexists(run_dir):
      continue
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


def _command(manifest):
  seeds = sorted({run['seed'] for run in manifest.get('runs', [])})
  extra = ','.join(f'{k}={v}' for k, v in sorted(manifest.get('extra', {}).items()))
  command = (f'python -m launch.run_sweep --sweep={manifest.get("sweep")} '
             f'--num_seeds={len(seeds)} --sweep_dir=<dir>')
  return command + (f' --extra={extra}' if extra else '')


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
  return [row for row in checks if row.get('verdict') != 'NOT RUN']


def _scorecard_lines(checks):
  """A part's scorecard: the rows its runs judge, then the others in one line."""
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
  not_run = [row for row in checks if row.get('verdict') == 'NOT RUN']
  if not_run:
    lines += ['Not judged here: ' + '; '.join(
        row.get('check') + (f' ({row["note"]})' if row.get('note') else '')
        for row in not_run) + '.', '']
  return lines


def _combined_scorecard_lines(checks_by_part):
  """One table for the page: each row once per part that judges it, in the
  report's order, and a family of rows (checks/base.py) no part judges once as NOT
  RUN. Rows are matched by their id, never by their words."""
  families = {}  # family -> {row id: row}, both in the order the reports list them.
  for checks in checks_by_part.values():
    for row in checks:
      families.setdefault(row['family'], {}).setdefault(row['id'], row)
  lines = ['## Scorecard of every part', '',
           'Each target of the papers the report judges (docs/experiments.md), once '
           'for every campaign part whose runs judge it (its rule in that part\'s '
           'report), and NOT RUN where no part has runs for it yet.', '',
           '| check | target | part | measured | 95% CI | n | verdict |',
           '|---|---|---|---|---|---|---|']
  for family, rows in families.items():
    judged = [(part, row) for id_ in rows for part, checks in checks_by_part.items()
              for row in _judged(checks) if row['id'] == id_]
    lines += [f'| {row.get("check")} | {row.get("target")} | [{part}](#{part}) | '
              f'{_cell(row.get("measured"))} | {_ci_cell(row)} | {_cell(row.get("n"))} '
              f'| {_verdict_cell(row)} |' for part, row in judged]
    if not judged:
      first = next(iter(rows.values()))
      lines.append(f'| {first.get("check")} | {first.get("target")} | — | — | — | — | '
                   '**NOT RUN** |')
  return lines + ['']


def _progress_lines(progress):
  unfinished = {name: p for name, p in sorted(progress.items())
                if p.get('state') != 'finished'}
  done = len(progress) - len(unfinished)
  lines = [f'Runs finished: {done} of {len(progress)}.']
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


def _cpu_line(seconds_by_run, label='CPU time', runs='finished runs'):
  recorded = [s for s in seconds_by_run.values() if s is not None]
  if not recorded:
    return f'{label}: not recorded by these runs.'
  line = (f'{label}: {sum(recorded) / 3600:.2f} CPU-hours in {len(recorded)} of the '
          f'{len(seconds_by_run)} {runs}')
  if len(recorded) < len(seconds_by_run):
    line += ' (the others were made before runs recorded it)'
  return line + '.'


def build_part(part, name):
  """Writes `part`/report/ from the part's records; returns its Markdown section, its
  scorecard rows (report.json; [] before any run has finished) and the CPU seconds
  of its finished runs (_cpu_seconds_by_run)."""
  manifest = _read_json(os.path.join(part, report_lib.SWEEP_MANIFEST))
  progress_path = os.path.join(part, PROGRESS_FILE)
  progress = _read_json(progress_path) if os.path.exists(progress_path) else {}
  lines = [f'## {name}', '', f'Sweep `{manifest.get("sweep")}`, made by the command '
           'below (`--parallel=N` runs N at a time with 1/N of the cores each; the '
           'records do not say how many ran at a time)', '',
           f'    {_command(manifest)}', '']
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
    return '\n'.join(lines + ['No run has finished yet: no scorecard.', '']), [], {}
  checks = _read_json(os.path.join(output, report_lib.JSON_FILE))
  lines += ['### Scorecard', ''] + _scorecard_lines(checks)
  analysis = _read_json(os.path.join(output, report_lib.ANALYSIS_FILE))
  lines += (report_lib.render_final_values(analysis) +
            report_lib.render_log_cond_noise(analysis) +
            report_lib.render_paired(analysis))
  figures = analysis.get('figures', {})
  links = [f'[{title}]({name}/report/{os.path.basename(figures[key])})'
           for key, title in KEY_FIGURES if figures.get(key)]
  if links:
    lines += ['Figures: ' + ' · '.join(links) + f'; the full report: '
              f'[{name}/report/report.md]({name}/report/report.md).', '']
  notes = os.path.join(part, NOTES_FILE)
  if os.path.isfile(notes):
    with open(notes) as f:
      lines += [f.read().strip(), '']
  return '\n'.join(lines), checks, cpu_seconds


def build(results_dir='results'):
  """Rebuilds every part's report and `results_dir`/README.md; returns its path."""
  if not os.path.isdir(results_dir):
    raise ResultsError(f'results_dir={results_dir!r} is not a directory')
  parts = sorted(d for d in os.listdir(results_dir) if os.path.isfile(
      os.path.join(results_dir, d, report_lib.SWEEP_MANIFEST)))
  header = os.path.join(results_dir, 'HEADER.md')
  lines = []
  if os.path.isfile(header):
    with open(header) as f:
      lines += [f.read().strip(), '']
  else:
    lines += ['# Results', '']
  lines += ['This page is generated by `python -m tf_gancond.results build` from the '
            'compact run records in this folder; do not edit it by hand (edit '
            '`HEADER.md` or a part\'s `NOTES.md`).', '']
  if not parts:
    lines += ['No campaign part has been collected yet.', '']
  sections, checks_by_part, cpu_seconds = [], {}, {}
  for name in parts:
    section, checks_by_part[name], part_seconds = build_part(
        os.path.join(results_dir, name), name)
    sections.append(section)
    cpu_seconds.update(part_seconds)
  if parts:
    lines += _combined_scorecard_lines(checks_by_part)
    lines += [_cpu_line(cpu_seconds, 'CPU time of every part', 'distinct finished runs'),
              '']
  lines += sections
  path = os.path.join(results_dir, README)
  runlog.atomic_write_text(path, '\n'.join(lines).rstrip() + '\n')
  return path


def main(argv):
  import argparse
  parser = argparse.ArgumentParser(prog='python -m tf_gancond.results',
                                   description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest='command', required=True)
  c = sub.add_parser('collect', help='copy finished runs\' compact records')
  c.add_argument('--sweep_dir', required=True)
  c.add_argument('--results_dir', default='results')
  r = sub.add_parser('restore', help='put a part\'s committed finished runs back '
                     'into a sweep folder (a new machine)')
  r.add_argument('--part', required=True)
  r.add_argument('--sweep_dir', required=True)
  b = sub.add_parser('build', help='rebuild the reports and results/README.md')
  b.add_argument('--results_dir', default='results')
  args = parser.parse_args(argv)
  try:
    if args.command == 'collect':
      copied = collect(args.sweep_dir, args.results_dir)
      print(f'collected {len(copied)} finished runs: {", ".join(copied) or "none"}')
    elif args.command == 'restore':
      restored = restore(args.part, os.path.expanduser(args.sweep_dir))
      print(f'restored {len(restored)} finished runs: {", ".join(restored) or "none"}')
    else:
      print(build(args.results_dir))
  except (ResultsError, report_lib.ReportError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
