"""Packages reach the hosts without flowing through the controller (issue #23), on three simulated hosts of two models
(two build keys, one card each).

The simulated hosts share the controller's network namespace (podman --network host, each sshd on its own 127.0.116.N),
so a seed's server on its 127.0.116.N is reached by the other hosts as on a cluster network.

* A deploy: each key's seed is its build host, which copies its own build output into its serve folder (the
  controller sends no copy), and every host pulls its package (manifest ``package_source: pulled`` with the seed's
  URL). After the run no server runs and the port is free.
* A seed that has no copy (``fa_install_seed_host`` = a host whose kept packages were removed): the controller pushes
  exactly one copy per key to it, and every host pulls from it.
* A fault: each seed's served file is replaced by garbage of the same size after the seed step (a drain hook, which
  runs on the hosts before their install): every host refuses it (sha256), falls back to a push with a warning naming
  the host and the URL, and is installed and verified.
"""

from __future__ import annotations

import json
import re
import socket

import pytest

pytestmark = pytest.mark.fleet

PORT = 58642
SERVE = "/var/lib/ascend-fa/serve"
SOURCE_LINE = re.compile(r"'([0-9a-f]{16}): (http://[0-9.]+:\d+/[0-9a-f]{64}\.run):\s+(.+?)'", re.S)


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("distribution", octet=116, hosts=3, models=["910B3", "A3-9392"], npus=1)


def served_from(out: str) -> dict[str, tuple[str, str]]:
    """Build key -> (URL, how the seed got its copy), from the task "Show where each package is served from"."""
    block = out.split("Show where each package is served from", 1)[1].split("PLAY [", 1)[0]
    return {m.group(1): (m.group(2), " ".join(m.group(3).split())) for m in SOURCE_LINE.finditer(block)}


def assert_no_server_left(fleet) -> None:
    for i, host in enumerate(fleet.hosts, start=1):
        p = fleet.sh(host, f"ps -eo args | grep -c '[.]fa_serve.py'; ls {SERVE} 2>/dev/null | grep -c '[.]run$'")
        assert p.stdout.split() == ["0", "0"], (host, p.stdout, p.stderr)
        with socket.socket() as s:                    # the port is closed on every host's address
            s.settimeout(2)
            assert s.connect_ex((f"127.0.116.{i}", PORT)) != 0, host


def sources(fleet) -> dict[str, tuple[str, str | None]]:
    out = {}
    for host in fleet.hosts:
        m = fleet.manifest(host)
        out[host] = (m.get("package_source"), m.get("package_url"))
    return out


def drop_kept_packages(fleet) -> None:
    for host in fleet.hosts:
        assert fleet.sh(host, "rm -f /var/lib/ascend-fa/packages/*.run").returncode == 0


def test_hosts_pull_from_the_build_hosts(fleet):
    run = fleet.play("deploy_fa.yml")
    assert run.rc == 0, run.out[-4000:]
    builds = {b["build_key"]: b for b in fleet.builds()}
    assert len(builds) == 2
    served = served_from(run.out)
    assert set(served) == set(builds)
    address = {h: f"127.0.116.{i}" for i, h in enumerate(fleet.hosts, start=1)}
    for key, (url, how) in served.items():
        b = builds[key]
        # the seed is the build host; it copied its own build output: the controller sent nothing to it
        assert url == f"http://{address[b['build_host']]}:{PORT}/{b['sha256']}.run"
        assert how.startswith("copied from /var/tmp/ascend-fa/src/") and key in how, how
    by_sha = {b["sha256"]: url for key, b in builds.items() for url in [served[key][0]]}
    for host, (source, url) in sources(fleet).items():
        manifest = fleet.manifest(host)
        assert source == "pulled" and url == by_sha[manifest["sha256"]], (host, source, url)
        verify = json.loads((fleet.results / "verify" / f"{host}.json").read_text())
        assert verify.get("passed", verify.get("ok")) is True, verify
    assert "could not pull" not in run.out
    assert_no_server_left(fleet)


def test_a_seed_without_a_copy_gets_exactly_one_push_per_key(fleet):
    seed = fleet.hosts[2]
    drop_kept_packages(fleet)
    run = fleet.play("deploy_fa.yml", "-e", "fa_install_force=true", "-e", f"fa_install_seed_host={seed}",
                     "-e", "fa_rollout_verify=false")
    assert run.rc == 0, run.out[-4000:]
    served = served_from(run.out)
    assert len(served) == 2
    for url, how in served.values():
        assert url.startswith(f"http://127.0.116.3:{PORT}/") and how == "pushed", (url, how)
    for host, (source, url) in sources(fleet).items():
        assert source == "pulled" and url.startswith("http://127.0.116.3:"), (host, source, url)
    assert "could not pull" not in run.out
    assert_no_server_left(fleet)


def test_garbage_from_the_seed_is_refused_and_pushed_instead(fleet):
    drop_kept_packages(fleet)
    # after the seed step, before the installs: every served copy replaced by zeros of the same size
    garbage = ["sh", "-c", f"for f in {SERVE}/*.run; do [ -f \"$f\" ] || continue; "
                           "n=$(stat -c %s \"$f\"); head -c \"$n\" /dev/zero > \"$f\"; done"]
    run = fleet.play("deploy_fa.yml", "-e", "fa_install_force=true",
                     "-e", json.dumps({"fa_rollout_drain_command": garbage}))
    assert run.rc == 0, run.out[-4000:]
    text = " ".join(run.out.split())
    for host, (source, url) in sources(fleet).items():
        assert source == "pushed" and url is None, (host, source)
        assert re.search(rf"{host}: could not pull the package from http://127\.0\.116\.\d:{PORT}/[0-9a-f]{{64}}\.run "
                         r"\(pulling .* failed: what it served has sha256 [0-9a-f]{64}, the controller's signed record "
                         r"says [0-9a-f]{64}", text), host
        verify = json.loads((fleet.results / "verify" / f"{host}.json").read_text())
        assert verify.get("passed", verify.get("ok")) is True, verify
        # nothing of the refused download is left
        assert fleet.sh(host, "ls -A /var/lib/ascend-fa/packages | grep -c pull").stdout.strip() == "0"
    assert_no_server_left(fleet)
