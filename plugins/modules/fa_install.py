#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_install
short_description: Install, keep and roll back an ops-transformer custom operator package (.run)
description:
  - C(state=present) verifies the package's sha256, runs its installer with the recipe's flags (sourcing the CANN
    environment so the package finds C(ASCEND_OPP_PATH)), checks the installed libraries, registers the library
    path (an C(ld.so.conf.d) file and C(ldconfig)), writes C(<state_dir>/set_env.bash) for users to source, keeps
    the package by checksum and writes the install manifest with the previous package for rollback.
  - When the manifest already records this package (same sha256 and build key), the installed tree is intact and
    the registration is in place, nothing is done (C(changed=false)); the installer is not re-run and I(package) is
    not needed.
  - Otherwise the package installed is I(package), or, when I(package) is not given or not on the host, the kept copy
    C(<state_dir>/packages/<sha256>.run) (checksum-verified like any package), or the package pulled from
    I(fetch_url) (size and sha256 checked). When none is there the module fails with C(package_needed=true).
  - The C(fa_install) action plugin (C(plugins/action/fa_install.py)) runs this module in one task. With I(src) it
    transfers the .run from the controller into the remote temporary folder and runs the module once on it, and it
    transfers nothing when the host's facts (C(ansible_facts.ascend.fa_package)) say the host already keeps a package
    with this sha256, or in check mode.
  - Any failure restores the vendor tree and C(config.ini) as they were.
  - C(state=previous) rolls back to the previous package from the kept copy (checksum-verified), or removes the
    package when there was none before.
  - C(state=verified) rolls back to the last package that passed verification on this host (C(verify.json)'s
    C(verified) entry, kept until a newer package passes; checksum-verified), or removes the package when none ever
    passed; nothing when the installed package is that one. The rollout uses it, so a package whose verification failed
    or never completed goes back to one that is known good.
  - Every state holds C(<state_dir>/.lock) while it changes packages; a concurrent run on the same host waits up to
    I(lock_timeout) seconds, then fails naming the holder.
version_added: "0.1.0"
options:
  state:
    description: C(present) installs I(package); C(previous) rolls back to the previous package; C(verified) to the
      last package that passed verification on this host.
    type: str
    choices: [present, previous, verified]
    default: present
  lock_timeout:
    description: Seconds to wait for another run's lock on I(state_dir) before failing.
    type: int
    default: 600
  src:
    description:
      - Path of the .run on the controller. Handled by the action plugin, never seen by the module - the plugin
        transfers the file (when needed, see above) and gives the module I(package) pointing at the transferred copy,
        which is moved (not copied) to C(<state_dir>/packages/<sha256>.run).
      - Only with C(state=present); mutually exclusive with I(package).
    type: path
  package:
    description:
      - Path of the .run on the host. Optional - without it (or when it is not on the host) the kept copy
        C(<state_dir>/packages/<sha256>.run) is used, and a converged host needs no package at all.
    type: path
  sha256:
    description: Expected sha256 of I(package).
    type: str
  meta:
    description: Recorded in the manifest (recipe, tag, commit, build_key, soc_family, cann_version, arch, cann_install_time).
    type: dict
    default: {}
  set_env:
    description: Environment scripts sourced before running the installer (the CANN set_env.sh).
    type: list
    elements: path
    default: []
  flags:
    description: Installer flags from the recipe.
    type: list
    elements: str
    default: [--quiet]
  install_path:
    description: Absolute C(--install-path); empty installs into C(ASCEND_OPP_PATH).
    type: str
    default: ""
  vendor:
    description: Vendor name given to build.sh.
    type: str
    required: true
  vendor_dir_name:
    description: Directory under C(vendors/) that the package installs (C(<vendor>_transformer)).
    type: str
    required: true
  libraries:
    description: Files, relative to the vendor directory, that must exist after the install.
    type: list
    elements: str
    default: []
  ld_library_dirs:
    description: Directories, relative to the vendor directory, registered with the dynamic linker.
    type: list
    elements: str
    default: [op_api/lib]
  package_set_env:
    description: The package's own environment script, relative to the vendor directory.
    type: str
    default: bin/set_env.bash
  ldconfig_file:
    description: The C(ld.so.conf.d) file written.
    type: path
    default: /etc/ld.so.conf.d/ascend-fa.conf
  state_dir:
    description: Manifest, kept packages and history.
    type: path
    default: /var/lib/ascend-fa
  success_marker:
    description: Text the installer prints on success.
    type: str
    default: SUCCESS
  install_for_all:
    description:
      - Pass C(--install-for-all) to the package's installer (install.sh v9.0.1 then makes C(vendors/config.ini) mode
        755) and make the installed vendor tree readable by every user (folders C(o+rx), files C(o+r)), so a non-root
        torch_npu process finds and loads the package (op-plugin reads C(config.ini) and C(dlopen)s the library as
        that process's user).
      - False keeps install.sh's root-only modes (C(config.ini) 640) and warns that non-root processes find nothing.
    type: bool
    default: true
  check_kernels:
    description:
      - After the install, require the kernel binaries and configs for the host's SoC family (C(meta.soc_family)) -
        C(op_impl/ai_core/tbe/kernel/<soc_family>/<op>/*.o) with their C(*.json), and
        C(op_impl/ai_core/tbe/kernel/config/<soc_family>/<op>.json) for each op of I(kernel_ops) (ops-transformer
        C(cmake/func.cmake)). Missing ones fail the install (the previous tree is restored) naming the SoC and the
        path; the manifest records what was checked, so the drift check (C(package_state)) repeats it.
      - Not checked when C(meta.soc_family) is empty.
    type: bool
    default: true
  kernel_ops:
    description: Operators whose kernel binaries must be there (the recipe's C(build.ops)).
    type: list
    elements: str
    default: []
  force:
    description:
      - Reinstall even when the manifest matches. The reinstall uses the kept copy when the host has it (same sha256,
        so the action plugin transfers nothing).
    type: bool
    default: false
  trusted_sha256:
    description:
      - The sha256s of the packages the controller built and signed (filter C(fa_trusted_sha256s) over its artifact
        cache, C(ascend_fa/trust.py)). When given, a package whose sha256 is not in it is never run (the rollbacks pass
        it; a kept package is only restored when the controller signed it); the kept file's own sha256 is checked too.
      - Not given, nothing is checked here (C(state=present) - the action plugin checks the signed record before the
        transfer).
    type: list
    elements: str
  fetch_url:
    description:
      - URL of the package (C(.../<sha256>.run)) on the seed host of its build key (module C(fa_serve), the role's
        C(fa_install_sources)). When the package is neither given nor kept on the host, the module pulls it from there
        (no proxy, no redirect) into a private temporary file in C(<state_dir>/packages), at most I(size) bytes, and
        checks its size and sha256 against I(size) and I(sha256) (the controller's signed record) before anything uses
        it. A failed pull leaves no file and fails with C(package_needed=true) and C(fetch_error); the action plugin
        then pushes the package from the controller, with a warning.
    type: str
  fetch_timeout:
    description: Seconds a pull may wait for the connection or for the next bytes.
    type: int
    default: 60
  size:
    description: The package's size in bytes (the signed record's C(size)); a pulled body larger than this is refused.
      Required with I(fetch_url); the action plugin checks it against the signed record.
    type: int
  _transfer_dir:
    description:
      - Internal, set by the action plugin - its remote temporary folder that holds I(package). The package is moved
        out of it into C(packages/) and the folder is removed before the module returns (saving the action a round
        trip). Only a folder named C(ansible-tmp-*) that contains I(package) is removed.
    type: path
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: full
  action:
    description: Has an action plugin (C(plugins/action/fa_install.py)) that runs on the controller first.
    support: full
    details: The C(fa_install) action plugin transfers I(src) and runs the module in one task.
author: ascend-fa contributors (@ascend-fa)
"""

EXAMPLES = r"""
- name: Install the FlashAttention package (transferred from the controller only when the host lacks it)
  ascend.fa.fa_install:
    src: "{{ fa_cached[fa_build_key].path }}"
    sha256: "{{ sha }}"
    vendor: ascendfa
    vendor_dir_name: ascendfa_transformer
    set_env: [/usr/local/Ascend/cann/set_env.sh]
    libraries: [op_api/lib/libcust_opapi.so]
    meta: {recipe: ops-transformer-v9.0.1, build_key: 0123abcd}

- name: Roll back to the previous package (only when this controller signed it)
  ascend.fa.fa_install:
    state: previous
    vendor: ascendfa
    vendor_dir_name: ascendfa_transformer
    set_env: [/usr/local/Ascend/cann/set_env.sh]
    trusted_sha256: "{{ fa_artifact_cache | ascend.fa.fa_trusted_sha256s }}"
"""

RETURN = r"""
manifest:
  description: The install manifest after the run (null after a rollback that removed the package).
  returned: always
  type: dict
previous:
  description: The manifest before the run.
  returned: always
  type: dict
rolled_back:
  description: Whether a rollback happened.
  returned: when state=previous or state=verified
  type: bool
msg:
  description: What the rollback did (state=verified).
  returned: when state=verified
  type: str
package_transferred:
  description: Whether the action plugin transferred I(src) to the host.
  returned: when src was given
  type: bool
package_source:
  description:
    - How the package reached the host - C(kept) (nothing travelled - installed already, or kept in
      C(packages/)), C(pulled) (from I(fetch_url)), C(pushed) (transferred from the controller by the action plugin)
      or C(given) (I(package), already on the host). Also recorded in the manifest of an install.
  returned: state=present, not in check mode
  type: str
package_url:
  description: Where the package was pulled from.
  returned: when package_source is pulled
  type: str
fetch_error:
  description: Why the pull from I(fetch_url) failed (the URL and what went wrong).
  returned: when a pull failed
  type: str
package_needed:
  description: The package must be transferred (it is not on the host and what is installed is not it, intact).
  returned: on that failure
  type: bool
kernels_missing:
  description: What the installed package lacks for the host's SoC family (kernel binaries, configs), with paths.
  returned: on that failure
  type: list
  elements: str
install_warnings:
  description: Warnings of the install (also shown as task warnings) - root-only install, CANN folders others cannot enter.
  returned: when the package was installed
  type: list
  elements: str
"""

import re
from contextlib import nullcontext

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ascend.fa.plugins.module_utils.fa_install_lib import (
    VENDOR_RE,
    Installer,
    InstallError,
    host_lock,
    remove_transfer_dir,
    transfer_dir,
)

FETCH_URL_RE = re.compile(r"\Ahttps?://[A-Za-z0-9.\[\]:_-]+/(?:[A-Za-z0-9._~-]+/)*[0-9a-f]{64}\.run\Z")


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "previous", "verified"], default="present"),
            package=dict(type="path"),
            # taken by the action plugin (plugins/action/fa_install.py), which transfers it and passes package
            src=dict(type="path"),
            sha256=dict(type="str"),
            meta=dict(type="dict", default={}),
            set_env=dict(type="list", elements="path", default=[]),
            flags=dict(type="list", elements="str", default=["--quiet"]),
            install_path=dict(type="str", default=""),
            vendor=dict(type="str", required=True),
            vendor_dir_name=dict(type="str", required=True),
            libraries=dict(type="list", elements="str", default=[]),
            ld_library_dirs=dict(type="list", elements="str", default=["op_api/lib"]),
            package_set_env=dict(type="str", default="bin/set_env.bash"),
            ldconfig_file=dict(type="path", default="/etc/ld.so.conf.d/ascend-fa.conf"),
            state_dir=dict(type="path", default="/var/lib/ascend-fa"),
            lock_timeout=dict(type="int", default=600),
            success_marker=dict(type="str", default="SUCCESS"),
            force=dict(type="bool", default=False),
            install_for_all=dict(type="bool", default=True),
            check_kernels=dict(type="bool", default=True),
            kernel_ops=dict(type="list", elements="str", default=[]),
            trusted_sha256=dict(type="list", elements="str"),
            fetch_url=dict(type="str"),
            fetch_timeout=dict(type="int", default=60),
            size=dict(type="int"),
            _transfer_dir=dict(type="path"),
        ),
        required_if=[("state", "present", ("sha256",))],
        required_by={"fetch_url": ("size", "sha256")},
        supports_check_mode=True,
    )


def validate(module: AnsibleModule) -> None:
    p = module.params
    for key in ("vendor", "vendor_dir_name"):
        if not VENDOR_RE.match(p[key]):
            module.fail_json(msg=f"{key}={p[key]!r} is not a valid vendor name (letters, digits, _ . - only)")
    if p["install_path"] and not p["install_path"].startswith("/"):
        module.fail_json(msg=f"install_path={p['install_path']!r} must be absolute (the installer refuses relative "
                             "paths: '[ERROR] use absolute path for --install-path argument')")
    if p["sha256"] and len(p["sha256"]) != 64:
        module.fail_json(msg=f"sha256={p['sha256']!r} is not a sha256 hex digest")
    url = p.get("fetch_url")
    if url and not (FETCH_URL_RE.match(url) and url.endswith(f"/{p['sha256']}.run")):
        module.fail_json(msg=f"fetch_url={url!r} is not an http(s) URL of the package <sha256>.run (sha256 "
                             f"{p['sha256']}). Fix: leave it to the role (fa_install_sources, set by tasks_from seed)")
    if p.get("fetch_timeout") is not None and p["fetch_timeout"] < 1:
        module.fail_json(msg=f"fetch_timeout={p['fetch_timeout']} must be >= 1 second. Fix: set fa_install_fetch_timeout")


def run_module(params: dict, run, check_mode: bool) -> tuple[bool, dict]:
    """Do what ``params`` ask. Returns (failed, result)."""
    inst = Installer(params, run, check_mode=check_mode)
    before = inst.current()
    try:
        # check mode changes nothing, so it takes no lock (and creates no state folder)
        lock = nullcontext() if check_mode else host_lock(params["state_dir"], float(params.get("lock_timeout") or 600))
        with lock:
            if params["state"] == "previous":
                changed, manifest = inst.rollback()
                return False, dict(changed=changed, rolled_back=changed, manifest=manifest, previous=before)
            if params["state"] == "verified":
                changed, manifest, msg = inst.rollback_to_verified()
                return False, dict(changed=changed, rolled_back=changed, manifest=manifest, previous=before, msg=msg)
            changed, manifest = inst.present(params["package"], params["sha256"], params["meta"],
                                             move=transfer_dir(params) is not None)
    except InstallError as exc:
        return True, dict(msg=str(exc), previous=before, **exc.extra)
    except OSError as exc:   # e.g. ENOSPC in the state folder outside the steps that restore: a message, not a traceback
        return True, dict(msg=f"{params['state_dir']}: {exc}. Fix: free space or fix permissions there and rerun "
                              "(what the host had is kept: the manifest is written last)", previous=before)
    if not changed:
        return False, dict(changed=False, manifest=before, previous=(before or {}).get("previous"),
                           **source_of(params, None, check_mode))
    return False, dict(changed=True, manifest=manifest, previous=before, install_warnings=list(inst.messages),
                       **source_of(params, inst.source, check_mode))


def source_of(params: dict, source: str | None, check_mode: bool) -> dict:
    """``package_source`` of a state=present run that did not fail: how the package reached the host (``kept``:
    nothing travelled - installed already or kept; ``pulled`` from ``package_url``; ``pushed`` by the action plugin;
    ``given``: a ``package`` already on the host). Nothing in check mode (nothing travels)."""
    if params["state"] != "present" or check_mode:
        return {}
    out = {"package_source": source or "kept"}
    if source == "pulled":
        out["package_url"] = params.get("fetch_url")
    return out


def execute(params: dict, run, check_mode: bool) -> tuple[bool, dict]:
    """run_module, then remove the action plugin's transfer folder (the package was moved out of it, or is not
    needed) and say so in ``transfer_dir_removed``, so the plugin spends no round trip on it."""
    try:
        failed, result = run_module(params, run, check_mode)
    finally:
        removed = remove_transfer_dir(transfer_dir(params))
    if params.get("_transfer_dir"):
        result["transfer_dir_removed"] = removed
    return failed, result


def main() -> None:
    module = build_module()
    validate(module)

    def run(cmd: str):
        return module.run_command(["bash", "-c", cmd], environ_update={"LANG": "C", "LC_ALL": "C"})

    failed, result = execute(module.params, run, module.check_mode)
    for line in result.get("install_warnings") or []:
        module.warn(line)
    if failed:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
