# Copyright: ascend-fa contributors
# Apache-2.0
"""Action plugin ``fa_report``: write a report file on the controller, without running a module.

Reports of a run (verify results, upgrade records) belong on the controller. Writing them with
``ansible.builtin.copy`` + ``delegate_to: localhost`` costs a stat module, a copy module and a folder task per host;
this plugin writes the file inside the worker process (makedirs, temp file, rename) and costs nothing remote.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "content": {"type": "raw", "required": True},
    "mode": {"type": "raw", "default": "0644"},
}


def render_content(content) -> str:
    """Dicts and lists as indented JSON with a final newline; text as it is (a newline added when missing)."""
    if isinstance(content, (dict, list)):
        return json.dumps(content, indent=4, sort_keys=True, default=str) + "\n"
    text = "" if content is None else str(content)
    return text if text.endswith("\n") or not text else text + "\n"


def parse_mode(mode) -> int:
    if isinstance(mode, int):
        return mode
    try:
        return int(str(mode), 8)
    except ValueError as exc:
        raise ValueError(f"mode {mode!r} is not an octal file mode such as '0644'") from exc


def write_atomic(path: str, text: str, mode: int) -> bool:
    """Write ``text`` to ``path`` (temp file + rename); return whether the file's content changed."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                os.chmod(path, mode)
                return False
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=".fa_report.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        path = args["path"]
        try:
            mode = parse_mode(args["mode"])
        except ValueError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        text = render_content(args["content"])
        result.update(path=path, size=len(text.encode("utf-8")), changed=False)
        if self._task.check_mode:
            result["msg"] = f"check mode: {path} not written"
            return result
        try:
            written = write_atomic(path, text, mode)
        except OSError as exc:
            raise AnsibleActionFail(f"cannot write the report {path} on the controller: {exc}") from exc
        # A report of this run on the controller, not a change to the managed host: never counted as changed.
        result["written"] = written
        return result
