#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_serve
short_description: Serve packages (.run) to the other hosts of a run over HTTP, from one seed host
description:
  - The hosts of a run pull the package of their build key from one seed host instead of the controller pushing
    one copy to each (C(fa_install)'s I(fetch_url)); see C(docs/distribution.md).
  - C(state=started) puts the package I(sha256) into I(folder) as C(<sha256>.run) (0644, the folder 0755, both owned
    by the connecting user after become, root) from the first of I(sources) (paths on the host) with that sha256, or
    from I(package) (transferred by the action plugin from the controller's cache, after its signed record was checked);
    then it makes sure a server of ours runs on I(address):I(port) for that folder, and checks it answers.
  - The server (C(plugins/module_utils/fa_serve_lib.py), the host's Python, C(http.server)) is a detached process
    (its own session; record C(server.json), log C(server.log) in I(folder)). It answers only C(GET) and C(HEAD) of
    C(/<64 hex>.run) with that file of I(folder) - no listing, no other path, no symlink followed. It drops root for
    nobody once it listens, and exits by itself I(timeout) seconds after it was last started or renewed, or after
    its last download when that is later.
  - A live server of ours with the same folder, address, port and timeout is left running (its lease renewed,
    C(changed=false)); one with other settings is replaced. A port another program holds fails, naming the address,
    the port and the fix (C(fa_install_serve_port)).
  - C(state=stopped) stops the folder's server (only when the record's process runs this folder's server script) and
    removes the served copies, the record and the script (the log stays).
  - Integrity never rests on this server; every host checks what it pulls against the sha256 of the controller's
    signed cache record, and falls back to a push from the controller when the pull fails.
version_added: "0.3.0"
options:
  state:
    description: C(started) places the package and runs the server; C(stopped) stops it and removes the copies.
    type: str
    choices: [started, stopped]
    default: started
  folder:
    description: The serve folder on the host (C(<fa_state_dir>/serve)); never C(packages/), which fa_install prunes.
    type: path
    required: true
  address:
    description: The address the server listens on, and the one the other hosts reach it on (the URL's host).
    type: str
  port:
    description: The TCP port of the server (1024-65535).
    type: int
    default: 58642
  timeout:
    description: Seconds after which the server exits by itself (counted from its start or its last renewal).
    type: int
    default: 7200
  sha256:
    description: The package to serve (with C(state=started)); the URL returned is C(<url><sha256>.run).
    type: str
  sources:
    description: Paths on the host that may hold the package (shared store, build output, kept package); the first
      with the right sha256 is copied into I(folder).
    type: list
    elements: path
    default: []
  src:
    description:
      - The package in the controller's artifact cache. Handled by the action plugin, never seen by the module - when
        no path of I(sources) holds the package, the plugin checks the cache entry's signed record and transfers one
        copy (the only bytes of the package the controller sends for this build key).
    type: path
  on_failure:
    description:
      - Handled by the action plugin. C(fail) - a failure fails the task; C(warn) - it becomes a warning and the task
        is ok with C(served=false) (the role's seed step - the hosts of that build key get the package pushed, as
        with C(fa_install_source=push)).
    type: str
    choices: [fail, warn]
    default: fail
  package:
    description: A copy of the package on the host (set by the action plugin after the transfer).
    type: path
  _transfer_dir:
    description: Internal, set by the action plugin - its remote temporary folder that holds I(package), removed here.
    type: path
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
  action:
    description: Has an action plugin (C(plugins/action/fa_serve.py)) that pushes one copy when the host has none.
    support: full
    details: The action plugin checks the signed record of I(src) before it transfers anything.
author: ascend-fa contributors (@ascend-fa)
"""

EXAMPLES = r"""
- name: Serve the package of one build key from its build host
  ascend.fa.fa_serve:
    folder: /var/lib/ascend-fa/serve
    address: 10.0.0.11
    port: 58642
    sha256: "{{ fa_cached[key].sha256 }}"
    src: "{{ fa_cached[key].path }}"
    sources: ["/var/tmp/ascend-fa/src/{{ key }}/build_out/{{ fa_cached[key].file }}"]
  delegate_to: atlas-a2-001

- name: Stop it
  ascend.fa.fa_serve:
    state: stopped
    folder: /var/lib/ascend-fa/serve
  delegate_to: atlas-a2-001
"""

RETURN = r"""
url:
  description: The server's base URL (C(http://<address>:<port>/)).
  returned: state=started
  type: str
package_url:
  description: The package's URL (C(<url><sha256>.run)).
  returned: state=started with sha256
  type: str
placed:
  description: How the package got into the folder - C(kept) (already there), C(copied from <path>), C(pushed).
  returned: state=started with sha256
  type: str
size:
  description: The served file's size in bytes.
  returned: state=started with sha256
  type: int
pid:
  description: The server's process id (null in check mode).
  returned: state=started
  type: int
done:
  description: What C(state=stopped) did.
  returned: state=stopped
  type: list
  elements: str
served:
  description: Whether the package is served (false - on_failure=warn turned a failure into a warning).
  returned: state=started
  type: bool
seed:
  description: The seed host (the inventory name the task ran on, delegated) and the folder - what tasks_from unseed
    stops, also after a failure.
  returned: state=started
  type: dict
source:
  description: For the hosts that pull - C(host), C(url) (the package's URL), C(sha256), C(size), C(folder), C(placed).
  returned: when the package is served
  type: dict
package_needed:
  description: No path of I(sources) has the package and none was transferred (the action plugin then pushes one).
  returned: on that failure
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ascend.fa.plugins.module_utils.fa_install_lib import remove_transfer_dir, transfer_dir
from ansible_collections.ascend.fa.plugins.module_utils.fa_serve_lib import (
    DEFAULT_PORT,
    ServeError,
    ensure_folder,
    place,
    probe,
    start,
    stop,
)


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "stopped"], default="started"),
            folder=dict(type="path", required=True),
            address=dict(type="str"),
            port=dict(type="int", default=DEFAULT_PORT),
            timeout=dict(type="int", default=7200),
            sha256=dict(type="str"),
            sources=dict(type="list", elements="path", default=[]),
            src=dict(type="path"),   # taken by the action plugin (plugins/action/fa_serve.py), as on_failure
            on_failure=dict(type="str", choices=["fail", "warn"], default="fail"),
            package=dict(type="path"),
            _transfer_dir=dict(type="path"),
        ),
        required_if=[("state", "started", ("address",))],
        supports_check_mode=True,
    )


def problems(p: dict) -> list[str]:
    out = []
    if p["state"] == "started":
        if not 1024 <= p["port"] <= 65535:
            out.append(f"port={p['port']} is not a port from 1024 to 65535. Fix: set fa_install_serve_port")
        if p["timeout"] < 1:
            out.append(f"timeout={p['timeout']} must be a number of seconds >= 1. Fix: set fa_install_serve_timeout")
        address = p["address"] or ""
        if not address or any(c in address for c in "/ \t\n[]@?#") or address.startswith("-"):
            out.append(f"address={address!r} is not a host name or IP address. Fix: set fa_install_serve_address")
    if os.path.basename(os.path.normpath(p["folder"])) == "packages":
        out.append(f"folder={p['folder']} is fa_install's packages folder, which it prunes: use <fa_state_dir>/serve")
    return out


def run_module(p: dict, check_mode: bool) -> tuple[bool, dict]:
    """Do what ``p`` asks. Returns (failed, result)."""
    try:
        if p["state"] == "stopped":
            changed, done = stop(p["folder"], check_mode=check_mode)
            return False, dict(changed=changed, done=done)
        changed = ensure_folder(p["folder"], check_mode=check_mode)
        result: dict = {}
        if p.get("sha256"):
            placed_changed, how = place(p["folder"], p["sha256"], p["sources"], package=p.get("package"),
                                        move=transfer_dir(p) is not None, check_mode=check_mode)
            changed |= placed_changed
            result["placed"] = how
        started, info = start(p["folder"], p["address"], p["port"], p["timeout"], check_mode=check_mode)
        result.update(changed=changed or started, url=info["url"], pid=info["pid"])
        if p.get("sha256"):
            result["package_url"] = f"{info['url']}{p['sha256']}.run"
            served = os.path.join(p["folder"], f"{p['sha256']}.run")
            if not check_mode:
                result["size"] = os.path.getsize(served)
                probe(result["package_url"], result["size"])
        return False, result
    except ServeError as exc:
        return True, dict(msg=str(exc), **exc.extra)
    except OSError as exc:
        return True, dict(msg=f"{p['folder']}: {exc}. Fix: free space or fix permissions there, or set "
                              "fa_install_source=push")


def execute(p: dict, check_mode: bool) -> tuple[bool, dict]:
    """run_module, then remove the action plugin's transfer folder (saying so in ``transfer_dir_removed``)."""
    try:
        failed, result = run_module(p, check_mode)
    finally:
        removed = remove_transfer_dir(transfer_dir(p))
    if p.get("_transfer_dir"):
        result["transfer_dir_removed"] = removed
    return failed, result


def main() -> None:
    module = build_module()
    bad = problems(module.params)
    if bad:
        module.fail_json(msg="; ".join(bad))
    failed, result = execute(module.params, module.check_mode)
    if failed:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
