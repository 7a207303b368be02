#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_env_check
short_description: Check, in a fresh login shell, that a process on this host can use the FlashAttention package
description:
  - >-
    Starts ONE new login shell with an empty environment (what C(env -i bash -l) gives: nothing is inherited from
    Ansible), sources the CANN C(set_env.sh) (either layout), NNAL's C(set_env.sh) where present and ascend-fa's
    C(set_env.bash), and runs every probe in that shell: the environment variables, C(vendors/config.ini), the
    ld.so cache, C(dlopen) of C(libcust_opapi.so) (by path and by name), C(pip check) and the torch / torch_npu
    versions of the Python that runs torch_npu, and the commands of command checks.
  - >-
    The checks are data (O(checks), from C(plugins/plugin_utils/data/env_checks.yml)): each has an id, a probe or a command,
    what is expected and the fix. Every failing check is returned as a problem with the host, what was found and
    the fix; error texts go through the known-error classifier (C(plugins/module_utils/fa_known_errors.py)).
  - The check itself is C(plugins/module_utils/fa_env_lib.py), which C(ascend_facts) (phase preflight, its C(env_checks)
    option) and C(fa_verify) (phase verify, its C(env_checks) option) also run inside their own call.
  - Never changes the host (C(changed=false)).
version_added: "0.1.0"
options:
  checks:
    description: The checks (the C(checks) list of C(env_checks.yml)).
    type: list
    elements: dict
    required: true
  phase:
    description:
      - Run only the checks whose C(phases) list this phase.
      - C(build) checks a build host before C(build.sh) runs (CMake, the compilers, the Python requirements of the
        tag, read from the checkout I(src)); only CANN's C(set_env.sh) is sourced, as C(fa_build) does.
    type: str
    choices: [preflight, verify, doctor, build]
    default: doctor
  src:
    description: The checkout of the tag to build (phase C(build)) - its C(CMakeLists.txt) and C(requirements.txt).
    type: path
  build_python:
    description: The Python that C(build.sh) runs (phase C(build)), whose packages must meet C(requirements.txt).
    type: str
    default: python3
  host:
    description: Host name used in the messages (the inventory name).
    type: str
  python:
    description: The Python that runs torch_npu (name on the fresh shell's PATH, or absolute).
    type: str
    default: python3
  timeout:
    description: Seconds the fresh shell (all probes) may take.
    type: int
    default: 180
  fail_on_findings:
    description: Fail when a check of severity error fails (the message lists every problem with its fix).
    type: bool
    default: false
  warn:
    description: Also show each problem line as a warning (when the task does not fail on them).
    type: bool
    default: false
extends_documentation_fragment:
  - ascend.fa.env_check
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
author: ascend-fa contributors (@ascend-fa)
"""

EXAMPLES = r"""
- name: Check the environment like a field engineer
  ascend.fa.fa_env_check:
    checks: "{{ (lookup('ansible.builtin.file', 'plugins/plugin_utils/data/env_checks.yml') | from_yaml).checks }}"
    host: "{{ inventory_hostname }}"
    cann_set_env: "{{ ansible_facts.ascend.cann_set_env }}"
    cann_version: "{{ ansible_facts.ascend.cann_version }}"
  register: env
"""

RETURN = r"""
ok:
  description: No check of severity error failed (ignored codes excepted).
  returned: always
  type: bool
problems:
  description: The failing checks, shaped like the compatibility problems (code, severity, what, found, needed, fix).
  returned: always
  type: list
  elements: dict
  sample:
    - code: vendor_first
      severity: error
      what: "our vendor is first in load_priority of vendors/config.ini"
      found: "load_priority=customize,ascendfa_transformer (/usr/local/Ascend/cann/opp/vendors/config.ini)"
      needed: "load_priority=ascendfa_transformer,..."
      fix: "rerun ascend-fa deploy -i INV (reinstalling puts ascendfa_transformer first again) ..."
lines:
  description: One line per problem, C(<host> [severity] what (found ...; needed ...). Fix - ...).
  returned: always
  type: list
  elements: str
checks:
  description: Every check of the phase with its status (ok, fail, skip, ignored), found, fix and repair flag.
  returned: always
  type: list
  elements: dict
repair:
  description: A failing check is one that reinstalling the package repairs (C(repair) in the data).
  returned: always
  type: bool
scripts:
  description: The environment scripts and how sourcing each ended (exit code, missing, not present).
  returned: always
  type: list
  elements: dict
probe:
  description: Raw probe results from the fresh shell.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ascend.fa.plugins.module_utils.fa_env_lib import DEFAULTS, check_environment


# ------------------------------------------------------------------------------------------------ module
def main():
    module = AnsibleModule(
        argument_spec={
            "checks": {"type": "list", "elements": "dict", "required": True},
            "phase": {"type": "str", "choices": ["preflight", "verify", "doctor", "build"], "default": "doctor"},
            "src": {"type": "path"},
            "build_python": {"type": "str", "default": "python3"},
            "host": {"type": "str"},
            "state_dir": {"type": "path", "default": DEFAULTS["state_dir"]},
            "ascend_home": {"type": "path", "default": DEFAULTS["ascend_home"]},
            "cann_set_env": {"type": "str", "default": ""},
            "nnal_set_env": {"type": "path", "default": DEFAULTS["nnal_set_env"]},
            "python": {"type": "str", "default": "python3"},
            "cann_version": {"type": "str", "default": ""},
            "compat_torch_npu": {"type": "dict", "default": {}},
            "libraries": {"type": "list", "elements": "str", "default": list(DEFAULTS["libraries"])},
            "ignore": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "int", "default": DEFAULTS["timeout"]},
            "fail_on_findings": {"type": "bool", "default": False},
            "warn": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        out = check_environment(p["checks"], p["phase"], {k: p[k] for k in DEFAULTS})
    except ValueError as exc:
        module.fail_json(msg=f"fa_env_check: {exc}")
    out["changed"] = False
    if p["fail_on_findings"] and not out["ok"]:
        module.fail_json(msg="\n".join(out["lines"]), **out)
    if p["warn"]:
        for line in out["lines"]:
            module.warn(line)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
