"""Sweeps (many seeds x settings of one experiment) and their local runner.

  launch/sweeps.py     the sweeps as data: one function per experiment -> [Run].
  launch/run_sweep.py  python -m launch.run_sweep --sweep=NAME --sweep_dir=DIR
"""
