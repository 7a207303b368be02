# Copyright: ascend-fa contributors
# Apache-2.0
"""Action plugin ``fa_gate``: report a host's preflight verdict and stop it when something blocks, in one task.

Controller only (no module, nothing runs on the host). Replaces three tasks per host (a debug of the warnings, a
fail on the blocking problems, a debug of the package state): the warnings become Ansible warnings, the blocking
problems fail the host with one line each (host, what, found, needed, fix), and ``msg`` says what the run will do.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {
    "warnings": {"type": "list", "elements": "str", "default": []},
    "blocking": {"type": "list", "elements": "str", "default": []},
    "summary": {"type": "str", "default": ""},
}


def verdict(warnings: list[str], blocking: list[str], summary: str) -> dict:
    """The task result for these problem lines (already rendered, one per problem)."""
    result: dict = {"changed": False, "blocking": list(blocking), "problem_warnings": list(warnings)}
    if warnings:
        result["warnings"] = list(warnings)
    if blocking:
        result.update(failed=True, msg="\n".join(blocking))
    else:
        result["msg"] = summary
    return result


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result.update(verdict(args["warnings"], args["blocking"], args["summary"]))
        return result
