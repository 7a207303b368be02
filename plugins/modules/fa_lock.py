#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_lock
short_description: Take this run's controller lock on a host or a build key
description:
  - Action plugin only (C(plugins/action/fa_lock.py), logic in C(plugins/plugin_utils/lock.py)); nothing runs on the
    managed host.
  - The lock belongs to the C(ansible-playbook) process of the run, for the whole run, whichever runner started it
    (plain C(ansible-playbook), ansible-runner, AWX, the C(ascend-fa) CLI). A watcher removes the run's locks when
    that process exits; a lock whose process is gone (a killed run) is taken over with a warning.
  - A live holder stops the host (after waiting up to O(wait) seconds) with its pid, start time and command, and
    the fix.
  - Never reports a change (a lock is bookkeeping, not a change of the host). Check mode takes no lock and warns
    when another run holds it.
version_added: "0.3.0"
author: ascend-fa contributors (@ascend-fa)
options:
  host:
    description: Lock this inventory host. Exactly one of O(host) and O(build_key).
    type: str
  build_key:
    description: Lock this build key (one build per key at a time on this controller).
    type: str
  lock_dir:
    description: Folder of the lock files on the controller. Empty means C(<cache_dir>/../locks).
    type: str
    default: ""
  cache_dir:
    description: The controller's artifact cache, whose sibling C(locks) folder is used when O(lock_dir) is empty.
    type: str
    default: ""
  wait:
    description: Seconds to wait for a live holder before stopping the host.
    type: int
    default: 0
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Lock this host for this run (controller)
  ascend.fa.fa_lock:
    host: "{{ inventory_hostname }}"
    cache_dir: "{{ fa_artifact_cache }}"
    wait: 0
"""

RETURN = r"""
lock:
  description: The lock file.
  type: str
  returned: always
owner_pid:
  description: The pid of the run's C(ansible-playbook) process that holds the lock.
  type: int
  returned: always
state:
  description: C(acquired), C(held) (this run had it already) or C(taken over) (from a run that is gone).
  type: str
  returned: when the lock was taken
"""
