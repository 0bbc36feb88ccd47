"""docs/experiments.md#o2 (Odena et al. 2018, Fig. 1 left, Figs 5/6 left): conditioning
predicts scores.

  python -m launch.run_sweep --sweep=o2_mnist --sweep_dir=runs/o2_mnist --parallel=2
  python -m tf_gancond.report --sweep_dir=runs/o2_mnist
  # one run by hand:
  python -m tf_gancond.launch --config=configs/o2_conditioning_predicts_scores.py \
      --config.seed=3 --config.workdir=runs/o2_mnist/baseline_seed3

Ten runs per dataset "identical up to random initialization" (seeds 0-9), the
unregularized DCGAN of O1, the mean log-condition number every 250 steps and the
classifier score / Frechet distance (MNIST: this package's classifier; CIFAR-10 /
STL-10 with --config.dataset: Inception, --config.classifier=<hub handle or local
module dir>) every 2,500 steps on 10k samples, and on 50k samples in 10 splits at
the end, followed by the O4 missing-mode count on 360 samples.

Targets (docs/experiments.md#o2): MNIST runs split into two clusters of about 5/5 by
final log-cond; the 4 runs with the lowest log-cond also have the 4 best scores
(CS and FD); CIFAR/STL failed runs have IS never above 1; final log-cond strongly
rank-anticorrelated with the score.

Duration per run: about 1.6 h on 2 CPU cores for MNIST (steps + probes + 10 evals of
10k samples), 5-15 minutes on one GPU; CIFAR-10/STL-10 runs are GPU work.
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.dataset = 'mnist'
  c.train_steps = 23440     # 25 epochs of 60,000 images at batch 64 (dcgan.torch default).
  c.probe_every = 250       # docs/experiments.md#o1, #o2 (choice).
  c.eval_every = 2500       # Score curve points (Figs 5/6); 10k samples each
                            # (docs/experiments.md#0-common-setup).
  c.eval_num_samples = 10000
  c.final_eval_num_samples = 50000
  c.eval_splits = 10
  c.num_missing_mode_samples = 360  # docs/experiments.md#o4, from the same runs.
  c.export_every = 2500     # Every 10th probe: keeps the run directories small.
  return c
