#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_preflight
short_description: A host's whole preflight in one task - lock, rerun fast path, settings, Ascend facts, verdict
description:
  - Action plugin only (C(plugins/action/fa_preflight.py)); on the host it runs one module (M(ascend.fa.ascend_facts)),
    or, for a host recorded as converged under this run's key, one plain command (the fast path's comparison).
  - >-
    In order, stopping at the first that decides - this run's lock on the host (controller); the rerun fast path
    (C(quick_converged=true) when nothing changed since the host's last clean run); the run's settings (a bad value
    fails the host before anything runs on it); M(ascend.fa.ascend_facts) with O(facts_args); the verdict
    (compatibility matrix, checklist, drift, environment findings, the trust check of the installed package); the
    fast path's record (fact C(ascend_fa_converged)), kept or cleared.
  - Blocking problems of the verdict do not fail the task (its facts would be lost); they are returned in
    C(blocking_lines) for M(ascend.fa.fa_gate). Never reports a change.
version_added: "0.9.0"
author: ascend-fa contributors (@ascend-fa)
options:
  lock:
    description: Take this run's lock on the host (false for read-only runs such as C(playbooks/preflight.yml)).
    type: bool
    default: true
  lock_dir:
    description: The lock folder on the controller (empty - C(<cache_dir>/../locks)).
    type: str
    default: ""
  cache_dir:
    description: The controller's artifact cache (its signed records are the trust anchor).
    type: str
    required: true
  lock_wait:
    description: Seconds to wait for another live run's lock on the host.
    type: int
    default: 0
  fast_path:
    description: Whether a host recorded as converged under this run's key may end after the comparison.
    type: bool
    default: true
  force:
    description: The operator's C(fa_install_force) as given (a true value turns the fast path off).
    type: raw
  recipe:
    description: The loaded release recipe.
    type: dict
    required: true
  opts:
    description:
      - The verdict's options (C(__fa_preflight_opts) of role C(fa_preflight)); the plugin adds the run's settings,
        read from the task's variables (C(plugin_utils/settings.py) C(GATHERED)).
    type: dict
    required: true
  key_extra:
    description: What the converged key adds to O(opts) (vendor, python, CANN home).
    type: dict
    default: {}
  facts_args:
    description: The arguments of M(ascend.fa.ascend_facts).
    type: dict
    required: true
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Check this host (lock, last clean run, settings, Ascend facts, verdict)
  ascend.fa.fa_preflight:
    cache_dir: "{{ fa_artifact_cache }}"
    recipe: "{{ fa_recipe_data }}"
    opts: "{{ __fa_preflight_opts }}"
    facts_args:
      ascend_home: /usr/local/Ascend
  register: __fa_preflight
"""

RETURN = r"""
quick_converged:
  description: The host is unchanged since its last clean run (the role ends it).
  type: bool
  returned: when the fast path applied
verdict:
  description: problems, blocking, warnings, build_key, build_jobs, needs_install, install_force, converged_key, clean,
    clean_after_install.
  type: dict
  returned: when the facts were gathered
blocking_lines:
  description: One line per blocking problem (host, what, found, needed, fix).
  type: list
  elements: str
  returned: when the facts were gathered, or the settings were not valid
step:
  description: The last step that ran (lock, trust, fast path, settings, facts, verdict).
  type: str
  returned: always
"""
