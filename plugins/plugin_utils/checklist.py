"""The seed's troubleshooting checklist, as checks on a host's facts (besides the version matrix).

"Is the package installed? Is the driver loaded, does npu-smi see the cards? Do the versions match?
Is there enough memory?" (seed blog, 排查清单) plus what a cluster operator checks before a build:
free disk, build memory, card health, busy HBM.
"""

from __future__ import annotations

from .compat import ERROR, WARNING, Problem

DEFAULTS = {
    "require_healthy": True,
    "expect_npus": 0,
    "max_hbm_used_pct": 90,
    "min_state_disk_mb": 256,
    "min_build_disk_mb": 2048,
    "min_build_mem_mb": 0,
    "build_dir": "/var/tmp/ascend-fa",
    "state_dir": "/var/lib/ascend-fa",
    "is_build_host": False,
}


def problems(facts: dict, opts: dict | None = None) -> list[Problem]:
    o = {**DEFAULTS, **(opts or {})}
    out: list[Problem] = []
    for err in facts.get("errors") or []:
        if err.get("source") == "npu-smi":
            out.append(Problem("npu_not_visible", ERROR, f"{err['source']}: {err['reason']}", "not available",
                               "npu-smi listing every NPU",
                               "install/load the NPU driver (npu-smi info must list the cards), then rerun"))
    chips = facts.get("chips") or []
    if o["require_healthy"]:
        for c in chips:
            if str(c.get("health", "")).upper() != "OK":
                out.append(Problem("npu_unhealthy", ERROR, f"NPU {c.get('npu_id')} chip {c.get('chip_id')} "
                                   f"({c.get('bus_id')}) is not healthy", c.get("health"), "OK",
                                   f"check 'npu-smi info -t health -i {c.get('npu_id')}' and the device log; "
                                   "repair or drain the card, then rerun"))
    want = int(o["expect_npus"] or 0)
    if want and facts.get("npu_count") is not None and facts["npu_count"] != want:
        out.append(Problem("npu_count", ERROR, "NPU count differs from the expected", facts.get("npu_count"), want,
                           "a card is missing from npu-smi: check its seating, power and the driver log"))
    pct = int(o["max_hbm_used_pct"] or 0)
    if pct:
        for c in chips:
            total, used = c.get("hbm_total_mb"), c.get("hbm_used_mb")
            if total and used is not None and used * 100 > pct * total:
                out.append(Problem("hbm_busy", WARNING, f"NPU {c.get('npu_id')} chip {c.get('chip_id')} HBM is "
                                   f"{used * 100 // total}% used", f"{used}/{total} MB", f"<= {pct}%",
                                   "stop the process holding it (npu-smi info shows it) or expect verification "
                                   "to fail with out-of-memory on that card"))
    disk = facts.get("disk_free_mb") or {}
    _disk(out, disk, o["state_dir"], int(o["min_state_disk_mb"]), "state_disk")
    if o["is_build_host"]:
        _disk(out, disk, o["build_dir"], int(o["min_build_disk_mb"]), "build_disk")
        mem = facts.get("mem_total_mb")
        need = int(o["min_build_mem_mb"] or 0)
        if need and mem is not None and mem < need:
            out.append(Problem("build_memory", ERROR, "build host has too little memory", f"{mem} MB", f">= {need} MB",
                               "use a bigger build host (fa_build_host) or lower fa_build_jobs"))
    return out


def _disk(out: list[Problem], disk: dict, path: str, need: int, code: str) -> None:
    free = disk.get(path)
    if free is not None and need and free < need:
        out.append(Problem(code, ERROR, f"not enough free disk in {path}", f"{free} MB", f">= {need} MB",
                           f"free space in {path} or point the setting at a larger filesystem"))
