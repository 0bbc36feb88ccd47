"""docs/experiments.md#o4 (Odena et al. 2018, Sec. 3): missing modes vs conditioning on
MNIST.

  python -m launch.run_sweep --sweep=o4_missing_modes --sweep_dir=runs/o4 --parallel=2
  python -m tf_gancond.report --sweep_dir=runs/o4

Ten unregularized DCGAN runs (as in O2, seeds 0-9); at the end each run draws 360
samples, classifies them with the MNIST classifier (argmax) and records the class
histogram and the least-sampled class count (`min_class_count` in the final record
of metrics.jsonl). The report gives the Pearson r between that count and the final
mean log-condition number across runs, with a Fisher-z interval.

Targets (docs/experiments.md#o4): 360 samples per model; r = -0.86; ill-conditioned
models often have 0 samples in their least-sampled class, well-conditioned ones are
near uniform (~36 per class).

Scores only at the end (final_eval, no score curve), so a run costs little more
than O1: about 1.5 h on 2 CPU cores, minutes on a GPU. If the O2 sweep has been run, its report already holds the O4 correlation.
"""

from tf_gancond import config as config_lib


def get_config():
  c = config_lib.get_config()
  c.dataset = 'mnist'
  c.train_steps = 23440     # 25 epochs of 60,000 images at batch 64 (dcgan.torch default).
  c.probe_every = 250
  c.eval_every = 0          # No score curve ...
  c.final_eval = True       # ... only the final evaluation.
  c.final_eval_num_samples = 10000
  c.eval_splits = 10
  c.num_missing_mode_samples = 360  # "360 samples from each of the 10 models"
                                    # (docs/experiments.md#o4).
  c.export_every = 2500
  return c
