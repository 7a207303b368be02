"""Prometheus textfile metrics on a simulated node (issue 22, item 1): after a deploy the host has
``/var/lib/node_exporter/textfile_collector/ascend_fa.prom`` with one passing card per card and the installed
package's recipe, tag, commit, sha256 and vendor (compared with the host's install manifest, read on its own); a fault
that fails the cards (``vendor-foreign-owner``: CANN's built-in kernel serves the call, docs/faults.md) and
``playbooks/verify.yml`` rewrite it with those cards at 0, the serving library named and the package drift at 1; the
repair by the next deploy puts them back; check mode writes nothing; a site's own folder is created 0755. The file is
read back with the strict reader of tests/prom_text.py."""

from __future__ import annotations

import time

import pytest
from prom_text import parse, values

pytestmark = pytest.mark.fleet

DEFAULT_DIR = "/var/lib/node_exporter/textfile_collector"
PROM = f"{DEFAULT_DIR}/ascend_fa.prom"


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("metrics", octet=112, hosts=1, npus=2)


@pytest.fixture(scope="module")
def deployed(fleet):
    started = int(time.time())
    run = fleet.play("deploy_fa.yml")
    assert run.rc == 0, run.out[-4000:]
    return started


def _read(fleet, path: str = PROM) -> tuple[dict, str]:
    p = fleet.sh(fleet.hosts[0], f"cat {path}")
    assert p.returncode == 0, p.stderr
    return parse(p.stdout), p.stdout


def _stat(fleet, path: str) -> str:
    return fleet.sh(fleet.hosts[0], f"stat -c '%a %U %Y %s' {path}").stdout.strip()


def _vendor_lib(fleet) -> str:
    lib = fleet.manifest(fleet.hosts[0])["vendor_dir"] + "/op_api/lib/libcust_opapi.so"
    return fleet.sh(fleet.hosts[0], f"realpath {lib}").stdout.strip()


def test_deploy_leaves_one_pass_per_card_and_the_installed_package(fleet, deployed):
    fams, _text = _read(fleet)
    manifest = fleet.manifest(fleet.hosts[0])
    assert fams["ascend_fa_package_info"]["samples"] == [(
        {k: manifest[k] for k in ("recipe", "tag", "commit", "sha256", "vendor")}, 1.0)]
    assert len(manifest["sha256"]) == 64 and len(manifest["commit"]) == 40
    assert values(fams, "ascend_fa_card_pass") == {"0": 1.0, "1": 1.0}
    assert fams["ascend_fa_verify_ok"]["samples"] == [({}, 1.0)]
    stamp = fams["ascend_fa_verify_timestamp_seconds"]["samples"][0][1]
    assert deployed - 5 <= stamp <= time.time() + 5
    assert fams["ascend_fa_package_drift"]["samples"] == [({"state": "installed"}, 0.0)]
    served = fams["ascend_fa_card_served_by_vendor"]["samples"]
    assert sorted(lab["card"] for lab, _v in served) == ["0", "1"]
    assert all(v == 1.0 and lab["library"] == _vendor_lib(fleet) and lab["source"] == "vendor" for lab, v in served)
    assert all(v > 0 for v in values(fams, "ascend_fa_card_latency_seconds").values())
    assert set(values(fams, "ascend_fa_card_baseline_ratio")) == {"0", "1"}     # CANN >= 8.5 ships the operator
    # each card's NPU and chip ids as npu-smi maps them ("npu-smi info -m": NPU ID, Chip ID, Chip Logic ID, name)
    smi = fleet.sh(fleet.hosts[0], "npu-smi info -m").stdout
    rows = [ln.split() for ln in smi.splitlines()]
    by_logic = {r[2]: (r[0], r[1]) for r in rows if len(r) >= 3 and all(t.isdigit() for t in r[:3])}
    assert {(lab["card"], lab["npu_id"], lab["chip_id"]) for lab, _v in fams["ascend_fa_card_pass"]["samples"]} == \
        {(c, *by_logic[c]) for c in ("0", "1")}, smi
    # readable by node_exporter's own user; nothing else in the folder that its *.prom glob could pick up half-written
    assert _stat(fleet, PROM).split()[:2] == ["644", "root"] and _stat(fleet, DEFAULT_DIR).split()[0] == "755"
    listing = fleet.sh(fleet.hosts[0], f"ls -A {DEFAULT_DIR}").stdout.split()
    assert listing == ["ascend_fa.prom"], listing


def test_check_mode_and_an_empty_folder_setting_write_nothing(fleet, deployed):
    before = _stat(fleet, PROM)
    time.sleep(1.1)     # a rewrite would show in the mtime (seconds)
    run = fleet.play("playbooks/verify.yml", "--check")
    assert run.rc == 0, run.out[-3000:]
    run = fleet.play("playbooks/verify.yml", "-e", "fa_verify_metrics_dir=")
    assert run.rc == 0, run.out[-3000:]
    assert _stat(fleet, PROM) == before


def test_a_fault_that_fails_the_cards_is_rewritten_at_0_and_the_repair_puts_them_back(fleet, deployed):
    host = fleet.hosts[0]
    before = _read(fleet)[0]["ascend_fa_verify_timestamp_seconds"]["samples"][0][1]
    time.sleep(1.1)
    fleet.fault(host, "vendor-foreign-owner")
    try:
        # the state the fault left: our library owned by uid 1000, so a root process skips it (op-plugin checkOwner)
        lib = _vendor_lib(fleet)
        assert fleet.sh(host, f"stat -c %u {lib}").stdout.strip() == "1000"
        run = fleet.play("playbooks/verify.yml")
        assert run.rc != 0 and run.failed() == [host], run.out[-3000:]
        fams, text = _read(fleet)
        assert values(fams, "ascend_fa_card_pass") == {"0": 0.0, "1": 0.0}, text
        assert fams["ascend_fa_verify_ok"]["samples"] == [({}, 0.0)]
        assert fams["ascend_fa_verify_timestamp_seconds"]["samples"][0][1] > before
        served = fams["ascend_fa_card_served_by_vendor"]["samples"]
        assert all(v == 0.0 and lab["source"] == "builtin" and lab["library"].endswith("libopapi.so")
                   for lab, v in served), served
        assert fams["ascend_fa_package_drift"]["samples"] == [({"state": "files_changed"}, 1.0)]
        fix = fleet.play("deploy_fa.yml")
        assert fix.rc == 0, fix.out[-3000:]
        fams, text = _read(fleet)
        assert values(fams, "ascend_fa_card_pass") == {"0": 1.0, "1": 1.0}, text
        assert fams["ascend_fa_package_drift"]["samples"] == [({"state": "installed"}, 0.0)]
    finally:
        fleet.fault(host, "clear")


def test_a_site_folder_is_created_0755_and_gets_the_file(fleet, deployed):
    site = "/srv/monitoring/textfile"
    run = fleet.play("playbooks/verify.yml", "-e", f"fa_verify_metrics_dir={site}")
    assert run.rc == 0, run.out[-3000:]
    fams, _text = _read(fleet, f"{site}/ascend_fa.prom")
    assert values(fams, "ascend_fa_card_pass") == {"0": 1.0, "1": 1.0}
    assert _stat(fleet, site).split()[0] == "755" and _stat(fleet, "/srv/monitoring").split()[0] == "755"
