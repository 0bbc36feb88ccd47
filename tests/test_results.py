"""The results page: collect copies compact records; build rebuilds from results/ alone."""

import gzip
import json
import math
import os
import pathlib
import re
import shutil

import numpy as np
import pytest
from scipy import stats as scipy_stats

from kill_points import killed_at_each_call
from tf_gancond import results

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures', 'results')


def test_build_on_the_committed_fixture(tmp_path):
  """Each part's page and report, and README.md's table of parts, come from the
  compact records alone; a part's detail is on its own page, not on README.md."""
  out = tmp_path / 'results'
  shutil.copytree(FIXTURE, out)
  readme = results.build(str(out))
  text = open(readme).read()
  assert ('| [quick_sweep](quick_sweep/README.md) | `fashion_mnist_quick`: baseline, '
          'jacobian_clamping; seeds 0-2 | — | 5 of 6 | 200 |') in text
  assert '| check | target | measured | 95% CI | n | verdict |' not in text
  page = (out / 'quick_sweep' / 'README.md').read_text()
  assert page.startswith('# quick_sweep\n')
  assert '[all results](../README.md)' in page
  # The runs-at-a-time of a sweep is not recorded: the command claims none.
  assert ('python -m launch.run_sweep --sweep=fashion_mnist_quick --num_seeds=3 '
          '--sweep_dir=<dir> --extra=train_steps=200\n') in page
  assert 'Runs finished: 5 of 6.' in page
  assert 'jacobian_clamping_seed2 (running, step 100 of 200)' in page
  assert '| check | target | measured | 95% CI | n | verdict |' in page
  checks = json.load(open(out / 'quick_sweep' / 'report' / 'report.json'))
  o1 = [c for c in checks if c['check'].startswith('O1')][0]
  assert f'| {o1["check"]} | {o1["target"]} |' in page and o1['verdict'] in page
  assert 'A fixture: five finished runs' in page  # The part's NOTES.md.
  report = json.load(open(out / 'quick_sweep' / 'report' / 'analysis.json'))
  states = {r['name']: r['state'] for r in report['runs']}
  assert states == {'baseline_seed0': 'finished', 'baseline_seed1': 'finished',
                    'baseline_seed2': 'finished', 'jacobian_clamping_seed0': 'finished',
                    'jacobian_clamping_seed1': 'finished',
                    'jacobian_clamping_seed2': 'running'}
  for key, _ in results.KEY_FIGURES:
    figure = report['figures'].get(key)
    if figure:
      assert os.path.isfile(out / 'quick_sweep' / 'report' / os.path.basename(figure))
      assert f'](report/{os.path.basename(figure)})' in page
  assert page.endswith('do not edit it by hand (edit its `NOTES.md`).\n')
  _assert_links_resolve(out)
  assert results.build(str(out)) == readme and open(readme).read() == text
  assert (out / 'quick_sweep' / 'README.md').read_text() == page


def test_the_table_of_parts_says_what_sets_each_apart_from_its_sweeps_other_parts(
    tmp_path):
  """Three parts of one sweep: the overrides (--extra, --setting_extra) one part has
  and another lacks or sets otherwise are in its row, a path by its last component;
  one shared by all is in none. Every part is linked once, and only from its row."""
  out = tmp_path / 'results'
  shutil.copytree(FIXTURE, out)
  for name, extra, setting_extra in (
      ('quick_batch', {'batch_size': '128'}, {}),
      ('quick_lambda', {'generator_saved_model': '/root/runs/g/step_00000938'},
       {'jacobian_clamping': {'jc_lambda_max': '7.06', 'jc_lambda_min': '1.34'}})):
    shutil.copytree(out / 'quick_sweep', out / name)
    manifest = json.loads((out / name / 'sweep.json').read_text())
    manifest['extra'].update(extra)
    manifest['setting_extra'] = setting_extra
    (out / name / 'sweep.json').write_text(json.dumps(manifest))
  text = open(results.build(str(out))).read()
  rows = {line.split(' | ')[0]: line.split(' | ')[2] for line in text.splitlines()
          if line.startswith('| [quick_')}
  assert rows == {
      '| [quick_batch](quick_batch/README.md)': 'batch_size=128',
      '| [quick_lambda](quick_lambda/README.md)':
          'generator_saved_model=…/step_00000938; jacobian_clamping: '
          'jc_lambda_max=7.06, jc_lambda_min=1.34',
      '| [quick_sweep](quick_sweep/README.md)': '—'}


def test_seeds_are_said_as_a_range_where_they_are_one():
  assert results._seeds_text([0, 1, 2]) == 'seeds 0-2'
  assert results._seeds_text([0, 2]) == 'seeds 0, 2'
  assert results._seeds_text([3]) == 'seed 3'


def _slug(heading):
  """GitHub's anchor of a markdown heading."""
  return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def _assert_links_resolve(results_dir):
  """Every relative link and image of README.md and of each part's README.md names
  a file that exists (one outside `results_dir` in this repository), and an anchor
  into a results page names one of its headings."""
  pages = [results_dir / 'README.md'] + sorted(results_dir.glob('*/README.md'))
  assert len(pages) > 1
  rows = [line for line in pages[0].read_text().splitlines()
          if re.match(r'\| \[\w+\]\(\w+/README\.md\) \|', line)]
  assert sorted(re.search(r'\((\w+)/README', row)[1] for row in rows) == sorted(
      page.parent.name for page in pages[1:])  # A row per part page, and one only.
  for page in pages:
    for target in re.findall(r'\]\(([^)\s]+)\)', page.read_text()):
      if re.match(r'\w+://', target):
        continue
      path, _, anchor = target.partition('#')
      linked = (page.parent / path).resolve() if path else page
      if results_dir.resolve() not in linked.parents:
        linked = pathlib.Path(COMMITTED).parent / linked.relative_to(
            results_dir.resolve().parent)
      assert linked.exists(), (str(page), target)
      if (anchor and linked.name == 'README.md' and
          results_dir.resolve() in linked.parents):
        headings = [_slug(line.lstrip('#')) for line in linked.read_text().splitlines()
                    if line.startswith('#')]
        assert anchor in headings, (str(page), target)


def test_a_rebuild_rewrites_no_report_file(tmp_path):
  """The same records give the same files, so a rebuild shows no diff in git: the
  report names the committed part, not the temporary folder it unpacks into, and
  no time."""
  out = tmp_path / 'results'
  shutil.copytree(FIXTURE, out)
  results.build(str(out))
  report_dir = out / 'quick_sweep' / 'report'
  first = {name: (report_dir / name).read_bytes() for name in os.listdir(report_dir)}
  results.build(str(out))
  assert {name: (report_dir / name).read_bytes()
          for name in os.listdir(report_dir)} == first
  text = first['report.md'].decode()
  assert 'Runs: the committed records of results part `quick_sweep`' in text
  assert str(tmp_path) not in text


COMMITTED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         'results')


def _same_meaning(built, committed, where):
  """Rows of report.json agree: the same ids in the same order, and per row the
  same verdict, n, family and text fields, and numbers within 1e-6 relative (the
  two stacks' numpy may round the last digits of a bootstrap differently)."""
  assert [r['id'] for r in built] == [r['id'] for r in committed], where
  for new, old in zip(built, committed):
    for key, value in old.items():
      if isinstance(value, float):
        assert new[key] == pytest.approx(value, rel=1e-6, abs=1e-12), (where, old['id'],
                                                                       key)
      else:
        assert new[key] == value, (where, old['id'], key)


def test_results_build_reproduces_every_committed_part_and_the_page(tmp_path):
  """The golden test: `python -m tf_gancond.results build` on a copy of the
  committed results/ gives each part's committed report.json (in meaning: see
  _same_meaning) and the committed README.md, word for word. A change of a check,
  a rule or the page fails here until results/ is rebuilt and committed with it."""
  out = tmp_path / 'results'
  shutil.copytree(COMMITTED, out)
  readme = results.build(str(out))
  parts = sorted(d for d in os.listdir(COMMITTED)
                 if os.path.isfile(os.path.join(COMMITTED, d, 'report', 'report.json')))
  assert len(parts) >= 10  # Every part the page was built from.
  for part in parts:
    with open(os.path.join(COMMITTED, part, 'report', 'report.json')) as f:
      committed = json.load(f)
    with open(out / part / 'report' / 'report.json') as f:
      built = json.load(f)
    _same_meaning(built, committed, part)
    with open(os.path.join(COMMITTED, part, 'README.md')) as f:
      assert (out / part / 'README.md').read_text() == f.read(), part
  with open(os.path.join(COMMITTED, 'README.md')) as f:
    assert open(readme).read() == f.read()
  _assert_links_resolve(out)

def _first_table(text):
  """The rows of the page's first table, header first, as lists of cells."""
  lines = text.splitlines()
  start = next(i for i, l in enumerate(lines) if l.startswith('| '))
  rows = []
  for line in lines[start:]:
    if not line.startswith('|'):
      break
    if not line.startswith('|---'):
      rows.append([c.strip() for c in line.strip('|').split(' | ')])
  return rows


def _as_mnist(part):
  """The part's runs, said to be of MNIST (their records are Fashion-MNIST's)."""
  for name in os.listdir(part):
    config = part / name / 'config.txt'
    if config.is_file():
      config.write_text(config.read_text().replace("dataset: 'fashion_mnist'",
                                                   "dataset: 'mnist'"))


def test_the_page_opens_with_one_table_of_every_check_with_the_papers_value(
    tmp_path):
  """One row per statistic the registered checks judge (a check none judges once,
  as NOT RUN), in the registry's order, each with the paper's dataset and value
  beside ours, from the part that judges it most completely, named."""
  from tf_gancond.report import checks as checks_lib
  from tf_gancond.report import fmt
  out = tmp_path / 'results'
  shutil.copytree(FIXTURE, out)
  shutil.copytree(FIXTURE + '/quick_sweep', out / 'quick_sweep_again')
  text = open(results.build(str(out))).read()
  rows = _first_table(text)
  assert rows[0] == ['check, in plain words', 'paper (dataset, value)',
                     'ours, per dataset', '95 % CI (method)', 'n, steps', 'verdict',
                     'caveat']
  checks = json.load(open(out / 'quick_sweep' / 'report' / 'report.json'))
  judged = [c for c in checks if c['verdict'] not in ('NOT RUN', 'SETTING')]
  assert judged
  plain = {f: check.plain[f] for check in checks_lib.CHECKS for f in check.plain}
  for c in judged:
    words = plain[c['family']] + (
        f': {fmt.label(c["id"].partition(":")[2])}' if ':' in c['id'] else '')
    row = next(r for r in rows[1:] if r[0].endswith(words))
    assert row[1] == f'MNIST: {c["target"]}'  # The paper's dataset and value.
    assert row[2] == results._cell(c['measured'])
    assert row[5] == f'**{c["verdict"]}**'
    # Both parts judge it alike: the one that sorts last is named.
    assert row[4].endswith('([quick_sweep_again](quick_sweep_again/README.md))')
  families = {c['family'] for c in judged}
  for check in checks_lib.CHECKS:
    mine = [r for r in rows[1:] if any(w in r[0] for w in check.plain.values())]
    assert mine, check.id
    if not families & set(check.plain):
      assert len(mine) == 1 and mine[0][5] == '**NOT RUN**'
  assert len(rows) - 1 == len(judged) + sum(
      not families & set(check.plain) for check in checks_lib.CHECKS)
  # A part's own table keeps the rows it judges and names the others by label.
  part = (out / 'quick_sweep' / 'README.md').read_text()
  assert '**NOT RUN**' not in part
  assert any(l.startswith('Not judged by these runs: O') for l in part.splitlines())


def test_the_most_complete_part_has_enough_runs_then_the_longest():
  """Rows are matched by id, never by words; the part shown has n at least the
  check's minimum, and among those the longest runs."""
  from tf_gancond.report import checks as checks_lib
  o1 = checks_lib.CHECKS[0]

  def part(name, steps, n, words='O1 words', family='o1'):
    row = {'id': family, 'family': family, 'check': words, 'target': '~12–20',
           'measured': float(n), 'ci_low': None, 'ci_high': None, 'n': n,
           'verdict': 'INCONCLUSIVE', 'note': '', 'stand_in': None}
    return results.Part(name, {}, [row], {}, 'mnist', steps, n, {})
  def shown(*parts):
    [(check, id_, by_dataset)] = [r for r in results._summary_rows(list(parts))
                                  if r[0] is o1]
    return by_dataset['mnist'][0].name
  assert shown(part('long_one', 23440, 1), part('short_ten', 5000, 10)) == 'short_ten'
  assert shown(part('long_ten', 23440, 10, 'reworded'),
               part('short_ten', 5000, 10)) == 'long_ten'
  assert shown(part('long_one', 23440, 1), part('short_two', 5000, 2)) == 'short_two'
  # A check of [O]'s ten runs needs ten: four full-length runs of a part still
  # running do not displace ten shorter ones.
  o2 = next(check for check in checks_lib.CHECKS if check.id == 'o2')
  rows = results._summary_rows([part('mnist_stage2', 23440, 4, family='o2_split'),
                                part('mnist_stage1', 5000, 10, family='o2_split')])
  [(_, _, by_dataset)] = [r for r in rows if r[0] is o2]
  assert by_dataset['mnist'][0].name == 'mnist_stage1'


def test_the_page_puts_mnist_first_and_says_the_stand_in_once_per_dataset(tmp_path):
  """With no MNIST part the page says so where they will go; with one, MNIST's
  parts and values come first, and Fashion-MNIST's follow as a second dataset. The
  stand-in sentence is on the page once, in no row."""
  out = tmp_path / 'results'
  shutil.copytree(FIXTURE, out)
  text = open(results.build(str(out))).read()
  assert 'No MNIST part has been collected yet' in text
  assert text.index('## MNIST') < text.index('## Fashion-MNIST, a second dataset')
  assert text.count('Fashion-MNIST values of MNIST targets are judged on a stand-in') == 1
  assert 'stand-in' not in ''.join(''.join(r) for r in _first_table(text))
  shutil.copytree(FIXTURE + '/quick_sweep', out / 'quick_mnist')
  _as_mnist(out / 'quick_mnist')
  text = open(results.build(str(out))).read()
  assert 'No MNIST part' not in text
  mnist = text.index('## MNIST, the papers\' dataset')
  second = text.index('## Fashion-MNIST, a second dataset')
  assert (mnist < text.index('| [quick_mnist](quick_mnist/README.md) |') < second <
          text.index('| [quick_sweep](quick_sweep/README.md) |'))
  assert text.count('Fashion-MNIST values of MNIST targets are judged on a stand-in') == 1
  o1 = next(r for r in _first_table(text) if r[0].startswith('[O1]'))
  ours = o1[2].split('<br>')
  assert [v.split(':')[0] for v in ours] == ['MNIST', 'Fashion-MNIST']
  assert o1[4].split('<br>')[0].endswith('([quick_mnist](quick_mnist/README.md))')
  assert json.load(open(out / 'quick_sweep' / 'report' / 'report.json'))[0][
      'stand_in'] == 'fashion_mnist'  # report.json keeps it, row by row.


def test_the_page_links_provenance_and_places_the_header_around_the_table(tmp_path):
  """HEADER.md's opening goes above the table, its first section under it, then
  the key figures, embedded, then its other sections; PROVENANCE.md is linked, not
  copied."""
  out = tmp_path / 'results'
  shutil.copytree(FIXTURE, out)
  (out / 'HEADER.md').write_text('# Title\n\nOpening.\n\n## Findings\n\n- one\n\n'
                                 '## Glossary\n\n- M_z\n')
  (out / 'PROVENANCE.md').write_text('# Provenance\n\nThe machine of 2026-12-04.\n')
  text = open(results.build(str(out))).read()
  order = [text.index(s) for s in ('# Title', 'Opening.', '| check, in plain words',
                                   '## Findings', '## Key figures', '![',
                                   '## Glossary',
                                   '| [quick_sweep](quick_sweep/README.md) |')]
  assert order == sorted(order)
  assert '[PROVENANCE.md](PROVENANCE.md)' in text
  assert 'The machine of 2026-12-04' not in text
  image = text[text.index('!['):].split('\n')[0]
  path = image[image.index('](') + 2:-1]
  assert os.path.isfile(out / path)


def test_a_key_figure_comes_from_a_part_that_judges_its_check():
  """An MNIST part of GANs alone draws E_z[J_z] spectra but cannot judge O3 (no
  VAEs); O3's key figure is the Fashion-MNIST part's, whose runs judge it."""
  def part(name, dataset):
    return results.Part(name, {}, [], {}, dataset, 5000, 10,
                        {'spectra': f'{name}/report/fig3.png'})
  gans, vaes = part('mnist_gans', 'mnist'), part('fashion_vaes', 'fashion_mnist')
  lines = results._figure_lines([gans, vaes], {'o3': {'fashion_mnist': vaes}})
  assert lines[2] == '![spectra of E_z[J_z]](fashion_vaes/report/fig3.png)'
  assert not any('mnist_gans' in line for line in lines)
  assert results._figure_lines([gans], {}) == []


def _final(run):
  with gzip.open(os.path.join(FIXTURE, 'quick_sweep', run, 'metrics.jsonl.gz'),
                 'rt') as f:
    return [json.loads(line) for line in f if '"final"' in line][-1]


def test_a_part_page_gives_final_values_and_jc_against_its_twin(tmp_path):
  out = tmp_path / 'results'
  shutil.copytree(FIXTURE, out)
  results.build(str(out))
  text = (out / 'quick_sweep' / 'README.md').read_text()
  lc = {run: _final(run)['mean_log_cond'] for run in (
      'baseline_seed0', 'baseline_seed1', 'baseline_seed2',
      'jacobian_clamping_seed0', 'jacobian_clamping_seed1')}
  base = [lc[f'baseline_seed{s}'] for s in range(3)]
  assert (f'| baseline | final log cond | 3 | {np.mean(base):.3f} ± '
          f'{np.std(base, ddof=1):.3f} |') in text
  d = [lc[f'jacobian_clamping_seed{s}'] - lc[f'baseline_seed{s}'] for s in (0, 1)]
  paired_row = next(l for l in text.splitlines()
                    if l.startswith('| final log cond | 2 |'))
  assert paired_row.startswith(
      f'| final log cond | 2 | {np.mean(d):.3f} ± {np.std(d, ddof=1):.3f} |')
  assert paired_row.endswith('| n < 4 | 1 running |')  # JC seed 2: no end point.


def _final_probe_log_cond(run):
  with gzip.open(os.path.join(FIXTURE, 'quick_sweep', run, 'metrics.jsonl.gz'),
                 'rt') as f:
    records = [json.loads(line) for line in f]
  step = [r for r in records if r['kind'] == 'final'][-1]['step']
  return [r for r in records if r['kind'] == 'probe' and r['step'] == step][-1][
      'log_cond']


def test_a_part_page_sets_log_cond_noise_beside_the_run_to_run_variance(tmp_path):
  out = tmp_path / 'results'
  shutil.copytree(FIXTURE, out)
  results.build(str(out))
  text = (out / 'quick_sweep' / 'README.md').read_text()
  per_z = [np.asarray(_final_probe_log_cond(f'baseline_seed{s}')) for s in range(3)]
  se = [np.std(z, ddof=1) / np.sqrt(z.size) for z in per_z]
  between = np.var([z.mean() for z in per_z], ddof=1)
  # The fixture's config.txt records no probe_seed, so the page cannot know the runs
  # share their z: the noise is then the mean squared standard error of the runs.
  noise = np.mean(np.square(se))
  row = next(l for l in text.splitlines() if l.startswith('| baseline | 3 |'))
  assert row == (f'| baseline | 3 | {per_z[0].size} | no | {np.median(se):.3g} '
                 f'[{min(se):.3g}, {max(se):.3g}] | {noise:.3g} | {between:.3g} | '
                 f'{noise / between:.3g} |')


def test_a_mean_of_one_run_shows_no_nan_on_the_pages(tmp_path):
  out = tmp_path / 'results'
  shutil.copytree(FIXTURE, out)
  for seed in (1, 2):
    shutil.rmtree(out / 'quick_sweep' / f'baseline_seed{seed}')
  assert 'nan' not in open(results.build(str(out))).read()
  text = (out / 'quick_sweep' / 'README.md').read_text()
  row = next(l for l in text.splitlines()
             if l.startswith('| baseline | final log cond | 1 |'))
  assert ' - | - | n < 4 |' in row and 'nan' not in text


def test_the_page_gives_the_cpu_time_the_records_hold(tmp_path):
  """Per part, the CPU hours summed over the finished runs that record it, on its
  page and in its row of the table of parts."""
  out = tmp_path / 'results'
  shutil.copytree(FIXTURE, out)
  page = out / 'quick_sweep' / 'README.md'
  assert '| 5 of 6 | 200 | — |' in open(results.build(str(out))).read()
  assert 'CPU time: not recorded by these runs' in page.read_text()
  records = out / 'quick_sweep' / 'baseline_seed0' / 'metrics.jsonl.gz'
  with gzip.open(records, 'rt') as f:
    lines = [json.loads(line) for line in f]
  for record in lines:  # As a run of this package records it: 1,800 s in all.
    if record['kind'] in ('train', 'final'):
      record['process_cpu_seconds'] = 1800.0 * record['step'] / lines[-1]['step']
  with gzip.open(records, 'wt') as f:
    f.writelines(json.dumps(record) + '\n' for record in lines)
  assert '| 5 of 6 | 200 | 0.50 |' in open(results.build(str(out))).read()
  assert ('CPU time: 0.50 CPU-hours in 1 of the 5 finished runs (the others were '
          'made before runs recorded it).') in page.read_text()
  # The page's total counts a run shared by two parts (the phase-2 baselines beside
  # both JC settings) once.
  shutil.copytree(out / 'quick_sweep', out / 'quick_sweep_again')
  text = open(results.build(str(out))).read()
  assert ('CPU time of every part: 0.50 CPU-hours in 1 of the 5 distinct finished '
          'runs (the others were made before runs recorded it).') in text


FINISHED_RECORDS = '{"kind": "probe", "step": 0}\n{"kind": "final", "step": 10}\n'


def _run_config(workdir, seed=0):
  """The config a fashion_mnist_quick baseline of 10 steps in `workdir` runs with."""
  from launch import run_sweep
  from launch import sweeps
  run = sweeps.fashion_mnist_quick(num_seeds=seed + 1)[seed]
  return run_sweep.resolve_run_config(run, {'train_steps': '10'}, str(workdir))


DIVERGED_RECORDS = ('{"kind": "probe", "step": 0}\n'
                    '{"kind": "train", "step": 5, "d_loss": "nan"}\n')


def _fake_sweep(root, states=('finished', 'running')):
  """A sweep folder as launch.run_sweep leaves it: run i (baseline_seed<i>) in
  states[i], by default one finished run and one running."""
  from tf_gancond import config as config_lib
  runs = []
  for seed, state in enumerate(states):
    name = f'baseline_seed{seed}'
    run = root / name
    (run / 'checkpoints').mkdir(parents=True)
    (run / 'checkpoints' / 'ckpt-1.index').write_bytes(b'weights')
    (run / 'saved_models').mkdir()
    (run / 'config.txt').write_text(config_lib.to_text(_run_config(run, seed)))
    step = {'finished': 10, 'diverged': 5}.get(state, 7)
    (run / 'status.json').write_text(json.dumps({'state': state, 'step': step,
                                                 'train_steps': 10}))
    (run / 'metrics.jsonl').write_text(
        {'finished': FINISHED_RECORDS, 'diverged': DIVERGED_RECORDS}.get(
            state, '{"kind": "probe", "step": 0}\n{"kind": "train", "step": 9}\n'))
    runs.append({'name': name, 'seed': 0, 'setting': 'baseline', 'command': ['x'],
                 'workdir': str(run), 'train_steps': 10})
  (root / 'sweep.json').write_text(json.dumps(
      {'sweep': 'fashion_mnist_quick', 'extra': {}, 'runs': runs,
       'launcher': ['/machine/path/python']}))


def test_a_part_names_the_rows_it_cannot_judge_without_dropping_judged_checks():
  """A check with judged rows is not called "not judged": only its rows that are
  NOT RUN are named, each with its reason; checks with no judged row by label."""
  checks = [
      {'check': 'O3 VAE sensitivity', 'verdict': 'NOT RUN', 'note': 'no VAE runs'},
      {'check': 'O5 JC growth', 'target': 'early', 'measured': 2.0, 'n': 7,
       'verdict': 'INCONCLUSIVE'},
      {'check': 'O5 JC score: within-run spread', 'verdict': 'NOT RUN',
       'note': 'needs 3 evaluations'},
      {'check': 'O5 JC FD: within-run spread', 'verdict': 'NOT RUN',
       'note': 'needs 3 evaluations'},
      {'check': 'O5 JC settings', 'verdict': 'NOT RUN', 'note': 'no JC runs'},
      {'check': 'O6 collapse', 'verdict': 'NOT RUN', 'note': 'no WGAN-GP runs'},
  ]
  lines = results._scorecard_lines(checks)
  assert 'Not judged by these runs: O3, O6.' in lines
  assert ('Rows of the checks above that these runs cannot judge: O5 JC score: '
          'within-run spread, O5 JC FD: within-run spread (needs 3 evaluations); '
          'O5 JC settings (no JC runs).') in lines
  assert not any(line.startswith('Not judged') and 'O5' in line for line in lines)


def test_collect_copies_finished_runs_compactly(tmp_path):
  _fake_sweep(tmp_path / 'sweep')
  out = tmp_path / 'results'
  assert results.collect(str(tmp_path / 'sweep'), str(out)) == ['baseline_seed0']
  part = out / 'sweep'
  assert sorted(os.listdir(part / 'baseline_seed0')) == [
      'config.txt', 'metrics.jsonl.gz', 'status.json']
  with gzip.open(part / 'baseline_seed0' / 'metrics.jsonl.gz', 'rt') as f:
    assert f.read() == FINISHED_RECORDS
  assert not (part / 'baseline_seed1').exists()
  progress = json.load(open(part / 'progress.json'))
  # A running run's step is its newest record's (status.json keeps its start step).
  assert progress['baseline_seed1'] == {'state': 'running', 'step': 9, 'train_steps': 10}
  manifest = (part / 'sweep.json').read_text()
  assert str(tmp_path) not in manifest and '/machine/path' not in manifest
  before = (part / 'baseline_seed0' / 'metrics.jsonl.gz').read_bytes()
  results.collect(str(tmp_path / 'sweep'), str(out))
  assert (part / 'baseline_seed0' / 'metrics.jsonl.gz').read_bytes() == before


def test_the_command_on_the_page_names_the_overrides_of_one_setting(tmp_path):
  """A sweep made with --setting_extra (stage 1's baselines export G at three steps)
  is shown with it: collect keeps it in the committed manifest, and the part's
  command repeats it, so the command on the page is the one that made the runs."""
  _fake_sweep(tmp_path / 'sweep')
  manifest_path = tmp_path / 'sweep' / 'sweep.json'
  manifest = json.loads(manifest_path.read_text())
  manifest['setting_extra'] = {'baseline': {'export_at_steps': '938,9375'}}
  manifest_path.write_text(json.dumps(manifest))
  out = tmp_path / 'results'
  results.collect(str(tmp_path / 'sweep'), str(out))
  committed = json.loads((out / 'sweep' / 'sweep.json').read_text())
  assert committed['setting_extra'] == {'baseline': {'export_at_steps': '938,9375'}}
  assert results._command(committed) == (
      'python -m launch.run_sweep --sweep=fashion_mnist_quick --num_seeds=1 '
      '--sweep_dir=<dir> --setting_extra=baseline:export_at_steps=938,9375')


@pytest.mark.parametrize('part', sorted(
    d for d in os.listdir(COMMITTED)
    if os.path.isfile(os.path.join(COMMITTED, d, 'sweep.json'))))
def test_the_command_on_the_page_plans_the_committed_runs(part):
  """Each committed part's command, read back as run_sweep reads its flags, plans
  the runs its manifest records: the same names, config files, settings, seeds
  and overrides (a part may hold fewer seeds than it planned)."""
  from launch import run_sweep, sweeps  # pylint: disable=g-import-not-at-top
  with open(os.path.join(COMMITTED, part, 'sweep.json')) as f:
    manifest = json.load(f)
  flags = dict(arg[2:].split('=', 1) for arg in results._command(manifest).split()[3:]
               if arg != '--sweep_dir=<dir>')
  runs = sweeps.get_sweep(flags['sweep'], int(flags['num_seeds']))
  run_sweep.apply_setting_extra(runs, flags.get('setting_extra', ''))
  assert run_sweep.parse_extra(flags.get('extra', '')) == manifest['extra']
  planned = {run.name: run.to_json() for run in runs}
  for recorded in manifest['runs']:
    plan = planned[recorded['name']]
    assert {k: str(v) for k, v in plan.pop('overrides').items()} == {
        k: str(v) for k, v in recorded['overrides'].items()}, recorded['name']
    assert plan == {k: recorded[k] for k in plan}, recorded['name']


def test_collect_keeps_a_diverged_run_which_the_page_shows_as_such(tmp_path):
  """A run that diverged is a result: collect commits its records with its state,
  the part's report reads it as diverged, and restore leaves it out, so on a new
  machine the sweep makes it again rather than skip it."""
  from tf_gancond.report import records
  _fake_sweep(tmp_path / 'sweep', ('finished', 'running', 'diverged'))
  out = tmp_path / 'results'
  assert results.collect(str(tmp_path / 'sweep'), str(out)) == [
      'baseline_seed0', 'baseline_seed2']
  part = out / 'sweep'
  with gzip.open(part / 'baseline_seed2' / 'metrics.jsonl.gz', 'rt') as f:
    assert f.read() == DIVERGED_RECORDS
  assert json.load(open(part / 'baseline_seed2' / 'status.json'))['state'] == 'diverged'
  assert json.load(open(part / 'progress.json'))['baseline_seed2'] == {
      'state': 'diverged', 'step': 5, 'train_steps': 10}
  unpacked = tmp_path / 'unpacked'
  unpacked.mkdir()
  results._unpack(str(part), str(unpacked))
  runs = {r.name: r for r in records.load_sweep(str(unpacked))[1]}
  assert runs['baseline_seed2'].state == 'diverged'
  assert runs['baseline_seed2'].step == 5
  assert results.restore(str(part), str(tmp_path / 'new_machine')) == ['baseline_seed0']
  assert results._progress_lines(json.load(open(part / 'progress.json'))) == [
      'Runs finished: 1 of 3.', 'Diverged (kept as results): baseline_seed2 (at step 5 '
      'of 10).', 'Not finished when collected: baseline_seed1 (running, step 9 of 10).',
      '']
  assert '| 1 of 3 (1 diverged) |' in open(results.build(str(out))).read()
  page = (part / 'README.md').read_text()
  assert 'Diverged (kept as results): baseline_seed2' in page


def test_a_part_with_no_finished_run_has_a_page_and_a_row(tmp_path):
  """A part whose runs are all still running is listed with 0 finished, no length
  and no CPU time, and its page says there is no scorecard yet."""
  _fake_sweep(tmp_path / 'sweep', ('running', 'running'))
  out = tmp_path / 'results'
  assert results.collect(str(tmp_path / 'sweep'), str(out)) == []
  text = open(results.build(str(out))).read()
  assert '| [sweep](sweep/README.md) | ' in text and '| 0 of 2 | — | — |' in text
  page = (out / 'sweep' / 'README.md').read_text()
  assert page.startswith('# sweep\n')
  assert 'No run has finished yet: no scorecard.' in page
  (out / 'sweep' / 'NOTES.md').write_text('Started at noon.\n')
  results.build(str(out))
  assert 'Started at noon.' in (out / 'sweep' / 'README.md').read_text()


def test_collect_leaves_a_finished_run_the_sweep_will_extend(tmp_path):
  """A run that finished at a shorter length and waits, in a sweep of longer runs, to
  be extended (campaign.sh copies a finished stage-1 folder into stage 2) is not a
  result of that sweep yet: collect leaves it, and progress shows it pending at its
  step, of the sweep's length."""
  _fake_sweep(tmp_path / 'sweep', ('finished', 'finished'))
  manifest_path = tmp_path / 'sweep' / 'sweep.json'
  manifest = json.loads(manifest_path.read_text())
  manifest['runs'][1]['train_steps'] = 40
  manifest_path.write_text(json.dumps(manifest))
  out = tmp_path / 'results'
  assert results.collect(str(tmp_path / 'sweep'), str(out)) == ['baseline_seed0']
  assert not (out / 'sweep' / 'baseline_seed1').exists()
  progress = json.load(open(out / 'sweep' / 'progress.json'))
  assert progress['baseline_seed1'] == {'state': 'pending', 'step': 10,
                                        'train_steps': 40}


def test_collect_keeps_a_run_that_finished_early_by_design(tmp_path):
  """A run made at the sweep's length that ended before it on purpose (an O7
  memorizing run stops once it has memorized) is a result: collect copies it."""
  _fake_sweep(tmp_path / 'sweep', ('finished',))
  status = tmp_path / 'sweep' / 'baseline_seed0' / 'status.json'
  status.write_text(json.dumps({'state': 'finished', 'step': 7, 'train_steps': 10}))
  out = tmp_path / 'results'
  assert results.collect(str(tmp_path / 'sweep'), str(out)) == ['baseline_seed0']
  assert json.load(open(out / 'sweep' / 'progress.json'))['baseline_seed0'][
      'state'] == 'finished'


def test_collect_passes_over_a_run_whose_folder_a_launcher_holds(tmp_path):
  """A diverged run the sweep runner has started again (its launcher cuts the records
  back to its last checkpoint and writes on): collect leaves it until it ends, rather
  than copy files caught midway."""
  import fcntl
  _fake_sweep(tmp_path / 'sweep', ('finished', 'running', 'diverged'))
  fd = os.open(tmp_path / 'sweep' / 'baseline_seed2' / '.lock', os.O_RDWR | os.O_CREAT)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    assert results.collect(str(tmp_path / 'sweep'), str(tmp_path / 'results')) == [
        'baseline_seed0']
  finally:
    os.close(fd)
  assert not (tmp_path / 'results' / 'sweep' / 'baseline_seed2').exists()


def test_a_collect_that_dies_midway_leaves_the_collected_run_as_it_was(
    tmp_path, monkeypatch):
  """A kill while a run is collected again (here: its records stop being written
  half-way) keeps the records collected before, whole, and leaves nothing that
  restore or the report take for a run; the next collect completes it."""
  _fake_sweep(tmp_path / 'sweep')
  out = tmp_path / 'results'
  results.collect(str(tmp_path / 'sweep'), str(out))
  run = out / 'sweep' / 'baseline_seed0'
  before = {name: (run / name).read_bytes() for name in os.listdir(run)}
  metrics = tmp_path / 'sweep' / 'baseline_seed0' / 'metrics.jsonl'
  metrics.write_text(FINISHED_RECORDS + '{"kind": "final", "step": 10, "x": 1}\n' * 5000)
  real_copy = shutil.copyfileobj

  def dies_midway(src, dst, length=0):
    dst.write(src.read(1000))
    raise KeyboardInterrupt

  monkeypatch.setattr(shutil, 'copyfileobj', dies_midway)
  with pytest.raises(KeyboardInterrupt):
    results.collect(str(tmp_path / 'sweep'), str(out))
  assert {name: (run / name).read_bytes() for name in os.listdir(run)} == before
  assert results._committed_runs(str(out / 'sweep')) == ['baseline_seed0']
  monkeypatch.setattr(shutil, 'copyfileobj', real_copy)
  (out / 'sweep' / '.baseline_seed9.collecting').mkdir()  # A run no longer collected.

  for kill in killed_at_each_call((os, 'rename'), (os, 'replace'), (shutil, 'rmtree')):
    with monkeypatch.context() as m:
      kill(m)
      try:
        results.collect(str(tmp_path / 'sweep'), str(out))
      except KeyboardInterrupt:
        pass
    with gzip.open(run / 'metrics.jsonl.gz', 'rt') as f:
      assert f.read() in (metrics.read_text(), FINISHED_RECORDS), kill
  results.collect(str(tmp_path / 'sweep'), str(out))
  with gzip.open(run / 'metrics.jsonl.gz', 'rt') as f:
    assert f.read() == metrics.read_text()
  assert sorted(os.listdir(out / 'sweep')) == [
      'baseline_seed0', 'progress.json', 'sweep.json']


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
  assert results.main(['collect', f'--sweep_dir={tmp_path}']) == 2
  err = capsys.readouterr().err.strip()
  assert err.count('\n') == 0 and 'has no sweep.json' in err
  assert results.main(['build', f'--results_dir={tmp_path / "missing"}']) == 2
  assert 'is not a directory' in capsys.readouterr().err


def test_restore_puts_committed_runs_back_so_a_sweep_skips_them(tmp_path):
  """A lost machine: the committed records make a new sweep folder skip finished runs;
  a run folder (or link) already there is left as it is."""
  from launch import run_sweep
  _fake_sweep(tmp_path / 'sweep')
  original = tmp_path / 'sweep' / 'baseline_seed0'
  part = str(tmp_path / 'results' / 'sweep')
  results.collect(str(tmp_path / 'sweep'), str(tmp_path / 'results'))
  new = tmp_path / 'new_machine'
  assert results.restore(part, str(new)) == ['baseline_seed0']
  assert sorted(os.listdir(new)) == ['.lock', 'baseline_seed0']
  assert sorted(os.listdir(new / 'baseline_seed0')) == [
      'config.txt', 'metrics.jsonl', 'status.json']
  for name in ('config.txt', 'metrics.jsonl', 'status.json'):
    assert (new / 'baseline_seed0' / name).read_bytes() == (original / name).read_bytes()
  assert run_sweep.is_finished(_run_config(new / 'baseline_seed0'))
  assert results.restore(part, str(new)) == []
  for present in ('folder', 'dangling link'):
    other = tmp_path / present.replace(' ', '_')
    if present == 'folder':
      (other / 'baseline_seed0').mkdir(parents=True)
      (other / 'baseline_seed0' / 'metrics.jsonl').write_text('{"kind": "train"}\n')
    else:
      other.mkdir()
      os.symlink(tmp_path / 'nowhere', other / 'baseline_seed0')
    before = sorted(os.listdir(other))
    assert results.restore(part, str(other)) == [], present
    assert sorted(os.listdir(other)) == sorted(before + ['.lock']), present
  assert (tmp_path / 'folder' / 'baseline_seed0' / 'metrics.jsonl').read_text() == (
      '{"kind": "train"}\n')


@pytest.mark.parametrize('part', ['mnist_stage1', 'phase2_odena_jc'])
def test_a_restored_committed_run_is_skipped_or_refused_by_its_recorded_settings(
    tmp_path, part):
  """The runs committed in results/, restored and met by this package's sweep: an
  MNIST stage-1 run (every field in its config.txt) is finished; a Fashion-MNIST
  run made before fd_layer existed (Fréchet distance on pool_3, now the logits) is
  refused in one line naming that field, not taken for a run to go on with."""
  from launch import run_sweep
  from launch import sweeps
  source = os.path.join(os.path.dirname(TESTS_DIR), 'results', part)
  manifest = json.load(open(os.path.join(source, 'sweep.json')))
  part_copy = tmp_path / part
  part_copy.mkdir()
  shutil.copy(os.path.join(source, 'sweep.json'), part_copy)
  shutil.copytree(os.path.join(source, 'baseline_seed0'), part_copy / 'baseline_seed0')
  sweep_dir = tmp_path / 'sweep'
  assert results.restore(str(part_copy), str(sweep_dir)) == ['baseline_seed0']
  runs = [sweeps.Run.from_json(manifest['runs'][0])]
  if part == 'mnist_stage1':
    runner = run_sweep.SweepRunner(manifest['sweep'], runs, str(sweep_dir),
                                   extra=manifest['extra'])
    assert run_sweep.is_finished(runner.configs['baseline_seed0'])
  else:
    with pytest.raises(sweeps.SweepError,
                       match=r"^run baseline_seed0: .*fd_layer='pool_3' -> 'logits'"):
      run_sweep.SweepRunner(manifest['sweep'], runs, str(sweep_dir),
                            extra=manifest['extra'])


@pytest.mark.parametrize('damage', ['not gzip', 'corrupt deflate data', 'no status'])
def test_restore_of_a_damaged_part_is_one_line_and_leaves_no_half_run(
    tmp_path, capsys, damage):
  _fake_sweep(tmp_path / 'sweep')
  (tmp_path / 'sweep' / 'baseline_seed0' / 'metrics.jsonl').write_text(
      ''.join(f'{{"kind": "train", "step": {i}, "loss": {i * 0.37}}}\n'
              for i in range(2000)))
  results.collect(str(tmp_path / 'sweep'), str(tmp_path / 'results'))
  run = tmp_path / 'results' / 'sweep' / 'baseline_seed0'
  records = run / 'metrics.jsonl.gz'
  if damage == 'not gzip':
    records.write_bytes(b'not gzip')
  elif damage == 'corrupt deflate data':  # A valid header, a damaged stream.
    data = bytearray(records.read_bytes())
    for i in range(20, len(data) - 8, 7):
      data[i] ^= 0xFF
    records.write_bytes(bytes(data))
  else:
    (run / 'status.json').unlink()
  new = tmp_path / 'new_machine'
  argv = ['restore', f'--part={run.parent}', f'--sweep_dir={new}']
  assert results.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert err.count('\n') == 0 and 'baseline_seed0' in err
  assert sorted(os.listdir(new)) == ['.lock']


def test_restore_refuses_a_sweep_folder_a_runner_holds(tmp_path, capsys):
  import subprocess
  import sys
  _fake_sweep(tmp_path / 'sweep')
  results.collect(str(tmp_path / 'sweep'), str(tmp_path / 'results'))
  new = tmp_path / 'new_machine'
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from tf_gancond import runlog; '
       'runlog.lock_folder(sys.argv[1], "sweep_dir"); print("locked", flush=True); '
       'time.sleep(60)', str(new)], stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    argv = ['restore', f'--part={tmp_path / "results" / "sweep"}', f'--sweep_dir={new}']
    assert results.main(argv) == 2
  finally:
    holder.kill()
    holder.wait()
  err = capsys.readouterr().err.strip()
  assert err.count('\n') == 0 and 'is in use' in err and '--sweep_dir' in err
  assert sorted(os.listdir(new)) == ['.lock']


def test_the_report_takes_no_hidden_folder_for_a_run(tmp_path):
  """What a killed restore leaves (`.NAME.restoring`) is not a run of the sweep."""
  from tf_gancond import report
  _fake_sweep(tmp_path / 'sweep')
  shutil.copytree(tmp_path / 'sweep' / 'baseline_seed0',
                  tmp_path / 'sweep' / '.baseline_seed2.restoring')
  _, runs = report.load_sweep(str(tmp_path / 'sweep'))
  assert sorted(r.name for r in runs) == ['baseline_seed0', 'baseline_seed1']


def test_restore_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
  argv = ['restore', f'--part={tmp_path / "missing"}', f'--sweep_dir={tmp_path / "s"}']
  assert results.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert err.count('\n') == 0 and 'missing' in err and 'sweep.json' in err
  assert not (tmp_path / 's').exists()


def _compact_run(part, name, seed, final_log_cond, cs, fd, curve=None, train_steps=5000,
                 diverged_at=None, **config):
  """A finished MNIST baseline run's compact records in `part` (as collect writes);
  `curve` {step: (ln cond, CS, FD)} adds a probe and an eval record at each step. With
  `diverged_at`, the run diverged there instead: no final records."""
  from tf_gancond import config as config_lib
  from tf_gancond import runlog
  workdir = os.path.join(part, name)
  os.makedirs(workdir)
  c = config_lib.get_config()
  c.update(dict(config, dataset='mnist', seed=seed, train_steps=train_steps,
                workdir=workdir))
  runlog.atomic_write_text(os.path.join(workdir, runlog.CONFIG_FILE),
                           config_lib.to_text(config_lib.resolve(c)))
  log = runlog.RunLog(workdir)
  for step, (lc, step_cs, step_fd) in sorted((curve or {}).items()):
    log.append('probe', step, mean_log_cond=lc, log_cond=[lc] * 4)
    log.append('eval', step, classifier_score=step_cs, frechet_distance=step_fd,
               num_samples=10000)
  if diverged_at is not None:
    log.append('train', diverged_at, d_loss=float('nan'))
    log.set_status('diverged', diverged_at)
  else:
    if train_steps not in (curve or {}):
      log.append('probe', train_steps, mean_log_cond=final_log_cond,
                 log_cond=[final_log_cond] * 4)
    log.append('final', train_steps, mean_log_cond=final_log_cond, classifier_score=cs,
               frechet_distance=fd, num_samples=10000)
    log.set_status('finished', train_steps)
  metrics = os.path.join(workdir, runlog.METRICS_FILE)
  with open(metrics, 'rb') as src, gzip.open(metrics + '.gz', 'wb') as dst:
    shutil.copyfileobj(src, dst)
  os.remove(metrics)


def _compact_part(part, runs, extra, curves=None, diverged=None):
  """A results part: runs [(seed, ln cond, CS, FD)] of setting baseline; `curves`
  {seed: _compact_run's curve}; `diverged` {seed: the step its run diverged at}."""
  manifest = {'sweep': 'o2_mnist', 'extra': extra, 'runs': []}
  for seed, lc, cs, fd in runs:
    name = f'baseline_seed{seed}'
    _compact_run(part, name, seed, lc, cs, fd, (curves or {}).get(seed),
                 diverged_at=(diverged or {}).get(seed),
                 **{k: int(v) for k, v in extra.items()})
    manifest['runs'].append({'name': name, 'setting': 'baseline', 'seed': seed,
                             'overrides': {'dataset': 'mnist', 'seed': seed}})
  with open(os.path.join(part, 'sweep.json'), 'w') as f:
    json.dump(manifest, f)


def test_the_page_tables_each_unstated_choice_against_the_stage1_twins(tmp_path):
  """Stage-1 baselines of seeds 0-3 end at ln cond 10, 11, 12, 13 (s = sqrt(5/3));
  batch 128 reruns seeds 0 and 1 at 12 and 14: differences +2 and +3, mean 2.5 -+
  t(0.975, 3) s = 2.5 -+ 4.108. CS 8 -> 7.5 and 8.1 -> 7.7 (sd of 8, 8.1, 8.2,
  8.3 = 0.129): -0.45 -+ 0.411. FD: the choice's seed-1 run has none (nan), so
  one seed: +10 -+ t(0.975, 3) 1.291 sqrt(2). Its seed-2 run diverged: named beside
  the seeds, in no Δ."""
  out = tmp_path / 'results'
  _compact_part(str(out / 'mnist_stage1'), [
      (s, 10.0 + s, 8.0 + 0.1 * s, 20.0 + s) for s in range(4)], {})
  _compact_part(str(out / 'mnist_choice_batch_size'),
                [(0, 12.0, 7.5, 30.0), (1, 14.0, 7.7, float('nan')),
                 (2, 99.0, 1.0, 999.0)], {'batch_size': '128'}, diverged={2: 1200})
  text = open(results.build(str(out))).read()
  assert '## Unstated choices, one at a time' in text
  link = '[batch_size = 128](mnist_choice_batch_size/README.md)'
  row = next(line for line in text.splitlines()
             if line.startswith(f'| {link}'))
  cells = [c.strip() for c in row.strip('|').split(' | ')]
  assert cells[0] == f'{link} (64)'
  assert cells[1] == '2 (and 1 diverged: seed 2, at step 1,200)'
  numbers = [[float(x) for x in re.findall(r'[-+][\d.]+', cell)] for cell in cells[2:]]
  half = scipy_stats.t.ppf(0.975, 3)
  assert numbers[0] == pytest.approx(
      [2.5, 2.5 - half * np.sqrt(5 / 3), 2.5 + half * np.sqrt(5 / 3), 2, 3], rel=2e-3)
  sd_cs = np.std([8.0, 8.1, 8.2, 8.3], ddof=1)
  assert numbers[1] == pytest.approx(
      [-0.45, -0.45 - half * sd_cs, -0.45 + half * sd_cs, -0.5, -0.4], rel=2e-3)
  fd_half = half * np.sqrt(5 / 3) * np.sqrt(2)
  assert numbers[2] == pytest.approx([10, 10 - fd_half, 10 + fd_half, 10], rel=2e-3)



def _choice_row(text, start):
  """The cells of the page's table row that starts with `start`, and the numbers of
  each cell after the first two."""
  row = next(line for line in text.splitlines() if line.startswith(start))
  cells = [c.strip() for c in row.strip('|').split(' | ')]
  return cells, [[float(x) for x in re.findall(r'[-+][\d.]+', cell)]
                 for cell in cells[2:]]


def test_a_batch_size_choice_is_also_tabled_at_equal_images(tmp_path):
  """Batch 128 at its step 2,500 has seen the images of batch 64 at step 5,000.
  Stage-1 baselines of seeds 0-3 at step 5,000: ln cond 10 + s, CS 8 + 0.1 s, FD
  20 + s (their final values differ: ln cond 10 + 2 s over 512 z, so a spread taken
  from the finals would differ); batch 128's seeds 0 and 1 at step 2,500: ln cond
  9.5 and 10 (-0.5, -1: mean -0.75 -+ t(0.975, 3) sqrt(5/3)), CS 7.9 and 8.0 (-0.1
  both, -+ t sd(8, 8.1, 8.2, 8.3)), FD 25 and nan (seed 0's +5 alone, -+ t sqrt(5/3)
  sqrt(2)). Stage 2 (the same runs to 10,000 steps, ln cond 11 + s there) moves the
  row to batch 128's step 5,000 against step 10,000 once 4 of its baselines reached
  it, not with 3: ln cond 12 - 11 and 14 - 12, 1.5 -+ t(0.975, 3) sqrt(5/3)."""
  out = tmp_path / 'results'
  stage1 = {s: {2500: (9.0 + s, 7.8 + 0.1 * s, 30.0 + s),
                5000: (10.0 + s, 8.0 + 0.1 * s, 20.0 + s)} for s in range(4)}
  _compact_part(str(out / 'mnist_stage1'), [
      (s, 10.0 + 2 * s, 8.0 + 0.1 * s, 20.0 + s) for s in range(4)], {}, stage1)
  _compact_part(str(out / 'mnist_choice_batch_size'),
                [(0, 12.0, 7.5, 30.0), (1, 14.0, 7.7, 31.0)], {'batch_size': '128'},
                {0: {2500: (9.5, 7.9, 25.0), 5000: (12.0, 7.5, 30.0)},
                 1: {2500: (10.0, 8.0, float('nan')), 5000: (14.0, 7.7, 31.0)}})
  text = open(results.build(str(out))).read()
  link = '[batch_size = 128](mnist_choice_batch_size/README.md)'
  start = f'| {link} at equal images'
  cells, numbers = _choice_row(text, start)
  assert 'its step 2,500 against step 5,000' in cells[0]
  assert cells[1] == '2'
  half = scipy_stats.t.ppf(0.975, 3)
  sd_lc = np.sqrt(5 / 3)
  assert numbers[0] == pytest.approx(
      [-0.75, -0.75 - half * sd_lc, -0.75 + half * sd_lc, -0.5, -1.0], rel=2e-3)
  sd_cs = np.std([8.0, 8.1, 8.2, 8.3], ddof=1)
  assert numbers[1] == pytest.approx(
      [-0.1, -0.1 - half * sd_cs, -0.1 + half * sd_cs, -0.1, -0.1], rel=2e-3)
  fd_half = half * sd_lc * np.sqrt(2)
  assert numbers[2] == pytest.approx([5, 5 - fd_half, 5 + fd_half, 5], rel=2e-3)
  equal_steps, _ = _choice_row(text, f'| {link} (64)')
  assert equal_steps[1] == '2'

  stage2 = out / 'mnist_stage2'
  os.makedirs(stage2)
  manifest = {'sweep': 'odena_jc_mnist', 'extra': {'train_steps': '10000'}, 'runs': []}
  for s in range(4):
    name = f'baseline_seed{s}'
    _compact_run(str(stage2), name, s, 11.0 + s, 8.5, 15.0,
                 {**stage1[s], 10000: (11.0 + s, 8.5, 15.0)}, train_steps=10000)
    manifest['runs'].append({'name': name, 'setting': 'baseline', 'seed': s,
                             'overrides': {'dataset': 'mnist', 'seed': s}})
    with open(stage2 / 'sweep.json', 'w') as f:
      json.dump(manifest, f)
    cells, numbers = _choice_row(open(results.build(str(out))).read(), start)
    if s < 3:
      assert 'its step 2,500 against step 5,000' in cells[0]
  assert 'its step 5,000 against step 10,000' in cells[0]
  assert numbers[0] == pytest.approx([1.5, 1.5 - half * sd_lc, 1.5 + half * sd_lc,
                                      1.0, 2.0], rel=2e-3)

def test_the_choices_table_gives_the_batch_statistics_probes_of_the_same_g(tmp_path):
  """Four baseline runs probed under both BatchNorm readings: batch statistics minus
  moving averages 0.1, 0.2, 0.3, 0.4: mean 0.25 -+ t(0.975, 3) 0.1291 / 2. A run
  probed one way only is left out; a JC run gets a row of its own."""
  out = tmp_path / 'results'
  probes = out / 'mnist_batch_stats'
  os.makedirs(probes)
  for i, delta in enumerate([0.1, 0.2, 0.3, 0.4]):
    for mode, value in (('inference', 12.0 + i), ('batch_stats', 12.0 + i + delta)):
      with open(probes / f'baseline_seed{i}.{mode}.json', 'w') as f:
        json.dump({'mean_log_cond': value, 'bn_mode': mode}, f)
  with open(probes / 'baseline_seed9.inference.json', 'w') as f:
    json.dump({'mean_log_cond': 30.0}, f)
  for mode, value in (('inference', 12.0), ('batch_stats', 17.0)):  # A row of its own.
    with open(probes / f'jacobian_clamping_seed0.{mode}.json', 'w') as f:
      json.dump({'mean_log_cond': value}, f)
  _compact_part(str(out / 'mnist_stage1'), [(0, 10.0, 8.0, 20.0)], {})
  text = open(results.build(str(out))).read()
  row = next(line for line in text.splitlines() if line.startswith('| probe BatchNorm'))
  assert 'the same baseline G' in row
  cells = [c.strip() for c in row.strip('|').split(' | ')]
  assert cells[1] == '4 runs'
  mean, low, high = (float(x) for x in re.findall(r'[-+][\d.]+', cells[2]))
  half = scipy_stats.t.ppf(0.975, 3) * np.std([0.1, 0.2, 0.3, 0.4], ddof=1) / 2
  assert (mean, low, high) == pytest.approx((0.25, 0.25 - half, 0.25 + half), rel=2e-3)
  assert cells[3:] == ['— (same samples)', '— (same samples)']
  jc = next(line for line in text.splitlines()
            if line.startswith('| probe BatchNorm') and 'jacobian_clamping G' in line)
  assert '| 1 runs | +5 (Student t over the runs) |' in jc


def _records_file(run_dir, records, compact, tail=''):
  """Writes `records` (then the text `tail`, a cut line say) as a run's metrics,
  gzipped as collect does when `compact`."""
  os.makedirs(run_dir, exist_ok=True)
  text = ''.join(json.dumps(r) + '\n' for r in records) + tail
  if compact:
    with gzip.open(os.path.join(run_dir, 'metrics.jsonl.gz'), 'wt') as f:
      f.write(text)
  else:
    with open(os.path.join(run_dir, 'metrics.jsonl'), 'w') as f:
      f.write(text)


def _matched_run(*, losses=None, per_z=(9.5, 10.5), mean=11.0, cs=8.0, fd=20.0,
                 timing=1.0, resumed=(), last_step=100):
  """A run's records: train at steps 50 and 100 (+ 150 with `last_step` 150), probes
  at 0 and 100 (and 150), an eval at 100. `losses` {step: (d_loss, g_loss)} replace
  the default (0.7, 1.5); `per_z` and `mean` are the step-100 probe's; timings scale
  with `timing`."""
  recs = [{'kind': 'start', 'step': s, 'commit': 'abc'} for s in (0,) + resumed]
  for step in range(50, last_step + 1, 50):
    d_loss, g_loss = (losses or {}).get(step, (0.7, 1.5))
    recs.append({'kind': 'train', 'step': step, 'd_loss': d_loss, 'g_loss': g_loss,
                 'step_time': 0.1 * timing, 'steps_per_sec': 10.0 / timing,
                 'process_cpu_seconds': 3.0 * step * timing})
  for step in (0,) + tuple(range(100, last_step + 1, 50)):
    at_100 = step == 100
    recs.append({'kind': 'probe', 'step': step,
                 'mean_log_cond': mean if at_100 else 10.0 + step,
                 'log_cond': list(per_z) if at_100 else [9.0 + step, 11.0 + step]})
  recs.append({'kind': 'eval', 'step': 100, 'classifier_score': cs,
               'frechet_distance': fd, 'eval_seconds': 4.0 * timing})
  return recs


def test_match_finds_where_a_run_made_again_departs_from_its_reference(tmp_path,
                                                                        capsys):
  """Runs made again from step 0 against their committed records, up to step 100:
  train records compared field by field with the timings left out, probes by their
  largest per-z difference, scores (CS and FD) by theirs; a NaN or inf against a
  finite value is an infinite difference, not none; records after the step, runs
  of one folder only and a cut last line are left out; a run's live metrics.jsonl
  is read before a compact copy beside it."""
  reference, again = tmp_path / 'stage1', tmp_path / 'stage2'
  # Reference beyond step 100: other values at 150 that must not count.
  ref = _matched_run(resumed=(50,), last_step=150)
  for name in ('baseline_seed0', 'baseline_seed1', 'baseline_seed2', 'baseline_seed5',
               'baseline_seed3'):
    _records_file(reference / name, ref, True, tail='{"kind": "tra')
  _records_file(again / 'baseline_seed0',
                _matched_run(per_z=(9.5 + 5e-7, 10.5), timing=2.0), False)
  _records_file(again / 'baseline_seed1',
                _matched_run(losses={50: (0.7, 1.6), 100: (0.65, 1.5)}, mean=12.0,
                             cs=8.25, fd=23.0), False)
  _records_file(again / 'baseline_seed2',
                _matched_run(per_z=('nan', 10.5), mean='nan', fd='inf'), False)
  _records_file(again / 'baseline_seed5', _matched_run(), False)
  _records_file(again / 'baseline_seed5', _matched_run(losses={50: (9.0, 9.0)}), True)
  _records_file(again / 'baseline_seed4', _matched_run(), False)
  rows = {r['run']: r for r in results.match(str(again), str(reference), 100)}
  assert sorted(rows) == ['baseline_seed0', 'baseline_seed1', 'baseline_seed2',
                          'baseline_seed5']
  same, departed, broken, live = (rows[f'baseline_seed{i}'] for i in (0, 1, 2, 5))
  assert same['reference_resumes'] == [50] and same['resumes'] == []
  assert same['train_records'] == 2 and same['differing_fields'] == []
  assert same['first_difference_step'] is None
  assert same['largest_log_cond_difference'] == pytest.approx(5e-7, abs=1e-12)
  assert same['largest_score_difference'] == 0.0
  assert same['mean_log_cond'] == (11.0, 11.0)
  assert departed['differing_fields'] == ['d_loss', 'g_loss']
  assert departed['first_difference_step'] == 50
  assert departed['largest_log_cond_difference'] == 0.0
  assert departed['largest_score_difference'] == pytest.approx(3.0)
  assert departed['mean_log_cond'] == (11.0, 12.0)  # (reference, the run made again)
  assert broken['largest_log_cond_difference'] == math.inf
  assert broken['largest_score_difference'] == math.inf
  assert broken['mean_log_cond'][0] == 11.0 and math.isnan(broken['mean_log_cond'][1])
  assert live['differing_fields'] == []
  assert results.main(['match', f'--part={again}', f'--reference={reference}',
                       '--step=100']) == 0
  out = capsys.readouterr().out.splitlines()
  assert len(out) == 5 and out[1].startswith('baseline_seed0 | [50] | [] | 2 | none')
  assert '| d_loss, g_loss; first at step 50 | 0 | 3 | 11.0000, 12.0000' in out[2]
  assert out[3].endswith('| inf | inf | 11.0000, nan')
  for bad, words in ((tmp_path / 'nowhere', 'nowhere'),
                     (tmp_path / 'damaged', 'cannot be read')):
    if bad.name == 'damaged':
      (bad / 'baseline_seed0').mkdir(parents=True)
      (bad / 'baseline_seed0' / 'metrics.jsonl.gz').write_bytes(b'\x1f\x8bnot gzip')
    assert results.main(['match', f'--part={again}', f'--reference={bad}']) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and words in err, err
  (tmp_path / 'short' / 'baseline_seed0').mkdir(parents=True)
  _records_file(tmp_path / 'short' / 'baseline_seed0',
                _matched_run(per_z=(9.5, 10.5, 11.5)), False)
  assert results.main(['match', f'--part={tmp_path / "short"}',
                       f'--reference={reference}']) == 2
  err = capsys.readouterr().err.strip()
  assert err.count('\n') == 0 and '2 per-z values in --reference and 3 in --part' in err, err
