"""docs/experiments.md#s4 (Sargent thesis Fig. 5.9): miscellaneous models against the
SN-GAN baseline.

  python -m tf_gancond.launch --config=configs/s4_misc_models.py   # WGAN-GP + SN
  # all five settings of SETTINGS (baseline, WGAN-GP + SN, SN-4x, no SN, standard loss):
  python -m launch.run_sweep --sweep=s4_misc_models --sweep_dir=runs/s4

| setting        | overrides of the S0 config                  | target IS |
| baseline       | -                                           | 7.97      |
| wgan_gp_sn     | loss wasserstein, gradient_penalty 10       | 7.08      |
| sn_4x          | batch 256 (D), 512 (G) (a choice for 4x)    | 7.56      |
| no_sn ("RESNET") | d_normalization none                      | 3.28      |
| standard_loss  | loss non_saturating (no number; hinge beat it) | -      |

Duration: as S0 each; sn_4x about 4x per iteration (4x the batch, same 50k updates).
"""

import os

from tf_gancond import config as config_lib

SETTINGS = {
    'baseline': {},
    'wgan_gp_sn': dict(loss='wasserstein', gradient_penalty=10.0),
    'sn_4x': dict(batch_size=256, g_batch_size=512),
    'no_sn': dict(d_normalization='none'),
    'standard_loss': dict(loss='non_saturating'),
}


def _s0_config():
  return config_lib.load_config_file(
      os.path.join(os.path.dirname(os.path.abspath(__file__)), 's0_sngan_baseline.py'))


def get_config():
  c = _s0_config()
  c.update(SETTINGS['wgan_gp_sn'])  # The one S4 model that is not an S0 variant of size.
  return c

