#!/usr/bin/env bash
# Sets up a fresh Debian machine (Python 3.11, root) for tf_gancond, offline but for
# the package registries: Debian's Fashion-MNIST files, a virtual environment in
# .venv, and the package with its test extra. Safe to run again (it skips what is done).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null
  else
    echo "note: run 'sudo apt-get install dataset-fashion-mnist' for the offline default data" >&2
  fi
fi
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import tf_gancond, tensorflow_gan, pytest, xdist" 2>/dev/null; then
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import tf_gancond, tensorflow_gan, pytest, xdist"
fi
