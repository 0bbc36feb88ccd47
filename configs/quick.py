"""Quick offline version of the Odena et al. (2018) sweep on MNIST (README main job).

  python -m launch.run_sweep --sweep=mnist_quick --sweep_dir=runs/mnist_quick --parallel=2
  python -m tf_gancond.report --sweep_dir=runs/mnist_quick
  python -m launch.run_sweep --sweep=fashion_mnist_quick ...   # the same on Fashion-MNIST

The O2/O5 comparison at small scale: 3 seeds x {baseline, Jacobian Clamping (O5
settings: lambda_max 20, lambda_min 1, epsilon 1)}, the 28x28 DCGAN of
docs/experiments.md#o1 with its hyperparameters (batch 64, Adam 2e-4, beta1 0.5,
n_z 64), 500 generator steps (0.53 epoch), the fixed batch of 64 probe z probed
every 50 steps, one SavedModel at the end. Data: MNIST rebuilt from the package
registry by launch/setup.sh (tf_gancond/offline_mnist.py), or Debian's
dataset-fashion-mnist files; no network.
The JC setting is this file with --config.jacobian_clamping=True (launch/sweeps.py).

Scores only at the end (final_eval): classifier score, Frechet distance (on the
classifier's logits, as TF-GAN's MNIST tools take it) and KID on 5,000 samples
against the test split, and the least-sampled class count of 360 samples (O4), with
this package's classifier committed in results/classifier_<dataset> (MNIST 99.3 %,
Fashion-MNIST 92.3 % test accuracy), which launch/setup.sh installs in
~/.cache/tf_gancond, so these scores compare with the results page. Without it, the
first run that needs a classifier trains one (10 epochs, about 4 minutes on 2 cores);
the others wait for it. --extra=final_eval=false skips scores.

At this length the runs are far short of the 25-epoch O2 runs, so the cluster split
and the score correlations are indicative only; the full-scale sweep is
`odena_jc_mnist` (BUILD.md).
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.dataset = 'mnist'
  c.train_steps = 500       # Sized for < 30 min of 6 runs on 2 CPU cores (README).
  c.probe_every = 50        # Denser than O1's 250 (docs/experiments.md#o1).
  c.log_every = 50
  c.checkpoint_every = 100  # A killed sweep loses at most 100 steps.
  c.export_every = 0        # One SavedModel, at the end.
  c.eval_every = 0          # No score curve: scores at the end only.
  c.final_eval = True
  c.final_eval_num_samples = 5000
  c.num_missing_mode_samples = 360
  return c
