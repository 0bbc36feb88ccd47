"""docs/experiments.md#s0 (Sargent thesis; Miyato et al. 2018): the SN-GAN ResNet
baseline on CIFAR-10.

  python -m tf_gancond.launch --config=configs/s0_sngan_baseline.py \
      --config.classifier=<Inception hub handle or local module dir>

D: ResBlocks down 3->128, down 128->128, two 128->128; ReLU, global sum pooling,
Linear 128->1; spectral normalization on every layer (one persistent power iteration
per training forward pass, kernels viewed as out x (in*k*k)); no BN. G: Linear
128 -> 4x4x256, three up-ResBlocks at 256 channels, BN-ReLU-conv3 -> 3, tanh.
Hinge loss; n_dis = 5; D batch 64 real + 64 fake, G batch 128; 50,000 G updates;
Adam lr 2e-4, betas (0, 0.9), linear decay to 0; data in [-1, 1] plus U[0, 1/128].
The S1-S5 configs derive from this one.

Target (docs/experiments.md#s0): IS 7.97 on 50k samples (Miyato report 8.22); one run
per setting, expect +-0.1-0.3 of seed noise.

Duration: about 3.7 TFLOP per iteration (5 D steps + 1 G step, counted from the
layer sizes: G 3.2, D 0.6 GFLOP per image forward). On one modern GPU roughly
0.1-0.2 s per iteration (estimate, not measured: no GPU here) -> 1.5-3 h for 50k
iterations plus the IS evaluations. On the shared 2-core CPU machine one iteration
measured 37-53 s (GANTrainer.train_step on synthetic data): not feasible there.
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.dataset = 'cifar10'
  c.architecture = 'resnet_sngan'
  c.conditional = False
  c.g_base_channels = 256
  c.d_base_channels = 128
  c.latent_dim = 128
  c.d_normalization = 'spectral'
  c.loss = 'hinge'
  c.batch_size = 64
  c.g_batch_size = 128
  c.n_critic = 5
  c.train_steps = 50000
  c.g_lr = 2e-4
  c.d_lr = 2e-4
  c.beta1 = 0.0
  c.beta2 = 0.9
  c.lr_decay = 'linear'
  c.dequantize = True
  c.eval_every = 5000             # IS curve on 10k samples (a choice,
                                  # docs/experiments.md#0-common-setup).
  c.eval_num_samples = 10000
  c.final_eval_num_samples = 50000  # Final IS on 50k, 10 splits (a choice,
                                    # docs/experiments.md#s0).
  c.eval_splits = 10
  c.probe_every = 5000
  c.export_every = 10000
  return c
