#!/usr/bin/env bash
# BlockProp's one entry point: sets up everything on a fresh machine, then runs what you ask.
#   ./dev.sh app [GRAPH.json]   launch the app (installs the system libraries Qt needs to show a window)
#   ./dev.sh test [pytest args] run the test suite (offscreen; no screen needed)
# Set-up is idempotent: a venv in .venv, the project with its test extra, and with WITH_TORCH=1 the
# CPU build of PyTorch 2.13.0 used as a reference by some tests and the benchmarks.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {  # install the Debian packages given that are missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    echo "dev.sh: installing system packages: ${missing[*]}" >&2
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

setup() {
  # Qt's libraries for rendering (offscreen included) and fonts.
  apt_install libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 fonts-dejavu-core
  if [ ! -x "$VENV/bin/python" ]; then "$PY" -m venv "$VENV"; fi
  local stamp="$VENV/.installed-$(cat pyproject.toml | md5sum | cut -c1-12)${WITH_TORCH:+-torch}"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[test]"
    if [ -n "${WITH_TORCH:-}" ]; then "$VENV/bin/python" -m pip install -q "torch==2.13.0"; fi
    touch "$stamp"
  fi
}

cmd=${1:-app}; shift || true
case "$cmd" in
  app)
    apt_install libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
      libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
    setup
    exec "$VENV/bin/python" app.py "$@" ;;
  test)
    setup
    export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
    exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: ./dev.sh app [GRAPH.json] | ./dev.sh test [pytest args]" >&2; exit 2 ;;
esac
