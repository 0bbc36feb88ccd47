"""docs/experiments.md#o5 (Odena et al. 2018, Fig. 1 right, Figs 4/5/6 right): Jacobian
Clamping.

  python -m launch.run_sweep --sweep=odena_jc_mnist --sweep_dir=runs/jc_mnist --parallel=2
  python -m tf_gancond.report --sweep_dir=runs/jc_mnist
  # one run by hand:
  python -m tf_gancond.launch --config=configs/o5_jacobian_clamping.py --config.seed=0

The O2 configuration ("hold everything else the same") with Algorithm 1 added to the
generator loss: lambda_max = 20, lambda_min = 1, epsilon = 1, per-example norms, G run
once on [z; z'], D sees only G(z). For CIFAR-10 / STL-10 set --config.dataset (and
--config.classifier for Inception).

Targets (docs/experiments.md#o5): with JC the log-cond "stop[s] growing early" and the
scores are similar to the best unregularized runs with lower variance; good runs
with JC: MNIST 10/10, CIFAR 9/10, STL 10/10; JC improves the average case, not the
best case.

Duration per run: about 1.4x an O2 run (G sees 2B): ~2.2 h on 2 CPU cores for MNIST,
10-20 minutes on one GPU.
"""

import os

from tf_gancond import config as config_lib


def _o2_config():
  return config_lib.load_config_file(
      os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   'o2_conditioning_predicts_scores.py'))


def get_config():
  c = _o2_config()
  c.jacobian_clamping = True
  c.jc_lambda_max = 20.0    # docs/experiments.md#o5 (stated).
  c.jc_lambda_min = 1.0     # docs/experiments.md#o5 (stated).
  c.jc_epsilon = 1.0        # docs/experiments.md#o5 (stated).
  c.jc_norm = 'per_example'
  return c
