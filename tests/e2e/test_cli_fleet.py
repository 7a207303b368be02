"""``ascend-fa deploy`` against ``ansible-playbook deploy_fa.yml`` on two identical simulated fleets.

Marked ``fleet`` (podman as root; a few minutes): two fleets of two hosts (910B3 -- deploys; 310P3 -- stopped by
preflight), one deployed by the playbook, one by the CLI with stdout in a pipe, both with ``-b --flush-cache`` and
``--force-handlers`` (the CLI's after ``--``: passed on as it is). Same per-host recap, same packages, same
verification; the CLI's exit status is ansible-playbook's (2: a host failed), the count of failed hosts in its
summary; its output is plain lines; the HTML report names every host and card.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import require_fleet

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)
LINE = re.compile(r"^\d\d:\d\d:\d\d (== play: .+|\S+\s+\S+\s+(ok|changed|failed|unreachable|skipped|rescued)\s+\S+.*)$")

pytestmark = pytest.mark.fleet


def _env(d: Path) -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ASCEND_FA_CACHE": str(d / "cache"),
            "ASCEND_FA_RESULTS": str(d / "out"), "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(d / "facts"),
            "NO_COLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}


def _recap(text: str, prefix: str) -> dict[str, tuple[int, ...]]:
    """node -> (ok, changed, unreachable, failed, skipped), the fleet prefix removed."""
    return {m.group(1).removeprefix(prefix): tuple(int(x) for x in m.groups()[1:]) for m in RECAP.finditer(text)}


@pytest.fixture(scope="module")
def fleets(tmp_path_factory):
    require_fleet()   # skips outside CI, fails under CI=true (tests/ci_policy.py)
    from ascend_sim import fleet as simfleet

    made = []
    try:
        for name, octet in (("pb", 50), ("cli", 51)):
            d = tmp_path_factory.mktemp(f"fleet-{name}")
            simfleet.create(d, hosts=2, models=["910B3", "310P3"], fleet_octet=octet, npus=2)
            made.append(d)
        yield made
    finally:
        for d in made:
            simfleet.destroy(d)


@pytest.fixture(scope="module")
def runs(fleets):
    pb_dir, cli_dir = fleets
    pb = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(pb_dir / "inventory.yml"), str(ROOT / "deploy_fa.yml"),
                         "-b", "--flush-cache", "--force-handlers"],
                        cwd=ROOT, env=_env(pb_dir), capture_output=True, text=True, timeout=1200)
    cli = subprocess.run([str(BIN / "ascend-fa"), "deploy", "-i", str(cli_dir / "inventory.yml"), "-b", "--flush-cache",
                          "--", "--force-handlers"],
                         cwd=ROOT, env=_env(cli_dir), capture_output=True, text=True, timeout=1200)
    (cli_dir / "cli.log").write_text(cli.stdout + cli.stderr)
    (pb_dir / "playbook.log").write_text(pb.stdout + pb.stderr)
    return pb, cli


def test_same_recap_as_the_playbook(fleets, runs):
    pb, cli = runs
    artifacts = re.search(r"^artifacts: (\S+)$", cli.stdout, re.M)
    assert artifacts, cli.stdout[-3000:] + cli.stderr[-3000:]
    cli_recap = _recap((Path(artifacts.group(1)) / "stdout").read_text(), "asim51-")
    assert _recap(pb.stdout, "asim50-") == cli_recap
    assert cli_recap["node1"][3] == 0 and cli_recap["node2"][3] == 1     # 910B3 deployed, 310P3 stopped
    assert (pb.returncode, cli.returncode) == (2, 2)                       # ansible-playbook's 2: a host failed
    assert "ascend-fa deploy: exit 2 (a host failed): 1 failed, 0 unreachable of 2 hosts" in cli.stdout
    argv = json.loads((Path(artifacts.group(1)) / "command").read_text())["command"]
    assert {"--become", "--flush-cache", "--force-handlers"} <= set(argv), argv     # passed on to ansible-playbook


def test_same_packages_and_verification(fleets, runs):
    from ascend_sim import fleet as simfleet

    results = []
    for d, prefix in zip(fleets, ("asim50-", "asim51-"), strict=True):
        ssh = simfleet.ssh_argv(d, f"{prefix}node1")
        manifest = json.loads(subprocess.run([*ssh, "cat /var/lib/ascend-fa/manifest.json"], capture_output=True,
                                             text=True, timeout=60, check=True).stdout)
        verify = json.loads((d / "out" / "verify" / f"{prefix}node1.json").read_text())
        results.append((manifest["recipe"], manifest["build_key"], manifest["sha256"] is not None, verify["ok"],
                        len(verify["cards"])))
        assert not (d / "out" / "verify" / f"{prefix}node2.json").exists()
    assert results[0] == results[1] and results[0][3] is True


def test_progress_in_a_pipe_is_plain_lines(runs):
    _, cli = runs
    out = cli.stdout
    assert "\x1b[" not in out
    progress = out[: out.index("artifacts: ")].splitlines()
    body = [ln for ln in progress if not ln.startswith(("hosts=", "  FAILED"))]
    assert body and all(LINE.match(ln) for ln in body), "\n".join(ln for ln in body if not LINE.match(ln))
    for phase in ("fa_preflight", "fa_fetch", "fa_build", "fa_install", "fa_verify"):
        assert re.search(rf"^\S+ asim51-node1\s+{phase}\s+(ok|changed)\s", out, re.M), phase
    assert re.search(r"^\S+ asim51-node2\s+fa_preflight\s+failed\s+\S+\s+Stop this host", out, re.M)
    assert "hosts=2 ok=1 changed=1 failed=1 unreachable=0" in out
    assert "  FAILED asim51-node2 [fa_preflight]: " in out


def test_report_written_with_every_host_and_card(fleets, runs):
    _, cli = runs
    out_dir = fleets[1] / "out"
    assert f"report: {out_dir / 'report.html'}" in cli.stdout
    rep = json.loads((out_dir / "report.json").read_text())
    hosts = {h["host"]: h for h in rep["hosts"]}
    assert set(hosts) == {"asim51-node1", "asim51-node2"}
    assert hosts["asim51-node1"]["status"] in ("ok", "warn") and hosts["asim51-node2"]["status"] == "fail"
    assert hosts["asim51-node1"]["package_state"] == "installed"
    page = (out_dir / "report.html").read_text()
    for h in rep["hosts"]:
        assert h["cards"]
        for c in h["cards"]:
            assert f'data-card="{h["host"]}:{c["card"]}"' in page
