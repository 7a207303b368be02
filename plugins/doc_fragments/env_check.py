# Copyright: ascend-fa contributors
# Apache-2.0
"""Documentation of the options shared by the modules that run the fresh-login-shell environment check
(``plugins/module_utils/fa_env_lib.py``): ``fa_env_check`` (alone), ``fa_verify`` (phase verify, before the kernel
check) and ``ascend_facts`` (phase preflight, in the facts round trip). Used as ``ascend.fa.env_check`` (the host the
checks look at) and ``ascend.fa.env_check.in_call`` (the checks run inside another module's call)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  state_dir:
    description: ascend-fa's state folder on the host (install manifest, C(set_env.bash)).
    type: path
    default: /var/lib/ascend-fa
  ascend_home:
    description: Root of the Ascend installation (where CANN's C(set_env.sh) is looked for when O(cann_set_env) is empty).
    type: path
    default: /usr/local/Ascend
  cann_set_env:
    description:
      - CANN's C(set_env.sh) (C(ansible_facts.ascend.cann_set_env)).
      - Empty - C(<ascend_home>/cann/set_env.sh), else C(<ascend_home>/ascend-toolkit/set_env.sh).
    type: str
    default: ""
  nnal_set_env:
    description: NNAL's C(set_env.sh), sourced when it exists.
    type: path
    default: /usr/local/Ascend/nnal/atb/set_env.sh
  cann_version:
    description: The CANN version (C(ansible_facts.ascend.cann_version)) the torch_npu pair is checked against.
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
    description: Problem codes not reported (e.g. C(torch_torch_npu_mismatch) on a host known to run another pair).
    type: list
    elements: str
    default: []
"""

    IN_CALL = r"""
options:
  env_host:
    description: Host name used in the messages of the environment checks (the inventory name).
    type: str
  env_timeout:
    description: Seconds the environment checks' fresh shell (all probes) may take.
    type: int
    default: 180
"""
