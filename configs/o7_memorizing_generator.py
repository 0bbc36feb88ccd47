"""docs/experiments.md#o7 (Odena et al. 2018, App. B.1, Figs 8-11): a well-conditioned
misbehaving G.

  python -m tf_gancond.launch --config=configs/o7_memorizing_generator.py --config.seed=0
  # the ten runs (seeds 0-9):
  python -m launch.run_sweep --sweep=o7_memorizing_generator --sweep_dir=runs/o7

The DCGAN generator (n_z = 64) trained with an L2 reconstruction loss and no
discriminator to map 10,000 fixed z ~ N(0, I) to 5,000 random training digits plus
5,000 copies of one 'four' (class 4), the pairing random; Adam 2e-4, beta1 0.5,
batch 64 (choices, docs/experiments.md#o7), until memorized: the mean squared error over
all 10,000 pairs (pixels in [-1, 1], G in inference mode) below 0.005 (RMS error 0.07),
or 100,000 steps at most. Probes every 250 steps give the log-condition number over
training (Fig. 11). At the end: samples at memorized and random z (TensorBoard,
Figs 8/9), the class histogram of 10,000 random-z samples (Fig. 10) and the
classifier score / Frechet distance for both kinds of z (this package's MNIST
classifier: python -m tf_gancond.classifier --dataset=mnist; without one the final
record says "scores skipped: ...").

Targets (docs/experiments.md#o7): CS 4.95 (memorized z) / 2.22 (random z); FD 118 / 240;
random samples are mostly 4s and 9s; the mean log-cond stays below the GAN "good
cluster" (compare with the O2 runs). Sanity: perfect memorization with p(4) ~ 0.55
gives CS ~ e^{H(p(y))} ~ 5.35.

Duration: ~0.19 s per step on 2 shared CPU cores (measured, batch 64; 156 steps per
pass over the pairs) plus ~10 s per full memorization check; the number of passes
needed is not known in advance (expect tens of thousands of steps: hours on CPU,
minutes on one GPU). Offline: --config.dataset=fashion_mnist (class 4 is 'coat').
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.experiment = 'memorize'
  c.dataset = 'mnist'              # docs/experiments.md#o7 (MNIST).
  c.latent_dim = 64                # [O-A] "latent space of 64 dimensions".
  c.memorize_num_random = 5000     # [O-A] B.1.
  c.memorize_num_copies = 5000
  c.memorize_label = 4             # "a four".
  c.memorize_target_mse = 0.005    # "until memorized" (choice).
  c.train_steps = 100000           # Upper bound; the run stops once memorized.
  c.probe_every = 250              # Fig. 11, as the GAN runs.
  c.export_every = 2500
  c.eval_every = 0                 # Scores only at the end (final record).
  c.eval_num_samples = 10000       # Random-z samples for the histogram and scores.
  c.eval_splits = 10
  return c

