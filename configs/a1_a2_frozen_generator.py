"""docs/experiments.md#a1, #a2 (Arjovsky & Bottou 2017, Figs 1-3), #a3 (instance noise):
D vs a frozen G.

  # 1. an ordinary DCGAN run that saves G after epochs 1, 10 and 25 (60k images, batch 64):
  python -m tf_gancond.launch --config=configs/o1_mnist_conditioning.py \
      --config.dataset=fashion_mnist --config.export_at_steps=938,9375,23440 \
      --config.workdir=runs/a1_dcgan
  # 2. a fresh D against one of them:
  python -m tf_gancond.launch --config=configs/a1_a2_frozen_generator.py \
      --config.dataset=fashion_mnist \
      --config.generator_saved_model=runs/a1_dcgan/saved_models/step_00009375
  # or, with and without instance noise (A3), one sweep folder per G:
  python -m launch.run_sweep --sweep=a1_a2_frozen_generator --sweep_dir=runs/a1_a2_9375 \
      --extra=dataset=fashion_mnist,generator_saved_model=runs/a1_dcgan/saved_models/step_00009375

A fresh DCGAN discriminator trained from scratch with cost (1) for 4,000 iterations
(Adam 2e-4, beta1 0.5, batch 64; choices, docs/experiments.md#a1) against the frozen G;
every iteration logs D's cross-entropy cost and accuracy (running averages over 20
iterations, a choice) and ||grad_theta E log(1 - D(g(z)))|| and
||grad_theta E -log D(g(z))|| (softplus forms). G may also come from a train.py
checkpoint (--config.generator_checkpoint=runs/a1_dcgan); the dataset must be the
one G was trained on (fashion_mnist here, offline; lsun_bedroom at 64x64 is the
most faithful reading, cifar10 the other practical one).

A3: --config.instance_noise=SIGMA adds N(0, SIGMA^2 I) to D's real and fake inputs,
also in the generator-gradient path; --config.instance_noise_anneal_steps: -1 linear
to 0 over the 4,000 iterations, 0 constant (the sweep's A3 runs, sigma 0.1, a
choice), N linear to 0 over N iterations.

Targets (docs/experiments.md#a1, #a2): D cost -> 0 quickly and accuracy 1 "in sometimes
less than 50 iterations", even for the epoch-25 G (final record:
iterations_to_accuracy_1, final_d_cost_avg); the original-cost gradient decays, up to 5
orders of magnitude after 4,000 iterations (grad_norm_minimax_ratio down to ~1e-5); the
-log D gradient grows and gets noisier (grad_norm_nonsaturating_ratio > 1). A3 (no
target in the paper): D cost stays above 0 and the gradients do not vanish.

Measured (2 shared CPU cores, fashion_mnist, a RANDOM-init G, 300 iterations:
python -m tf_gancond.launch --config=configs/a1_a2_frozen_generator.py
--config.train_steps=300): accuracy 1 (running average) at iteration 21, D cost
5.9e-5, minimax gradient 0.96 -> 0.0039 (ratio 4e-3), -log D gradient 79 -> 136.

Duration: 0.8-1.3 s per iteration on 2 shared CPU cores (measured, 28x28, batch 64:
one D step and two G gradients), 1-1.5 h per run; a minute or two on one GPU.
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.experiment = 'frozen_generator'
  c.generator_saved_model = ''     # Set it (or generator_checkpoint); '' = random G.
  c.train_steps = 4000             # D iterations (docs/experiments.md#a1).
  c.batch_size = 64
  c.d_lr = 2e-4
  c.beta1 = 0.5
  c.running_average_window = 20    # Unstated in A&B (choice).
  c.log_every = 100                # Console lines only; metrics.jsonl has every iteration.
  c.checkpoint_every = 1000
  c.probe_every = 0                # No Jacobian probes: G does not change.
  c.eval_every = 0
  return c
