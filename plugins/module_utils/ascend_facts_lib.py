"""ascend_facts' logic: read one host's Ascend stack (driver, firmware, CANN in both layouts, npu-smi's cards, SoC,
CPUs, memory, disk, python / torch / torch_npu, ascend-fa's package and its verification record) in one round trip.

Standard library only (shipped as ``plugins/module_utils/ascend_facts_lib.py``); the module ``plugins/modules/ascend_facts.py`` is
a thin wrapper (arguments, environment, the result). Tests drive :class:`Facts` with a fake command runner.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil

from ansible_collections.ascend.fa.plugins.module_utils.ascend_detect import (
    FIRST_GEN_910B_REASON,
    fa_support,
    is_bare_910b,
    kv_get,
    parse_board,
    parse_kv,
    parse_meminfo_total_mb,
    parse_npu_smi_info,
    parse_npu_smi_map,
    parse_version_cfg,
    product_series,
    product_type_from,
    running_cann_version,
    soc_family,
    soc_version_from_board,
    soc_version_from_name,
)
from ansible_collections.ascend.fa.plugins.module_utils.fa_env_lib import VERSIONS_SCRIPT, check_environment, not_run
from ansible_collections.ascend.fa.plugins.module_utils.fa_fingerprint import fingerprint
from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import (
    VERIFY_FAILED,
    manifest_kernels,
    package_state,
    read_manifest,
    read_verify_record,
    verification_state,
)


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def mtime_iso(path: str) -> str | None:
    try:
        ts = os.stat(path).st_mtime
    except OSError:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Facts:
    """Collects the facts; ``run`` is ``AnsibleModule.run_command`` (or a fake in tests)."""

    def __init__(self, params: dict, run, arch: str | None = None):
        self.p = params
        self.run = run
        self.arch = arch or platform.machine()
        self.errors: list[dict] = []
        self.facts: dict = {"ascend_home": params["ascend_home"], "arch": self.arch}

    def error(self, source: str, reason: str) -> None:
        self.errors.append({"source": source, "reason": reason})

    # --- version files -------------------------------------------------------------------------
    def driver_firmware(self) -> None:
        home = self.p["ascend_home"]
        drv_path = os.path.join(home, "driver", "version.info")
        drv = read_text(drv_path)
        if drv is None:
            self.error("driver", f"{drv_path} not found: NPU driver not installed (or not at {home})")
            drv_kv: dict = {}
        else:
            drv_kv = parse_kv(drv)
        self.facts["driver_version"] = kv_get(drv_kv, "Version", "package_version")
        self.facts["driver_innerversion"] = kv_get(drv_kv, "Innerversion")
        self.facts["driver_compatible_version"] = kv_get(drv_kv, "compatible_version")
        self.facts["driver_compatible_fw"] = kv_get(drv_kv, "compatible_version_fw")
        fw_path = os.path.join(home, "firmware", "version.info")
        fw = read_text(fw_path)
        if fw is None:
            self.error("firmware", f"{fw_path} not found: NPU firmware not installed")
            fw_kv: dict = {}
        else:
            fw_kv = parse_kv(fw)
        self.facts["firmware_version"] = kv_get(fw_kv, "Version")
        self.facts["firmware_compatible_drv"] = kv_get(fw_kv, "compatible_version_drv")
        info = read_text(self.p["install_info"])
        self.facts["install_info"] = parse_kv(info) if info is not None else None
        if info is None:
            self.error("install_info", f"{self.p['install_info']} not found (written by the driver installer)")

    def cann(self) -> None:
        home = self.p["ascend_home"]
        candidates = [
            ("cann", os.path.join(home, "cann"), os.path.join(home, "cann", "set_env.sh")),
            ("toolkit", os.path.join(home, "ascend-toolkit", "latest"), os.path.join(home, "ascend-toolkit", "set_env.sh")),
        ]
        for layout, link, set_env in candidates:
            if os.path.isdir(link):
                self._cann_from(layout, os.path.realpath(link), set_env)
                return
        for key in ("cann_version", "cann_layout", "cann_home", "cann_set_env", "cann_innerversion",
                    "cann_compatible_version", "cann_install_time", "opp_path"):
            self.facts[key] = None
        self.facts["cann_installed_versions"] = []
        self.error("cann", f"no CANN toolkit found: neither {home}/cann (8.5+) nor {home}/ascend-toolkit/latest (<8.5)")

    def _cann_from(self, layout: str, cann_home: str, set_env: str) -> None:
        arch_dir = os.path.join(cann_home, f"{self.arch}-linux")
        info_path = os.path.join(arch_dir, "ascend_toolkit_install.info")
        info = parse_kv(read_text(info_path) or "")
        cfg_text = None
        for cand in (os.path.join(cann_home, "version.cfg"), os.path.join(os.path.dirname(cann_home), "latest", "version.cfg")):
            cfg_text = read_text(cand)
            if cfg_text is not None:
                break
        cfg = parse_version_cfg(cfg_text or "")
        version = running_cann_version(cfg) or kv_get(info, "version")
        if version is None:
            opp = parse_kv(read_text(os.path.join(cann_home, "opp", "version.info")) or "")
            version = kv_get(opp, "version_dir")
        if version is None:
            self.error("cann", f"{info_path} has no version= line and version.cfg names no running version")
        installed = sorted(set(cfg.get("toolkit_installed_version") or ([version] if version else [])))
        self.facts.update({
            "cann_version": version,
            "cann_layout": layout,
            "cann_home": cann_home,
            "cann_set_env": set_env if os.path.isfile(set_env) else None,
            "cann_installed_versions": installed,
            "cann_innerversion": kv_get(info, "innerversion"),
            "cann_compatible_version": kv_get(info, "compatible_version"),
            "cann_install_time": mtime_iso(info_path),
            "opp_path": os.path.join(cann_home, "opp"),
        })
        ops_info = parse_kv(read_text(os.path.join(arch_dir, "ascend_ops_install.info")) or "")
        self.facts["cann_ops_package"] = kv_get(ops_info, "package_name")
        if not os.path.isfile(set_env):
            self.error("cann", f"{set_env} not found: the CANN environment script is missing")

    # --- npu-smi ------------------------------------------------------------------------------
    def npu(self) -> None:
        self.facts.update({"npu_smi_version": None, "chips": [], "npu_count": 0, "device_count": 0,
                           "chip_name": None, "npu_name": None, "soc_version": None, "product_type": None})
        smi = self.p["npu_smi"]
        if not (os.path.isabs(smi) and os.access(smi, os.X_OK)) and shutil.which(smi) is None:
            self.error("npu-smi", f"{smi} not found in PATH: driver not installed or tools not on PATH")
            return
        rc, out, err = self.run([smi, "info"])
        if rc != 0:
            self.error("npu-smi", f"'{smi} info' failed (rc={rc}): {(err or out).strip()[:300]}")
            return
        table = parse_npu_smi_info(out)
        chips = table["chips"]
        self.facts["npu_smi_version"] = table["version"]
        if not chips:
            self.error("npu-smi", "'npu-smi info' lists no NPU: cards not visible to the driver")
            return
        rc, mout, _unused = self.run([smi, "info", "-m"])
        logic = {(r["npu_id"], r["chip_id"]): r for r in parse_npu_smi_map(mout)} if rc == 0 else {}
        for index, chip in enumerate(chips):
            row = logic.get((chip["npu_id"], chip["chip_id"]))
            chip["logic_id"] = row["chip_logic_id"] if row and row["chip_logic_id"] is not None else index
        self.facts["chips"] = chips
        self.facts["npu_count"] = len({c["npu_id"] for c in chips})
        self.facts["device_count"] = len(chips)
        first = chips[0]["npu_id"]
        rc, bout, _unused = self.run([smi, "info", "-t", "board", "-i", str(first)])
        board = parse_board(bout) if rc == 0 else {}
        chip_board: dict = {}
        if not board.get("Chip Name"):
            rc, cout, _unused = self.run([smi, "info", "-t", "board", "-i", str(first), "-c", str(chips[0]["chip_id"])])
            chip_board = parse_board(cout) if rc == 0 else {}
        soc = soc_version_from_board(board, chip_board) or soc_version_from_name(chips[0]["name"])
        merged = {**chip_board, **{k: v for k, v in board.items() if v}}
        self.facts["chip_name"] = merged.get("Chip Name") or chips[0]["name"]
        self.facts["npu_name"] = merged.get("NPU Name")
        self.facts["soc_version"] = soc
        rc, pout, _unused = self.run([smi, "info", "-t", "product", "-i", str(first)])
        self.facts["product_type"] = product_type_from(pout) if rc == 0 else None
        if soc is None:
            self.error("npu-smi", f"cannot derive the SoC from chip name {chips[0]['name']!r}")

    # --- host ---------------------------------------------------------------------------------
    def host(self) -> None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:
            cpus = os.cpu_count() or 1
        self.facts["cpu_count"] = cpus
        self.facts["mem_total_mb"] = parse_meminfo_total_mb(read_text("/proc/meminfo") or "")
        disk = {}
        for path in self.p["disk_paths"]:
            probe = path
            while probe and not os.path.exists(probe):
                probe = os.path.dirname(probe)
            try:
                st = os.statvfs(probe or "/")
                disk[path] = st.f_bavail * st.f_frsize // (1024 * 1024)
            except OSError:
                disk[path] = None
        self.facts["disk_free_mb"] = disk

    def python(self) -> None:
        keys = ("python_version", "torch_version", "torch_npu_version")
        rc, out, err = self.run([self.p["python"], "-c", VERSIONS_SCRIPT])
        try:
            data = json.loads(out) if rc == 0 else None
        except ValueError:
            data = None
        if data is None:
            self.error("python", f"'{self.p['python']}' did not run: {(err or out).strip()[:200]}")
            data = {}
        for k in keys:
            self.facts[k] = data.get(k)
        self.facts["python_site_dirs"] = data.get("site_dirs") or []

    def package(self) -> None:
        manifest = read_manifest(self.p["state_dir"])
        self.facts["fa_package"] = manifest
        if self.p["check_drift"]:
            st = package_state(manifest, self.facts.get("cann_version"), self.facts.get("cann_install_time"))
        else:
            st = {"state": "installed" if manifest else "absent", "detail": "drift check disabled"}
        self.facts["fa_package_state"] = st["state"]
        self.facts["fa_package_detail"] = st["detail"]
        self.facts["fa_last_verify"] = read_verify_record(self.p["state_dir"])
        # the one place that decides whether the installed package passed its last check (preflight's verdict reads
        # it): passed, failed, or none (never verified, or its verification was interrupted)
        self.facts["fa_verify_state"] = verification_state(manifest, self.facts["fa_last_verify"])
        self.facts["fa_last_verify_failed"] = self.facts["fa_verify_state"] == VERIFY_FAILED

    def collect(self, npu: bool = True) -> dict:
        """Every fact; with ``npu=False`` all but npu-smi's (then :meth:`probe_npu` or :meth:`reuse_npu`)."""
        self.driver_firmware()
        self.cann()
        self.host()
        self.python()
        self.package()
        self.facts["errors"] = self.errors
        self.facts["fingerprint"] = fingerprint({
            "ascend_home": self.p["ascend_home"], "state_dir": self.p["state_dir"],
            "install_info": self.p["install_info"], "python": self.p["python"],
            "site_dirs": self.facts["python_site_dirs"], "arch": self.arch})
        if npu:
            self.probe_npu()
        return self.facts

    def probe_npu(self) -> None:
        self.npu()
        self.facts["npu_facts_from"] = "npu-smi"
        self.facts["npu_probed_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._soc()

    def reuse_npu(self, previous: dict) -> None:
        self.facts.update({k: previous.get(k) for k in NPU_KEYS})
        self.facts["npu_facts_from"] = "reused"
        self.facts["npu_probed_at"] = previous.get("npu_probed_at")
        self._soc()

    def _soc(self) -> None:
        fam = soc_family(self.facts.get("soc_version"))
        ok, why = fa_support(fam)
        if is_bare_910b(self.facts.get("chip_name")):   # first-generation 910B, not the A2 family
            fam, ok, why = None, False, FIRST_GEN_910B_REASON
        self.facts["product_series"] = product_series(self.facts.get("product_type"))
        self.facts["soc_family"] = fam
        self.facts["fa_supported"] = ok
        self.facts["fa_supported_reason"] = why
        self._package_for_soc(fam)

    def _package_for_soc(self, fam: str | None) -> None:
        """Check the package's kernels against the SoC just read (package() ran before npu-smi: it used the SoC
        recorded at install); only when the two differ, so a converged host reads its tree once."""
        manifest = self.facts.get("fa_package")
        if not (manifest and fam and self.p["check_drift"]) or manifest_kernels(manifest)[0] == fam:
            return
        if self.facts.get("fa_package_state") not in ("installed", "kernels_missing"):
            return
        st = package_state(manifest, self.facts.get("cann_version"), self.facts.get("cann_install_time"), soc_family=fam)
        self.facts["fa_package_state"] = st["state"]
        self.facts["fa_package_detail"] = st["detail"]


NPU_KEYS = ("npu_smi_version", "chips", "npu_count", "device_count", "chip_name", "npu_name", "soc_version",
            "product_type")


def manifest_matches(params: dict, facts: dict) -> bool:
    """Package state ``installed`` and the manifest has every ``env_when`` key with that value."""
    manifest = facts.get("fa_package") or {}
    if facts.get("fa_package_state") != "installed" or not manifest:
        return False
    return all(key in manifest and manifest[key] is not None and str(manifest[key]) == str(want)
               for key, want in (params.get("env_when") or {}).items())


def npu_facts_to_reuse(params: dict, facts: dict, env: dict) -> dict | None:
    """The earlier run's npu-smi facts when they may stand in for a new probe (see option reuse_npu_facts)."""
    prev = params.get("reuse_npu_facts") or {}
    if not prev.get("chips") or not prev.get("soc_version") or prev.get("driver_version") != facts.get("driver_version"):
        return None
    if not params.get("env_when") or not manifest_matches(params, facts) or (env or {}).get("problems"):
        return None
    if facts.get("fa_verify_state") != "passed":
        return None  # a card failed the last check, or it never completed: ask npu-smi again (health, HBM)
    return prev


def env_applies(params: dict, facts: dict) -> bool:
    """The preflight env checks run: checks given, package state ``installed``, manifest matching ``env_when``."""
    return bool(params.get("env_checks")) and manifest_matches(params, facts)


def env_result(params: dict, facts: dict) -> dict:
    """The ``env`` result: the preflight checks' outcome (``ran: true``) or ``not_run()``. Raises ValueError on
    malformed checks."""
    if not env_applies(params, facts):
        return not_run()
    arch = facts.get("arch") or platform.machine()
    out = check_environment(params["env_checks"], "preflight", {
        "host": params.get("env_host"),
        "state_dir": params["state_dir"],
        "ascend_home": params["ascend_home"],
        "cann_set_env": facts.get("cann_set_env") or "",
        "python": params.get("env_python") or "python3",
        "cann_version": facts.get("cann_version") or "",
        "libraries": [str(lib).replace("{arch}", arch) for lib in params.get("env_libraries") or []] or None,
        "timeout": params.get("env_timeout") or 180,
    })
    out["ran"] = True
    return out
