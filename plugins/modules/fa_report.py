#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_report
short_description: Write a report file (verify results, upgrade records) on the controller
description:
  - Action plugin only (C(plugins/action/fa_report.py)); nothing runs on the managed host and no module is sent.
  - Creates the parent folders, writes the file through a temp file and a rename, and always reports
    C(changed=false); a report of the run on the controller is not a change to the managed host, so a converged
    host still reports C(changed=0).
  - In check mode nothing is written.
version_added: "0.2.0"
author: ascend-fa contributors (@ascend-fa)
options:
  path:
    description: Path of the file on the controller.
    type: path
    required: true
  content:
    description: A dict or list (written as indented JSON) or text.
    type: raw
    required: true
  mode:
    description: File mode, octal.
    type: raw
    default: "0644"
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Write this host's verify result on the controller
  ascend.fa.fa_report:
    path: "{{ fa_results_dir }}/verify/{{ inventory_hostname }}.json"
    content: "{{ fa_verify_result.cards }}"
"""

RETURN = r"""
path:
  description: The file written.
  type: str
  returned: always
written:
  description: Whether the file's content was (re)written; false when it already had this content.
  type: bool
  returned: when not in check mode
"""
