"""docs/experiments.md#s3 (Sargent thesis Figs 5.7/5.8): spectral gradient clamping in G
or in D.

  python -m tf_gancond.launch --config=configs/s3_gradient_clamping.py \
      --config.grad_clamp_g_ratio=1.5
  python -m tf_gancond.launch --config=configs/s3_gradient_clamping.py \
      --config.grad_clamp_d_ratio=15
  # the sweep, G r in {1.05, 1.5, 2} and D r in {4, 15, 30}:
  python -m launch.run_sweep --sweep=s3_gradient_clamping --sweep_dir=runs/s3

The S0 SN-GAN; each kernel gradient W' (viewed as m x out) is clamped before Adam
so that its top singular value is at most r times its second: persistent u0, v0,
u1, v1, one power step per update, W' <- W' - max(0, sigma0 - r sigma1) u0 v0^T
(the corrected reading of docs/experiments.md#s3). sigma0/sigma1 of the D gradients is
logged.

Targets (docs/experiments.md#s3): in G, r = 1.05 / 1.5 / 2 -> IS 3.782 / 7.82 / 7.94; in
D, r = 4 / 15 / 30 -> IS 3.84 / 7.92 / 7.95; D-gradient sigma0/sigma1 "on the order
of 30" early and "around 3" later.

Duration: as S0 plus a few matrix-vector products per kernel per update.
"""

import os

from tf_gancond import config as config_lib


def _s0_config():
  return config_lib.load_config_file(
      os.path.join(os.path.dirname(os.path.abspath(__file__)), 's0_sngan_baseline.py'))


def get_config():
  c = _s0_config()
  c.grad_clamp_g_ratio = 1.5      # The thesis's G setting that recovers the baseline.
  c.grad_clamp_d_ratio = 0.0      # The sweep clamps one network at a time.
  return c

