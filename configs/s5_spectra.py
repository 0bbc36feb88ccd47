"""docs/experiments.md#s5 (Sargent thesis Apps B, C): per-layer spectra of D and G,
baseline in red.

  # 1. train the runs of SETTINGS (each is an S0-S4 setting):
  python -m launch.run_sweep --sweep=s5_spectra --sweep_dir=runs/s5
  # 2. plot each against the baseline:
  python -m tf_gancond.lipschitz --run=runs/s5/rw_0.1_seed0 --baseline=runs/s5/baseline_seed0 \
      --out=plots/s5/rw_0.1
  -> plots/s5/rw_0.1/spectra_D.png (Fig. B.1), spectra_G.png (Fig. B.2), spectra.npz

Each kernel (viewed as m x out, m = in*k*k) has its singular values sorted and divided
by the largest (float64 SVD), plotted against index/len (Miyato style).
Figures: B.1/2 r(W) lambda = 0.1; B.3/4 D clamp r = 15; B.5/6 G clamp r = 1.5;
B.7/8 WGAN-GP lambda = 10 (with SN, the S4 model; the caption's "generator" read as
D); B.9/10 no SN.

Targets (docs/experiments.md#s5): at lambda = 0.1 the G spectra collapse; the clamping
models that did not collapse show "little effect on the spectra". App. C: samples and
interpolations are in each run's TensorBoard and SavedModels.

Duration: the plots take seconds per run; the runs are S0-S4 runs (about 6 GPU-hours
each, estimate).
"""

import os

from tf_gancond import config as config_lib

# Setting name -> overrides of the S0 config (the figure pairs of App. B).
SETTINGS = {
    'baseline': {},
    'rw_0.1': dict(rw_lambda=0.1),                                  # B.1/B.2
    'd_clamp_15': dict(grad_clamp_d_ratio=15.0),                    # B.3/B.4
    'g_clamp_1.5': dict(grad_clamp_g_ratio=1.5),                    # B.5/B.6
    'wgan_gp_10': dict(loss='wasserstein', gradient_penalty=10.0),  # B.7/B.8
    'no_sn': dict(d_normalization='none'),                          # B.9/B.10
}


def get_config():
  return config_lib.load_config_file(  # The baseline, drawn in red.
      os.path.join(os.path.dirname(os.path.abspath(__file__)), 's0_sngan_baseline.py'))

