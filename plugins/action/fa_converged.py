# Copyright: ascend-fa contributors
# Apache-2.0
"""Action plugin ``fa_converged``: the rerun fast path's controller side, its one mechanism and its one writer.

``state=check`` compares a host with its recorded fingerprint in one plain command, no AnsiballZ; ``state=record``
writes (or clears) the record itself, the host's fact ``ascend_fa_converged`` in the controller's fact cache, after
a full check (role fa_preflight) or a verified rollout (role fa_rollout). The host side is
``plugins/module_utils/fa_fingerprint.py`` (what a fingerprint holds, and the comparison).

The comparison is a few hundred ``lstat`` calls (``plugins/module_utils/fa_fingerprint.py``, standard library only). Run as
a module it costs what every Ansible module costs on the host - unpacking the AnsiballZ payload and compiling
``ansible.module_utils.basic`` from a zip, about 0.3 CPU s - which is most of a converged host's rerun. This plugin
sends ``fa_fingerprint.py`` itself, with the recorded fingerprint, to the host's Python as ``python3 -c PROGRAM`` (one
command on the connection, as ``raw`` does; become applies; ~9 KB of command line) and reads one JSON line back: about
0.04 CPU s.

The result is the same as the module ``fa_converged`` (``plugins/modules/fa_converged.py``) returns. Anything unexpected
(no Python, a broken record, output that is not JSON) gives ``converged: false`` with the reason: the host then goes
through the full check, never stops here.
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime, timezone
from pathlib import Path

from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["check", "record"], "default": "check"},
    "fingerprint": {"type": "dict", "required": True},
    "python": {"type": "str"},
    # state=record: the key of what is wanted (plugin_utils/preflight.py converged_key), who records, keep or clear
    "key": {"type": "str", "default": "", "no_log": False},
    "by": {"type": "str", "default": ""},
    "keep": {"type": "bool", "default": True},
}
FACT = "ascend_fa_converged"
# the collection's plugins/module_utils/, beside this plugin's plugins/action/ (the same in a checkout and installed)
FINGERPRINT_SRC = Path(__file__).resolve().parent.parent / "module_utils" / "fa_fingerprint.py"

# after fa_fingerprint.py's own code: its converged() on the record, printed as one JSON line
MAIN = "\nprint(json.dumps(converged(json.loads(RECORDED))))\n"


def script(recorded: dict, source: str | None = None) -> str:
    """The program sent to the host: fa_fingerprint.py, the recorded fingerprint and the comparison."""
    src = source if source is not None else FINGERPRINT_SRC.read_text(encoding="utf-8")
    return f"{src}\nRECORDED = {json.dumps(json.dumps(recorded))}\n{MAIN}"


def parse(rc: int, stdout: str, stderr: str) -> dict:
    """The task result from the command's outcome."""
    line = (stdout or "").strip().splitlines()[-1:] or [""]
    try:
        data = json.loads(line[0]) if rc == 0 else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or "converged" not in data:
        why = (stderr or stdout or "").strip()[-300:] or f"exit {rc}"
        return {"changed": False, "converged": False, "changed_groups": ["(comparison did not run)"], "digest": None,
                "entries": 0, "msg": f"the comparison did not run ({why}): the full check runs"}
    return {"changed": False, **data}


def record(key: str, fingerprint: dict, by: str, keep: bool, now: datetime | None = None) -> dict:
    """The task result that keeps (or, with ``keep`` false or nothing to keep, clears) the host's record."""
    rec: dict = {}
    if keep and key and fingerprint:
        at = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rec = {"key": key, "fingerprint": dict(fingerprint), "by": by, "at": at}
    return {"changed": False, "recorded": bool(rec), "ansible_facts": {FACT: rec}}


def compare(action: ActionBase, fingerprint: dict, task_vars: dict, python: str | None = None) -> dict:
    """The comparison on ``action``'s host, one plain command (also the fast path of the action fa_preflight)."""
    python = python or action._templar.template(  # noqa: SLF001 - the action's own templar
        task_vars.get("ansible_python_interpreter")
        or (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python") or "python3")
    # the program as an argument, not on stdin: every connection takes that (paramiko has no stdin for commands)
    res = action._low_level_execute_command(f"{python} -c {shlex.quote(script(fingerprint))}")  # noqa: SLF001
    return parse(res.get("rc", 1), res.get("stdout", ""), res.get("stderr", ""))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if args["state"] == "record":      # controller only: nothing runs on the host
            result.update(record(args["key"], args["fingerprint"], args["by"], args["keep"]))
            return result
        result.update(compare(self, args["fingerprint"], task_vars or {}, args["python"]))
        return result
