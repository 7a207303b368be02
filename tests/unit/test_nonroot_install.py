"""A deploy over a non-root SSH user with become (issue 22 item 5): what the SSH user transferred must not stay theirs.

Found by tests/e2e/test_nonroot_ssh.py: the package the fa_install action transfers lands in the SSH user's temporary
folder, owned by that user; the module (root, through sudo) moved it into ``<state_dir>/packages/`` keeping that owner,
so the SSH user could replace the file that a later rollback runs as root.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.module_utils.fa_install_lib import Installer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")

SSH_USER_UID = 1001   # the simulator's ops user (ascend_sim/node/sim_apply.py OPS_UID)


def _installer(tmp: Path) -> Installer:
    return Installer({"state_dir": str(tmp / "state")}, lambda cmd: (0, "", ""))


@pytest.mark.parametrize("move", [True, False])
def test_a_package_transferred_by_the_ssh_user_is_kept_owned_by_the_installing_user(tmp_path, move):
    pkg = tmp_path / "ansible-tmp-1" / "pkg.run"
    pkg.parent.mkdir()
    pkg.write_bytes(b"#!/bin/sh\nexit 0\n")
    os.chown(pkg, SSH_USER_UID, SSH_USER_UID)
    os.chmod(pkg, 0o700)
    sha = hashlib.sha256(pkg.read_bytes()).hexdigest()
    kept = Path(_installer(tmp_path).keep_package(str(pkg), sha, move=move))
    st = kept.stat()
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert st.st_mode & 0o777 == 0o755
    assert kept.name == f"{sha}.run" and not kept.with_name(f"{kept.name}.partial").exists()
    assert pkg.exists() is not move
