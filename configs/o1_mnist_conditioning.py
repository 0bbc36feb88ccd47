"""docs/experiments.md#o1 (Odena et al. 2018, Fig. 2): per-z conditioning of G during
MNIST training.

  python -m tf_gancond.launch --config=configs/o1_mnist_conditioning.py --config.seed=0
  python -m launch.run_sweep --sweep=o1_mnist_conditioning --sweep_dir=runs/o1
  python -m tf_gancond.report --sweep_dir=runs/o1

The DCGAN of Radford et al. (2015) with the non-saturating loss, n_z = 64, batch 64,
25 epochs (23,440 generator steps), the fixed batch of 64 probe z probed every 250
steps (BN in inference mode), no scores.

BatchNorm (G and D): momentum 0.9 in Keras terms (PyTorch's 0.1) and epsilon 1e-5, as
in dcgan.torch, the PyTorch DCGAN example and DCGAN-tensorflow (`bn_momentum`,
`bn_epsilon`); Keras's own defaults (0.99, 1e-3) give other moving statistics, and so
other inference-mode probes, exports and scores.

Targets (docs/experiments.md#o1): ln cond(M_z) "starts off well-conditioned everywhere
and quickly becomes poorly conditioned everywhere", ranging from ~12 to ~20 after the
initial rise (natural log, M_z = J_z^T J_z).

Duration: about 1.5 h on 2 CPU cores (~0.2 s/step plus 94 probes of ~2 s), a few
minutes on one GPU. MNIST comes from TFDS (needs a download once, or --data_dir with
a prepared copy); the offline default dataset is fashion_mnist (--config.dataset).
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.dataset = 'mnist'
  c.train_steps = 23440     # 25 epochs of 60,000 images at batch 64 (dcgan.torch default).
  c.probe_every = 250       # docs/experiments.md#o1 (choice).
  c.eval_every = 0          # O1 measures conditioning only.
  c.export_every = 2500     # Every 10th probe: keeps the run directory small.
  return c
