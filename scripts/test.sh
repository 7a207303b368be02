#!/usr/bin/env bash
# The full test suite, as CI runs it: set-up, linters, unit tests, end-to-end tests on a simulated fleet,
# the built collection (scripts/sanity.sh), Molecule scenarios. Usage: scripts/test.sh [--quick] (quick: linters +
# unit tests, no containers, no collection build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/setup.sh"
VENV=${ASCEND_FA_VENV:-$ROOT/.venv}
export PATH="$VENV/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg" PYTHONUNBUFFERED=1
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1
# the opt-in role test (two real ansible-playbook runs, ~10 s) runs in both modes: nothing is skipped here
export ASCEND_FA_ROLE_TESTS=${ASCEND_FA_ROLE_TESTS:-1}

step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

step "ruff"
ruff check .
step "yamllint"
yamllint -s .
step "ansible-lint (production profile)"
ansible-lint --offline -q playbooks roles deploy_fa.yml molecule

if [[ ${1:-} == --quick ]]; then
  step "pytest (unit)"
  pytest -q -m "not fleet" tests
  exit 0
fi

step "the built collection: ansible-lint, ansible-test sanity"
"$ROOT/scripts/sanity.sh"

step "pytest (unit + end-to-end on simulated fleets)"
pytest -q -rs tests
if [[ -d molecule ]] && compgen -G "molecule/*/molecule.yml" >/dev/null; then
  step "molecule test --all"
  molecule test --all
fi
