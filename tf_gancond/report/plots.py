"""What the report's figures share: matplotlib (Agg), colours by cluster, saving."""

import os

CLUSTER_COLORS = {'good': 'tab:blue', 'bad': 'tab:red', None: 'tab:gray'}


def pyplot():
  import matplotlib
  matplotlib.use('Agg')  # Files only; no display.
  import matplotlib.pyplot as plt
  return plt


def save(fig, output, name):
  path = os.path.join(output, name)
  fig.savefig(path, dpi=90)
  pyplot().close(fig)
  return name


def color(run):
  return CLUSTER_COLORS[run.cluster]


def cluster_legend(ax, runs):
  """A legend of the colours `runs` are drawn in: good and bad only where the
  cluster split found two clusters (shared.cluster_split), else one colour."""
  from matplotlib.lines import Line2D
  labels = {'good': 'good cluster', 'bad': 'bad cluster', None: 'not clustered'}
  present = {r.cluster for r in runs}
  ax.legend(handles=[Line2D([], [], color=CLUSTER_COLORS[c], label=label)
                     for c, label in labels.items() if c in present],
            fontsize=7, loc='best')


def markers(settings):
  return {s: m for s, m in zip(settings, 'osD^v<>px')}
