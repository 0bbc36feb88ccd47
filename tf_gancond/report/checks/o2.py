"""O2: conditioning predicts the scores (docs/experiments.md#o2).

[O] Sec. 3, Fig. 1 left: of ten MNIST runs "identical up to random initialization",
"Roughly half of the time, the condition number increases rapidly and then stays
high or climbs higher", and "the 4 runs with the lowest condition number also have
the 4 best scores". Rows: the cluster split of the unregularized runs by final
log-cond (shared.cluster_split), and per score the overlap of the k = round(0.4 n)
lowest-log-cond runs with the k best; beside them, the Spearman rho of final
log-cond with each score per setting.
"""

from tf_gancond import stats
from tf_gancond.report import fmt
from tf_gancond.report import plots
from tf_gancond.report import records
from tf_gancond.report import shared
from tf_gancond.report.checks import base

SPLIT = 'o2_split'
TOP_K = 'o2_top_k'  # The family of the top-k rows, one per score.
# "the 4 runs with the lowest condition number also have the 4 best scores", of 10.
PAPER_TOP_K = '4 of 4 (of 10 runs)'


def analyse(ctx):
  """{'spearman': {setting: {score column: rho}}, 'top_k': {score column: overlap}}.

  spearman: rho of final log-cond (rank_log_cond) with each final score over the
  runs of a setting, with its percentile bootstrap interval. top_k: over the
  unregularized runs, how many of the k = round(0.4 n) lowest-log-cond runs are
  among the k best by the score.
  """
  spearman, top_k = {}, {}
  for s in ctx.settings:
    for k in ctx.score_names:
      x, y, excluded, ranked_worst = shared.rank_rows(
          ctx.group(s), k, records.lower_is_better(ctx.columns[k]['key']))
      if x.size < 2:
        continue
      spearman.setdefault(s, {})[k] = {
          'n': int(x.size), 'rho': stats.spearman(x, y),
          'ci': ctx.ci(stats.spearman, x, y),
          'excluded': excluded, 'ranked_worst': ranked_worst}
  for k in ctx.score_names:
    lower_better = records.lower_is_better(ctx.columns[k]['key'])
    x, y, excluded, ranked_worst = shared.rank_rows(ctx.unregularized, k, lower_better)
    if x.size < 2:
      continue
    size = stats.top_k_size(x.size)
    badness = y if lower_better else -y
    top_k[k] = {'n': int(x.size), 'k': size,
                'overlap': stats.top_k_overlap(x, badness, size),
                'excluded': excluded, 'ranked_worst': ranked_worst}
  return {'spearman': spearman, 'top_k': top_k}


def split_row(ctx):
  clusters = ctx.clusters
  check, target = 'O2 MNIST cluster split (good / bad)', '≈5/5'
  n = clusters.get('n', sum(r.counted for r in ctx.unregularized))
  low, high = -(-3 * n // 10), 7 * n // 10
  # In counts once n is enough to judge (below it, 30-70 % of 1 run is no count).
  share = (f'{low}–{high} of the {n} unregularized runs (30–70%)'
           if n >= base.MIN_RUNS else '30–70% of the unregularized runs')
  rule = (f'PASS: the 2-means split is two clusters (a parametric bootstrap of its '
          f'gain under one Gaussian of the same mean and spread gives p < '
          f'{stats.CLUSTER_ALPHA:g}, over at least {stats.MIN_CLUSTER_N} runs with a '
          f'finite final log-cond) and the good cluster holds {share}; FAIL: two '
          'clusters, with a good cluster outside that; INCONCLUSIVE: no evidence of '
          f'two clusters, or n < {base.MIN_RUNS}.')
  if not ctx.unregularized:
    return base.row(SPLIT, check, target, rule, note='no unregularized runs')
  if not clusters or n < base.MIN_RUNS:
    return base.row(SPLIT, check, target, rule, n=n, verdict=stats.INCONCLUSIVE,
                    note=f'fewer than {base.MIN_RUNS} runs to split')
  test = (f'p = {clusters["p"]:.3g} (2-means gain {clusters["between_fraction"]:.3f} '
          f'against one Gaussian, {clusters["n_tested"]} runs)'
          if clusters['p'] is not None else 'fewer than 3 finite values to test')
  note = base.excluded_note(clusters['excluded'], clusters['ranked_worst'])
  if not clusters['separated']:
    return base.row(SPLIT, check, target, rule, n=n, verdict=stats.INCONCLUSIVE,
                    note=f'not clustered: {test}' + (f'; {note}' if note else ''))
  good = len(clusters['good'])
  return base.row(SPLIT, check, target, rule, good, None, n,
                  stats.verdict(good, good, low, high, n),
                  f'good {good} / bad {len(clusters["bad"])}, threshold '
                  f'{fmt.num(clusters["threshold"], 2)}, {test}' +
                  (f'; {note}' if note else ''))


def top_k_rows(ctx):
  top_k, columns = ctx.analysis['top_k'], ctx.columns
  rows = []
  for key, v in top_k.items():
    if columns[key]['key'] == 'kid':
      continue
    k = v['k']
    rule = (f'PASS: all k = round(0.4 n) = {k} lowest-log-cond unregularized runs '
            f'have the {k} best scores; FAIL: fewer; INCONCLUSIVE: '
            f'n < {base.MIN_RUNS}.')
    note = (f'{v["overlap"]} of the k = {k} lowest-log-cond runs (round(0.4 n), '
            f'n = {v["n"]}) have the {k} best')
    excluded = base.excluded_note(v['excluded'], v['ranked_worst'])
    rows.append(base.row(
        f'{TOP_K}:{key}', f'O2 lowest-log-cond runs that have the best '
        f'{fmt.label(key)}', PAPER_TOP_K, rule, v['overlap'], None, v['n'],
        stats.verdict(v['overlap'], v['overlap'], k, k, v['n']),
        '; '.join(filter(None, (note, excluded))), TOP_K))
  if not rows:
    rows.append(base.row(
        TOP_K, 'O2 lowest-log-cond runs that have the best scores', PAPER_TOP_K,
        'PASS: all k = round(0.4 n) lowest-log-cond unregularized runs have the k '
        'best scores; FAIL: fewer.',
        note=('fewer than 2 finished unregularized runs with scores'
              if columns else 'no scores of unregularized runs recorded')))
  return rows


def rows(ctx):
  return [base.with_note(split_row(ctx), base.noise_notes(ctx))] + top_k_rows(ctx)


def fig_over_time(ctx, output):
  """Fig. 1/5/6: log-cond and scores against step; rows = metrics, columns =
  settings."""
  runs, settings = ctx.runs, ctx.settings
  score_names = sorted({c['key'] for c in ctx.columns.values()})
  metrics = [('mean_log_cond', 'mean ln cond(M_z)')]
  metrics += [(k, fmt.label(k)) for k in score_names
              if any(k in e for r in runs for e in r.evals)]
  if not any(r.probes for r in runs) and len(metrics) == 1:
    return None, {}
  plt = plots.pyplot()
  fig, axes = plt.subplots(len(metrics), len(settings), squeeze=False, sharey='row',
                           sharex=True,
                           figsize=(4.2 * len(settings), 2.8 * len(metrics)))
  for j, s in enumerate(settings):
    for i, (key, label) in enumerate(metrics):
      ax = axes[i][j]
      for r in ctx.group(s):
        source = r.probes if key == 'mean_log_cond' else r.evals
        points = [(e['step'], e[key]) for e in source
                  if records.is_number(e.get(key))]
        if points:
          x, y = zip(*points)
          ax.plot(x, y, color=plots.color(r), lw=1,
                  marker='.' if len(x) < 4 else None, alpha=0.85)
      if i == 0:
        ax.set_title(s)
      if j == 0:
        ax.set_ylabel(label)
      if i == len(metrics) - 1:
        ax.set_xlabel('generator step')
      ax.grid(alpha=0.3)
  plots.cluster_legend(axes[0][0], runs)
  fig.tight_layout()
  return plots.save(fig, output, 'fig1_log_cond_and_scores.png'), {}


def fig_final_scatter(ctx, output):
  """Final log-cond against each final score (the rank-correlation claim)."""
  runs, settings = ctx.runs, ctx.settings
  keys = [k for k in ctx.score_names if sum(
      1 for r in runs if records.is_number(r.scores.get(k)) and
      records.is_number(r.final_log_cond)) >= 2]
  if not keys:
    return None, {}
  plt = plots.pyplot()
  markers = plots.markers(settings)
  fig, axes = plt.subplots(1, len(keys), squeeze=False,
                           figsize=(4.2 * len(keys), 3.4))
  for j, k in enumerate(keys):
    ax = axes[0][j]
    for s in settings:
      pts = [(r.final_log_cond, r.scores[k]) for r in ctx.group(s)
             if records.is_number(r.scores.get(k)) and
             records.is_number(r.final_log_cond)]
      if pts:
        x, y = zip(*pts)
        ax.scatter(x, y, marker=markers[s], label=s, alpha=0.8)
    ax.set_xlabel('final mean ln cond(M_z)')
    ax.set_ylabel(fmt.label(k))
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  return plots.save(fig, output, 'fig_final_log_cond_vs_scores.png'), {}


def section(ctx):
  """The cluster split, the Spearman correlations and the top-k overlaps."""
  analysis = ctx.analysis
  method = ('exact 1-D 2-means: the cut of the sorted final log-cond values with the '
            'least within-cluster sum of squares, tried over all n-1 cuts'
            if analysis['cluster_method'] == 'kmeans' else
            'the largest gap between consecutive sorted final log-cond values')
  lines = ['### Cluster split (good = low final log-cond)', '',
           f'Method: {method}, over the unregularized runs '
           f'({", ".join(records.UNREGULARIZED)}) with a finite final log-cond; their '
           'diverged, non-finite and collapsed runs join the bad cluster. Threshold = '
           'midpoint of the cut. The split counts as two clusters only when its '
           '2-means gain (between-cluster share of the variance) is larger than one '
           'Gaussian of the same mean and spread gives at p < '
           f'{stats.CLUSTER_ALPHA:g} (parametric bootstrap, '
           f'{analysis["bootstrap_resamples"]} samples), over at least '
           f'{stats.MIN_CLUSTER_N} runs; otherwise no run is called good or bad ("not '
           'clustered"). With two clusters, Jacobian Clamping runs are placed by the '
           'same threshold.', '']
  c = analysis['clusters']
  if not c:
    lines += ['Not computed: fewer than two unregularized runs with a finite final '
              'log-cond.', '']
  else:
    other = [k for k in c if k.startswith('agrees_with_')][0]
    verdict = 'two clusters' if c['separated'] else 'not clustered'
    lines.append(f'- {c["n"]} unregularized runs (ranked worst: '
                 f'{fmt.counts(c["ranked_worst"])}; excluded: '
                 f'{fmt.counts(c["excluded"])}): threshold '
                 f'{fmt.num(c["threshold"], 2)}, gap {fmt.num(c["gap"], 2)}, '
                 f'between-cluster share of variance '
                 f'{fmt.num(c["between_fraction"], 2)}, p = '
                 f'{fmt.small(c["p"]) if c["p"] is not None else "-"} over '
                 f'{c["n_tested"]} finite values: {verdict}; same split by '
                 f'{other[len("agrees_with_"):]}: {"yes" if c[other] else "no"}.')
    if c['separated']:
      lines.append(f'- good ({len(c["good"])}): {", ".join(c["good"])}; '
                   f'bad ({len(c["bad"])}): {", ".join(c["bad"])}.')
      lines.append('- Good-cluster runs per setting: ' + '; '.join(
          f'{s} {v["good"]}/{v["runs"]} (excluded: {fmt.counts(v["excluded"])})'
          for s, v in c['placed'].items()) + '.')
  lines.append('')

  lines += ['### Rank correlation of final log-cond with each score (Spearman)', '']
  if not analysis['spearman']:
    return lines + ['No scores recorded: no correlation to compute.', '']
  lines += ['| runs | score | n | Spearman ρ | 95% CI | ranked worst | excluded |',
            '|---|---|---|---|---|---|---|']
  for label, per_key in analysis['spearman'].items():
    for k, v in per_key.items():
      lines.append(f'| {label} | {fmt.label(k)} | {v["n"]} | {fmt.num(v["rho"])} | '
                   f'{fmt.ci(v["ci"])} | {fmt.counts(v["ranked_worst"])} | '
                   f'{fmt.counts(v["excluded"])} |')
  lines.append('')
  if analysis['top_k']:
    lines += ['O2 check ("the 4 runs with the lowest condition number also have the 4 '
              'best scores"), over the unregularized runs, k = round(0.4 n):', '']
    for key, v in analysis['top_k'].items():
      lines.append(f'- {fmt.label(key)}: k = round(0.4 × {v["n"]}) = {v["k"]}; '
                   f'{v["overlap"]} of the {v["k"]} lowest-log-cond runs are among '
                   f'the {v["k"]} best (ranked worst: {fmt.counts(v["ranked_worst"])};'
                   f' excluded: {fmt.counts(v["excluded"])}).')
    lines.append('')
  return lines


CHECK = base.Check(
    id='o2', anchor='o2', source='[O] Sec. 3, Fig. 1 left', dataset='mnist',
    quote='the 4 runs with the lowest condition number also have the 4 best scores',
    statistic='the 2-means split of the unregularized runs\' final log-cond and its '
              'p-value against one Gaussian; per score, how many of the k = '
              'round(0.4 n) lowest-log-cond runs are among the k best',
    plain={'o2_split': 'Runs without JC fall into a well- and a poorly-conditioned '
                       'cluster',
           'o2_top_k': 'The best-conditioned runs have the best scores'},
    rows=rows, analyse=analyse, section=section,
    paper_steps={'mnist': base.MNIST_STEPS}, min_runs=base.ODENA_RUNS,
    figures=(
        base.Figure('over_time', 'Fig. 1/5/6', 'log-cond and scores over training',
                    'Fig. 1/5/6 shape: mean log-condition number (top) and each '
                    'recorded score against generator step, one line per run, one '
                    'column per setting; colour = cluster of the run by final '
                    'log-cond.', 'no probes and no scores recorded', fig_over_time),
        base.Figure('scatter', 'Final log-cond vs scores',
                    'final log-cond against final scores',
                    'Final log-cond against each final score, one point per run.',
                    'no scores recorded', fig_final_scatter)))
