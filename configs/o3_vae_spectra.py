"""docs/experiments.md#o3 (Odena et al. 2018, Fig. 3): average-Jacobian spectra of VAE
decoders.

  python -m tf_gancond.launch --config=configs/o3_vae_spectra.py --config.seed=0
  # the ten VAEs and the ten GANs (the O2 config, same dataset and decoder shape):
  python -m launch.run_sweep --sweep=o3_gan_vs_vae --sweep_dir=runs/o3

A VAE whose decoder is the 28x28 DCGAN generator of O1 (n_z = 64) and whose encoder
is the DCGAN discriminator body with two heads (mu, log variance); N(0, I) prior,
Bernoulli likelihood on grey levels in [0, 1] (logits = 2 x the generator's pre-tanh
output, so the exported decoder is exactly "the decoder mean mapped to [-1, 1]"),
Adam 1e-3 (choices, docs/experiments.md#o3), batch 64, 25 epochs as the GANs. The
decoder is exported as a generator SavedModel every 2,500 steps and at the end; the
probe (the fixed 64 z, BN in inference mode) runs every 250 steps and at the end.

Targets (docs/experiments.md#o3): the log singular values of E_z[J_z] at the end
("avg_jacobian_singular_values" of the final record / last probe) are almost the
same for the ten VAE runs and lie below the GAN runs' ("quite a bit lower"
sensitivity); the GAN spectra vary between runs. The final record also holds the
held-out -ELBO (nats per image, one z sample per image, eval_real_split).

Duration: 23,440 steps at ~0.33 s per step on 2 shared CPU cores (measured, batch
64) plus 94 probes: about 2.2 h per run; minutes on one GPU. MNIST needs TFDS's
download once (or --config.data_dir); offline, --config.dataset=fashion_mnist.
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.experiment = 'vae'
  c.dataset = 'mnist'       # docs/experiments.md#o3 (MNIST).
  c.train_steps = 23440     # 25 epochs of 60,000 images at batch 64, as the GANs.
  c.vae_lr = 1e-3           # docs/experiments.md#o3 (choice).
  c.probe_every = 250       # As the GAN runs (docs/experiments.md#o1, choice).
  c.export_every = 2500     # Every 10th probe: keeps the run directory small.
  c.eval_every = 0          # No classifier scores: O3 measures spectra.
  c.eval_num_samples = 10000  # Held-out -ELBO on the 10,000 test images.
  return c

