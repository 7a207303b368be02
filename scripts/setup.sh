#!/usr/bin/env bash
# Installs everything this repo needs on a fresh Debian 12 machine (run as root), idempotently:
# Debian packages for the simulated fleet, a virtualenv with pinned Python packages, this package and the
# simulator (ascend_sim, its own distribution), both editable.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${ASCEND_FA_VENV:-$ROOT/.venv}
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

debs=(podman runc debootstrap uidmap openssh-client git gcc make libc6-dev python3-venv chromium)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${ASCEND_FA_PYTHON:-}
if [[ -z $PY ]]; then
  for c in python3.11 "$(command -v pyenv >/dev/null && pyenv root)/versions/3.11.7/bin/python3" python3; do
    if [[ -x $(command -v "$c" 2>/dev/null || echo "$c") ]] && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
      PY=$c; break
    fi
  done
fi
[[ -n $PY ]] || { echo "setup: Python 3.11 is required (ansible-core 2.19, torch 2.13 CPU wheel)" >&2; exit 1; }

stamp=$VENV/.ascend-fa-stamp
want=$(cat "$ROOT/pyproject.toml" "$ROOT/ascend_sim/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "setup: building virtualenv $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q -c "$ROOT/constraints.txt" -e "$ROOT/ascend_sim" -e "$ROOT[dev,torch]"
  echo "$want" > "$stamp"
fi
echo "setup: ok ($("$VENV/bin/ansible" --version 2>/dev/null | sed -n 1p))"
