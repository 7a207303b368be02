"""Diagnose like a field engineer, end to end on 4 simulated hosts (issue: doctor, preflight, drift, known errors).

Each injected state (env not sourced, vendor not first, library corrupted, torch_npu / CANN mismatch, CANN upgraded
after install) is named by the doctor and by preflight with its fix; healthy hosts report nothing. One deploy repairs
exactly the broken hosts (changed there only) and a rerun is changed=0; after a CANN upgrade on 1 of 4 hosts one
deploy rebuilds and reinstalls on that host only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from ascend_fa import PROJECT_ROOT

pytestmark = pytest.mark.fleet

# The simulated hosts run CPU torch 2.13 under a torch_npu 2.9 stand-in; the sim inventory lets preflight report that
# pair as a warning (fa_preflight_ignore). It is the only line a healthy simulated host gets from preflight.
SIM_PAIR = "torch 2.13.0+cpu does not match torch_npu 2.9.0"


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("doctor", octet=45, hosts=4, npus=1, cann_layouts=["toolkit", "cann"])


@pytest.fixture(scope="module")
def deployed(fleet):
    run = fleet.play("deploy_fa.yml")
    assert run.rc == 0, run.out[-4000:]
    return run


def flat(text: str) -> str:
    """Output with YAML line wrapping undone."""
    return " ".join(text.split())


def problem_lines(out: str, host: str) -> list[str]:
    """The ``<host>: [severity] what (found ...; needed ...). Fix: ...`` lines of a run, one string each."""
    text = flat(out)
    starts = [m.start() for m in re.finditer(r"asim\d+-node\d+: \[(?:warning|error)\] ", text)]
    ends = starts[1:] + [len(text)] if starts else []
    chunks = [text[a:b] for a, b in zip(starts, ends, strict=True)]
    return [c for c in chunks if c.startswith(f"{host}: [")]


def doctor_findings(fleet, host: str) -> list[dict]:
    return json.loads((fleet.results / "doctor" / f"{host}.json").read_text())["findings"]


def assert_named(findings: list[dict], code: str, words: str, fix_words: str) -> None:
    hit = [f for f in findings if f["code"] == code]
    assert hit, (code, [f["code"] for f in findings])
    assert words in hit[0]["what"] and fix_words in hit[0]["fix"], hit[0]


def assert_preflight_names(out: str, host: str, words: str, fix_words: str) -> None:
    lines = problem_lines(out, host)
    assert any(words in line and "Fix: " in line and fix_words in line.split("Fix: ", 1)[1] for line in lines), lines


def test_healthy_fleet_reports_nothing(fleet, deployed):
    run = fleet.play("playbooks/doctor.yml")
    assert run.rc == 0 and run.failed() == [], run.out[-3000:]
    assert set(run.changed().values()) == {0}
    for host in fleet.hosts:
        assert doctor_findings(fleet, host) == []
        assert problem_lines(run.out, host) == []
        checks = json.loads((fleet.results / "doctor" / f"{host}.json").read_text())["checks"]
        assert {c["id"]: c["status"] for c in checks}["lib_on_path"] == "ok"


def test_each_state_is_named_by_doctor_and_preflight_then_one_deploy_repairs_them(fleet, deployed):
    env_host, vendor_host, corrupt_host, healthy = fleet.hosts
    fleet.fault(env_host, "env-not-sourced")
    fleet.fault(vendor_host, "vendor-not-first")
    fleet.fault(corrupt_host, "corrupt-lib")

    doc = fleet.play("playbooks/doctor.yml")
    assert doc.failed() == sorted([env_host, vendor_host, corrupt_host]), doc.out[-3000:]
    assert set(doc.changed().values()) == {0}
    assert doctor_findings(fleet, healthy) == [] and problem_lines(doc.out, healthy) == []

    env = doctor_findings(fleet, env_host)
    assert_named(env, "package_env", "environment not set up for new processes", "ascend-fa deploy")
    assert_named(env, "lib_on_path", "does not find libcust_opapi.so", "source /var/lib/ascend-fa/set_env.bash")
    assert "shared_object_missing" in next(f["found"] for f in env if f["code"] == "lib_on_path")
    assert_named(env, "ld_cache", "not in the ld.so cache", "ldconfig")
    vendor = doctor_findings(fleet, vendor_host)
    assert [f["code"] for f in vendor] == ["vendor_first"]
    assert_named(vendor, "vendor_first", "not first in load_priority", "ascend-fa deploy")
    assert "load_priority=customize,ascendfa_transformer" in vendor[0]["found"]
    corrupt = doctor_findings(fleet, corrupt_host)
    assert_named(corrupt, "package_files_changed", "files changed since install", "reinstalls the package")
    assert_named(corrupt, "dlopen", "does not load", "ascend-fa deploy")
    assert "invalid ELF header" in next(f["found"] for f in corrupt if f["code"] == "dlopen")
    # every failing line names the host, what was found and the fix
    for host in (env_host, vendor_host, corrupt_host):
        lines = problem_lines(doc.out, host)
        assert lines and all("(found " in line and "Fix: " in line for line in lines), lines

    pre = fleet.play("playbooks/preflight.yml")
    assert pre.failed() == [] and set(pre.changed().values()) == {0}, pre.out[-3000:]
    assert_preflight_names(pre.out, env_host, "environment not set up for new processes", "ascend-fa deploy")
    assert_preflight_names(pre.out, vendor_host, "not first in load_priority", "ascend-fa deploy")
    assert_preflight_names(pre.out, corrupt_host, "files changed since install", "reinstalls the package")
    assert all(SIM_PAIR in line for line in problem_lines(pre.out, healthy))

    # ascend-fa doctor (a playbook subcommand of the CLI): one line per problem with its fix, "ok" for the healthy
    # host, exit 2 (as ansible-playbook's "a host failed") when a host has an error finding
    env_vars = {**os.environ, "ASCEND_FA_RESULTS": str(fleet.results), "ASCEND_FA_CACHE": str(fleet.cache),
                "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(fleet.dir / "facts")}
    cli = subprocess.run([sys.executable, "-m", "ascend_fa.cli", "doctor", "-i", str(fleet.inventory), "--no-report",
                          "--progress", "quiet"],
                         cwd=PROJECT_ROOT, env=env_vars, capture_output=True, text=True, timeout=600)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert f"{healthy}: ok" in cli.stdout.splitlines()
    assert any(line.startswith(f"{vendor_host}: [error] our vendor is not first in load_priority") and "Fix: " in line
               for line in cli.stdout.splitlines()), cli.stdout

    repair = fleet.play("deploy_fa.yml")
    assert repair.rc == 0, repair.out[-4000:]
    assert {h for h, c in repair.changed().items() if c} == {env_host, vendor_host, corrupt_host}
    again = fleet.play("deploy_fa.yml")
    assert again.rc == 0 and set(again.changed().values()) == {0}, again.changed()
    after = fleet.play("playbooks/doctor.yml")
    assert after.rc == 0 and all(doctor_findings(fleet, h) == [] for h in fleet.hosts), after.out[-3000:]


def test_torch_npu_cann_mismatch_is_named(fleet, deployed):
    bad = fleet.hosts[3]
    fleet.fault(bad, "torch-npu-mismatch")
    try:
        doc = fleet.play("playbooks/doctor.yml")
        assert doc.failed() == [bad], doc.out[-3000:]
        findings = doctor_findings(fleet, bad)
        assert [f["code"] for f in findings] == ["torch_npu_cann_mismatch"]
        assert "2.1.0.post4" in findings[0]["found"] and findings[0]["fix"].startswith("pip install torch_npu==2.9.0")
        assert all(doctor_findings(fleet, h) == [] for h in fleet.hosts if h != bad)
        pre = fleet.play("playbooks/preflight.yml")
        assert pre.failed() == [bad]
        assert_preflight_names(pre.out, bad, "torch_npu 2.1.0.post4 is not paired with CANN 8.5.0",
                               "pip install torch_npu==2.9.0")
    finally:
        fleet.fault(bad, "torch-npu-mismatch", "--version", "2.9.0")


def test_cann_upgrade_on_one_host_is_repaired_by_one_deploy_on_that_host_only(fleet, deployed):
    upgraded = fleet.hosts[2]
    builds_before = len(fleet.builds())
    fleet.fault(upgraded, "cann-upgrade")
    assert fleet.sh(upgraded, "test -d {}".format(fleet.manifest(upgraded)["vendor_dir"])).returncode != 0

    doc = fleet.play("playbooks/doctor.yml")
    assert doc.failed() == [upgraded]
    findings = doctor_findings(fleet, upgraded)
    assert_named(findings, "package_cann_changed", "CANN changed since install", "rebuilds for the CANN now installed")
    assert_named(findings, "package_present", "package missing", "ascend-fa deploy")

    pre = fleet.play("playbooks/preflight.yml")
    assert_preflight_names(pre.out, upgraded, "CANN changed since install", "reinstalls on this host only")
    for host in fleet.hosts:
        if host != upgraded:
            assert all(SIM_PAIR in line for line in problem_lines(pre.out, host))

    repair = fleet.play("deploy_fa.yml")
    assert repair.rc == 0, repair.out[-4000:]
    assert {h for h, c in repair.changed().items() if c} == {upgraded}
    assert len(fleet.builds()) == builds_before + 1          # one build, for the new CANN
    m = fleet.manifest(upgraded)
    assert m["cann_version"] == "8.5.1" and fleet.sh(upgraded, f"test -d {m['vendor_dir']}").returncode == 0
    again = fleet.play("deploy_fa.yml")
    assert again.rc == 0 and set(again.changed().values()) == {0}, again.changed()
