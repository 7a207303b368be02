"""Built-in drains (plugins/module_utils/fa_drain_lib.py): the scontrol parser against real output
(tests/data/slurm/SOURCES.md), whose drain it is, and drain / undrain against the simulator's stand-ins, checking
the node's STATE afterwards (not which commands ran)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.module_utils import fa_drain_lib as lib

from ascend_fa import PROJECT_ROOT
from ascend_sim.kubectl import DIR as KUBECTL_DIR
from ascend_sim.kubectl import make_cluster, read_node

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"
SCONTROL = PROJECT_ROOT / "ascend_sim" / "node" / "scontrol"
KUBECTL = KUBECTL_DIR / "kubectl"
ME = socket.gethostname().split(".")[0]


def one_liner(record: str) -> str:
    """What `scontrol show node -o` prints for the same record: line_end " " instead of "\\n   " (node_info.c)."""
    return record.rstrip("\n").replace("\n   ", " ") + "\n"


@pytest.mark.parametrize("form", [lambda t: t, one_liner], ids=["multi-line", "oneliner"])
def test_real_drained_node_parses_with_its_reason_user_and_time(form):
    node = lib.parse_slurm_node(form((DATA / "cu201_idle_drain_20.11.txt").read_text()))
    assert node == {"name": "cu201", "state": "IDLE+DRAIN", "base": "IDLE", "flags": ["DRAIN"],
                    "reason": "Low RealMemory", "by": "root", "at": "2022-05-18T17:20:20", "held": True}
    fields = lib.parse_scontrol_fields(form((DATA / "cu201_idle_drain_20.11.txt").read_text()))
    assert fields["CfgTRES"] == "cpu=48,mem=186000M,billing=48"          # '=' inside a value stays
    assert fields["OS"] == "Linux 5.15.32-gentoo-r1-x86_64 #1 SMP Tue May 10 16:55:58 CST 2022"
    assert fields["Comment"] == "(null)" and fields["AllocTRES"] == ""


@pytest.mark.parametrize("form", [lambda t: t, one_liner], ids=["multi-line", "oneliner"])
def test_real_25_05_nodes_drained_and_idle(form):
    drained = lib.parse_slurm_node(form((DATA / "server5_idle_drain_25.05.txt").read_text()))
    assert (drained["state"], drained["reason"], drained["by"], drained["held"]) == ("IDLE+DRAIN", "维护中", "root", True)
    idle = lib.parse_slurm_node(form((DATA / "server4_idle_25.05.txt").read_text()))
    assert (idle["name"], idle["state"], idle["reason"], idle["held"]) == ("server4", "IDLE", None, False)


def test_old_down_star_is_held_by_slurm():
    node = lib.parse_slurm_node((DATA / "adev1_down_quickstart.txt").read_text())
    assert node["base"] == "DOWN" and node["flags"] == ["NOT_RESPONDING"] and node["held"]
    assert (node["reason"], node["by"]) == ("Not responding", "slurm")


def test_a_reason_with_key_value_text_and_fields_after_it():
    text = ("NodeName=n1 State=MIXED+DRAIN ThreadsPerCore=1 CfgTRES=cpu=8 AllocTRES= CurrentWatts=n/a AveWatts=n/a "
            "Reason=bad DIMM slot=3 State=x [admin@2026-01-02T03:04:05] Comment=rma 42 Extra=(null)\n")
    node = lib.parse_slurm_node(text)
    assert node["reason"] == "bad DIMM slot=3 State=x" and node["by"] == "admin" and node["state"] == "MIXED+DRAIN"
    assert lib.parse_scontrol_fields(text)["Comment"] == "rma 42"


def test_no_record_and_other_states():
    assert lib.parse_slurm_node("Node x not found\n") is None
    assert lib.parse_slurm_state("DOWN+DRAIN+NOT_RESPONDING") == ("DOWN", ["DRAIN", "NOT_RESPONDING"])
    assert lib.parse_slurm_state("IDLE~") == ("IDLE", ["POWERED_DOWN"])
    assert not lib.parse_slurm_node("NodeName=a State=ALLOCATED\n")["held"]
    assert lib.parse_slurm_node("NodeName=a State=DRAINED\n")["held"]   # older releases' one-word states


# --- against the simulator's scontrol (node state in a file, real output and errors) -----------------------------

@pytest.fixture
def slurm(tmp_path, monkeypatch):
    monkeypatch.setenv("ASCEND_SIM_SLURM_DIR", str(tmp_path / "slurm"))
    calls: list[list[str]] = []

    def run(argv):
        calls.append(list(argv))
        p = subprocess.run([sys.executable, str(SCONTROL), *argv[1:]], capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr

    run.calls = calls
    return run


def show(run) -> dict:
    return lib.parse_slurm_node(run(["scontrol", "show", "node", ME, "-o"])[1])


def test_drain_then_resume_leaves_the_node_idle_without_our_reason(slurm):
    if __import__("os").geteuid() != 0:
        pytest.skip("the scontrol stand-in, like Slurm, lets only root update nodes")
    got = lib.drain(slurm, "slurm", ME, lib.reason_for("ops-transformer-v9.0.1"), tool="scontrol")
    assert got["changed"] and got["drained_by_us"] and got["state_before"] == "IDLE" and not got["kept_drained_reason"]
    now = show(slurm)
    assert now["state"] == "IDLE+DRAIN" and now["reason"] == "ascend-fa: ops-transformer-v9.0.1 rollout"
    assert now["by"] == "root"
    again = lib.drain(slurm, "slurm", ME, lib.reason_for("ops-transformer-v9.0.1"), tool="scontrol")
    assert not again["changed"] and again["drained_by_us"]               # ours already: not a change
    up = lib.undrain(slurm, "slurm", ME, tool="scontrol")
    assert up["changed"] and up["undrained"] and up["state_after"] == "IDLE"
    now = show(slurm)
    assert now["state"] == "IDLE" and now["reason"] is None
    assert lib.undrain(slurm, "slurm", ME, tool="scontrol")["changed"] is False
    # what real slurmctld says to a resume of a node that is not drained
    rc, _, err = slurm(["scontrol", "update", f"nodename={ME}", "state=resume"])
    assert rc == 1 and err.strip() == "slurm_update error: Invalid node state transition"


def test_someone_elses_drain_stays_and_is_recorded(slurm):
    if __import__("os").geteuid() != 0:
        pytest.skip("root only")
    assert slurm(["scontrol", "update", f"NodeName={ME}", "State=DRAIN", "Reason=bad DIMM"])[0] == 0
    got = lib.drain(slurm, "slurm", ME, lib.reason_for("r"), tool="scontrol")
    assert not got["changed"] and not got["drained_by_us"]
    assert (got["state_before"], got["reason_before"], got["kept_drained_reason"]) == ("IDLE+DRAIN", "bad DIMM", "bad DIMM")
    kept = lib.undrain(slurm, "slurm", ME, tool="scontrol")
    assert not kept["changed"] and kept["kept_drained_reason"] == "bad DIMM"
    assert show(slurm)["reason"] == "bad DIMM" and show(slurm)["state"] == "IDLE+DRAIN"


def test_unknown_node_is_slurms_error_with_the_fix(slurm):
    rc, out, _ = slurm(["scontrol", "show", "node", "nosuch", "-o"])
    assert (rc, out) == (1, "Node nosuch not found\n")                  # src/scontrol/info_node.c: stdout, exit 1
    with pytest.raises(lib.DrainError, match="Node nosuch not found.*fa_rollout_slurm_node"):
        lib.drain(slurm, "slurm", "nosuch", lib.reason_for("r"), tool="scontrol")


def test_check_mode_reads_but_changes_nothing(slurm):
    got = lib.drain(slurm, "slurm", ME, lib.reason_for("r"), tool="scontrol", check=True)
    assert got["changed"] and got["drained_by_us"] and got["commands"] == []
    assert show(slurm)["state"] == "IDLE"
    assert all(c[1] == "show" for c in slurm.calls)


def test_a_drain_needs_a_reason_and_root_like_slurm(slurm):
    rc, _, err = slurm(["scontrol", "update", f"nodename={ME}", "state=drain"])
    assert rc == 1 and "You must specify a reason when DOWNING or DRAINING a node. Request denied" in err


@pytest.mark.parametrize("kind,node", [("slurm", "-rf"), ("slurm", "a;b"), ("slurm", "a b"), ("slurm", ""),
                                       ("kubernetes", "Node1"), ("kubernetes", "--all"), ("kubernetes", "n\n1")])
def test_hostile_node_names_stop_before_any_command(kind, node):
    def run(argv):
        raise AssertionError(f"ran {argv}")
    with pytest.raises(lib.DrainError, match="is not valid"):
        lib.drain(run, kind, node, lib.reason_for("r"), tool="x")


def test_hostile_reason_kubeconfig_and_timeout():
    def run(argv):
        raise AssertionError(f"ran {argv}")
    for kw, match in (({"reason": "a\nb"}, "reason"), ({"kubeconfig": "../k"}, "kubeconfig"),
                      ({"timeout": "5; id", "evict": True}, "timeout")):
        args = {"reason": lib.reason_for("r"), **kw}
        with pytest.raises(lib.DrainError, match=match):
            lib.drain(run, "kubernetes", "n1", args.pop("reason"), tool="kubectl", **args)


# --- against the simulator's kubectl (cluster state in a JSON file that the kubeconfig names) --------------------

@pytest.fixture
def k8s(tmp_path):
    config = make_cluster(tmp_path / "k8s", ["node-1", "node-2"])

    def run(argv):
        p = subprocess.run([sys.executable, str(KUBECTL), *argv[1:]], capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr

    return run, str(config)


def test_cordon_then_uncordon_only_what_we_cordoned(k8s):
    run, config = k8s
    got = lib.drain(run, "kubernetes", "node-1", lib.reason_for("r1"), tool="kubectl", kubeconfig=config)
    assert got["changed"] and got["drained_by_us"] and got["state_before"] == "schedulable"
    node = read_node(Path(config), "node-1")
    assert node["spec"]["unschedulable"] is True
    assert node["metadata"]["annotations"][lib.ANNOTATION] == "ascend-fa: r1 rollout"
    assert not lib.drain(run, "kubernetes", "node-1", lib.reason_for("r1"), tool="kubectl", kubeconfig=config)["changed"]
    up = lib.undrain(run, "kubernetes", "node-1", tool="kubectl", kubeconfig=config)
    assert up["changed"] and up["undrained"]
    node = read_node(Path(config), "node-1")
    assert "unschedulable" not in node["spec"] and lib.ANNOTATION not in node["metadata"]["annotations"]
    # cordoned by someone else: kept, never uncordoned
    assert run(["kubectl", f"--kubeconfig={config}", "cordon", "node-2"])[1] == "node/node-2 cordoned\n"
    kept = lib.drain(run, "kubernetes", "node-2", lib.reason_for("r1"), tool="kubectl", kubeconfig=config)
    assert not kept["changed"] and not kept["drained_by_us"] and kept["state_before"] == "cordoned"
    assert not lib.undrain(run, "kubernetes", "node-2", tool="kubectl", kubeconfig=config)["changed"]
    assert read_node(Path(config), "node-2")["spec"]["unschedulable"] is True


def test_evict_runs_kubectl_drain_with_the_documented_flags(k8s):
    run, config = k8s
    got = lib.drain(run, "kubernetes", "node-1", lib.reason_for("r"), tool="kubectl", kubeconfig=config, evict=True,
                    timeout="90s")
    assert ["kubectl", f"--kubeconfig={config}", "drain", "node-1", "--ignore-daemonsets", "--delete-emptydir-data",
            "--timeout=90s"] in got["commands"]
    assert read_node(Path(config), "node-1")["spec"]["unschedulable"] is True


def test_missing_k8s_node_is_kubectls_error_with_the_fix(k8s):
    run, config = k8s
    rc, _, err = run(["kubectl", f"--kubeconfig={config}", "get", "node", "node-9", "-o", "json"])
    assert rc == 1 and err.strip() == 'Error from server (NotFound): nodes "node-9" not found'
    with pytest.raises(lib.DrainError, match="NotFound.*fa_rollout_k8s_node"):
        lib.drain(run, "kubernetes", "node-9", lib.reason_for("r"), tool="kubectl", kubeconfig=config)


def test_k8s_node_parser():
    obj = {"kind": "Node", "metadata": {"name": "a", "annotations": {lib.ANNOTATION: "ascend-fa: x rollout"}},
           "spec": {"unschedulable": True, "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}}
    assert lib.parse_k8s_node(json.dumps(obj)) == {"name": "a", "cordoned": True, "ours": "ascend-fa: x rollout",
                                                   "taints": ["node.kubernetes.io/unschedulable"]}
    with pytest.raises(ValueError):
        lib.parse_k8s_node(json.dumps({"kind": "Pod"}))
