"""Drains that work (issue 22 item 3), on one simulated host: the node's Slurm state is kept by the simulator's
scontrol (ascend_sim/node/scontrol, real output and errors) and a Kubernetes cluster's by the controller-side kubectl
stand-in (ascend_sim/kubectl), so each scenario asserts the STATE the run left, not which commands ran.

One fleet, scenarios in order (each leaves the node as the next expects; faults cleared in between):
  1. a node drained by the administrator ("bad DIMM") before the run stays drained with that reason, and the run
     records it; the package is installed all the same (a drained node runs no new jobs);
  2. a verification failure rolls the host back, and the drain ascend-fa set is lifted (state IDLE, our reason gone);
     the node was drained with our reason while the package was installed (a hook snapshots scontrol at that moment);
  3. a failure without a rollback leaves the node drained with our reason (the operator must look);
  4. the next successful run takes that drain as its own and lifts it;
  5. Kubernetes: cordon (with our annotation) and uncordon through kubectl on the controller's PATH.
"""

from __future__ import annotations

import json
import os

import pytest

from ascend_sim.kubectl import DIR as KUBECTL_DIR
from ascend_sim.kubectl import make_cluster, read_node

pytestmark = pytest.mark.fleet
OLD, NEW = "sim-ops-transformer-v9.0.0", "sim-ops-transformer-v9.0.1"
DURING = "/tmp/fa-drain-during"
# run on the host right after the built-in drain (a fa_rollout_drain_command hook): the node's Slurm record then
SNAPSHOT = ["sh", "-c", f'scontrol show node "$(hostname -s)" -o > {DURING}']


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("drains", octet=111, hosts=1, npus=2)


def slurm_node(fleet) -> dict:
    """The node's record as `scontrol show node -o` prints it, parsed by the module's own parser."""
    from ansible_collections.ascend.fa.plugins.module_utils.fa_drain_lib import parse_slurm_node
    host = fleet.hosts[0]
    p = fleet.sh(host, f"scontrol show node {host} -o")
    assert p.returncode == 0, p.stdout + p.stderr
    return parse_slurm_node(p.stdout)


def deploy(fleet, recipe: str, **extra):
    return fleet.play("deploy_fa.yml", "-e", json.dumps({"fa_recipe": recipe, "fa_rollout_drain": "slurm", **extra}))


def record(fleet) -> dict:
    return json.loads((fleet.results / "upgrade" / f"{fleet.hosts[0]}.json").read_text())


def test_slurm_drains_around_the_rollout(fleet):
    host = fleet.hosts[0]
    assert slurm_node(fleet)["state"] == "IDLE"

    # 1. drained by the administrator before the run: stays so, with that reason, and the run records it
    admin = fleet.sh(host, f"scontrol update nodename={host} state=drain 'reason=bad DIMM'")
    assert admin.returncode == 0, admin.stderr
    run = deploy(fleet, OLD)
    assert run.rc == 0, run.out[-4000:]
    node = slurm_node(fleet)
    assert (node["state"], node["reason"], node["by"]) == ("IDLE+DRAIN", "bad DIMM", "root"), node
    drain = record(fleet)["drain"]
    assert drain["kind"] == "slurm" and drain["drained_by_us"] is False, drain
    assert drain["kept_drained_reason"] == "bad DIMM" and drain["state_before"] == "IDLE+DRAIN", drain
    # ... and the run's report (callback fa_records) says it was left drained, with the administrator's reason
    rep = json.loads((fleet.results / "report.json").read_text())
    (reported,) = [h for h in rep["hosts"] if h["host"] == host]
    assert reported["drain"]["kept_drained_reason"] == "bad DIMM", reported.get("drain")
    assert "bad DIMM" in (fleet.results / "report.html").read_text()
    assert fleet.manifest(host)["recipe"] == OLD
    assert fleet.sh(host, f"scontrol update nodename={host} state=resume").returncode == 0   # the admin is done

    # 2. the new release computes wrong numbers on this host: rolled back, verified, and our drain lifted
    fleet.fault(host, "wrong-results", "--version", "9.0.1")
    try:
        run = deploy(fleet, NEW, fa_rollout_drain_command=SNAPSHOT)
        assert run.rc != 0 and run.failed() == [host], run.out[-4000:]
        assert f"Rolled back to {OLD} and verified" in run.out, run.out[-4000:]
        assert record(fleet)["result"] == "rolled_back"
        during = fleet.sh(host, f"cat {DURING}").stdout
        assert "State=IDLE+DRAIN " in during and f"Reason=ascend-fa: {NEW} rollout [root@" in during, during
        node = slurm_node(fleet)
        assert node["state"] == "IDLE" and node["reason"] is None, node
        assert fleet.manifest(host)["recipe"] == OLD

        # 3. failed without a rollback: stays drained with our reason, and the failure says so
        run = deploy(fleet, NEW, fa_rollout_auto_rollback=False)
        assert run.rc != 0 and run.failed() == [host], run.out[-4000:]
        assert "It stays drained (slurm" in run.out, run.out[-4000:]
        node = slurm_node(fleet)
        assert node["state"] == "IDLE+DRAIN" and node["reason"] == f"ascend-fa: {NEW} rollout", node
    finally:
        fleet.fault(host, "clear")

    # 4. the next successful run finds its own drain (not a new one) and lifts it
    run = deploy(fleet, NEW)
    assert run.rc == 0, run.out[-4000:]
    node = slurm_node(fleet)
    assert node["state"] == "IDLE" and node["reason"] is None, node
    assert fleet.manifest(host)["recipe"] == NEW


def test_kubernetes_cordon_and_uncordon_from_the_controller(fleet, tmp_path):
    host = fleet.hosts[0]
    config = make_cluster(tmp_path / "k8s", [host, "other-node"])
    snap = tmp_path / "during.json"
    state = json.loads(config.read_text())["clusters"][0]["cluster"]["extensions"][0]["extension"]["state"]
    # the site's own drain tasks run after the built-in cordon, on the controller: a snapshot of the cluster then
    tasks = tmp_path / "snapshot.yml"
    tasks.write_text(f"- name: Snapshot the cluster\n  ansible.builtin.command:\n    argv: [cp, {state}, {snap}]\n"
                     f"  delegate_to: localhost\n  become: false\n  changed_when: false\n")
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{KUBECTL_DIR}:{path}"
    try:
        run = fleet.play("deploy_fa.yml", "-e", json.dumps({
            "fa_rollout_drain": "kubernetes", "fa_rollout_kubeconfig": str(config), "fa_install_force": True,
            "fa_rollout_drain_tasks": str(tasks)}))
    finally:
        os.environ["PATH"] = path
    assert run.rc == 0, run.out[-4000:]
    during = json.loads(snap.read_text())["nodes"][host]
    assert during["spec"].get("unschedulable") is True, during
    assert during["metadata"]["annotations"]["ascend-fa/drained-by"].startswith("ascend-fa: "), during
    after = read_node(config, host)
    assert "unschedulable" not in after["spec"] and "ascend-fa/drained-by" not in after["metadata"]["annotations"]
    assert "unschedulable" not in read_node(config, "other-node")["spec"]
    assert record(fleet)["drain"]["kind"] == "kubernetes" and record(fleet)["drain"]["drained_by_us"] is True
