"""Build planning: the build key, the job count, and which host builds what.

The build key is where "build once" lives: hosts with the same (recipe, commit, soc_family, CANN, arch, vendor,
build command and ops) share one build and one artifact. Everything that makes the package different is in it: the
vendor (build.sh --vendor_name, the package's vendors/<vendor>_transformer) and the recipe's build command template
and op list (the flags build.sh gets). The job count (-j) is not: it changes how fast, not what is built.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def package_spec(recipe: dict) -> dict[str, Any]:
    """What of a recipe's build section makes the package (the command template with its flags, the ops)."""
    build = recipe.get("build") or {}
    return {"command": build.get("command") or "", "ops": list(build.get("ops") or [])}


def build_key(recipe: str, commit: str, soc_family: str, cann_version: str, arch: str, vendor: str = "",
              spec: dict[str, Any] | None = None) -> str:
    raw = json.dumps([recipe, commit, soc_family, cann_version, arch, vendor, spec or {}], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def build_jobs(cpu_count: int | None, mem_total_mb: int | None, mem_per_job_mb: int = 4096,
               cap: int = 64, override: int | None = None) -> int:
    """``-j`` = min(CPUs, memory / per-job memory, cap), at least 1; ``override`` wins when set (> 0).

    Memory, not the CPU count, is what gets builds OOM-killed (field-errors.md: CANN's build.sh defaults
    to 2 x nproc).
    """
    if override:
        return max(1, int(override))
    cpus = max(1, int(cpu_count or 1))
    by_mem = max(1, int((mem_total_mb or mem_per_job_mb) // max(1, mem_per_job_mb)))
    return max(1, min(cpus, by_mem, int(cap)))


def plan(hosts: dict[str, dict], build_host: str | None = None) -> dict[str, dict]:
    """Group hosts by build key. ``hosts`` maps host name -> {build_key, soc_family, cann_version, arch, ...}.

    Returns build_key -> {build_host, hosts, soc_family, cann_version, arch}. The build host is
    ``build_host`` when given, else the first host of the group (in inventory order).
    """
    groups: dict[str, dict] = {}
    for name, info in hosts.items():
        key = info.get("build_key")
        if not key:
            continue
        g = groups.setdefault(key, {
            "build_host": build_host or name,
            "hosts": [],
            **{k: info.get(k) for k in ("soc_family", "cann_version", "arch", "jobs", "cann_set_env")},
        })
        g["hosts"].append(name)
    return groups
