"""The registry: every check of the papers, in the order of the page.

One line per check module of this folder (each defines CHECK, a base.Check). The
report, report.json and the results page loop over CHECKS; adding a check is one
new module and one line here.
"""

import importlib

MODULES = (
    'o1',
    'o2',
    'o3',
    'o4',
    'o5',
    'o5_mnist',
    'largest_sv',
    'o6',
    'o7',
    'a1_a2',
    's0_s5',
)

CHECKS = tuple(importlib.import_module(f'{__name__}.{name}').CHECK for name in MODULES)
