#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ascend_facts
short_description: Gather facts about the Ascend NPU software stack of a host
description:
  - Reads the driver, firmware and CANN version files (both the pre-8.5 C(ascend-toolkit) layout and the
    8.5+ C(cann) layout), runs C(npu-smi) for the chips, their health and HBM, derives the SoC name and the
    ops-transformer C(--soc) family, and reports CPU, memory, disk, Python, torch and torch_npu versions and
    the FlashAttention package that ascend-fa installed, if any.
  - Missing files or a missing C(npu-smi) are reported in C(errors) with a reason, never as a failure.
version_added: "0.1.0"
options:
  ascend_home:
    description: Root of the Ascend installation.
    type: path
    default: /usr/local/Ascend
  npu_smi:
    description: The npu-smi command (name on PATH or absolute path).
    type: str
    default: npu-smi
  install_info:
    description: The driver/firmware installer's record.
    type: path
    default: /etc/ascend_install.info
  python:
    description: Python interpreter whose torch and torch_npu versions are reported (read from package metadata).
    type: str
    default: python3
  state_dir:
    description: Where ascend-fa keeps its install manifest and kept packages.
    type: path
    default: /var/lib/ascend-fa
  disk_paths:
    description: Paths whose free space is reported in C(disk_free_mb).
    type: list
    elements: path
    default: [/var/tmp]
  check_drift:
    description: Compare the installed package tree with the manifest (sha256 of every file).
    type: bool
    default: true
  env_checks:
    description:
      - The fresh-login-shell environment checks (the C(checks) list of C(plugins/plugin_utils/data/env_checks.yml)). Those of
        phase C(preflight) run in this same call (what C(fa_env_check phase=preflight) does, with O(ascend_home),
        O(state_dir) and the CANN C(set_env.sh) found here) when the package state is C(installed) and the manifest
        matches O(env_when); the result is returned as C(env). Empty - no check runs.
    type: list
    elements: dict
    default: []
  env_when:
    description:
      - >-
        Manifest keys and the values they must have for the checks to run, e.g. C({recipe: NAME, commit: SHA}) (a
        host with another package is going to be reinstalled anyway).
    type: dict
    default: {}
  env_python:
    description: The Python that runs torch_npu in the fresh shell (name on its PATH, or absolute).
    type: str
    default: python3
  env_libraries:
    description:
      - Libraries of the package, relative to its vendor folder; the first is the op_api library. C({arch}) is
        replaced with the host's architecture. Empty - C(op_api/lib/libcust_opapi.so).
    type: list
    elements: str
    default: []
  reuse_npu_facts:
    description:
      - The C(ansible_facts.ascend) of an earlier run on this host (the controller's fact cache). Its npu-smi facts
        (chips, counts, SoC, C(npu_probed_at)) are reused instead of running npu-smi when the host looks converged -
        package state C(installed), manifest matching O(env_when), the environment checks (when given) without a
        problem - and the driver version is the one of that run. C(npu_facts_from) says which it was.
      - A converged host is ended by the deploy without being touched, so its cards are not queried on every rerun;
        C(ascend-fa preflight), doctor and verify always query them (they do not pass this option).
      - Empty - npu-smi runs.
    type: dict
    default: {}
extends_documentation_fragment:
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
- name: Gather Ascend facts
  ascend.fa.ascend_facts:

- name: Use another npu-smi and interpreter
  ascend.fa.ascend_facts:
    npu_smi: /usr/local/sbin/npu-smi
    python: /opt/venv/bin/python

- name: Facts, and on hosts that have the wanted package, its environment in a fresh login shell
  ascend.fa.ascend_facts:
    env_checks: "{{ (lookup('ansible.builtin.file', 'plugins/plugin_utils/data/env_checks.yml') | from_yaml).checks }}"
    env_when: {recipe: ops-transformer-v9.0.1, commit: "{{ fa_recipe_data.commit }}"}
    env_host: "{{ inventory_hostname }}"
  register: facts_run   # facts_run.env.problems, facts_run.env.repair
"""

RETURN = r"""
ansible_facts:
  description: C(ascend) dict; see docs/contracts.md for every key.
  returned: always
  type: dict
  sample:
    ascend:
      driver_version: "25.5.0"
      cann_version: "8.5.0"
      cann_layout: cann
      soc_version: ascend910b3
      soc_family: ascend910b
      npu_count: 8
      fa_supported: true
      product_type: Atlas 800T A2      # npu-smi info -t product -i <first NPU>: Product Type; null when not offered
      product_series: training         # training | inference | null (cannot tell: compat warns product_unknown)
env:
  description:
    - >-
      The environment checks of phase C(preflight) - what C(fa_env_check) returns (C(ok), C(problems), C(lines),
      C(checks), C(repair), C(scripts), C(probe), C(host), C(shell)) plus C(ran=true); or C({ran: false,
      problems: [], repair: false}) when they did not run (no O(env_checks), package not C(installed), or the
      manifest does not match O(env_when)).
  returned: always
  type: dict
  sample: {ran: false, problems: [], repair: false}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ascend.fa.plugins.module_utils.ascend_facts_lib import (
    Facts,
    env_result,
    npu_facts_to_reuse,
)


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec=dict(
            ascend_home=dict(type="path", default="/usr/local/Ascend"),
            npu_smi=dict(type="str", default="npu-smi"),
            install_info=dict(type="path", default="/etc/ascend_install.info"),
            python=dict(type="str", default="python3"),
            state_dir=dict(type="path", default="/var/lib/ascend-fa"),
            disk_paths=dict(type="list", elements="path", default=["/var/tmp"]),
            check_drift=dict(type="bool", default=True),
            env_checks=dict(type="list", elements="dict", default=[]),
            env_when=dict(type="dict", default={}),
            env_python=dict(type="str", default="python3"),
            env_libraries=dict(type="list", elements="str", default=[]),
            env_host=dict(type="str"),
            reuse_npu_facts=dict(type="dict", default={}),
            env_timeout=dict(type="int", default=180),
        ),
        supports_check_mode=True,
    )


def main() -> None:
    module = build_module()
    os.environ["LANG"] = os.environ["LC_ALL"] = "C"
    # npu-smi lives in /usr/local/bin or /usr/local/sbin, which a non-login SSH PATH may lack.
    os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/local/bin:/usr/local/sbin"

    def run(argv):
        return module.run_command(argv, environ_update={"LANG": "C", "LC_ALL": "C"})

    collector = Facts(module.params, run)
    facts = collector.collect(npu=False)
    try:
        env = env_result(module.params, facts)
    except ValueError as exc:
        collector.probe_npu()
        module.fail_json(msg=f"ascend_facts: env_checks: {exc}", ansible_facts={"ascend": facts})
    previous = npu_facts_to_reuse(module.params, facts, env)
    if previous is not None:
        collector.reuse_npu(previous)
    else:
        collector.probe_npu()
    module.exit_json(changed=False, ansible_facts={"ascend": facts}, env=env)


if __name__ == "__main__":
    main()
