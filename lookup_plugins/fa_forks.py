# Copyright: ascend-fa contributors
# Apache-2.0
"""Lookup plugin ``fa_forks``: how many hosts this run works on at once (its forks)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fa_forks
author: ascend-fa contributors
short_description: The forks of this run (C(ansible-playbook -f), E(ANSIBLE_FORKS) or C(ansible.cfg))
description:
  - Returns one integer, the number of hosts this run works on at once, from the command line when given there,
    else from the configuration (E(ANSIBLE_FORKS), C(forks) in C(ansible.cfg), default 5).
  - Ansible has no variable for it. C(deploy_fa.yml) uses it as the default rolling batch, so that a batch never
    holds more hosts than there are forks.
notes:
  - No terms.
"""

EXAMPLES = r"""
- name: Install and verify
  hosts: all
  serial: "{{ fa_rolling_batch | default(query('fa_forks') | first) }}"
"""

RETURN = r"""
_raw:
  description: One element, the forks of this run.
  type: list
  elements: int
"""

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def effective_forks(cliargs, default) -> int:
    """The command line's forks when given there, else the configured default (both must be positive)."""
    value = (cliargs or {}).get("forks") or default
    try:
        forks = int(value)
    except (TypeError, ValueError) as exc:
        raise AnsibleLookupError(f"fa_forks: forks {value!r} is not a number") from exc
    if forks < 1:
        raise AnsibleLookupError(f"fa_forks: forks {forks} must be at least 1")
    return forks


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if terms:
            raise AnsibleLookupError("fa_forks takes no terms")
        return [effective_forks(context.CLIARGS, C.DEFAULT_FORKS)]
