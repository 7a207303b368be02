#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_gate
short_description: Report a host's preflight verdict and stop the host when a problem blocks it
description:
  - Action plugin only (C(plugins/action/fa_gate.py)); nothing runs on the managed host.
  - Each line of O(warnings) is shown as an Ansible warning; when O(blocking) is not empty the host fails with those
    lines as the message (one per problem - host, what, found, needed, fix); otherwise C(msg) is O(summary).
  - Never reports a change.
version_added: "0.2.0"
author: ascend-fa contributors (@ascend-fa)
options:
  warnings:
    description: Problem lines that do not stop the host.
    type: list
    elements: str
    default: []
  blocking:
    description: Problem lines that stop the host.
    type: list
    elements: str
    default: []
  summary:
    description: What the run does with this host (shown with C(-v)).
    type: str
    default: ""
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Stop this host when its stack cannot run FlashAttention
  ascend.fa.fa_gate:
    warnings: "{{ fa_warnings | ascend.fa.fa_problem_lines(inventory_hostname) }}"
    blocking: "{{ fa_blocking | ascend.fa.fa_problem_lines(inventory_hostname) }}"
    summary: "{{ inventory_hostname }}: already converged"
"""

RETURN = r"""
blocking:
  description: The blocking problem lines.
  type: list
  elements: str
  returned: always
problem_warnings:
  description: The warning lines (also shown as Ansible warnings).
  type: list
  elements: str
  returned: always
"""
