"""Quick offline version of the Odena et al. (2018) sweep on Fashion-MNIST (README main job).

  python -m launch.run_sweep --sweep=fashion_mnist_quick --sweep_dir=runs/quick --parallel=2
  python -m tf_gancond.report --sweep_dir=runs/quick

The O2/O5 comparison at small scale: 3 seeds x {baseline, Jacobian Clamping (O5
settings: lambda_max 20, lambda_min 1, epsilon 1)}, the 28x28 DCGAN of SPEC O1 with
its hyperparameters (batch 64, Adam 2e-4, beta1 0.5, n_z 64), 1,250 generator steps
(1.3 epochs), the fixed batch of 64 probe z probed every 250 steps, one SavedModel at
the end. Data: Debian's dataset-fashion-mnist files (no network). The JC setting is
this file with --config.jacobian_clamping=True (launch/sweeps.py).

Scores only at the end (final_eval): classifier score, Frechet distance and KID on
10k samples against the test split, and the least-sampled class count of 360
samples (O4), with this package's Fashion-MNIST classifier. The first run that needs
the classifier trains it once (10 epochs, ~10 minutes on 2 busy cores, 92% test
accuracy) into ~/.cache/tf_gancond; the others wait for it. --extra=final_eval=false
skips scores.

What to expect: the baseline's mean log-condition number rises from its initial
value within the first few hundred steps; with JC it stays lower (Q is held in
[1, 20]). At this length the runs are short of the 25-epoch O2 runs, so the cluster
split is indicative only.

Duration: about 25-30 minutes for the 6 runs on 2 CPU cores with --parallel=2
(~0.35 core-seconds per baseline step, ~1.4x with JC, plus ~2 s per probe and ~20 s
per final evaluation), plus the one-off classifier training if it is not cached.
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.dataset = 'fashion_mnist'
  c.train_steps = 1250      # Sized for ~30 min of 6 runs on 2 CPU cores (see above).
  c.probe_every = 250       # SPEC O1 interval.
  c.log_every = 50
  c.checkpoint_every = 250  # A killed sweep loses at most one probe interval.
  c.export_every = 0        # One SavedModel, at the end.
  c.eval_every = 0          # No score curve: scores at the end only.
  c.final_eval = True
  c.final_eval_num_samples = 10000
  c.num_missing_mode_samples = 360
  return c
