"""Field-true verification on a simulated node that is as unforgiving as the real stack (issue: field-true).

The simulated CANN (8.5 and later) ships a built-in, numerically correct FlashAttentionScore, and the torch_npu
stand-in resolves the aclnn API as op-plugin's ``op_api_common.cpp`` does (lists fixed at ``import torch_npu``, owner
check, built-in fallback). So correct numbers prove nothing here, as on a real node: only the served-by check can
tell our kernel from CANN's. Each fault below leaves a node whose cards still compute correct results, and
``playbooks/verify.yml`` must fail it naming the cause; the repairable ones are repaired by the next deploy.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.fleet

VENDOR = "ascendfa_transformer"
STATE = "/var/lib/ascend-fa"


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("field-true", octet=81, hosts=1, npus=2)


@pytest.fixture(scope="module")
def deployed(fleet):
    run = fleet.play("deploy_fa.yml")
    assert run.rc == 0, run.out[-4000:]
    return run


def _verify_record(fleet) -> dict:
    return json.loads((fleet.results / "verify" / f"{fleet.hosts[0]}.json").read_text())


def _vendor_lib(fleet) -> str:
    """Our library as op-plugin names it: the realpath of the vendor folder (``cann`` links to ``cann-<version>``)."""
    lib = fleet.manifest(fleet.hosts[0])["vendor_dir"] + "/op_api/lib/libcust_opapi.so"
    return fleet.sh(fleet.hosts[0], f"realpath {lib}").stdout.strip()


def test_every_card_is_served_by_our_vendor_and_the_report_says_which_library(fleet, deployed):
    rec = _verify_record(fleet)
    assert rec["ok"] and len(rec["cards"]) == 2, rec
    for card in rec["cards"]:
        served = card["served_by"]
        assert served["ok"] is True and served["source"] == "vendor", served
        assert served["library"] == _vendor_lib(fleet)
        # CANN 8.5 ships the operator too: the card was also run on CANN's own kernel, in a separate process
        assert card["baseline"]["ran"] and card["baseline"]["served_by"].endswith("libopapi.so"), card["baseline"]
        assert card["baseline"]["max_diff"] is not None and card["baseline"]["ratio"] > 0


def test_a_non_root_training_process_uses_the_package(fleet, deployed):
    kernels = f"{STATE}/kernels"
    check = (f"runuser -l trainer -c 'source {STATE}/set_env.bash && python3 {kernels}/fa_check.py --device npu "
             f"--quick --cases aligned_fp16 --expect-vendor-dir {fleet.manifest(fleet.hosts[0])['vendor_dir']}'")
    p = fleet.sh(fleet.hosts[0], check)
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert p.returncode == 0 and report["ok"], p.stdout + p.stderr[-2000:]
    assert report["served_by"]["uid"] != 0 and report["served_by"]["library"] == _vendor_lib(fleet)


# fault -> (what the node looks like afterwards, words the failed verification must name, repaired by deploy)
FAULTS = {
    "vendor-not-loaded": (f"grep -q '^load_priority=.*{VENDOR}' $ASCEND_OPP_PATH/vendors/config.ini", 1,
                          ["CANN's built-in FlashAttentionScore", "load_priority"], True),
    "vendor-foreign-owner": ("stat -c %u {lib}", "1000", ["owner"], True),
    "kernel-bin-missing": ("ls {vendor}/op_impl/ai_core/tbe/kernel/ascend910b/flash_attention_score", 2,
                           ["Cannot find bin of op FlashAttentionScore"], True),
    "custom-path-other-vendor": ("bash -lc 'echo $ASCEND_CUSTOM_OPP_PATH'", "other_transformer",
                                 ["other_transformer"], False),
}


def _node_state(fleet, probe: str):
    m = fleet.manifest(fleet.hosts[0])
    cmd = probe.format(lib=_vendor_lib(fleet), vendor=m["vendor_dir"])
    p = fleet.sh(fleet.hosts[0], f"source /usr/local/Ascend/cann/set_env.sh 2>/dev/null || "
                                 f"source /usr/local/Ascend/ascend-toolkit/set_env.sh; {cmd}")
    return p


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_that_still_computes_correctly_fails_verification_naming_the_cause(fleet, deployed, fault):
    probe, expect, words, repairable = FAULTS[fault]
    host = fleet.hosts[0]
    fleet.fault(host, fault)
    try:
        state = _node_state(fleet, probe)
        # the state the fault left, before any recovery
        if isinstance(expect, int):
            assert state.returncode == expect, (state.stdout, state.stderr)
        else:
            assert expect in state.stdout, (state.stdout, state.stderr)
        run = fleet.play("playbooks/verify.yml")
        assert run.rc != 0 and run.failed() == [host], run.out[-3000:]
        rec = _verify_record(fleet)
        text = json.dumps(rec)
        for w in words:
            assert w in text, (w, text[-3000:])
        assert not rec["ok"] and all(not c["ok"] for c in rec["cards"])
        if repairable:
            fix = fleet.play("deploy_fa.yml")
            assert fix.rc == 0, fix.out[-3000:]
            assert _verify_record(fleet)["ok"]
    finally:
        fleet.fault(host, "clear")
    if not repairable:
        again = fleet.play("playbooks/verify.yml")
        assert again.rc == 0, again.out[-3000:]


def test_a_kernel_slower_than_cann_over_the_budget_fails_the_card_naming_both_latencies(fleet, deployed):
    run = fleet.play("playbooks/verify.yml", "-e", "fa_verify_max_slowdown=0.001")
    assert run.rc != 0, run.out[-3000:]
    rec = _verify_record(fleet)
    assert not rec["ok"]
    for card in rec["cards"]:
        assert "over fa_verify_max_slowdown 0.001" in card["reason"], card
    assert fleet.play("playbooks/verify.yml").rc == 0


def test_two_vendors_side_by_side_are_each_served_and_kept(fleet, deployed):
    """Another vendor's package (its own operator, a different aclnn API) next to ours: the deploy keeps it in
    load_priority, ldconfig registers ours, and op-plugin's lookup serves each API from its own vendor."""
    host = fleet.hosts[0]
    src = ("int aclnnAcmeAddGetWorkspaceSize(void *p, unsigned long *ws, void **ex) { *ws = 0; return 0; }\n"
           "int aclnnAcmeAdd(void *w, unsigned long n, void *ex, void *s) { return 0; }\n")
    setup = (
        "set -e; source /usr/local/Ascend/cann/set_env.sh 2>/dev/null || "
        "source /usr/local/Ascend/ascend-toolkit/set_env.sh; v=$ASCEND_OPP_PATH/vendors; "
        "mkdir -p $v/acme/op_api/lib; printf '%s' \"$SRC\" > /tmp/acme.c; "
        "gcc -shared -fPIC -o $v/acme/op_api/lib/libcust_opapi.so /tmp/acme.c; chmod -R a+rX $v/acme; "
        "sed -i 's/^load_priority=\\(.*\\)$/load_priority=\\1,acme/' $v/config.ini; cat $v/config.ini")
    p = fleet.sh(host, f"SRC={shlex.quote(src)}; {setup}")
    assert p.returncode == 0 and "acme" in p.stdout, p.stderr
    run = fleet.play("deploy_fa.yml", "-e", "fa_install_force=true")
    assert run.rc == 0, run.out[-3000:]
    probe = ("source /var/lib/ascend-fa/set_env.bash; python3 -c 'import torch_npu; from torch_npu import _aclnn; "
             "print(_aclnn.find_package(\"aclnnFlashAttentionScore\").path); "
             "print(_aclnn.find_package(\"aclnnAcmeAdd\").path)'; "
             "grep load_priority $ASCEND_OPP_PATH/vendors/config.ini; ldconfig -p | grep -c libcust_opapi.so")
    out = fleet.sh(host, probe)
    lines = out.stdout.split()
    assert out.returncode == 0 and len(lines) == 4, out.stdout + out.stderr
    assert lines[0].endswith(f"{VENDOR}/op_api/lib/libcust_opapi.so"), lines
    assert lines[1].endswith("acme/op_api/lib/libcust_opapi.so"), lines
    assert lines[2] == f"load_priority={VENDOR},acme", lines
    assert _verify_record(fleet)["ok"]


def test_an_offline_build_host_fails_without_the_third_party_bundle_and_builds_with_it(fleet, deployed, tmp_path):
    from dataclasses import replace

    from ascend_sim.upstream import make_repo

    host = fleet.hosts[0]
    fresh = replace(fleet, cache=tmp_path / "cache", results=tmp_path / "out")
    fleet.fault(host, "build-offline")
    # a build folder of an earlier (online) build keeps its downloaded ./third_party, as CMake would reuse it
    assert fleet.sh(host, "rm -rf /var/tmp/ascend-fa").returncode == 0
    try:
        run = fresh.play("deploy_fa.yml", "-e", "fa_install_force=true")
        assert run.rc != 0 and run.failed() == [host], run.out[-3000:]
        assert "Each download failed!" in run.out or "Failed to clone repository" in run.out, run.out[-3000:]
        assert "fa_build_third_party_bundle" in run.out, run.out[-3000:]
        assert fresh.builds() == []
        bundle = make_repo.make_third_party_bundle(tmp_path / "3rd.tar.gz")
        with tarfile.open(bundle) as tf:
            assert {n.split("/")[0] for n in tf.getnames()} >= {"opbase", "pkg"}
        sha = subprocess.run(["sha256sum", str(bundle)], capture_output=True, text=True, check=True).stdout.split()[0]
        run = fresh.play("deploy_fa.yml", "-e", "fa_install_force=true",
                         "-e", f"fa_build_third_party_bundle={bundle}", "-e", f"fa_build_third_party_sha256={sha}")
        assert run.rc == 0, run.out[-3000:]
        assert len(fresh.builds()) == 1
    finally:
        fleet.fault(host, "clear")
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    assert Path(sys.executable).exists()


def test_a_build_host_behind_a_proxy_builds_only_when_fa_proxy_env_reaches_the_build(fleet, deployed, tmp_path):
    """The simulated network lets the third-party download through only with https_proxy set to the host's proxy
    (libcurl's rules: http_proxy alone does not reach https URLs)."""
    from dataclasses import replace

    host = fleet.hosts[0]
    proxy = "http://proxy.example.internal:3128"
    fresh = replace(fleet, cache=tmp_path / "cache", results=tmp_path / "out")
    fleet.fault(host, "build-proxy-only", "--proxy", proxy)
    assert fleet.sh(host, "rm -rf /var/tmp/ascend-fa").returncode == 0
    try:
        run = fresh.play("deploy_fa.yml", "-e", "fa_install_force=true",
                         "-e", json.dumps({"fa_proxy_env": {"http_proxy": proxy}}))
        assert run.rc != 0 and fresh.builds() == [], run.out[-3000:]
        assert "fa_proxy_env" in run.out, run.out[-3000:]
        assert fleet.sh(host, "rm -rf /var/tmp/ascend-fa").returncode == 0
        run = fresh.play("deploy_fa.yml", "-e", "fa_install_force=true",
                         "-e", json.dumps({"fa_proxy_env": {"https_proxy": proxy, "no_proxy": "localhost"}}))
        assert run.rc == 0, run.out[-3000:]
        assert len(fresh.builds()) == 1
    finally:
        fleet.fault(host, "clear")
