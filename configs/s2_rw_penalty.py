"""docs/experiments.md#s2 (Sargent thesis Fig. 5.6): the r(W) penalty in the generator.

  python -m tf_gancond.launch --config=configs/s2_rw_penalty.py --config.rw_lambda=0.1
  # the sweep, lambda in {0.1, 1, 10}, one run each:
  python -m launch.run_sweep --sweep=s2_rw_penalty --sweep_dir=runs/s2

The S0 SN-GAN with R = -lambda sum_i r(W_i), r(W) = ||W||_F / (m sigma(W)),
m = in*k*k, over every G kernel (linear, convs, shortcuts, output conv), added to
L_G. sigma(W) from a persistent power iteration (one step per G update, gradient
through sigma = u^T W v); --config.rw_exact=true takes it from an exact SVD.

Targets (docs/experiments.md#s2): lambda = 0.1 / 1 / 10 -> IS 7.95 / 1.18 / 0.99 (0.99
read as collapse); at lambda = 0.1 the G spectra collapse (Figs B.1/B.2; see
s5_spectra.py).

Duration: as S0 (the penalty costs a few matrix-vector products per G update).
"""

import os

from tf_gancond import config as config_lib


def _s0_config():
  return config_lib.load_config_file(
      os.path.join(os.path.dirname(os.path.abspath(__file__)), 's0_sngan_baseline.py'))


def get_config():
  c = _s0_config()
  c.rw_lambda = 0.1               # The sweep sets each value.
  c.rw_exact = False
  return c

