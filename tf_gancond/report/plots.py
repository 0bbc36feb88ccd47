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


def cluster_legend(ax):
  from matplotlib.lines import Line2D
  handles = [Line2D([], [], color=CLUSTER_COLORS['good'], label='good cluster'),
             Line2D([], [], color=CLUSTER_COLORS['bad'], label='bad cluster'),
             Line2D([], [], color=CLUSTER_COLORS[None], label='not clustered')]
  ax.legend(handles=handles, fontsize=7, loc='best')


def markers(settings):
  return {s: m for s, m in zip(settings, 'osD^v<>px')}
