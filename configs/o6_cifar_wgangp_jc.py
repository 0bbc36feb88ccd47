"""docs/experiments.md#o6 (Odena et al. 2018, Fig. 7): class-conditional WGAN-GP on
CIFAR-10, JC x n_critic.

  # one run (the baseline, n_critic = 5):
  python -m tf_gancond.launch --config=configs/o6_cifar_wgangp_jc.py \
      --config.classifier=<Inception hub handle or local module dir>
  # one cell of the grid by hand:
  python -m tf_gancond.launch --config=configs/o6_cifar_wgangp_jc.py \
      --config.jacobian_clamping=true --config.n_critic=1 --config.seed=2
  # the grid, {JC off, on} x n_critic {5, 1} x 5 seeds = 20 runs:
  python -m launch.run_sweep --sweep=o6_cifar_wgangp_jc --sweep_dir=runs/o6

The igul222 `gan_cifar_resnet.py` baseline (its table in docs/experiments.md#o6): ResNet
with 128 channels in G and D, z 128-d N(0, I), conditional BN in G with batch
statistics always, no normalization in D, Wasserstein + ACGAN heads (ACGAN weight 1
in D on real images, 0.1 in G), GP 10, Adam 2e-4, betas (0, 0.9), linear decay to 0
over 100k G iterations, D batch 64, G batch 128, dequantization U[0, 1/128].
JC: (lambda_max, lambda_min, eps) = (20, 1, 1), z' keeps the labels of z.

Targets (docs/experiments.md#o6): at n_critic = 1 the baseline collapses and JC does
not; at n_critic = 5 JC is "slightly worse"; JC at n_critic = 1 takes less than half the
wall-clock time of the baseline at n_critic = 5 for a similar IS. External
reference: 8.42 +- 0.10 (Gulrajani et al.); reproductions reach about 8.15 at 100k.

IS curve: every 1,000 G iterations on 10k samples (a choice,
docs/experiments.md#0-common-setup; igul222 used 50k:
--config.eval_num_samples=50000 to match), final score on 50k in 10 splits; each
score records its classifier (TF-GAN Inception, not OpenAI's graph).

Duration per run: about 2.9 TFLOP per iteration at n_critic = 5 and 1 TFLOP at
n_critic = 1 (counted from the layer sizes; the GP adds a double backward pass).
On one modern GPU roughly 0.1-0.2 s per n_critic = 5 iteration (estimate, not
measured: no GPU here) -> 3-6 h for 100k iterations, 1-2 h at n_critic = 1, plus
the IS evaluations (100 curve points). Not feasible on the 2-core CPU machines
(an S0 iteration of similar cost measured 37-53 s there).
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.dataset = 'cifar10'
  c.architecture = 'resnet_wgangp'
  c.conditional = True            # CONDITIONAL and ACGAN on (igul222).
  c.g_base_channels = 128         # DIM_G.
  c.d_base_channels = 128         # DIM_D.
  c.latent_dim = 128
  c.g_bn_always_batch_stats = True
  c.d_normalization = 'none'      # NORMALIZATION_D off.
  c.loss = 'wasserstein'
  c.gradient_penalty = 10.0
  c.acgan_d_weight = 1.0          # ACGAN_SCALE.
  c.acgan_g_weight = 0.1          # ACGAN_SCALE_G.
  c.batch_size = 64               # critic batch.
  c.g_batch_size = 128            # GEN_BS_MULTIPLE 2.
  c.train_steps = 100000          # generator iterations.
  c.n_critic = 5
  c.g_lr = 2e-4
  c.d_lr = 2e-4
  c.beta1 = 0.0
  c.beta2 = 0.9
  c.lr_decay = 'linear'
  c.dequantize = True             # U[0, 1/128] noise on the real images.
  c.jc_lambda_max = 20.0          # "same hyperparameters as in previous experiments".
  c.jc_lambda_min = 1.0
  c.jc_epsilon = 1.0
  c.eval_every = 1000
  c.eval_num_samples = 10000
  c.final_eval_num_samples = 50000
  c.eval_splits = 10
  c.probe_every = 5000            # log-cond probe (not an O6 measure); keeps runs light.
  c.export_every = 10000
  return c

