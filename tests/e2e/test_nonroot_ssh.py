"""Deploy over a non-root SSH user with sudo, as sites that forbid root logins do (issue 22 item 5).

Every simulated node has the user ``ops`` (uid 1001) who logs in with the fleet's key and becomes root through sudo:
NOPASSWD by default, or asking for ops's password (fault ``sudo-password``), see ascend_sim/node/sim_apply.py
``ensure_ops``. The inventory here sets no ``ansible_user``, so ``-u ops`` is what the connection uses (an inventory
``ansible_user`` would win over ``-u``). Each run checks from the node's own sshd log that Ansible logged in as ops
and never as root, and that nothing the deploy left outside ops's home belongs to ops.

The controller runs as root here, and ansible-core skips become when the become user is the connection user
(``become_allow_same_user``, ansible/plugins/action/__init__.py ``_low_level_execute_command``), so a controller-side
task that inherits ``--become`` would pass unnoticed; a site's controller runs as a user who cannot sudo there. The
runs below set ``ANSIBLE_BECOME_ALLOW_SAME_USER=True``: a controller-side task that inherits ``--become`` then calls
sudo on this controller, which has none, and fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.fleet

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OPS, OPS_UID = "ops", 1001
STATE = "/var/lib/ascend-fa"
# a controller user who cannot sudo on the controller (see the module doc)
NO_CONTROLLER_SUDO = {"ANSIBLE_BECOME_ALLOW_SAME_USER": "True"}
# files of ops that any login leaves: its home, and sudo's timestamp record (root-owned, group ops; sudoers(5))
OPS_OWNED = ("find / -xdev \\( -user ops -o -group ops \\) -not -path '/home/ops' -not -path '/home/ops/*' "
             "-not -path '/run/sudo/*' -not -path '/proc/*' 2>/dev/null")


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("nonroot", octet=114, hosts=1, npus=2)


@pytest.fixture(scope="module")
def ops(fleet):
    """The fleet with an inventory that names no SSH user (the runs give ``-u ops``)."""
    inv = yaml.safe_load(fleet.inventory.read_text())
    for host in inv["all"]["children"]["ascend"]["hosts"].values():
        host.pop("ansible_user")
    path = fleet.dir / "inventory-no-user.yml"
    path.write_text(yaml.safe_dump(inv, sort_keys=False))
    return replace(fleet, inventory=path)


def _play(fleet, playbook: str, *args: str, env: dict[str, str] | None = None):
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**NO_CONTROLLER_SUDO, **(env or {})}.items():
            mp.setenv(key, value)
        return fleet.play(playbook, *args)


def _ssh_as(fleet, user: str, command: str) -> subprocess.CompletedProcess:
    from ascend_sim import fleet as simfleet
    argv = simfleet.ssh_argv(fleet.dir, fleet.hosts[0])
    argv[-1] = argv[-1].replace("root@", f"{user}@", 1)
    return subprocess.run([*argv, command], capture_output=True, text=True, timeout=60)


def _sshd_log(fleet) -> str:
    from ascend_sim.image import podman
    p = podman("logs", fleet.hosts[0], check=False)
    return p.stdout + p.stderr


def _logins(fleet, user: str) -> int:
    """Logins sshd accepted for ``user`` (sshd -e logs "Accepted publickey for USER from ..." at INFO)."""
    return len(re.findall(rf"^Accepted publickey for {user} from ", _sshd_log(fleet), re.M))


def _sim_apply(fleet) -> None:
    from ascend_sim import fleet as simfleet
    simfleet.host_exec(fleet.dir, fleet.hosts[0], "/usr/bin/python3", "/opt/ascend-sim/node/sim-apply")


def _owners(fleet) -> dict[str, str]:
    """Owner of what a deploy leaves as root: the state folder, manifest, kept packages, vendor tree, ld.so file."""
    vendor = fleet.manifest(fleet.hosts[0])["vendor_dir"]
    p = fleet.sh(fleet.hosts[0], f"find {STATE} {vendor} /etc/ld.so.conf.d/ascend-fa.conf -printf '%u:%g %p\\n'")
    assert p.returncode == 0, p.stderr
    return {path: owner for owner, path in (line.split(" ", 1) for line in p.stdout.splitlines())}


def _assert_deployed_as_root_would(fleet) -> None:
    rec = json.loads((fleet.results / "verify" / f"{fleet.hosts[0]}.json").read_text())
    assert rec["ok"] and len(rec["cards"]) == 2, rec
    owners = _owners(fleet)
    assert f"{STATE}/manifest.json" in owners and any(p.endswith(".run") for p in owners), owners
    assert {p: o for p, o in owners.items() if o != "root:root"} == {}
    left = fleet.sh(fleet.hosts[0], OPS_OWNED)
    assert left.stdout.split() == [], left.stdout


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> tuple[Path, str]:
    """The third-party bundle: its check is a controller-side task of the deploy (fa_build third_party.yml)."""
    from ascend_sim.upstream import make_repo
    path = make_repo.make_third_party_bundle(tmp_path_factory.mktemp("nonroot-3rd") / "3rd.tar.gz")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_ops_logs_in_with_the_fleet_key_and_sudoes_and_sshd_enforces_strict_modes(ops):
    p = _ssh_as(ops, OPS, "id -u; stat -c '%U %a' ~ ~/.ssh ~/.ssh/authorized_keys; sudo -n id -u")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:5] == [str(OPS_UID), "ops 750", "ops 700", "ops 600", "0"], p.stdout
    # StrictModes (sshd_config(5)): a home folder others can write makes sshd refuse the key
    assert ops.sh(ops.hosts[0], "chmod o+w /home/ops").returncode == 0
    try:
        refused = _ssh_as(ops, OPS, "true")
        assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr, refused.stderr
        assert "bad ownership or modes for directory /home/ops" in _sshd_log(ops)
    finally:
        _sim_apply(ops)   # sim-apply puts the modes back
    assert _ssh_as(ops, OPS, "true").returncode == 0


@pytest.fixture(scope="module")
def deployed(ops, bundle):
    path, sha = bundle
    roots, opses = _logins(ops, "root"), _logins(ops, OPS)
    run = _play(ops, "deploy_fa.yml", "-u", OPS, "--become",
                "-e", f"fa_build_third_party_bundle={path}", "-e", f"fa_build_third_party_sha256={sha}")
    assert run.rc == 0 and run.failed() == [], run.out[-4000:]
    assert _logins(ops, "root") == roots and _logins(ops, OPS) > opses
    return run


def test_ansible_playbook_deploys_over_ops_with_become_leaving_root_owned_files(ops, deployed):
    assert deployed.changed()[ops.hosts[0]] > 0
    assert len(ops.builds()) == 1
    _assert_deployed_as_root_would(ops)


def test_a_rerun_over_ops_changes_nothing(ops, deployed):
    roots = _logins(ops, "root")
    run = _play(ops, "deploy_fa.yml", "-u", OPS, "--become")
    assert run.rc == 0 and run.changed() == {ops.hosts[0]: 0}, run.out[-3000:]
    assert _logins(ops, "root") == roots


def _cli(fleet, *args: str) -> list[str]:
    return [str(BIN / "ascend-fa"), "deploy", "-i", str(fleet.inventory), "--progress", "plain", *args]


def _installed_at(fleet) -> str:
    return fleet.manifest(fleet.hosts[0])["installed_at"]


def test_the_cli_deploys_over_ops_with_u_and_b(ops, deployed):
    before, roots = _installed_at(ops), _logins(ops, "root")
    p = subprocess.run(_cli(ops, "-u", OPS, "-b", "-e", "fa_install_force=true"), cwd=ROOT,
                       env={**ops.env(), **NO_CONTROLLER_SUDO}, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    assert _logins(ops, "root") == roots         # counted before the checks below log in as root
    assert _installed_at(ops) != before          # reinstalled, through sudo
    _assert_deployed_as_root_would(ops)


@pytest.fixture(scope="module")
def sudo_password(ops, deployed):
    """ops's sudo now asks for ops's password (a fresh one per test session)."""
    from ascend_sim import fleet as simfleet
    password = f"pw-{secrets.token_urlsafe(12)}"
    simfleet.inject_fault(ops.dir, ops.hosts[0], "sudo-password", password=password)
    assert password not in json.dumps(json.loads((ops.dir / "hosts" / ops.hosts[0] / "host.json").read_text())
                                      ["fault_log"])
    yield password
    simfleet.inject_fault(ops.dir, ops.hosts[0], "clear")


def _secret_in(password: str, *folders: Path) -> list[str]:
    found = []
    for folder in folders:
        for f in [folder] if folder.is_file() else (p for p in folder.rglob("*") if p.is_file()):
            if password.encode() in f.read_bytes():
                found.append(str(f))
    return found


def test_without_the_sudo_password_nothing_is_installed_and_the_run_says_why(ops, sudo_password):
    p = _ssh_as(ops, OPS, "sudo -k; sudo -n true")
    assert p.returncode == 1 and "a password is required" in p.stderr, p.stderr
    before = _installed_at(ops)
    run = _play(ops, "deploy_fa.yml", "-u", OPS, "--become", "-e", "fa_install_force=true")
    assert run.rc != 0 and run.failed() == [ops.hosts[0]], run.out[-3000:]
    assert "Missing sudo password" in run.out, run.out[-3000:]
    assert _installed_at(ops) == before


def test_ansible_playbook_takes_the_sudo_password_from_a_private_vars_file(ops, sudo_password, tmp_path):
    secret = tmp_path / "become.yml"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(yaml.safe_dump({"ansible_become_password": sudo_password}))
    before = _installed_at(ops)
    run = _play(ops, "deploy_fa.yml", "-u", OPS, "--become", "-e", f"@{secret}", "-e", "fa_install_force=true")
    assert run.rc == 0, run.out[-3000:]
    assert _installed_at(ops) != before
    _assert_deployed_as_root_would(ops)
    assert _secret_in(sudo_password, ops.results, ops.dir / "facts", ops.dir / "last-run.log") == []


def test_the_cli_asks_for_the_sudo_password_with_K_and_keeps_it_out_of_every_artifact(ops, sudo_password):
    import pexpect

    before = _installed_at(ops)
    argv = _cli(ops, "-u", OPS, "-b", "-K", "-e", "fa_install_force=true")
    child = pexpect.spawn(argv[0], argv[1:], cwd=str(ROOT), env={**ops.env(), **NO_CONTROLLER_SUDO},
                          encoding="utf-8", timeout=900)
    try:
        child.expect("BECOME password: ", timeout=60)
        child.sendline(sudo_password)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    out = child.before or ""
    (ops.dir / "cli-K.log").write_text(out)
    assert child.exitstatus == 0, out[-4000:]
    assert _installed_at(ops) != before
    artifacts = re.search(r"^artifacts: (\S+)\s*$", out, re.M)
    assert artifacts, out[-3000:]
    art = Path(artifacts.group(1))
    assert (art / "stdout").is_file() and any((art / "job_events").iterdir())
    assert sudo_password not in out
    assert _secret_in(sudo_password, art, ops.results, ops.dir / "facts") == []
