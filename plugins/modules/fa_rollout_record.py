#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_rollout_record
short_description: Record one host's rollout - on the host when it failed, on the controller, and the fast path
description:
  - Action plugin only (C(plugins/action/fa_rollout_record.py)), the last records of role C(fa_rollout) in one task.
  - A C(failed) or C(rolled_back) O(record) is appended to O(host_log) on the host (M(ansible.builtin.lineinfile),
    the only remote work). Any result but C(unchanged) is written to O(path) on the controller (temp file and
    rename, not a change) and sets the fast path's record, the fact C(ascend_fa_converged), from O(converged).
  - Nothing is written in check mode.
version_added: "0.9.0"
author: ascend-fa contributors (@ascend-fa)
options:
  record:
    description: The host's upgrade record (host, from, to, result, failure, started, finished, drain, ...).
    type: dict
    required: true
  path:
    description: The upgrade record's file on the controller (empty - not written).
    type: str
    default: ""
  host_log:
    description: The host's C(upgrades.jsonl) (empty - not written).
    type: str
    default: ""
  converged:
    description: C(key), C(fingerprint) and C(keep) of the fast path's record (empty - not recorded).
    type: dict
    default: {}
  facts:
    description:
      - The host's rollout outcome as variables (C(fa_rollout_result), C(fa_rollout_from)), returned as
        C(rollout_facts) for the run's records and summary.
    type: dict
    default: {}
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Record the rollout (host on failure, controller, fast path)
  ascend.fa.fa_rollout_record:
    record: "{{ __fa_record }}"
    host_log: /var/lib/ascend-fa/upgrades.jsonl
    path: "{{ fa_results_dir }}/upgrade/{{ inventory_hostname }}.json"
    converged:
      key: "{{ fa_converged_key }}"
      fingerprint: "{{ fa_verify_result.fingerprint }}"
      keep: true
"""

RETURN = r"""
rollout_facts:
  description: The C(facts) option as given (the host's rollout outcome for the run's records).
  type: dict
  returned: always
recorded:
  description: What was written - C(host), C(controller), C(converged).
  type: list
  elements: str
  returned: always
"""
