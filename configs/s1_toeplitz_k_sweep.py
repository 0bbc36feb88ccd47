"""docs/experiments.md#s1 (Sargent thesis Fig. 5.5): Toeplitz-normalized discriminator,
k sweep.

  python -m tf_gancond.launch --config=configs/s1_toeplitz_k_sweep.py --config.toeplitz_k=2
  # the sweep, k in {1, 2, 4, 8}, one run each:
  python -m launch.run_sweep --sweep=s1_toeplitz_k --sweep_dir=runs/s1

The S0 SN-GAN with every D conv divided by the norm of its true operator T_K at its
input size and SAME padding (implicit power iteration with conv2d / conv2d_transpose
on a persistent u in R^{h x w x out}) and multiplied by k; the linear layer keeps
standard SN. k applies to all 10 convs, the two 1x1 shortcuts included
(--config.toeplitz_k_shortcuts=false gives them norm 1; the ambiguity:
docs/experiments.md#s1).

Targets (docs/experiments.md#s1): k = 1 / 2 / 4 / 8 -> IS 2.62 / 7.34 / 5.77 / 3.05.

Duration: an S0 run plus one conv and one transposed conv at batch 1 per D conv per D
forward pass: about 1.2x S0 (estimate).
"""

import os

from tf_gancond import config as config_lib


def _s0_config():
  return config_lib.load_config_file(
      os.path.join(os.path.dirname(os.path.abspath(__file__)), 's0_sngan_baseline.py'))


def get_config():
  c = _s0_config()
  c.d_normalization = 'toeplitz'
  c.toeplitz_k = 2.0              # The thesis's best k; the sweep sets each value.
  c.toeplitz_k_shortcuts = True
  return c

