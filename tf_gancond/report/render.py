"""The report's Markdown: the checks table first, then runs, figures, statistics."""

from tf_gancond.report import fmt
from tf_gancond.report import records
from tf_gancond.report import shared
from tf_gancond.report import checks as checks_lib
from tf_gancond.report.checks import base

DOCS = 'docs/experiments.md'  # The package's description of every experiment.


def stand_in_sentence(dataset, name=str):
  """Said once for the rows that judge another dataset's targets on `dataset`;
  name(dataset) is how the text names a dataset."""
  target, dataset = name(base.STAND_INS[dataset]), name(dataset)
  return (f'{dataset} values of {target} targets are judged on a stand-in: '
          f'{dataset} has {target}\'s format and sizes, so a difference from the '
          f'paper\'s number is a finding about {dataset}, not necessarily about '
          f'{target}.')


def render_checks(rows, dataset):
  """The "Checks" section: the scorecard table, each row's verdict rule, and what
  each check of the registry tests."""
  lines = ['## Checks', '',
           f'One row per target of the papers the report judges (dataset: {dataset}); '
           f'each check is described in {DOCS}. Measured: the value over the runs, '
           'with its 95% interval (its method in the CI column; counts have none). '
           'NOT RUN: no runs for the check, or runs on another dataset than the '
           'target\'s (the value is then in the note); SETTING: a setting of the '
           'runs, not judged. Over every check, PASS or FAIL needs n at least the '
           'paper\'s own n (4 where it gives none), and runs as long as the '
           'paper\'s; otherwise the row '
           'is INCONCLUSIVE and its note says why and what the rule alone says.', '']
  if any(c['stand_in'] for c in rows):
    lines += [stand_in_sentence(dataset), '']
  lines += ['| check | target | measured | 95% CI | n | verdict | note |',
            '|---|---|---|---|---|---|---|']
  for c in rows:
    ci = ('-' if c['ci_low'] is None else
          f'[{fmt.measured(c["ci_low"])}, {fmt.measured(c["ci_high"])}] '
          f'({c["ci_method"]})')
    lines.append(f'| {c["check"]} | {c["target"]} | {fmt.measured(c["measured"])} | '
                 f'{ci} | {c["n"]} | {c["verdict"]} | '
                 f'{c["note"].replace("|", "/")} |')
  lines += ['', 'Verdict rules:', '']
  lines += [f'- {c["check"]}: {c["rule"]}' for c in rows]
  lines += ['', 'What each check tests:', '']
  lines += [f'- **{check.id}** ({check.source}'
            + (f', {check.dataset}' if check.dataset else '')
            + f'; `{DOCS}#{check.anchor}`): "{check.quote}". Measured: '
            f'{check.statistic}.' for check in checks_lib.CHECKS]
  return lines + ['']


def render_runs(ctx):
  """The "Runs" section: one row per run with its end values."""
  runs, analysis = ctx.runs, ctx.analysis
  states = {}
  for r in runs:
    states[r.state] = states.get(r.state, 0) + 1
  lines = ['## Runs', '',
           f'{len(runs)} runs: ' + ', '.join(
               f'{n} {s}' for s, n in sorted(states.items())) + '; by setting: ' +
           ', '.join(f'{s} {len(ctx.group(s))}' for s in ctx.settings) + '.', '',
           'Final values are the end of each run: a run that did not finish shows its '
           'state; a final log-cond is replaced by "non-finite" when it or a final '
           'score is inf or nan, and by "collapsed" when a final classifier / '
           f'Inception score is below {analysis["collapse_score"]:g}; the note says '
           'which.', '']
  header = ['run', 'setting', 'seed', 'state', 'step', 'final log-cond', 'cluster']
  header += [fmt.label(k) for k in ctx.score_names] + ['min class count', 'note']
  lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in sorted(runs, key=lambda r: (ctx.settings.index(r.setting),
                                       r.seed if r.seed is not None else 0, r.name)):
    log_cond = fmt.num(r.final_log_cond, 2) if r.outcome == 'ok' else r.outcome
    row = [r.name, r.setting, fmt.num(r.seed), r.state,
           f'{r.step}/{fmt.num(r.train_steps)}', log_cond, r.cluster or '-']
    row += [fmt.end(r, r.scores.get(k)) for k in ctx.score_names]
    row += [fmt.end(r, r.min_class_count, 0), r.outcome_reason.replace('|', '/')[:120]]
    lines.append('| ' + ' | '.join(str(c) for c in row) + ' |')
  lines.append('')
  columns = ctx.columns
  for key in sorted({c['key'] for c in columns.values()}):
    groups = [c for c, v in columns.items() if v['key'] == key]
    if len(groups) > 1:
      lines += [f'Not pooled: {fmt.label(key)} comes from {len(groups)} groups of '
                'runs whose classifier (fingerprint, else identity) or sample count '
                'differ; each group is its own column: ' + '; '.join(
                    f'{fmt.label(c)}: {", ".join(columns[c]["runs"])}'
                    for c in groups) + '.', '']
  if not ctx.score_names:
    lines += ['No scores recorded (no eval or final records with scores: evaluation '
              'was off or the classifier was not available).', '']
  return lines


def render_figures(figures):
  """The "Figures" section. figures: [(Figure, file name or None, caption fields)]."""
  lines = ['## Figures', '']
  for figure, filename, extra in figures:
    if filename:
      lines += [f'![{figure.key}]({filename})', '', figure.caption.format(**extra), '']
    else:
      lines += [f'*{figure.title}: not drawn, {figure.missing}.*', '']
  return lines


def render_statistics(ctx):
  """The "Statistics" section: the shared analyses, then each check's section."""
  analysis = ctx.analysis
  lines = ['## Statistics', '',
           'Each statistic uses the end points of the runs. Means and Pearson r leave '
           'out runs without a finite value: diverged, failed, interrupted or '
           'unfinished runs, and for log-cond also runs whose final log-cond or '
           'scores are non-finite or whose generator collapsed (final classifier / '
           f'Inception score below {analysis["collapse_score"]:g}). Rank statistics '
           '(Spearman ρ, the top-k check, the cluster split) rank diverged, non-finite '
           'and collapsed '
           'runs worst by log-cond and a non-finite score worst among the scores. '
           'Every statistic lists the runs it left out ("excluded") and ranked worst. '
           'Intervals (95%, only for groups of at least 4 runs): of a mean, Student t '
           '(mean ± t s / √n: the percentile bootstrap covers only 86% of the time at '
           'n = 5); of O4\'s Pearson r, Fisher z; of a Spearman ρ, percentile '
           f'bootstrap over runs, {analysis["bootstrap_resamples"]} resamples, seed '
           f'{analysis["bootstrap_seed"]}. std and variance use ddof = 1 (inter-run '
           'variance).', '']
  lines += (render_final_values(analysis) + render_log_cond_noise(analysis) +
            render_paired(analysis))
  for check in checks_lib.CHECKS:
    lines += check.section(ctx)
  return lines


def render_markdown(name, source, ctx, figures):
  """report.md. `source`: the sentence under the title that says where the runs are;
  figures as render_figures takes them."""
  lines = [f'# Replication report: {name}', '', source, '',
           'log-cond is ln cond(M_z) = 2 ln(σmax/σmin of J_z) (natural log), averaged '
           'over the fixed probe batch; "final" is the final record\'s (over '
           'final_probe_num_z z, the probe batch first, in runs that set it), else the '
           'last probe\'s.',
           '']
  lines += render_checks(ctx.analysis['checks'], ctx.dataset)
  lines += render_runs(ctx)
  lines += render_figures(figures)
  lines += render_statistics(ctx)
  return '\n'.join(lines)


def end_keys(analysis):
  """The end values in table order: log-cond, the score columns, the class count."""
  return list(shared.end_quantities(analysis['score_keys']))



def render_final_values(analysis):
  """The "Final values per setting" section: mean ± std and the interval of the mean
  of each end value, per setting."""
  lines = ['### Final values per setting', '',
           '| setting | quantity | n | mean ± std | variance | 95% CI of mean | '
           'excluded |', '|---|---|---|---|---|---|---|']
  settings = records.ordered_settings(analysis['settings'])
  rows = [f'| {s} | {fmt.label(key)} | {entry[key]["n"]} | '
          f'{fmt.summary(entry[key])} | {fmt.counts(entry[key]["excluded"])} |'
          for s in settings for entry in [analysis['settings'][s]]
          for key in end_keys(analysis) if key in entry]
  if not rows:
    return lines[:2] + ['No final values recorded (no probes, scores or class '
                        'counts).', '']
  return lines + rows + ['']



def render_log_cond_noise(analysis):
  """The section of log_cond_noise per setting; none without it."""
  noise = analysis.get('log_cond_noise')
  if not noise:
    return []
  lines = ['### Measurement noise of the final log-cond', '',
           'A final log-cond is the mean of ln cond(M_z) over the N z of one probe; '
           'its standard error SE (sd over z / √N) is how far another draw of z moves '
           'it for one run. noise var is what z sampling adds to the variance between '
           'runs: the mean SE² for runs probed on their own z; for runs probed on one '
           'shared z batch, the runs × z interaction mean square / N (a pattern over z '
           'that all runs share cancels between them). noise share = noise var / the '
           'variance between runs: the part of the run-to-run spread the measurement '
           'alone gives. Near or above 1, the ranks, clusters and correlations of '
           'final log-cond are mostly z noise; below 1, a Pearson r with it is '
           'attenuated by about √(1 − share).', '',
           '| setting | runs | z per run | shared z | SE median [min, max] | noise var '
           '| variance between runs | noise share |', '|---|---|---|---|---|---|---|---|']
  for s in records.ordered_settings(noise):
    v = noise[s]
    share = v['noise_share']
    lines.append(f'| {s} | {v["n"]} | {", ".join(map(str, v["num_z"]))} | '
                 f'{"yes" if v["z_shared"] else "no"} | '
                 f'{fmt.small(v["se_median"])} [{fmt.small(v["se_min"])}, '
                 f'{fmt.small(v["se_max"])}] | {fmt.small(v["noise_var"])} | '
                 f'{fmt.small(v["between_var"])} | '
                 f'{fmt.small(share) if share is not None else "-"} |')
  return lines + ['']



def render_paired(analysis):
  """The section of paired_by_seed's differences; none without pairs."""
  paired = analysis['paired']
  if not paired:
    return []
  lines = [f'### {paired["setting"]} against its {paired["against"]} twin, paired by '
           'seed', '',
           f'd = {paired["setting"]} − {paired["against"]} of the same seed: the two '
           'runs start from the same weights and draw the same z, and the same data '
           'order until either is resumed, so d leaves out the seed-to-seed spread of '
           'the means. Left out, by reason: JC runs without a seed, with no twin, or '
           'sharing their seed with another run of their setting, and pairs where '
           'either run has no finite end value.', '',
           '| quantity | pairs | mean d ± std | variance | 95% CI of mean d | '
           'excluded |', '|---|---|---|---|---|---|']
  quantities = paired['quantities']
  lines += [f'| {fmt.label(key)} | {quantities[key]["n"]} | '
            f'{fmt.summary(quantities[key])} | '
            f'{fmt.counts(quantities[key]["excluded"])} |'
            for key in end_keys(analysis) if key in quantities]
  return lines + ['']
