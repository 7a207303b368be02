#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_verify
short_description: Prove on every NPU card of a host that FlashAttention computes correct results
description:
  - Runs C(fa_check.py --quick) (shipped in O(kernels_dir) by the C(fa_verify) role) once per card, all cards
    concurrently, each in its own process pinned to one card with C(ASCEND_RT_VISIBLE_DEVICES=<id>) (the process
    then sees that card as device 0). Each process first sources the O(set_env) scripts (CANN's C(set_env.sh), the
    FlashAttention package's C(bin/set_env.bash)), then C(exec)s the interpreter.
  - C(fa_check.py) compares the device's FlashAttention (C(torch_npu.npu_fusion_attention)) with a float32
    reference on aligned and non-aligned sequence lengths, causal, BSND layout, fp16, bf16 and GQA cases, and prints
    one JSON object. This module parses it and reports, per card, pass/fail, the maximum absolute and relative
    errors, the median latency and the reason of a failure.
  - A card fails when its check reports a failed case, exits non-zero, prints no JSON, or runs longer than
    O(timeout) (its whole process group is killed). Any failed card fails the host; the per-card results are still
    returned.
  - Changes the host only when O(kernels) writes a kernel file that differs; O(results_file), when set, is a
    report written next to the run, and the O(record) of the outcome is ascend-fa's bookkeeping; neither is
    counted as a change.
  - With O(env_checks), the environment checks of phase C(verify) (C(ascend_fa/data/env_checks.yml), what
    C(fa_env_check phase=verify) does - one fresh login shell with an empty environment) run first, in this same
    call. Their failures are warnings (returned under C(env) and as the module's warnings); the kernel check
    decides pass or fail.
  - In check mode the kernel check is not run; the module returns the commands it would run. The environment checks,
    which change nothing, still run.
version_added: "0.1.0"
options:
  kernels_dir:
    description: Folder on the host holding C(fa_check.py) and its sibling modules.
    type: path
    required: true
  kernels:
    description:
      - File name -> content of the kernels to write into O(kernels_dir) before the check (files whose content is
        already there are left alone). Shipping them inside the module call saves a round trip per file.
      - Only writing a file that differs counts as a change.
    type: dict
    default: {}
  python:
    description: Interpreter (name on PATH or absolute path) with torch and, on NPU hosts, torch_npu.
    type: str
    default: python3
  set_env:
    description:
      - Environment scripts sourced, in order, before the interpreter starts, e.g. the CANN
        C(/usr/local/Ascend/cann/set_env.sh) and the package's C(<vendor_dir>/bin/set_env.bash).
      - A script that does not exist fails the module before anything runs.
    type: list
    elements: path
    default: []
  set_env_optional:
    description:
      - Environment scripts sourced after O(set_env) only when they exist on the host, e.g. the package's
        C(bin/set_env.bash), which the installer writes only for C(--install-path) installs.
    type: list
    elements: path
    default: []
  devices:
    description:
      - Logical device ids to check (the ids C(ASCEND_RT_VISIBLE_DEVICES) takes). Default all of
        C(0 .. npu_count-1). One of O(devices) and O(npu_count) is needed.
    type: list
    elements: int
  npu_count:
    description:
      - Number of logical devices on the host (C(ansible_facts.ascend.device_count); on Atlas A3 each NPU has
        two chips, each its own device). Used for the default O(devices) and to reject ids out of range.
    type: int
  timeout:
    description: Seconds each card's check may run; the process group is killed after that.
    type: int
    default: 300
  device_type:
    description: Passed to C(fa_check.py --device); C(auto) lets it pick npu if torch_npu is installed, else cuda, else cpu.
    type: str
    choices: [auto, npu, cuda, cpu]
    default: auto
  extra_args:
    description: Extra arguments appended to the C(fa_check.py) command line (e.g. C([--seed, "7"])).
    type: list
    elements: str
    default: []
  quick:
    description: Run the quick case set (C(--quick)); the full set takes much longer.
    type: bool
    default: true
  results_file:
    description: When set, the JSON result is also written to this path on the host (not in check mode).
    type: path
  env_checks:
    description:
      - The fresh-login-shell environment checks (the C(checks) list of C(ascend_fa/data/env_checks.yml)); those of
        phase C(verify) run before the kernel check. Empty - none run. The options below describe the host for them
        (the same as C(fa_env_check)'s); O(python) is the Python whose torch / torch_npu are checked.
    type: list
    elements: dict
    default: []
  env_host:
    description: Host name used in the messages of the environment checks (the inventory name).
    type: str
  state_dir:
    description:
      - ascend-fa's state folder (install manifest, C(set_env.bash)), for the environment checks and O(record).
    type: path
    default: /var/lib/ascend-fa
  record:
    description:
      - Keep the outcome in O(state_dir)C(/verify.json) when the host has an ascend-fa install manifest there (ok,
        the installed package's recipe and sha256, summary, failed cards, time). Written only when the outcome or
        the package differs from the record already there; never counted as a change. Preflight verifies a package
        whose last verification failed again instead of taking the host as converged.
    type: bool
    default: true
  ascend_home:
    description: Root of the Ascend installation (where CANN's C(set_env.sh) is looked for when O(cann_set_env) is empty).
    type: path
    default: /usr/local/Ascend
  cann_set_env:
    description: CANN's C(set_env.sh) for the environment checks (C(ansible_facts.ascend.cann_set_env)); empty - looked for.
    type: str
    default: ""
  nnal_set_env:
    description: NNAL's C(set_env.sh), sourced by the environment checks when it exists.
    type: path
    default: /usr/local/Ascend/nnal/atb/set_env.sh
  cann_version:
    description: The CANN version the torch_npu pair is checked against.
    type: str
    default: ""
  compat_torch_npu:
    description: The C(torch_npu) table of the compatibility data (CANN version -> extension, torch_npu versions).
    type: dict
    default: {}
  libraries:
    description: Libraries of the package, relative to its vendor folder; the first is the op_api library.
    type: list
    elements: str
    default: [op_api/lib/libcust_opapi.so]
  ignore:
    description: Problem codes the environment checks do not report.
    type: list
    elements: str
    default: []
  fingerprint_inputs:
    description:
      - >-
        The inputs of the host's fingerprint (C(ansible_facts.ascend.fingerprint.inputs), see
        C(module_utils/fa_fingerprint.py)). When given and every card passed, the result has C(fingerprint): the
        host as this run proved it (the rollout keeps it, so the next deploy can end the host after one cheap
        comparison). Empty - no fingerprint.
    type: dict
    default: {}
  env_timeout:
    description: Seconds the environment checks' fresh shell may take.
    type: int
    default: 180
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
author: ascend-fa contributors
"""

EXAMPLES = r"""
- name: Verify FlashAttention on all 8 cards
  fa_verify:
    kernels_dir: /var/lib/ascend-fa/kernels
    set_env:
      - /usr/local/Ascend/cann/set_env.sh
      - /usr/local/Ascend/cann/opp/vendors/ascendfa_transformer/bin/set_env.bash
    npu_count: "{{ ansible_facts.ascend.device_count }}"
    timeout: 300

- name: Re-check two cards only, with another seed
  fa_verify:
    kernels_dir: /var/lib/ascend-fa/kernels
    set_env: [/usr/local/Ascend/cann/set_env.sh]
    devices: [3, 5]
    extra_args: [--seed, "7"]
"""

RETURN = r"""
fingerprint:
  description: The host's fingerprint after every card passed (only with O(fingerprint_inputs)).
  returned: success with O(fingerprint_inputs)
  type: dict
ok:
  description: Every card passed. C(null) in check mode.
  returned: always
  type: bool
  sample: true
cards:
  description: One entry per card, in card order.
  returned: always (empty in check mode)
  type: list
  elements: dict
  sample:
    - card: 0
      ok: true
      max_abs_err: 0.00047
      max_rel_err: 0.011
      latency_ms: 0.42
      reason: null
      rc: 0
      duration_s: 3.1
      device: npu
      passed: 7
      failed: 0
      failed_cases: []
    - card: 5
      ok: false
      max_abs_err: null
      max_rel_err: null
      latency_ms: null
      reason: "timeout after 300s"
      rc: null
      duration_s: 300.0
      device: null
      passed: 0
      failed: 0
      failed_cases: []
      stderr_tail: "..."
      diagnosis: {class: unknown, known: false, kind: unknown, cause: "...", fix: "...", source: "", matched: ""}
failed_cards:
  description: Ids of the cards that failed.
  returned: always
  type: list
  elements: int
  sample: [5]
summary:
  description:
    - >-
      One line for humans. For failed cards whose error is a known one (C(ascend_fa/data/known_errors.yml)), its class
      and fix are appended (C(known error <class>: <fix>)); each failed card also carries its C(diagnosis).
  returned: always
  type: str
  sample: "1 of 8 cards failed FlashAttention (card 5): card 5: timeout after 300s"
commands:
  description: Per card, the command and the pinning variables (the only output in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - card: 0
      argv: [bash, -c, "source /usr/local/Ascend/cann/set_env.sh >&2 || ...; exec python3 .../fa_check.py --quick"]
      env: {ASCEND_RT_VISIBLE_DEVICES: "0"}
set_env:
  description: The scripts actually sourced (O(set_env) plus the O(set_env_optional) ones that exist).
  returned: when the checks ran
  type: list
  elements: str
checked_at:
  description: UTC time the checks finished.
  returned: when the checks ran
  type: str
  sample: "2026-11-29T05:00:00Z"
package:
  description: The installed package this verification is of (recipe and sha256 from the install manifest in
    O(state_dir)); null when the host has no ascend-fa manifest.
  returned: when the checks ran
  type: dict
  sample: {recipe: ops-transformer-v9.0.1, sha256: "3df6bd23..."}
ansible_facts:
  description: C(fa_verify) with C(ok), C(summary), C(failed_cards), C(cards) and C(checked_at).
  returned: always
  type: dict
env:
  description:
    - >-
      The environment checks of phase C(verify) - what C(fa_env_check) returns (C(ok), C(problems), C(lines),
      C(checks), C(repair), C(scripts), C(probe), C(host), C(shell)) plus C(ran=true); C({ran: false, problems: [],
      repair: false}) without O(env_checks). Each problem line is also a warning.
  returned: always (not when the arguments are invalid)
  type: dict
"""

import contextlib
import json
import os
import shlex
import signal
import statistics
import subprocess
import threading
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.fa_env_lib import DEFAULTS as ENV_DEFAULTS
from ansible.module_utils.fa_env_lib import check_environment, not_run
from ansible.module_utils.fa_fingerprint import fingerprint
from ansible.module_utils.fa_manifest import VERIFY_NAME, read_manifest, record_verification

try:
    from ansible.module_utils.fa_known_errors import diagnosis
except ImportError:  # run outside Ansible without the repo's module_utils: no classification, same results
    diagnosis = None

CHECK_SCRIPT = "fa_check.py"
TAIL_CHARS = 2000
KILL_GRACE_S = 3.0


# ------------------------------------------------------------------------------------------------ pure logic
def resolve_devices(devices: list[int] | None, npu_count: int | None) -> list[int]:
    """The card ids to check: ``devices`` if given (validated against ``npu_count``), else ``0..npu_count-1``."""
    if devices:
        ids = [int(d) for d in devices]
        bad = [d for d in ids if d < 0 or (npu_count is not None and d >= npu_count)]
        if bad:
            raise ValueError(f"device ids out of range 0..{(npu_count or 0) - 1}: {bad}")
        dup = sorted({d for d in ids if ids.count(d) > 1})
        if dup:
            raise ValueError(f"device ids listed twice: {dup}")
        return sorted(ids)
    if npu_count is None:
        raise ValueError("give devices or npu_count (no Ascend facts or no NPU device: run the ascend_preflight "
                         "role - module ascend_facts - first, or list the cards in fa_verify_devices)")
    if npu_count <= 0:
        raise ValueError(f"npu_count is {npu_count}: no card to verify")
    return list(range(npu_count))


def missing_scripts(set_env: list[str]) -> list[str]:
    return [p for p in set_env if not os.path.isfile(p)]


def build_check_args(kernels_dir: str, python: str, device_type: str, extra_args: list[str], card: int,
                     quick: bool = True) -> list[str]:
    """The fa_check.py argv (interpreter first)."""
    args = [python, os.path.join(kernels_dir, CHECK_SCRIPT)]
    if quick:
        args.append("--quick")
    if device_type and device_type != "auto":
        args += ["--device", device_type]
    args += ["--card", str(card)]
    return args + [str(a) for a in extra_args]


def build_command(kernels_dir: str, python: str, set_env: list[str], device_type: str, extra_args: list[str],
                  card: int, quick: bool = True) -> list[str]:
    """``bash -c '<source each set_env script>; exec python fa_check.py ...'`` for one card.

    The scripts' own stdout goes to stderr, so stdout carries only fa_check's JSON. A script that returns non-zero
    (some set_env files end on a failed test) is logged on stderr and the check still runs: a broken environment
    then shows up as fa_check's own error, which names what is missing.
    """
    lines = []
    for script in set_env:
        q = shlex.quote(str(script))
        lines.append(f'source {q} >&2 || echo "fa_verify: source {q} exited $?" >&2')
    check = build_check_args(kernels_dir, python, device_type, extra_args, card, quick)
    lines.append("exec " + " ".join(shlex.quote(a) for a in check))
    return ["bash", "-c", "\n".join(lines)]


def card_env(base: dict[str, str], card: int, device_type: str, threads: int | None = None) -> dict[str, str]:
    """Environment of one card's process: pinned to ``card``, which it sees as device 0.

    ``threads``: CPU threads per process (``OMP_NUM_THREADS``) unless the environment already sets it, so that
    eight concurrent checks share the host's CPUs instead of each taking all of them.
    """
    env = dict(base)
    if threads and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, int(threads)))
    env["ASCEND_RT_VISIBLE_DEVICES"] = str(card)
    if device_type in ("cuda", "auto"):
        env["CUDA_VISIBLE_DEVICES"] = str(card)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the shipped kernels folder as copied
    env["LC_ALL"] = "C"
    return env


def parse_check_output(stdout: str) -> dict | None:
    """fa_check's JSON object: the last stdout line that parses as a JSON object."""
    for line in reversed((stdout or "").splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _tail(text: str | None, n: int = TAIL_CHARS) -> str:
    text = (text or "").strip()
    return text if len(text) <= n else "..." + text[-n:]


def summarize_errors(errors: list[str], limit: int = 3) -> str:
    """fa_check's ``"<case>: <message>"`` errors, with the cases that share a message grouped together."""
    groups: dict[str, list[str]] = {}
    for err in errors:
        name, sep, msg = str(err).partition(": ")
        if not sep or " " in name:
            name, msg = "", str(err)
        groups.setdefault(msg, []).append(name)
    parts = []
    for msg, names in list(groups.items())[:limit]:
        names = [n for n in names if n]
        if len(names) > 3:
            names = names[:3] + [f"{len(names) - 3} more"]
        parts.append(f"{', '.join(names)}: {msg}" if names else msg)
    if len(groups) > limit:
        parts.append(f"and {len(groups) - limit} more")
    return "; ".join(parts)


def card_result(card: int, rc: int | None, stdout: str, stderr: str, timed_out: bool, timeout: float,
                duration: float) -> dict:
    """One card's entry from its process outcome."""
    report = parse_check_output(stdout)
    res = {
        "card": card,
        "ok": False,
        "max_abs_err": None,
        "max_rel_err": None,
        "latency_ms": None,
        "reason": None,
        "rc": rc,
        "duration_s": round(duration, 3),
        "device": None,
        "passed": 0,
        "failed": 0,
        "failed_cases": [],
    }
    if report is not None:
        res.update({
            "max_abs_err": report.get("max_abs_err"),
            "max_rel_err": report.get("max_rel_err"),
            "latency_ms": report.get("latency_ms"),
            "device": report.get("device"),
            "passed": int(report.get("passed") or 0),
            "failed": int(report.get("failed") or 0),
            "failed_cases": [c.get("name") for c in report.get("cases") or [] if not c.get("ok")],
        })
    if timed_out:
        res["reason"] = f"timeout after {timeout:g}s"
    elif report is None:
        res["reason"] = f"no JSON from {CHECK_SCRIPT} (exit code {rc})" + (
            f": {_tail(stderr, 300)}" if (stderr or "").strip() else "")
    elif not report.get("ok"):
        res["reason"] = summarize_errors(report.get("errors") or []) or f"{CHECK_SCRIPT} reported ok=false"
    elif rc != 0:
        res["reason"] = f"{CHECK_SCRIPT} reported ok but exited {rc}"
    else:
        res["ok"] = True
    if not res["ok"]:
        res["stderr_tail"] = _tail(stderr)
        if diagnosis is not None and not timed_out:
            # the class of the error (known-error signatures), its cause and fix; unknown: see stderr_tail
            res["diagnosis"] = diagnosis(f"{stderr or ''}\n{res['reason'] or ''}")
    return res


def known_diagnoses(failed: list[dict]) -> list[str]:
    """``<class>: <fix>`` once per known error class among the failed cards."""
    seen: dict[str, str] = {}
    for r in failed:
        diag = r.get("diagnosis") or {}
        if diag.get("known") and diag["class"] not in seen:
            seen[diag["class"]] = diag["fix"]
    return [f"known error {cls}: {fix}" for cls, fix in seen.items()]


def aggregate(results: list[dict]) -> dict:
    """Host verdict from the per-card entries."""
    results = sorted(results, key=lambda r: r["card"])
    failed = [r for r in results if not r["ok"]]
    errs = [r["max_abs_err"] for r in results if r.get("max_abs_err") is not None]
    rels = [r["max_rel_err"] for r in results if r.get("max_rel_err") is not None]
    lats = [r["latency_ms"] for r in results if r.get("latency_ms") is not None]
    ok = bool(results) and not failed
    if ok:
        summary = f"{len(results)}/{len(results)} cards passed FlashAttention"
        details = []
        if errs:
            details.append(f"max_abs_err {max(errs):.3g}")
        if lats:
            details.append(f"median latency {statistics.median(lats):.3g} ms")
        if details:
            summary += f" ({', '.join(details)})"
    elif not results:
        summary = "no card was checked"
    else:
        ids = ", ".join(str(r["card"]) for r in failed)
        summary = (f"{len(failed)} of {len(results)} cards failed FlashAttention (card {ids}): "
                   + "; ".join(f"card {r['card']}: {r['reason']}" for r in failed))
        diagnosed = known_diagnoses(failed)
        if diagnosed:
            summary += ". " + ". ".join(diagnosed)
    return {
        "ok": ok,
        "cards": results,
        "failed_cards": [r["card"] for r in failed],
        "passed": len(results) - len(failed),
        "failed": len(failed),
        "max_abs_err": max(errs) if errs else None,
        "max_rel_err": max(rels) if rels else None,
        "latency_ms": statistics.median(lats) if lats else None,
        "summary": summary,
    }


# ------------------------------------------------------------------------------------------------ processes
def _kill_group(proc: subprocess.Popen) -> None:
    """TERM the card's process group, then KILL whatever of the group is left after a grace period."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # also any child that outlived the leader


def run_card(card: int, argv: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run one card's check in its own session (process group); kill the group on timeout."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, text=True, errors="replace")
    except OSError as exc:
        return card_result(card, None, "", f"cannot start {argv[0]}: {exc}", False, timeout,
                           time.monotonic() - start)
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        try:
            stdout, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a grandchild holds the pipes open
            stdout, stderr = "", "process group did not exit after SIGKILL"
    return card_result(card, proc.returncode if not timed_out else None, stdout, stderr, timed_out, timeout,
                       time.monotonic() - start)


def run_all(jobs: list[tuple[int, list[str], dict[str, str]]], timeout: float) -> list[dict]:
    """Run every card's check concurrently (one thread waiting on one process per card)."""
    results: dict[int, dict] = {}

    def work(card, argv, env):
        try:
            results[card] = run_card(card, argv, env, timeout)
        except Exception as exc:  # noqa: BLE001 - one card's crash must not lose the others
            results[card] = card_result(card, None, "", f"fa_verify internal error: {exc}", False, timeout, 0.0)

    threads = [threading.Thread(target=work, args=job, daemon=True) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[card] for card, _argv, _env in jobs]


def ship_kernels(kernels_dir: str, kernels: dict[str, str], check_mode: bool = False) -> list[str]:
    """Write the kernel files whose content differs; return the names written (or that would be)."""
    written = []
    for name, content in sorted(kernels.items()):
        if os.path.basename(name) != name or not name.endswith(".py"):
            raise ValueError(f"kernel file name {name!r} must be a plain *.py name")
        path = os.path.join(kernels_dir, name)
        try:
            with open(path, encoding="utf-8") as fh:
                if fh.read() == content:
                    continue
        except OSError:
            pass
        written.append(name)
        if not check_mode:
            os.makedirs(kernels_dir, exist_ok=True)
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(content)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    return written


def write_results(path: str, data: dict) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def env_result(params: dict) -> dict:
    """The ``env`` result: the verify-phase environment checks (``ran: true``), or ``not_run()`` without checks.

    Raises ValueError on malformed checks."""
    if not params.get("env_checks"):
        return not_run()
    out = check_environment(params["env_checks"], "verify", {
        "host": params.get("env_host"),
        "state_dir": params.get("state_dir"),
        "ascend_home": params.get("ascend_home"),
        "cann_set_env": params.get("cann_set_env") or "",
        "nnal_set_env": params.get("nnal_set_env"),
        "python": params.get("python"),
        "cann_version": params.get("cann_version") or "",
        "compat_torch_npu": params.get("compat_torch_npu") or {},
        "libraries": params.get("libraries") or None,
        "ignore": params.get("ignore") or [],
        "timeout": params.get("env_timeout"),
    })
    out["ran"] = True
    return out


# ------------------------------------------------------------------------------------------------ module
def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "kernels_dir": {"type": "path", "required": True},
            "kernels": {"type": "dict", "default": {}},
            "python": {"type": "str", "default": "python3"},
            "set_env": {"type": "list", "elements": "path", "default": []},
            "set_env_optional": {"type": "list", "elements": "path", "default": []},
            "devices": {"type": "list", "elements": "int"},
            "npu_count": {"type": "int"},
            "timeout": {"type": "int", "default": 300},
            "device_type": {"type": "str", "choices": ["auto", "npu", "cuda", "cpu"], "default": "auto"},
            "extra_args": {"type": "list", "elements": "str", "default": []},
            "quick": {"type": "bool", "default": True},
            "results_file": {"type": "path"},
            "env_checks": {"type": "list", "elements": "dict", "default": []},
            "env_host": {"type": "str"},
            "state_dir": {"type": "path", "default": ENV_DEFAULTS["state_dir"]},
            "ascend_home": {"type": "path", "default": ENV_DEFAULTS["ascend_home"]},
            "cann_set_env": {"type": "str", "default": ""},
            "nnal_set_env": {"type": "path", "default": ENV_DEFAULTS["nnal_set_env"]},
            "cann_version": {"type": "str", "default": ""},
            "compat_torch_npu": {"type": "dict", "default": {}},
            "libraries": {"type": "list", "elements": "str", "default": list(ENV_DEFAULTS["libraries"])},
            "ignore": {"type": "list", "elements": "str", "default": []},
            "env_timeout": {"type": "int", "default": ENV_DEFAULTS["timeout"]},
            "fingerprint_inputs": {"type": "dict", "default": {}},
            "record": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )


def main() -> None:
    module = build_module()
    p = module.params
    set_env = [s for s in p["set_env"] if s]
    set_env += [s for s in p["set_env_optional"] if s and os.path.isfile(s) and s not in set_env]
    empty = {"ok": None, "cards": [], "failed_cards": [], "summary": "", "commands": []}
    try:
        cards = resolve_devices(p["devices"], p["npu_count"])
    except ValueError as exc:
        module.fail_json(msg=f"{p['env_host'] or 'fa_verify'}: {exc}", **empty)
    if p["timeout"] <= 0:
        module.fail_json(msg="fa_verify: timeout must be positive", **empty)

    # The package's environment in a fresh login shell first (read-only, also in check mode): warnings only.
    try:
        env = env_result(p)
    except ValueError as exc:
        module.fail_json(msg=f"fa_verify: env_checks: {exc}", **empty)
    for line in env.get("lines") or []:
        module.warn(line)
    empty["env"] = env

    try:
        shipped = ship_kernels(p["kernels_dir"], p["kernels"], module.check_mode)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"fa_verify: cannot write the kernels into {p['kernels_dir']}: {exc}", **empty)
    check_script = os.path.join(p["kernels_dir"], CHECK_SCRIPT)
    problems = [f"set_env script not found: {s}" for s in missing_scripts(set_env)]
    if not os.path.isfile(check_script) and CHECK_SCRIPT not in p["kernels"]:
        problems.append(f"{check_script} not found (ship kernels/ first)")

    commands = [{"card": c,
                 "argv": build_command(p["kernels_dir"], p["python"], set_env, p["device_type"], p["extra_args"], c,
                                       p["quick"]),
                 "env": {k: v for k, v in card_env({}, c, p["device_type"]).items()
                         if k.endswith("VISIBLE_DEVICES")}}
                for c in cards]

    if module.check_mode:
        # Nothing runs in check mode. Missing files are warnings here: earlier tasks of the same run (the kernels
        # copy, the package install) would have created them.
        for msg in problems:
            module.warn(msg)
        module.exit_json(changed=bool(shipped), ok=None, cards=[], failed_cards=[], commands=commands,
                         summary=f"check mode: would run {CHECK_SCRIPT} on cards {cards}",
                         ansible_facts={}, env=env)
    if problems:
        module.fail_json(msg="fa_verify: " + "; ".join(problems), **{**empty, "commands": commands})

    base = dict(os.environ)
    threads = max(1, (os.cpu_count() or 1) // len(cards))
    jobs = [(c["card"], c["argv"], card_env(base, c["card"], p["device_type"], threads)) for c in commands]
    agg = aggregate(run_all(jobs, float(p["timeout"])))
    checked_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    facts = {"fa_verify": {"ok": agg["ok"], "summary": agg["summary"], "failed_cards": agg["failed_cards"],
                           "cards": agg["cards"], "checked_at": checked_at}}
    installed = read_manifest(p["state_dir"]) or {}
    result = {**agg, "commands": commands, "set_env": set_env, "checked_at": checked_at, "ansible_facts": facts,
              "kernels_written": shipped, "env": env,
              # which package this verification is of (the report tells a stale result from a current one by it)
              "package": {"recipe": installed.get("recipe"), "sha256": installed.get("sha256")} if installed else None}

    if p["results_file"] and os.path.abspath(p["results_file"]) == os.path.join(os.path.abspath(p["state_dir"]),
                                                                                VERIFY_NAME):
        # the results used to be written over the record (same default path): the record lost its "verified" entry
        module.warn(f"results_file {p['results_file']} is the verification record of {p['state_dir']}: not written "
                    "there (set fa_verify_host_results_file to another path)")
    elif p["results_file"]:
        try:
            write_results(p["results_file"], {k: v for k, v in result.items() if k not in ("ansible_facts", "env")})
        except OSError as exc:
            module.warn(f"cannot write results_file {p['results_file']}: {exc}")

    if p["record"]:
        try:
            record_verification(p["state_dir"], bool(agg["ok"]), agg["summary"], agg["failed_cards"], checked_at)
        except OSError as exc:
            module.warn(f"cannot record the outcome in {p['state_dir']}: {exc}")
    if not agg["ok"]:
        module.fail_json(msg=agg["summary"], changed=bool(shipped), **result)
    if p["fingerprint_inputs"]:
        result["fingerprint"] = fingerprint(p["fingerprint_inputs"])
    module.exit_json(changed=bool(shipped), msg=agg["summary"], **result)


if __name__ == "__main__":
    main()
