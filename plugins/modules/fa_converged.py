#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_converged
short_description: The rerun fast path - record a converged host, and tell cheaply whether it is still so
description:
  - >-
    With O(state=record) (controller only, nothing runs on the host) keeps the host's fingerprint under O(key) as its
    fact C(ascend_fa_converged) in the controller's fact cache, or clears it (O(keep=false)): the fast path's one
    record, written after a full check that found the host converged and clean (role fa_preflight) and after a
    rollout whose every card passed (role fa_rollout).
  - With O(state=check) (the default) compares the host with that record.
  - >-
    Recomputes the host's fingerprint (C(plugins/module_utils/fa_fingerprint.py): type, mode, size, inode, mtime and ctime
    of the driver and CANN version files, the toolkit links, the operator folders, ascend-fa's manifest, set_env.bash,
    kept package and installed tree, the login-shell and dynamic-loader files, the Python interpreter and the folders
    holding torch / torch_npu) from the same inputs as the recorded one and compares group by group.
  - No file content is read but the install manifest, no process is started; a few hundred C(lstat) calls.
  - >-
    The recorded fingerprint comes from the controller's fact cache (C(ansible_facts.ascend_fa_converged), kept by
    the preflight gate when a full check found the host converged and clean, and by the rollout after every card
    passed). The fa_preflight role ends the host when this module says C(converged); otherwise the full check
    (C(ascend_facts), fresh-shell environment checks, compatibility data) runs as before.
  - >-
    Runs through its action plugin (C(plugins/action/fa_converged.py)): C(fa_fingerprint.py) and the record go to the
    host's Python as one command (C(python3 -c PROGRAM)), without the AnsiballZ wrapper (about 0.04 CPU s on the host instead of
    0.4). Anything unexpected gives C(converged=false) and the full check.
  - Never changes the host (C(changed=false)).
version_added: "0.3.0"
author: ascend-fa contributors (@ascend-fa)
options:
  state:
    description: C(check) compares the host with the record; C(record) writes the record.
    type: str
    choices: [check, record]
    default: check
  fingerprint:
    description:
      - The fingerprint (C(inputs), C(digest), C(groups)) as C(fa_fingerprint) returned it - the recorded one for
        C(check), the host's current one for C(record) (C(ascend_facts) or C(fa_verify) computed it).
    type: dict
    required: true
  key:
    description: With O(state=record), the key of what is wanted (recipe, data files, preflight settings).
    type: str
    default: ""
  by:
    description: With O(state=record), who records (C(preflight) or C(rollout)), kept in the record.
    type: str
    default: ""
  keep:
    description: With O(state=record), keep the record (true) or clear it (false; so is an empty O(fingerprint)).
    type: bool
    default: true
  python:
    description:
      - The host's Python for the comparison (the action plugin's command). Default C(ansible_python_interpreter),
        else the discovered interpreter, else C(python3).
    type: str
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Check whether this host is unchanged since its last clean run
  ascend.fa.fa_converged:
    fingerprint: "{{ ansible_facts.ascend_fa_converged.fingerprint }}"
  register: quick

- name: Record this host as converged and clean
  ascend.fa.fa_converged:
    state: record
    key: "{{ fa_converged_key }}"
    fingerprint: "{{ ansible_facts.ascend.fingerprint }}"
    by: preflight
"""

RETURN = r"""
converged:
  description: Every group's digest equals the recorded one.
  type: bool
  returned: with O(state=check)
recorded:
  description: The record was kept (false - cleared).
  type: bool
  returned: with O(state=record)
changed_groups:
  description: The groups that differ (driver, cann, package, environment, python).
  type: list
  elements: str
  returned: with O(state=check)
digest:
  description: The host's fingerprint digest now.
  type: str
  returned: with O(state=check)
entries:
  description: How many watched entries (files, folders) were looked at.
  type: int
  returned: with O(state=check)
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ascend.fa.plugins.module_utils.fa_fingerprint import converged


def check(recorded: dict) -> dict:
    """The module's result for a recorded fingerprint (pure function of the host's files)."""
    return {"changed": False, **converged(recorded)}


def main() -> None:
    module = AnsibleModule(argument_spec=dict(
        state=dict(type="str", choices=["check", "record"], default="check"),
        fingerprint=dict(type="dict", required=True), python=dict(type="str"),
        key=dict(type="str", default="", no_log=False), by=dict(type="str", default=""),
        keep=dict(type="bool", default=True)), supports_check_mode=True)
    if module.params["state"] == "record":   # the action plugin does it on the controller; never here
        module.fail_json(msg="fa_converged: state=record runs in the action plugin (plugins/action/fa_converged.py)")
    module.exit_json(**check(module.params["fingerprint"]))


if __name__ == "__main__":
    main()
