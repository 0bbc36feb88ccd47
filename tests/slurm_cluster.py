"""A real one-node SLURM for the tests: the `slurm_cluster` fixture (tests/conftest.py).

When `sinfo` answers, the tests use that cluster. Otherwise, as root with apt, this
installs Debian's slurm-wlm and munge if they are missing (no service starts by
itself), starts munged as the munge user, writes STATE_DIR/slurm.conf (one node
`localhost` with 2 CPUs, partition `debug`, no accounting) and starts slurmctld and
slurmd with it, then waits until `sinfo` shows the node idle. The daemons stay up
for later test sessions (xdist workers and CI's second stack use the same cluster);
`python tests/slurm_cluster.py stop` ends those this file started (their pid files).
Where no SLURM can be had (not root, no apt, the install fails) the tests that need it
are skipped, with the reason.

  python tests/slurm_cluster.py start   # prints how long the start took
"""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time

STATE_DIR = '/tmp/tf_gancond_slurm'
CONF = os.path.join(STATE_DIR, 'slurm.conf')
PARTITION = 'debug'
START_TIMEOUT_S = 60
MUNGE_KEY = '/etc/munge/munge.key'

SLURM_CONF = f"""\
ClusterName=tfgancond
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
StateSaveLocation={STATE_DIR}/ctld
SlurmdSpoolDir={STATE_DIR}/d
SlurmctldPidFile={STATE_DIR}/slurmctld.pid
SlurmdPidFile={STATE_DIR}/slurmd.pid
SlurmctldLogFile={STATE_DIR}/slurmctld.log
SlurmdLogFile={STATE_DIR}/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class Unavailable(Exception):
  """No SLURM can be started here; the message says why (the tests skip with it)."""


def _run(args, timeout=30, **kwargs):
  return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


def _node_state(env=None):
  """The node states `sinfo` reports ('' if no controller answers)."""
  if not shutil.which('sinfo'):
    return ''
  try:
    proc = _run(['sinfo', '--noheader', '--format=%T'], timeout=15, env=env)
  except subprocess.TimeoutExpired:
    return ''
  return proc.stdout.strip() if proc.returncode == 0 else ''


def _ours_env():
  return dict(os.environ, SLURM_CONF=CONF)


def _ours_up():
  """Whether the slurmctld this file started lives (sinfo would wait ~9 s for a dead one)."""
  try:
    with open(os.path.join(STATE_DIR, 'slurmctld.pid')) as f:
      os.kill(int(f.read().strip()), 0)
  except (OSError, ValueError):
    return False
  return True


def _install():
  """apt-get install of slurm-wlm and munge (Unavailable when it cannot)."""
  if os.geteuid() != 0:
    raise Unavailable('no SLURM answers and this is not root: cannot install or start '
                      'one (as root with apt, the tests start a one-node SLURM)')
  if not shutil.which('apt-get'):
    raise Unavailable('no SLURM answers and there is no apt-get to install one')
  env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
  install = ['apt-get', 'install', '-y', '--no-install-recommends', 'slurm-wlm', 'munge']
  proc = _run(install, timeout=900, env=env)
  if proc.returncode != 0:  # Package lists may be missing or old.
    _run(['apt-get', 'update'], timeout=600, env=env)
    proc = _run(install, timeout=900, env=env)
  if proc.returncode != 0:
    last = (proc.stderr.strip().splitlines() or ['?'])[-1]
    raise Unavailable(f'apt-get install slurm-wlm munge failed: {last}')


def _start_munge():
  """munged as the munge user, with a key (made if the package made none)."""
  if _run(['bash', '-c', 'munge -n | unmunge']).returncode == 0:
    return
  for path in ('/run/munge', '/var/log/munge', '/var/lib/munge', '/etc/munge'):
    os.makedirs(path, exist_ok=True)
    shutil.chown(path, 'munge', 'munge')
  if not os.path.exists(MUNGE_KEY):
    _check(_run(['runuser', '-u', 'munge', '--', 'mungekey', '--create',
                 f'--keyfile={MUNGE_KEY}']), 'mungekey')
  _check(_run(['runuser', '-u', 'munge', '--', 'munged']), 'munged')


def _check(proc, what):
  if proc.returncode != 0:
    raise RuntimeError(f'{what} failed: {proc.stderr.strip()[-500:]}')


def start():
  """Starts munged, slurmctld and slurmd with CONF."""
  if not shutil.which('slurmctld') or not shutil.which('munged'):
    _install()
  _start_munge()
  for sub in ('ctld', 'd'):
    os.makedirs(os.path.join(STATE_DIR, sub), exist_ok=True)
  with open(CONF, 'w') as f:
    f.write(SLURM_CONF)
  env = _ours_env()
  # -c: no jobs or node states of an earlier start come back.
  _check(_run(['slurmctld', '-c', '-f', CONF], env=env), 'slurmctld')
  _check(_run(['slurmd', '-f', CONF, '-N', 'localhost'], env=env), 'slurmd')
  deadline = time.time() + START_TIMEOUT_S
  while _node_state(env) != 'idle':
    if time.time() > deadline:
      raise RuntimeError(f'the SLURM node is not idle {START_TIMEOUT_S} s after the '
                         f'start (sinfo: {_node_state(env)!r}); logs in {STATE_DIR}')
    time.sleep(0.2)


def ensure():
  """{'partition', 'started_s'} of a cluster that answers, started if needed; sets
  SLURM_CONF in this process (its children inherit it) when the cluster is ours."""
  os.makedirs(STATE_DIR, exist_ok=True)
  with open(os.path.join(STATE_DIR, '.start.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # One xdist worker starts it; the others wait.
    started = time.time()
    if _ours_up() and _node_state(_ours_env()):
      os.environ['SLURM_CONF'] = CONF
      return {'partition': PARTITION, 'started_s': 0.0}
    if os.environ.get('SLURM_CONF') != CONF and _node_state():
      return {'partition': None, 'started_s': 0.0}  # Someone's cluster: its default.
    start()
    os.environ['SLURM_CONF'] = CONF
    return {'partition': PARTITION, 'started_s': time.time() - started}


def stop():
  """Ends the daemons this file started (by their pid files)."""
  for name in ('slurmd', 'slurmctld'):
    path = os.path.join(STATE_DIR, f'{name}.pid')
    try:
      with open(path) as f:
        os.kill(int(f.read().strip()), signal.SIGTERM)
    except (OSError, ValueError):
      continue


if __name__ == '__main__':
  if sys.argv[1:] == ['start']:
    try:
      info = ensure()
    except Unavailable as e:
      sys.exit(f'unavailable: {e}')
    print(f'SLURM answers; started in {info["started_s"]:.1f} s' if info['started_s'] else
          'SLURM answers; it was running')
  elif sys.argv[1:] == ['stop']:
    stop()
  else:
    sys.exit('usage: python tests/slurm_cluster.py start|stop')
