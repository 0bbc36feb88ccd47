#!/usr/bin/env bash
# Sets up a fresh Debian machine for tf_gancond, offline but for the package registries:
# Debian's Fashion-MNIST files, a virtual environment, and the package with its test
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
minor=$("$PYTHON" -c 'import sys; print(sys.version_info[0] * 100 + sys.version_info[1])')
STACK=${TF_GANCOND_STACK:-}
if [ -z "$STACK" ]; then
  if [ "$minor" -le 311 ]; then STACK=faithful; else STACK=modern; fi
fi
case "$STACK" in
  faithful) [ "$minor" -le 311 ] || {
    echo "setup.sh: TF_GANCOND_STACK=faithful needs Python 3.9-3.11 (TensorFlow 2.15 has no wheel for $("$PYTHON" -V)); use TF_GANCOND_STACK=modern" >&2; exit 2; } ;;
  modern) [ "$minor" -ge 311 ] || {
    echo "setup.sh: TF_GANCOND_STACK=modern needs Python 3.11-3.13, not $("$PYTHON" -V); use TF_GANCOND_STACK=faithful" >&2; exit 2; } ;;
  *) echo "setup.sh: TF_GANCOND_STACK=$STACK is not a stack; allowed: faithful, modern" >&2; exit 2 ;;
esac
if [ -f "$VENV/tf_gancond-stack" ] && [ "$(cat "$VENV/tf_gancond-stack")" != "$STACK" ]; then
  echo "setup.sh: $VENV holds the $(cat "$VENV/tf_gancond-stack") stack, not $STACK; remove it or set TF_GANCOND_VENV to another folder" >&2
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
