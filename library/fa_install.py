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
    the registration is in place, nothing is done (C(changed=false)); the installer is not re-run.
  - Any failure restores the vendor tree and C(config.ini) as they were.
  - C(state=previous) rolls back to the previous package from the kept copy (checksum-verified), or removes the
    package when there was none before.
version_added: "0.1.0"
options:
  state:
    description: C(present) installs I(package); C(previous) rolls back.
    type: str
    choices: [present, previous]
    default: present
  package:
    description: Path of the .run on the host.
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
  force:
    description: Reinstall even when the manifest matches.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
author: ascend-fa contributors
"""

EXAMPLES = r"""
- name: Install the FlashAttention package
  fa_install:
    package: /var/lib/ascend-fa/packages/{{ sha }}.run
    sha256: "{{ sha }}"
    vendor: ascendfa
    vendor_dir_name: ascendfa_transformer
    set_env: [/usr/local/Ascend/cann/set_env.sh]
    libraries: [op_api/lib/libcust_opapi.so]
    meta: {recipe: ops-transformer-v9.0.1, build_key: 0123abcd}

- name: Roll back to the previous package
  fa_install:
    state: previous
    vendor: ascendfa
    vendor_dir_name: ascendfa_transformer
    set_env: [/usr/local/Ascend/cann/set_env.sh]
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
  returned: when state=previous
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.fa_install_lib import VENDOR_RE, Installer, InstallError


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "previous"], default="present"),
            package=dict(type="path"),
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
            success_marker=dict(type="str", default="SUCCESS"),
            force=dict(type="bool", default=False),
        ),
        required_if=[("state", "present", ("package", "sha256"))],
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


def main() -> None:
    module = build_module()
    validate(module)

    def run(cmd: str):
        return module.run_command(["bash", "-c", cmd], environ_update={"LANG": "C", "LC_ALL": "C"})

    inst = Installer(module.params, run, check_mode=module.check_mode)
    before = inst.current()
    try:
        if module.params["state"] == "previous":
            changed, manifest = inst.rollback()
            module.exit_json(changed=changed, rolled_back=changed, manifest=manifest, previous=before)
        if inst.is_converged(before):
            module.exit_json(changed=False, manifest=before, previous=(before or {}).get("previous"))
        manifest = inst.install(module.params["package"], module.params["sha256"], module.params["meta"])
    except InstallError as exc:
        module.fail_json(msg=str(exc), previous=before, **exc.extra)
    module.exit_json(changed=True, manifest=manifest, previous=before)


if __name__ == "__main__":
    main()
