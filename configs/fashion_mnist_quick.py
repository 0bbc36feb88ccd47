"""Quick offline version of the Odena et al. (2018) sweep on Fashion-MNIST (README main job).

  python -m launch.run_sweep --sweep=fashion_mnist_quick --sweep_dir=runs/quick --parallel=2
  python -m tf_gancond.report --sweep_dir=runs/quick

The O2/O5 comparison at small scale: 3 seeds x {baseline, Jacobian Clamping (O5
settings: lambda_max 20, lambda_min 1, epsilon 1)}, the 28x28 DCGAN of
docs/experiments.md#o1 with its hyperparameters (batch 64, Adam 2e-4, beta1 0.5, n_z
64), 500 generator steps (0.53 epoch), the fixed batch of 64 probe z probed every 50
steps, one SavedModel at the end. Data: Debian's dataset-fashion-mnist files (no
network). The JC setting is this file with --config.jacobian_clamping=True
(launch/sweeps.py).

Scores only at the end (final_eval): classifier score, Frechet distance and KID on
5,000 samples against the test split, and the least-sampled class count of 360
samples (O4), with this package's Fashion-MNIST classifier: the one committed in
results/classifier_fashion_mnist (92% test accuracy), which launch/setup.sh installs in
~/.cache/tf_gancond when none is there, so these scores compare with the results page.
Without it, the first run that needs a classifier trains one (10 epochs, ~10 minutes
on 2 busy cores); the others wait for it. --extra=final_eval=false skips scores.

What to expect (measured, 5 seeds x 400 steps): the mean ln cond(M_z) of the probe
batch rises from 1.3 at step 0 to about 6 by step 150; early in training Q lies
inside [1, 20], so JC is mostly inactive and the JC runs track their baseline twins.
At this length the runs are far short of the 25-epoch O2 runs (ln cond 12-20), so the
cluster split and the score correlations are indicative only; the full-scale sweep
is `odena_jc_fashion_mnist` (BUILD.md).

Duration (measured on 2 CPU cores, --parallel=2, one TensorFlow thread per run):
0.76 s per baseline step and 1.06 s per JC step, so about 10 minutes per pair of runs
and about 30 minutes for the 6 runs.
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.dataset = 'fashion_mnist'
  c.train_steps = 500       # Sized for ~30 min of 6 runs on 2 CPU cores (see above).
  c.probe_every = 50        # Denser than O1's 250 (docs/experiments.md#o1): the rise
                            # happens early.
  c.log_every = 50
  c.checkpoint_every = 100  # A killed sweep loses at most 100 steps.
  c.export_every = 0        # One SavedModel, at the end.
  c.eval_every = 0          # No score curve: scores at the end only.
  c.final_eval = True
  c.final_eval_num_samples = 5000
  c.num_missing_mode_samples = 360
  return c
