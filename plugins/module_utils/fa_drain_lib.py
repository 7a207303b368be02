"""Built-in drains around a host's rollout: Slurm (scontrol) and Kubernetes (kubectl).

Standard library only (shipped with the module ``fa_drain``). Pure parsers and the drain / undrain decisions; the
commands run through a ``run(argv) -> (rc, stdout, stderr)`` callable (the module passes AnsibleModule.run_command,
the unit tests a fake), always as argv, never through a shell.

Whose drain is it: ascend-fa lifts only a drain it set itself. Slurm: the node's Reason starts with ``ascend-fa:``
(set by our ``scontrol update ... state=drain reason="ascend-fa: <recipe> rollout"``). Kubernetes: the node carries
the annotation ``ascend-fa/drained-by`` (set before our cordon). A node drained, down or cordoned by someone else
before the run stays so: its state and reason are returned (``kept_drained_reason``) and never lifted.

Sources of the formats and messages (SchedMD/slurm at 284c3b95, kubernetes.io kubectl reference):
- ``scontrol show node NAME -o``: ``src/api/node_info.c`` ``slurm_sprint_node_table``: ``Key=value`` fields, one
  line with ``-o`` (" " where the multi-line form has "\\n   "); ``State=<BASE>[+FLAG...]``
  (``node_state_string_complete``: base then ``+DRAIN``, ``+FAIL``, ``+NOT_RESPONDING``...); the reason last but a few
  optional fields, as ``Reason=<text> [<user>@<time>]``. A name slurmctld does not know: ``Node NAME not found``
  on stdout, exit 1 (``src/scontrol/info_node.c``).
- ``scontrol update nodename=N state=drain reason=R`` needs a reason (``You must specify a reason when DOWNING or
  DRAINING a node. Request denied``); ``state=resume`` takes DRAIN/FAIL off (``src/slurmctld/node_mgr.c``
  ``_valid_node_state_change``: RESUME of a node neither DOWN nor DRAIN/FAIL is ``Invalid node state transition``);
  errors print ``slurm_update error: <text>`` (``src/scontrol/scontrol.c``), e.g. ``Invalid node name specified``,
  ``Access/permission denied`` (``src/common/slurm_errno.c``).
- ``kubectl get node N -o json``: a v1 Node; cordoned = ``spec.unschedulable: true``. ``kubectl cordon|uncordon N``,
  ``kubectl drain N --ignore-daemonsets --delete-emptydir-data --timeout=<d>`` (kubectl reference, "kubectl drain":
  drain cordons first, then evicts; without --ignore-daemonsets it stops at DaemonSet pods).
  ``kubectl annotate node N KEY=VALUE --overwrite`` / ``KEY-``. A missing node:
  ``Error from server (NotFound): nodes "N" not found``, exit 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

OURS = "ascend-fa:"
ANNOTATION = "ascend-fa/drained-by"
KINDS = ("slurm", "kubernetes")

Runner = Callable[[list], tuple]

# Slurm node names: letters, digits, '.', '_', '-' (slurm.conf NodeName; hostlist syntax characters are not taken).
SLURM_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Kubernetes node names: a DNS subdomain (RFC 1123), lowercase, at most 253 characters.
K8S_NODE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ABS_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")
DURATION = re.compile(r"[0-9]+[smh]")

# A field is KEY=value after whitespace; a value runs to the next field, so values with '=' inside (CfgTRES=cpu=48,...)
# stay whole. The reason is free text (it may hold "slot=3"): it runs to the next of the fields that
# slurm_sprint_node_table prints after it (src/api/node_info.c), or to the end.
_KEY_AT = re.compile(r"(?:^|(?<=\s))([A-Za-z][A-Za-z_]*)=")
_AFTER_REASON = re.compile(r"\s(?:Comment|Extra|InstanceId|InstanceType|ReservationName|TLSCertTokenSet|"
                           r"TLSCertLastRenewal|Topology|Parameters)=")
_REASON_BY = re.compile(r"^(.*?)\s*\[([^\]@]+)@([^\]]+)\]$", re.S)
# State flags that keep jobs off the node; base states where it takes none (older releases print DRAINED/DRAINING)
_HELD_FLAGS = {"DRAIN", "FAIL"}
_HELD_BASES = {"DOWN", "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING"}


class DrainError(Exception):
    """A drain or undrain that cannot go on: the message names the node, what was found and the fix."""


def reason_for(recipe: str) -> str:
    """Our drain reason (Slurm Reason / Kubernetes annotation value)."""
    return f"{OURS} {recipe} rollout"


def is_ours(reason: str | None) -> bool:
    return bool(reason) and str(reason).startswith(OURS)


# --- Slurm ---------------------------------------------------------------------------------------------------------

def parse_scontrol_fields(text: str) -> dict[str, str]:
    """The first node record of ``scontrol show node`` (one-line ``-o`` or the multi-line form) as key -> value."""
    records = [r for r in re.split(r"\n\s*\n", text.strip()) if r.strip()]
    if not records:
        return {}
    record = records[0]
    lines = record.splitlines()
    # multi-line form: a Reason of several lines continues on lines indented past the field column; keep its first
    flat = " ".join(line.strip() for line in lines)
    fields: dict[str, str] = {}
    reason = re.search(r"(?:^|\s)Reason=", flat)
    if reason:
        rest = flat[reason.end():]
        after = _AFTER_REASON.search(rest)
        fields["Reason"] = (rest[:after.start()] if after else rest).strip()
        flat = flat[:reason.start()] + (" " + rest[after.start():] if after else "")
    marks = list(_KEY_AT.finditer(flat))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(flat)
        fields.setdefault(m.group(1), flat[m.end():end].strip())
    return fields


def parse_slurm_state(state: str) -> tuple[str, list[str]]:
    """``IDLE+DRAIN`` -> ("IDLE", ["DRAIN"]); older ``DOWN*`` -> ("DOWN", ["NOT_RESPONDING"])."""
    parts = [p for p in state.strip().upper().split("+") if p]
    if not parts:
        return "UNKNOWN", []
    base = parts[0]
    flags = parts[1:]
    suffixes = {"*": "NOT_RESPONDING", "~": "POWERED_DOWN", "#": "POWERING_UP", "%": "POWERING_DOWN", "$": "MAINT",
                "@": "REBOOT_REQUESTED", "!": "POWER_DOWN", "^": "REBOOT_ISSUED", "-": "PLANNED"}
    while base and base[-1] in suffixes:
        flags.append(suffixes[base[-1]])
        base = base[:-1]
    return base, flags


def parse_slurm_node(text: str) -> dict[str, Any] | None:
    """Name, state, base, flags, reason (without its ``[user@time]``), by, at, held; None without a NodeName."""
    f = parse_scontrol_fields(text)
    if "NodeName" not in f:
        return None
    base, flags = parse_slurm_state(f.get("State", ""))
    reason, by, at = f.get("Reason") or None, None, None
    if reason:
        m = _REASON_BY.match(reason)
        if m:
            reason, by, at = m.group(1), m.group(2), m.group(3)
    return {"name": f["NodeName"], "state": f.get("State", ""), "base": base, "flags": flags, "reason": reason,
            "by": by, "at": at, "held": base in _HELD_BASES or bool(_HELD_FLAGS & set(flags))}


def _out(rc: int, out: str, err: str) -> str:
    return " ".join((err.strip() or out.strip() or f"exit {rc}").split())[:400]


def slurm_show(run: Runner, scontrol: str, node: str) -> dict[str, Any]:
    argv = [scontrol, "show", "node", node, "-o"]
    rc, out, err = run(argv)
    if rc != 0 or not out.strip():
        text = _out(rc, out, err)
        fix = ("set fa_rollout_slurm_node to this host's NodeName in slurm.conf (`sinfo -N` lists them)"
               if "not found" in text else "check that scontrol reaches slurmctld from this host (`scontrol ping`)")
        raise DrainError(f"Slurm node {node!r}: `{' '.join(argv)}` failed: {text}. Fix: {fix}")
    parsed = parse_slurm_node(out)
    if parsed is None or parsed["name"] != node:
        raise DrainError(f"Slurm node {node!r}: `{' '.join(argv)}` printed no record of it: {_out(rc, out, err)}")
    return parsed


def slurm_update(run: Runner, scontrol: str, node: str, state: str, reason: str | None = None) -> list[str]:
    argv = [scontrol, "update", f"nodename={node}", f"state={state}"]
    if reason is not None:
        argv.append(f"reason={reason}")
    rc, out, err = run(argv)
    if rc != 0:
        text = _out(rc, out, err)
        fix = ("run as root or SlurmUser (become: true, -b)" if "denied" in text.lower()
               else f"look at the node with `scontrol show node {node}`")
        raise DrainError(f"Slurm node {node!r}: `{' '.join(argv)}` failed: {text}. Fix: {fix}")
    return argv


# --- Kubernetes ----------------------------------------------------------------------------------------------------

def parse_k8s_node(text: str) -> dict[str, Any]:
    """``kubectl get node N -o json`` -> name, cordoned (spec.unschedulable), our annotation, its taints' keys."""
    obj = json.loads(text)
    if not isinstance(obj, dict) or obj.get("kind") != "Node":
        raise ValueError("not a Node object")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    annotations = meta.get("annotations") or {}
    return {"name": meta.get("name"), "cordoned": spec.get("unschedulable") is True,
            "ours": annotations.get(ANNOTATION), "taints": [t.get("key") for t in spec.get("taints") or []]}


def kubectl_argv(kubectl: str, kubeconfig: str) -> list[str]:
    return [kubectl, f"--kubeconfig={kubeconfig}"] if kubeconfig else [kubectl]


def k8s_get(run: Runner, base: list[str], node: str) -> dict[str, Any]:
    argv = [*base, "get", "node", node, "-o", "json"]
    rc, out, err = run(argv)
    if rc != 0:
        text = _out(rc, out, err)
        fix = ("set fa_rollout_k8s_node to this host's node name (`kubectl get nodes`)" if "NotFound" in text
               else "check fa_rollout_kubeconfig and that kubectl reaches the API server from fa_rollout_kubectl_host")
        raise DrainError(f"Kubernetes node {node!r}: `{' '.join(argv)}` failed: {text}. Fix: {fix}")
    try:
        return parse_k8s_node(out)
    except ValueError as exc:
        raise DrainError(f"Kubernetes node {node!r}: `{' '.join(argv)}` gave no Node object ({exc})") from None


def k8s_run(run: Runner, argv: list[str], node: str) -> list[str]:
    rc, out, err = run(argv)
    if rc != 0:
        raise DrainError(f"Kubernetes node {node!r}: `{' '.join(argv)}` failed: {_out(rc, out, err)}. Fix: run it by "
                         f"hand from fa_rollout_kubectl_host; with fa_rollout_k8s_evict, a pod that cannot be evicted "
                         f"(PodDisruptionBudget, no controller) stops the drain")
    return argv


# --- the two actions -----------------------------------------------------------------------------------------------

def check_inputs(kind: str, node: str, reason: str, kubeconfig: str = "", timeout: str = "") -> None:
    """Node names, reason, kubeconfig and timeout as the tools take them; raise DrainError naming value and fix."""
    if kind not in KINDS:
        raise DrainError(f"drain kind {kind!r} is not one of {', '.join(KINDS)}. Fix: set fa_rollout_drain")
    pattern, var = (SLURM_NODE, "fa_rollout_slurm_node") if kind == "slurm" else (K8S_NODE, "fa_rollout_k8s_node")
    if not isinstance(node, str) or len(node) > 253 or not pattern.fullmatch(node):
        raise DrainError(f"{kind} node name {node!r} is not valid (needed: "
                         + ("letters, digits, '.', '_', '-', not starting with '-'" if kind == "slurm"
                            else "a lowercase DNS name: letters, digits, '-', '.'")
                         + f"). Fix: set {var}")
    if not isinstance(reason, str) or not reason.strip() or CONTROL.search(reason) or len(reason) > 256:
        raise DrainError(f"drain reason {reason!r} is not valid (needed: one line of text, at most 256 characters)")
    if kubeconfig and (not ABS_PATH.fullmatch(kubeconfig) or ".." in kubeconfig.split("/")):
        raise DrainError(f"kubeconfig {kubeconfig!r} is not valid (needed: an absolute path without '..'). "
                         f"Fix: set fa_rollout_kubeconfig")
    if timeout and not DURATION.fullmatch(timeout):
        raise DrainError(f"drain timeout {timeout!r} is not valid (needed: e.g. 300s, 10m). "
                         f"Fix: set fa_rollout_k8s_evict_timeout")


def _record(kind: str, node: str, state: str, reason: str | None, by_us: bool, kept: str | None) -> dict[str, Any]:
    return {"kind": kind, "node": node, "state_before": state, "reason_before": reason, "drained_by_us": by_us,
            "undrained": False, "kept_drained_reason": kept}


def drain(run: Runner, kind: str, node: str, reason: str, *, tool: str, kubeconfig: str = "", check: bool = False,
          evict: bool = False, timeout: str = "300s") -> dict[str, Any]:
    """Drain ``node`` unless someone else holds it; returns the fa_drain record plus changed and commands."""
    check_inputs(kind, node, reason, kubeconfig, timeout if evict else "")
    commands: list[list[str]] = []
    if kind == "slurm":
        now = slurm_show(run, tool, node)
        state, before = now["state"], now["reason"]
        if now["held"]:
            ours = is_ours(before)
            return {**_record(kind, node, state, before, ours, None if ours else (before or state)),
                    "changed": False, "commands": commands}
        if not check:
            commands.append(slurm_update(run, tool, node, "drain", reason))
        return {**_record(kind, node, state, before, True, None), "changed": True, "commands": commands}
    base = kubectl_argv(tool, kubeconfig)
    now = k8s_get(run, base, node)
    state = "cordoned" if now["cordoned"] else "schedulable"
    if now["cordoned"]:
        ours = now["ours"] is not None
        before = now["ours"] if ours else None
        return {**_record(kind, node, state, before, ours, None if ours else "cordoned (spec.unschedulable)"),
                "changed": False, "commands": commands}
    if not check:
        # the annotation first: a cordon without it would look like someone else's and never be lifted
        commands.append(k8s_run(run, [*base, "annotate", "node", node, f"{ANNOTATION}={reason}", "--overwrite"], node))
        if evict:
            commands.append(k8s_run(run, [*base, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                                          f"--timeout={timeout}"], node))
        else:
            commands.append(k8s_run(run, [*base, "cordon", node], node))
    return {**_record(kind, node, state, None, True, None), "changed": True, "commands": commands}


def undrain(run: Runner, kind: str, node: str, *, tool: str, kubeconfig: str = "", check: bool = False
            ) -> dict[str, Any]:
    """Lift our own drain (and only ours): changed, undrained, state_after, kept_drained_reason, commands."""
    check_inputs(kind, node, OURS, kubeconfig)
    commands: list[list[str]] = []
    if kind == "slurm":
        now = slurm_show(run, tool, node)
        if not now["held"]:
            return {"changed": False, "undrained": False, "state_after": now["state"], "kept_drained_reason": None,
                    "commands": commands}
        if not is_ours(now["reason"]):   # drained again by someone else during the run: theirs now
            return {"changed": False, "undrained": False, "state_after": now["state"],
                    "kept_drained_reason": now["reason"] or now["state"], "commands": commands}
        if not check:
            commands.append(slurm_update(run, tool, node, "resume"))
        return {"changed": True, "undrained": True, "state_after": "IDLE" if check else slurm_show(run, tool, node)["state"],
                "kept_drained_reason": None, "commands": commands}
    base = kubectl_argv(tool, kubeconfig)
    now = k8s_get(run, base, node)
    if now["ours"] is None:
        kept = "cordoned (spec.unschedulable)" if now["cordoned"] else None
        return {"changed": False, "undrained": False, "state_after": "cordoned" if now["cordoned"] else "schedulable",
                "kept_drained_reason": kept, "commands": commands}
    if not check:
        if now["cordoned"]:
            commands.append(k8s_run(run, [*base, "uncordon", node], node))
        commands.append(k8s_run(run, [*base, "annotate", "node", node, f"{ANNOTATION}-"], node))
    return {"changed": True, "undrained": now["cordoned"], "state_after": "schedulable", "kept_drained_reason": None,
            "commands": commands}
