# Copyright: ascend-fa contributors
# Apache-2.0
"""The attributes every ascend.fa module documents the same way: check mode (each module says its support),
no diff mode, POSIX hosts. Used as ``ascend.fa.attributes``."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and say what would change without changing the host.
  diff_mode:
    description: Would return details of what changed; none of these modules does.
    support: none
  platform:
    description: Target OS families it can run against.
    support: N/A
    platforms: posix
"""
