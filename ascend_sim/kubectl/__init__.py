"""SIMULATOR: a controller-side stand-in for ``kubectl`` (the executable ``ascend_sim/kubectl/kubectl``).

Put this folder on the PATH of the Ansible run; :func:`make_cluster` writes the cluster's state file (the nodes, as
v1 Node objects) and a kubeconfig that names it. Tests then read the state (cordoned or not, annotations), not which
commands ran. Used only by tests; not the real tool.
"""

from __future__ import annotations

import json
from pathlib import Path

DIR = Path(__file__).resolve().parent
EXTENSION = "ascend-sim"


def node_object(name: str) -> dict:
    """A v1 Node as ``kubectl get node NAME -o json`` prints one (fields the stand-in and ascend-fa read)."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def make_cluster(folder: Path, nodes: list[str]) -> Path:
    """State file ``folder/cluster.json`` with ``nodes`` and a kubeconfig ``folder/kubeconfig`` naming it."""
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / "cluster.json"
    state.write_text(json.dumps({"nodes": {n: node_object(n) for n in nodes}}, indent=1))
    # kubeconfig is YAML, and JSON is YAML: kubectl reads this file; clusters[].cluster.extensions is the kubeconfig
    # schema's place for tool-specific data (NamedExtension), where the stand-in finds its state file
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "sim",
              "clusters": [{"name": "sim", "cluster": {
                  "server": "https://127.0.0.1:6443",
                  "extensions": [{"name": EXTENSION, "extension": {"state": str(state)}}]}}],
              "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim"}}],
              "users": [{"name": "sim", "user": {}}]}
    path = folder / "kubeconfig"
    path.write_text(json.dumps(config, indent=1))
    path.chmod(0o600)
    return path


def read_node(kubeconfig: Path, name: str) -> dict:
    """The node as the cluster's state holds it now."""
    config = json.loads(Path(kubeconfig).read_text())
    state = config["clusters"][0]["cluster"]["extensions"][0]["extension"]["state"]
    return json.loads(Path(state).read_text())["nodes"][name]
