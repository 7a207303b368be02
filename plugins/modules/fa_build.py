#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_build
short_description: Build an ops-transformer custom operator package in one call
description:
  - Sources the CANN environment, runs the recipe's build command (an argv list, each word quoted, so a value never
    becomes shell syntax) in the source tree, keeps the whole log in
    I(log), finds the one package matching I(output_glob) and returns its path and sha256.
  - On failure returns the last lines of the log so the operator sees the compiler's error, not a stack trace.
version_added: "0.1.0"
options:
  src:
    description: Source tree (a checkout of the pinned tag).
    type: path
    required: true
  argv:
    description:
      - The build command as argv words, each rendered on its own (filter C(fa_recipe_argv)), e.g.
        C([bash, build.sh, --pkg, --soc=ascend910b, --ops=flash_attention_score, -j8]).
      - Run after sourcing I(set_env) in one C(bash -c) line where every word is C(shlex.quote)d.
    type: list
    elements: str
    required: true
  set_env:
    description: Environment scripts sourced first (the CANN set_env.sh).
    type: list
    elements: path
    default: []
  output_glob:
    description: Glob, relative to I(src), of the package the build writes.
    type: str
    required: true
  log:
    description: Where the full build log is written on the build host.
    type: path
    required: true
  timeout:
    description: Seconds before the build is killed.
    type: int
    default: 7200
  clean:
    description: Remove earlier outputs matching I(output_glob) first.
    type: bool
    default: true
  proxy_env:
    description:
      - Proxy settings for the build (C(build.sh) downloads its third-party sources unless C(--cann_3rd_lib_path) is
        given, ascend-facts.md 9.4) - keys C(http_proxy), C(https_proxy), C(no_proxy); each is exported in both
        cases to the build's own environment (never on a command line).
      - A proxy URL may hold C(user:password@) - the option is C(no_log), and the credentials are masked in the log
        tail and messages this module returns.
    type: dict
    default: {}
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
author: ascend-fa contributors (@ascend-fa)
"""

EXAMPLES = r"""
- name: Build the FlashAttention package
  ascend.fa.fa_build:
    src: /var/tmp/ascend-fa/src/ops-transformer-v9.0.1-0123abcd
    argv: [bash, build.sh, --pkg, --soc=ascend910b, --ops=flash_attention_score, --vendor_name=ascendfa, -j8]
    set_env: [/usr/local/Ascend/cann/set_env.sh]
    output_glob: build_out/cann-ops-transformer-*linux*.run
    log: /var/tmp/ascend-fa/logs/0123abcd.log
"""

RETURN = r"""
artifact:
  description: Absolute path of the built package.
  returned: success
  type: str
sha256:
  description: sha256 of the package.
  returned: success
  type: str
seconds:
  description: Wall time of the build command.
  returned: always
  type: float
log_tail:
  description: Last lines of the build log.
  returned: always
  type: str
diagnosis:
  description:
    - On a failed build, the class of the error in the log from the known-error signatures
      (C(plugins/module_utils/fa_known_errors_data.py)), with its cause and fix; C(class=unknown) when no signature matches.
  returned: failure of the build command
  type: dict
  sample: {class: build_oom, known: true, cause: "...", fix: "lower the job count ...", source: "...", matched: "..."}
"""

import glob
import os
import re
import shlex
import time
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ascend.fa.plugins.module_utils.fa_known_errors import diagnosis
from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import sha256_file


def command_line(set_env: list[str], src: str, argv: list[str], log: str, timeout: int) -> str:
    """One bash line: source the environment scripts, then run ``argv`` (every word quoted) under ``timeout``."""
    if not argv or any("\x00" in str(a) for a in argv):
        raise ValueError(f"not a build command: {argv!r}")
    sources = "".join(f"source {shlex.quote(s)} >/dev/null 2>&1; " for s in set_env)
    return (f"set -o pipefail; {sources}cd {shlex.quote(src)} && "
            f"timeout --kill-after=30 {int(timeout)} {shlex.join(str(a) for a in argv)} > {shlex.quote(log)} 2>&1")


PROXY_KEYS = ("http_proxy", "https_proxy", "no_proxy")
USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")


def proxy_environ(proxy_env: dict | None) -> dict[str, str]:
    """The build's proxy variables, lower and upper case (curl reads https_proxy/HTTPS_PROXY and no_proxy/NO_PROXY,
    http_proxy in lower case only; Python tools read either). Raises ValueError on an unknown key or a value with a
    newline or NUL."""
    out: dict[str, str] = {}
    for key, value in (proxy_env or {}).items():
        if key.lower() not in PROXY_KEYS:
            raise ValueError(f"proxy_env: unknown key {key!r} (allowed: {', '.join(PROXY_KEYS)})")
        if value in (None, ""):
            continue
        value = str(value)
        if any(c in value for c in "\n\r\x00"):
            raise ValueError(f"proxy_env: {key} holds a newline or NUL")
        out[key.lower()] = out[key.upper()] = value
    return out


def redact(text: str, proxy_env: dict | None = None) -> str:
    """``text`` with the ``user:password@`` of every URL masked, and the password of each proxy URL wherever it
    appears alone (a tool may print it)."""
    text = USERINFO_RE.sub(r"\1***@", text or "")
    for value in (proxy_env or {}).values():
        try:
            secret = urlsplit(str(value)).password
        except ValueError:
            secret = None
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def log_tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "\n".join(fh.read().rstrip().splitlines()[-lines:])
    except OSError:
        return ""


def classify_log(path: str, fallback: str = "") -> dict:
    """Class, cause and fix of the error in the build log (the known-error signatures)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - (1 << 20)))
            text = fh.read()
    except OSError:
        text = ""
    return diagnosis(text or fallback)


def diagnosis_text(diag: dict | None) -> str:
    if not diag:
        return ""
    if not diag["known"] and diag.get("class") == "generic":
        # a generic code (EZ9999, 561103, ...) and no line that explains it: say what it means and what to capture
        return f"\n--- diagnosis: generic error code ---\ncause: {diag['cause']}\nfix: {diag['fix']}"
    if not diag["known"]:
        return "\n--- diagnosis: unknown error (no known signature matches; read the last lines above) ---"
    return (f"\n--- diagnosis: {diag['class']} ---\ncause: {diag['cause']}\nfix: {diag['fix']}"
            + (f"\n(reported in {diag['source']})" if diag.get("source") else ""))


def find_output(src: str, pattern: str) -> list[str]:
    return sorted(glob.glob(os.path.join(src, pattern)), key=os.path.getmtime)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            argv=dict(type="list", elements="str", required=True),
            set_env=dict(type="list", elements="path", default=[]),
            output_glob=dict(type="str", required=True),
            log=dict(type="path", required=True),
            timeout=dict(type="int", default=7200),
            clean=dict(type="bool", default=True),
            proxy_env=dict(type="dict", default={}, no_log=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        environ = proxy_environ(p["proxy_env"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    shown = redact(shlex.join(p["argv"]), p["proxy_env"])
    if not p["argv"] or any("\x00" in a for a in p["argv"]):
        module.fail_json(msg=f"argv {p['argv']!r} is not a build command (empty, or a word with a NUL byte)")
    if not os.path.isdir(p["src"]):
        module.fail_json(msg=f"source tree {p['src']} does not exist: the fetch step did not run or failed")
    missing = [s for s in p["set_env"] if not os.path.isfile(s)]
    if missing:
        module.fail_json(msg=f"CANN environment script {', '.join(missing)} not found on the build host. "
                             "Fix: install the CANN toolkit there or pick another fa_build_host")
    if module.check_mode:
        module.exit_json(changed=True, msg=f"would run: {shown}", seconds=0.0, log_tail="")
    if p["clean"]:
        for old in find_output(p["src"], p["output_glob"]):
            os.remove(old)
    os.makedirs(os.path.dirname(p["log"]), exist_ok=True)
    start = time.monotonic()
    rc, _out, err = module.run_command(["bash", "-c", command_line(p["set_env"], p["src"], p["argv"], p["log"],
                                                                   p["timeout"])], environ_update=environ)
    seconds = round(time.monotonic() - start, 2)
    tail = redact(log_tail(p["log"]) or err, p["proxy_env"])
    if rc != 0:
        why = "timed out" if rc in (124, 137) else f"failed (rc={rc})"
        diag = classify_log(p["log"], err)
        diag = {k: redact(v, p["proxy_env"]) if isinstance(v, str) else v for k, v in (diag or {}).items()} or diag
        module.fail_json(msg=f"build {why} after {seconds}s: {shown}\n--- last lines of {p['log']} ---\n{tail}"
                             f"{diagnosis_text(diag)}",
                         rc=rc, seconds=seconds, log=p["log"], log_tail=tail, diagnosis=diag)
    outputs = find_output(p["src"], p["output_glob"])
    if len(outputs) != 1:
        module.fail_json(msg=f"build succeeded but {len(outputs)} files match {p['output_glob']} in {p['src']} "
                             f"(expected exactly one): {outputs}", seconds=seconds, log=p["log"], log_tail=tail)
    artifact = outputs[0]
    module.exit_json(changed=True, artifact=artifact, sha256=sha256_file(artifact), size=os.path.getsize(artifact),
                     seconds=seconds, log=p["log"], log_tail=tail)


if __name__ == "__main__":
    main()
