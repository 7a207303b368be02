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
  - With O(env_checks), the environment checks of phase C(verify) (C(plugins/plugin_utils/data/env_checks.yml), what
    C(fa_env_check phase=verify) does - one fresh login shell with an empty environment) run first, in this same
    call. Their failures are warnings (returned under C(env) and as the module's warnings); the kernel check
    decides pass or fail.
  - On an NPU each card's process also finds out which library served C(aclnnFlashAttentionScore)
    (C(kernels/served_by.py), op-plugin's lookup order in C(op_plugin/utils/op_api_common.h) as the process saw it at
    C(import torch_npu), the owner check, ELF dynamic symbols, C(/proc/self/maps)); the card fails unless the
    O(expect_vendor_dir) package served it. See C(docs/verification.md).
  - Where CANN's C(libopapi.so) exports the operator (O(baseline)), the same cases run once more per card in a separate
    process on CANN's built-in kernel (a private OPP overlay without our vendor); each card reports our latency over
    CANN's and the largest difference between the outputs; O(max_slowdown) fails a card that is slower by more.
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
  controller_results:
    description:
      - Path on the controller where the action plugin (C(plugins/action/fa_verify.py)) writes the host's result
        (ok, summary, cards, failed cards, commands, package) right after the check, also when it failed; never seen
        by the module, never in check mode, never counted as a change.
    type: path
  env_checks:
    description:
      - The fresh-login-shell environment checks (the C(checks) list of C(plugins/plugin_utils/data/env_checks.yml)); those of
        phase C(verify) run before the kernel check. Empty - none run. The options below describe the host for them
        (the same as C(fa_env_check)'s); O(python) is the Python whose torch / torch_npu are checked.
    type: list
    elements: dict
    default: []
  record:
    description:
      - Keep the outcome in O(state_dir)C(/verify.json) when the host has an ascend-fa install manifest there (ok,
        the installed package's recipe and sha256, summary, failed cards, time). Written only when the outcome or
        the package differs from the record already there; never counted as a change. Preflight verifies a package
        whose last verification failed again instead of taking the host as converged.
    type: bool
    default: true
  fingerprint_inputs:
    description:
      - >-
        The inputs of the host's fingerprint (C(ansible_facts.ascend.fingerprint.inputs), see
        C(plugins/module_utils/fa_fingerprint.py)). When given and every card passed, the result has C(fingerprint): the
        host as this run proved it (the rollout keeps it, so the next deploy can end the host after one cheap
        comparison). Empty - no fingerprint.
    type: dict
    default: {}
  expect_vendor_dir:
    description:
      - The vendor folder whose C(op_api/lib/libcust_opapi.so) must serve C(aclnnFlashAttentionScore) on every card.
        Default the C(vendor_dir) of the install manifest in O(state_dir); neither - the library that served is
        reported, not judged.
    type: path
  baseline:
    description:
      - C(auto) - also run the cases on CANN's built-in operator where CANN's C(libopapi.so) exports it (CANN 8.5 and
        later); C(always) - on every card, a baseline that cannot run fails the card; C(never) - not at all.
    type: str
    choices: [auto, always, never]
    default: auto
  max_slowdown:
    description:
      - Largest accepted ratio of our latency over CANN's built-in kernel's (median of the case medians); C(0) reports
        the ratio only.
    type: float
    default: 0.0
  metrics_dir:
    description:
      - Folder of node_exporter's textfile collector (its C(--collector.textfile.directory)). After each verification,
        passed or failed, the outcome is written there as C(ascend_fa.prom) in Prometheus' text format (package info
        and drift, host and per-card pass, latency, serving library, baseline ratio, time; C(docs/prometheus.md)).
      - Written atomically (a temporary file in the same folder, fsync, mode 0644, rename); the folder is created with
        mode 0755 when missing. Not in check mode. Like O(results_file), never counted as a change; a folder that
        cannot be written is a warning.
      - Unset or empty - no metrics.
    type: path
  chips:
    description:
      - The host's chips as npu-smi lists them (C(ansible_facts.ascend.chips)), for the C(npu_id) and C(chip_id)
        labels of each card's metrics (matched by C(logic_id)).
    type: list
    elements: dict
    default: []
  cann_install_time:
    description:
      - When CANN was installed (C(ansible_facts.ascend.cann_install_time)), for the drift check of the package metrics
        (a CANN reinstalled after the package removes custom operators).
    type: str
    default: ""
  soc_family:
    description:
      - The host's SoC family (C(ansible_facts.ascend.soc_family)), for the drift check of the package metrics (the
        package must have kernels for it). Empty - the family recorded at install.
    type: str
    default: ""
extends_documentation_fragment:
  - ascend.fa.env_check
  - ascend.fa.env_check.in_call
  - ascend.fa.attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
  facts:
    support: full
author: ascend-fa contributors (@ascend-fa)
"""

EXAMPLES = r"""
- name: Verify FlashAttention on all 8 cards
  ascend.fa.fa_verify:
    kernels_dir: /var/lib/ascend-fa/kernels
    set_env:
      - /usr/local/Ascend/cann/set_env.sh
      - /usr/local/Ascend/cann/opp/vendors/ascendfa_transformer/bin/set_env.bash
    npu_count: "{{ ansible_facts.ascend.device_count }}"
    timeout: 300

- name: Re-check two cards only, with another seed
  ascend.fa.fa_verify:
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
      served_by: {library: /usr/local/Ascend/cann/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so,
                  vendor: ascendfa_transformer, source: vendor, ok: true, reason: "served by vendor ...", fix: "",
                  builtin: {library: /usr/local/Ascend/cann/lib64/libopapi.so, exports: true}, candidates: []}
      baseline: {ran: true, ok: true, latency_ms: 0.40, ratio: 1.05, max_diff: 0.00049,
                 served_by: /usr/local/Ascend/cann/lib64/libopapi.so, reason: null, max_slowdown: 0.0}
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
      One line for humans. For failed cards whose error is a known one (C(plugins/module_utils/fa_known_errors_data.py)),
      its class and fix are appended (C(known error <class>: <fix>)); each failed card also carries its C(diagnosis).
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
metrics_file:
  description: The Prometheus textfile written (O(metrics_dir)); null without O(metrics_dir) or when it could not be
    written (then a warning says why).
  returned: when the checks ran, or failed before they could
  type: str
  sample: /var/lib/node_exporter/textfile_collector/ascend_fa.prom
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

import os
import shutil
import tempfile
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ascend.fa.plugins.module_utils.fa_env_lib import DEFAULTS as ENV_DEFAULTS
from ansible_collections.ascend.fa.plugins.module_utils.fa_fingerprint import fingerprint
from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import VERIFY_NAME, read_manifest, record_verification
from ansible_collections.ascend.fa.plugins.module_utils.fa_verify_lib import (
    BASELINE_MODES,
    CHECK_SCRIPT,
    aggregate,
    build_command,
    card_env,
    check_flags,
    env_result,
    missing_scripts,
    resolve_devices,
    run_checks,
    ship_kernels,
    write_metrics,
    write_results,
)


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
            # handled by the action plugin (plugins/action/fa_verify.py), never sent here
            "controller_results": {"type": "path"},
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
            "expect_vendor_dir": {"type": "path"},
            "baseline": {"type": "str", "choices": list(BASELINE_MODES), "default": "auto"},
            "max_slowdown": {"type": "float", "default": 0.0},
            "metrics_dir": {"type": "path"},
            "chips": {"type": "list", "elements": "dict", "default": []},
            "cann_install_time": {"type": "str", "default": ""},
            "soc_family": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )


def metrics(module: AnsibleModule, ok: bool, cards: list, checked_at: str, installed: dict) -> str | None:
    """Write the Prometheus textfile (metrics_dir) and warn when it cannot be written; the path or None."""
    path, warning = write_metrics(module.params, ok, cards, checked_at, installed or None)
    if warning:
        module.warn(warning)
    return path


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
    if p["max_slowdown"] is None or p["max_slowdown"] < 0:
        module.fail_json(msg="fa_verify: max_slowdown must be 0 (report only) or a positive ratio", **empty)

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

    installed = read_manifest(p["state_dir"]) or {}
    # the library that must serve the call: the installed package's (its manifest), unless given
    expect_vendor_dir = p["expect_vendor_dir"] or installed.get("vendor_dir") or None

    def build(card, flags):
        return build_command(p["kernels_dir"], p["python"], set_env, p["device_type"], p["extra_args"], card,
                             p["quick"], flags)

    commands = [{"card": c,
                 "argv": build(c, check_flags(expect_vendor_dir, None)),
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
        # nothing could run: still a failed verification for the metrics (no card measured)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        metrics_file = metrics(module, False, [], now, installed)
        module.fail_json(msg="fa_verify: " + "; ".join(problems), metrics_file=metrics_file,
                         **{**empty, "commands": commands})

    base = dict(os.environ)
    threads = max(1, (os.cpu_count() or 1) // len(cards))
    outputs_dir = tempfile.mkdtemp(prefix="fa_verify_outputs_") if p["baseline"] != "never" else None
    try:
        results = run_checks(build, cards, lambda c: card_env(base, c, p["device_type"], threads),
                             float(p["timeout"]), expect_vendor_dir, p["baseline"], float(p["max_slowdown"] or 0),
                             outputs_dir)
    finally:
        if outputs_dir:
            shutil.rmtree(outputs_dir, ignore_errors=True)
    agg = aggregate(results)
    checked_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    facts = {"fa_verify": {"ok": agg["ok"], "summary": agg["summary"], "failed_cards": agg["failed_cards"],
                           "cards": agg["cards"], "checked_at": checked_at}}
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
    # after the record, before the verdict: a failed card is a metric too
    result["metrics_file"] = metrics(module, bool(agg["ok"]), agg["cards"], checked_at, installed)
    if not agg["ok"]:
        module.fail_json(msg=agg["summary"], changed=bool(shipped), **result)
    if p["fingerprint_inputs"]:
        result["fingerprint"] = fingerprint(p["fingerprint_inputs"])
    module.exit_json(changed=bool(shipped), msg=agg["summary"], **result)


if __name__ == "__main__":
    main()
