"""O3: average-Jacobian spectra, GAN against VAE (docs/experiments.md#o3).

[O] Sec. 3, Fig. 3: "The spectra of the different VAE runs are almost
indistinguishable", and "the overall sensitivity of the VAE decoder to its input
seems to be quite a bit lower than that of the GAN decoder". Over finished runs
with a finite spectrum of E_z[J_z] at the end (the GANs are the unregularized
runs): a one-sided exact Mann-Whitney test of the VAE levels (spectrum_level) below
the GANs', and the ratio of their between-run spreads against the F-test bound.
"""

import math

import numpy as np

from tf_gancond import stats
from tf_gancond.report import fmt
from tf_gancond.report import plots
from tf_gancond.report import shared
from tf_gancond.report.checks import base

VAE = 'vae'
ALPHA = 0.05  # One-sided level of both O3 tests; 3 + 3 runs can reach it.


def spectrum_level(run):
  """Mean over i of ln sigma_i of the run's E_z[J_z] at the end: the log of the
  geometric mean of its singular values (-inf if one is 0)."""
  with np.errstate(divide='ignore'):
    return float(np.mean(np.log(run.spectrum)))


def between_run_spread(group):
  """RMS over the indices i of the between-run sd (ddof 1) of ln sigma_i, with each
  run's singular values sorted descending (on the shortest spectrum's indices)."""
  width = min(r.spectrum.size for r in group)
  log_sv = np.log([np.sort(r.spectrum)[::-1][:width] for r in group])
  return float(np.sqrt(np.mean(np.var(log_sv, axis=0, ddof=1))))


def rows(ctx):
  """The 'below' and 'spread' rows."""
  below = ('o3_below', "O3 VAE sensitivity below the GANs' (mean ln σ_i of E_z[J_z])",
           'quite a bit lower',
           f'PASS: a one-sided exact Mann-Whitney test puts the VAE runs\' mean ln σ_i '
           f'below the GAN runs\' at p ≤ {ALPHA:g} (with 10 + 10 runs: at most 27 '
           'pairs out of order); FAIL: the VAE average is at or above the GAN '
           f'average; INCONCLUSIVE: otherwise, or fewer than {base.ODENA_RUNS} runs '
           'of either, the paper\'s 10 + 10.')
  vae, gan = ctx.group(VAE), ctx.unregularized

  def ok(r):
    return r.state == 'finished' and r.spectrum is not None and math.isfinite(
        spectrum_level(r))
  excluded_note = base.excluded_note(shared.count([
      shared.missing(r) if r.state != 'finished' else 'no finite spectrum'
      for r in vae + gan if not ok(r)]))
  vae, gan = [r for r in vae if ok(r)], [r for r in gan if ok(r)]
  n = len(vae) + len(gan)
  enough = min(len(vae), len(gan)) >= 2
  bound = stats.sd_ratio_bound(len(vae), len(gan), ALPHA) if enough else None
  spread = ('o3_spread', 'O3 run-to-run spread of ln σ_i of E_z[J_z], VAE / GAN',
            'VAEs near-identical, GANs vary',
            'PASS: the ratio of the VAE runs\' spread to the GAN runs\' lies below ' +
            (f'{bound:.3g}, ' if bound else '') + f'where a one-sided F-test of the '
            f'variances is significant at {ALPHA:g} (sqrt of the {ALPHA:g} '
            'quantile of F(n_VAE - 1, n_GAN - 1)); a spread is the RMS over i of the '
            'between-run sd of ln σ_i, and those n - 1 degrees of freedom are '
            'conservative for an average over correlated i; FAIL: the ratio is at '
            f'least 1; INCONCLUSIVE: between, or fewer than {base.ODENA_RUNS} runs of '
            'either.')
  if not ctx.group(VAE):
    return [base.row(*below, note='no VAE runs'),
            base.row(*spread, note='no VAE runs')]
  excluded = [excluded_note] if excluded_note else []
  if not enough:
    counts = f'{len(vae)} VAE and {len(gan)} GAN runs'
    return [base.with_note(base.row(*r, n=n, verdict=stats.INCONCLUSIVE, note=counts),
                           excluded) for r in (below, spread)]
  vae_level = [spectrum_level(r) for r in vae]
  gan_level = [spectrum_level(r) for r in gan]
  p = stats.rank_test_less(vae_level, gan_level)
  difference = float(np.mean(vae_level) - np.mean(gan_level))
  below_verdict = (stats.FAIL if difference >= 0 else
                   stats.PASS if p <= ALPHA else stats.INCONCLUSIVE)
  vae_spread, gan_spread = between_run_spread(vae), between_run_spread(gan)
  ratio = vae_spread / gan_spread if gan_spread > 0 else math.inf
  spread_verdict = (stats.FAIL if ratio >= 1 else
                    stats.PASS if ratio < bound else stats.INCONCLUSIVE)
  judged = [base.row(*below, difference, None, n, below_verdict,
                     f'mean ln σ_i: VAE {fmt.num(np.mean(vae_level))}, GAN '
                     f'{fmt.num(np.mean(gan_level))}; p = {p:.3g}'),
            base.row(*spread, ratio, None, n, spread_verdict,
                     f'spread: VAE {fmt.num(vae_spread)}, GAN {fmt.num(gan_spread)} '
                     'nats')]
  if min(len(vae), len(gan)) < base.ODENA_RUNS:  # Shown, not judged.
    judged = [base.held_open(r, [f'{len(vae)} VAE and {len(gan)} GAN runs, fewer '
                                 f'than {base.ODENA_RUNS} of either']) for r in judged]
  return [base.with_note(r, excluded) for r in judged]


def fig_spectra(ctx, output):
  """Fig. 3/4: sorted singular values of E_z[J_z] at the end, log axis: one panel
  per setting (colour: cluster), and with two or more settings a last panel with
  every run (colour: setting), as Fig. 3 sets the GANs against the VAEs."""
  runs = ctx.runs
  with_spectrum = [s for s in ctx.settings if any(
      r.spectrum is not None for r in ctx.group(s))]
  if not with_spectrum:
    return None, {}
  every = 'every setting'  # The title of the panel with every run.
  panels = with_spectrum + ([every] if len(with_spectrum) > 1 else [])
  setting_colors = {s: f'C{i}' for i, s in enumerate(with_spectrum)}
  plt = plots.pyplot()
  fig, axes = plt.subplots(1, len(panels), squeeze=False, sharey=True,
                           figsize=(4.2 * len(panels), 3.4))
  for ax, panel in zip(axes[0], panels):
    for r in (r for r in runs if r.spectrum is not None and
              panel in (r.setting, every)):
      sv = np.sort(r.spectrum)[::-1]
      color = plots.color(r) if panel == r.setting else setting_colors[r.setting]
      ax.semilogy(np.arange(1, sv.size + 1), np.maximum(sv, 1e-30), color=color,
                  lw=1, alpha=0.85)  # 1e-30: a zero singular value stays on the axis.
    ax.set_title(panel)
    ax.set_xlabel('index')
    ax.grid(alpha=0.3, which='both')
  axes[0][0].set_ylabel('singular value of E_z[J_z]')
  plots.cluster_legend(axes[0][0], runs)
  if len(panels) > 1:
    from matplotlib.lines import Line2D
    axes[0][-1].legend(handles=[Line2D([], [], color=c, label=s)
                                for s, c in setting_colors.items()], fontsize=7)
  fig.tight_layout()
  return plots.save(fig, output, 'fig3_avg_jacobian_spectra.png'), {}


CHECK = base.Check(
    id='o3', anchor='o3', source='[O] Sec. 3, Fig. 3', dataset='mnist',
    quote='The spectra of the different VAE runs are almost indistinguishable',
    statistic='per finished run, the mean ln σ_i of E_z[J_z] at the end; VAE against '
              'GAN by a one-sided exact Mann-Whitney test, and the ratio of their '
              'between-run spreads',
    plain={'o3_below': 'A VAE decoder is less sensitive than a GAN generator (its '
                       'average-Jacobian spectrum is lower)',
           'o3_spread': 'VAE spectra vary less between runs than GAN spectra'},
    rows=rows, paper_steps={'mnist': base.MNIST_STEPS},
    min_runs=2 * base.ODENA_RUNS,  # n counts both arms; rows judge 10 of each.
    judged_runs=lambda ctx: ctx.unregularized + ctx.group(VAE),
    figures=(base.Figure(
        'spectra', 'Fig. 3/4', 'spectra of E_z[J_z]',
        'Fig. 3/4 shape: singular values of the average Jacobian E_z[J_z] at the '
        'last probe, sorted, log axis, one line per run, one panel per setting.',
        'no average-Jacobian spectra recorded', fig_spectra),))
