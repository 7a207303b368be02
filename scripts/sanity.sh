#!/usr/bin/env bash
# The built collection as Galaxy and AWX get it: build the tarball, install it, then the project's ansible-lint
# (production profile) and Galaxy's own check, ansible-test sanity (its own virtualenvs, --venv, Python 3.11).
#   scripts/sanity.sh [ansible-test sanity options, e.g. --test validate-modules]
# ansible-test bootstraps pip in each venv with a script from ci-files.testing.ansible.com, which is not reachable
# from every build machine; a stand-in (ensurepip, then pip install of the requested pip) is put in its cache.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${ASCEND_FA_VENV:-$ROOT/.venv}
export PATH="$VENV/bin:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '[defaults]\n' > "$work/ansible.cfg"   # none of this checkout's settings: the collection as Galaxy sees it
export ANSIBLE_CONFIG=$work/ansible.cfg

# ansible-test of ansible-core 2.19 (constraints.txt) asks for pip 24.2 (ansible_test/_internal/python_requirements.py);
# another version would stop with ansible-test's own "Download failed ... save it to <path>" message.
stand_in=~/.ansible/test/cache/get_pip_24_2.py
if [[ ! -f $stand_in ]]; then
  mkdir -p "$(dirname "$stand_in")"
  cat > "$stand_in" <<'PY'
"""Stand-in for get-pip.py (written by ascend-fa's scripts/sanity.sh): ensurepip, then pip install the arguments."""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
PY
fi

tarball=$(python "$ROOT/scripts/build_collection.py" --dist "$work/dist")
(cd "$work" && ansible-galaxy collection install -p "$work/c" "$tarball" >/dev/null)
coll=$work/c/ansible_collections/ascend/fa
cd "$coll"
printf "tests/output/\n" > .gitignore   # ansible-test writes its venvs and results there
git init -q . && git add -A      # ansible-test lists a collection's files with git when it is a repository
echo "sanity: ansible-lint (production profile) on the installed collection"
ANSIBLE_COLLECTIONS_PATH=$work/c ansible-lint --offline -q --profile production -c "$ROOT/.ansible-lint"
echo "sanity: ansible-test sanity"
ansible-test sanity --venv --python 3.11 --color no "$@"
