#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_drain
short_description: Drain or undrain a host in Slurm or Kubernetes around its rollout, lifting only our own drain
description:
  - >-
    O(action=drain) reads the node first (C(scontrol show node NAME -o), or C(kubectl get node NAME -o json)). A node
    already drained, failed, down or cordoned by someone else stays as it is (its state and reason are returned in
    C(kept_drained_reason)); a node drained by ascend-fa before (its reason starts with C(ascend-fa:), or it carries
    the annotation C(ascend-fa/drained-by)) is taken as ours and not changed again; else Slurm gets
    C(scontrol update nodename=NAME state=drain reason=REASON), Kubernetes the annotation then C(kubectl cordon NAME)
    (or C(kubectl drain NAME --ignore-daemonsets --delete-emptydir-data --timeout=T) with O(evict)).
  - >-
    O(action=undrain) lifts the drain only when it is still ours: C(scontrol update nodename=NAME state=resume), or
    C(kubectl uncordon NAME) and the annotation removed. A node drained again by someone else meanwhile stays drained.
  - Every command runs as an argument vector, never through a shell. Logic in C(plugins/module_utils/fa_drain_lib.py).
  - >-
    Slurm runs where C(scontrol) reaches slurmctld (the host itself by default, a login node with C(delegate_to));
    Kubernetes runs where C(kubectl) and its kubeconfig are (the controller by default, with C(delegate_to)).
version_added: "0.4.0"
author: ascend-fa contributors (@ascend-fa)
options:
  host:
    description: The inventory host this drain is for (named in messages).
    type: str
    required: true
  kind:
    description: The workload manager.
    type: str
    choices: [slurm, kubernetes]
    required: true
  action:
    description: Drain before the rollout, or lift our drain after it.
    type: str
    choices: [drain, undrain]
    required: true
  node:
    description:
      - The node's name in the workload manager. Empty with O(kind=slurm) - this machine's short host name
        (C(hostname -s), what slurm.conf's NodeName usually is). Required with O(kind=kubernetes).
    type: str
    default: ""
  reason:
    description: Our drain reason (Slurm Reason, Kubernetes annotation value); must start with C(ascend-fa:).
    type: str
    default: "ascend-fa: rollout"
  tool:
    description: The C(scontrol) or C(kubectl) program (a name on PATH or an absolute path). Default by O(kind).
    type: str
    default: ""
  kubeconfig:
    description: With O(kind=kubernetes), the kubeconfig file on the host that runs kubectl (empty - kubectl's own).
    type: str
    default: ""
  evict:
    description: With O(kind=kubernetes), C(kubectl drain) (evict pods) instead of C(kubectl cordon).
    type: bool
    default: false
  evict_timeout:
    description: With O(evict), C(kubectl drain --timeout) (e.g. C(300s), C(10m)).
    type: str
    default: "300s"
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Drain the Slurm node before the install
  ascend.fa.fa_drain:
    host: "{{ inventory_hostname }}"
    kind: slurm
    action: drain
    reason: "ascend-fa: ops-transformer-v9.0.1 rollout"
  register: drained

- name: Uncordon the Kubernetes node afterwards (from the controller)
  ascend.fa.fa_drain:
    host: "{{ inventory_hostname }}"
    kind: kubernetes
    action: undrain
    node: "{{ inventory_hostname_short }}"
    kubeconfig: /etc/ascend-fa/kubeconfig
  delegate_to: localhost
"""

RETURN = r"""
kind:
  description: The workload manager.
  type: str
  returned: always
node:
  description: The node's name in it.
  type: str
  returned: always
state_before:
  description: With O(action=drain), the node's state before (Slurm C(IDLE+DRAIN), Kubernetes C(cordoned) / C(schedulable)).
  type: str
  returned: with O(action=drain)
reason_before:
  description: With O(action=drain), the node's drain reason before (without Slurm's C([user@time])), or null.
  type: str
  returned: with O(action=drain)
drained_by_us:
  description: With O(action=drain), the node is drained by ascend-fa now (or would be, in check mode).
  type: bool
  returned: with O(action=drain)
kept_drained_reason:
  description: The drain of someone else that stays (reason or state), or null.
  type: str
  returned: always
undrained:
  description: With O(action=undrain), our drain was lifted (or would be).
  type: bool
  returned: always
state_after:
  description: With O(action=undrain), the node's state afterwards.
  type: str
  returned: with O(action=undrain)
commands:
  description: The commands that changed the node (argument vectors; none in check mode).
  type: list
  elements: list
  returned: always
"""

import socket

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ascend.fa.plugins.module_utils.fa_drain_lib import DrainError, drain, undrain


def main() -> None:
    module = AnsibleModule(argument_spec=dict(
        host=dict(type="str", required=True),
        kind=dict(type="str", required=True, choices=["slurm", "kubernetes"]),
        action=dict(type="str", required=True, choices=["drain", "undrain"]),
        node=dict(type="str", default=""),
        reason=dict(type="str", default="ascend-fa: rollout"),
        tool=dict(type="str", default=""),
        kubeconfig=dict(type="str", default=""),
        evict=dict(type="bool", default=False),
        evict_timeout=dict(type="str", default="300s"),
    ), supports_check_mode=True)
    p = module.params
    kind = p["kind"]
    node = p["node"] or (socket.gethostname().split(".")[0] if kind == "slurm" else "")
    tool_name = p["tool"] or ("scontrol" if kind == "slurm" else "kubectl")
    tool = module.get_bin_path(tool_name) if "/" not in tool_name else tool_name
    if not tool:
        module.fail_json(msg=f"{p['host']}: fa_rollout_drain={kind} needs {tool_name}, not found on "
                             f"{socket.gethostname()} (PATH and sbin folders). Fix: install it there, set the full path "
                             f"(fa_rollout_{'scontrol' if kind == 'slurm' else 'kubectl'}), or run it on another host "
                             f"(fa_rollout_{'slurm_host' if kind == 'slurm' else 'kubectl_host'})")

    def run(argv: list) -> tuple:
        rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C"})
        return rc, out, err

    try:
        if p["action"] == "drain":
            result = drain(run, kind, node, p["reason"], tool=tool, kubeconfig=p["kubeconfig"], check=module.check_mode,
                           evict=p["evict"], timeout=p["evict_timeout"])
        else:
            result = {"kind": kind, "node": node,
                      **undrain(run, kind, node, tool=tool, kubeconfig=p["kubeconfig"], check=module.check_mode)}
    except DrainError as exc:
        module.fail_json(msg=f"{p['host']}: {exc}", kind=kind, node=node)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
