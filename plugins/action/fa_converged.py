# Copyright: ascend-fa contributors
# Apache-2.0
"""Action plugin ``fa_converged``: compare a host with its recorded fingerprint in one plain command, no AnsiballZ.

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
from pathlib import Path

from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {
    "fingerprint": {"type": "dict", "required": True},
    "python": {"type": "str"},
}
# plugins/module_utils/ next to this plugin's folder: plugins/action/../module_utils (checkout) or
# plugins/action/../module_utils (collection)
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


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        task_vars = task_vars or {}
        python = args["python"] or self._templar.template(
            task_vars.get("ansible_python_interpreter")
            or (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python") or "python3")
        # the program as an argument, not on stdin: every connection takes that (paramiko has no stdin for commands)
        res = self._low_level_execute_command(f"{python} -c {shlex.quote(script(args['fingerprint']))}")
        result.update(parse(res.get("rc", 1), res.get("stdout", ""), res.get("stderr", "")))
        return result
