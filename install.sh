#!/usr/bin/env bash
# Install vidit with everything its envs, tests and benchmarks need, into the active Python.
# System part (Debian/Ubuntu): Mesa EGL for headless MuJoCo rendering on the CPU, only if missing.
set -euo pipefail
cd "$(dirname "$0")"

if ! ldconfig -p | grep -q 'libEGL.so.1 ' || ! ldconfig -p | grep -q 'libGL.so.1 '; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq libegl1 libgl1 libgl1-mesa-dri libglib2.0-0 >/dev/null
  else
    echo "install.sh: no libEGL/libGL found and no apt-get; install Mesa's EGL libraries for MUJOCO_GL=egl" >&2
    exit 1
  fi
fi

python -m pip install --quiet -e ".[all]"
python -c "import envs, robodesk, crafter, stable_baselines3" 2>/dev/null && echo "vidit installed"
