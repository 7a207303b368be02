"""The run's settings, checked on the controller before any host is touched.

Settings that later phases use (the rollout's batches and failure budget, the verification's timeout and cards, the
build's ``-j``, the booleans given as ``-e k=v`` strings) used to fail late or not at all: a negative timeout after
the package was installed, ``fa_rolling_batch=abc`` as an "Unexpected Exception" of Ansible's, ``fa_install_force=maybe``
silently false. Preflight's verdict takes these problems as blocking (``fa_preflight_ignore`` does not apply), so a
host with a bad setting stops in preflight with the variable, its value and the fix, and nothing is changed.

A value of ``None`` means "not set here" (the role's default applies) and is not checked.
"""

from __future__ import annotations

import re
from typing import Any

from ascend_fa.compat import ERROR, Problem

CODE = "bad_setting"
# What Ansible's boolean filter and argument specs accept (ansible.module_utils.parsing.convert_bool)
TRUE_WORDS = {"y", "yes", "on", "1", "true", "t"}
FALSE_WORDS = {"n", "no", "off", "0", "false", "f"}
BOOL_SETTINGS = ("fa_install_force", "fa_rolling_verify", "fa_preflight_env_check", "fa_preflight_require_healthy",
                 "fa_preflight_end_converged", "fa_preflight_quick_converged", "fa_preflight_reuse_npu_facts",
                 "fa_rolling_auto_rollback", "fa_verify_quick")
BATCH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
WHERE = "(-e, group_vars or host_vars)"


def _problem(name: str, value: Any, needed: str, fix: str) -> dict[str, str]:
    return Problem(CODE, ERROR, f"setting {name} is not valid", repr(value), needed, f"{fix} {WHERE}").as_dict()


def is_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return value in (0, 1)
    return isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS


def _int(value: Any) -> int | None:
    """An integer given as int or digit string (``-e k=5`` gives a string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def batch_ok(value: Any) -> bool:
    """A ``serial`` value: a count >= 1, a percentage in (0, 100], or a non-empty list of those."""
    items = value if isinstance(value, list) else [value]
    if not items:
        return False
    for item in items:
        n = _int(item)
        if n is not None:
            if n < 1:
                return False
            continue
        m = BATCH.match(item) if isinstance(item, str) else None
        if not m or not 0 < float(m.group(1)) <= 100:
            return False
    return True


def percent_ok(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool) and 0 <= number <= 100


def _devices(value: Any, device_count: int | None) -> tuple[bool, str]:
    if isinstance(value, str):  # "0,3" as -e gives it (the role's list argument splits it the same way)
        value = [v.strip() for v in value.split(",")] if value.strip() else []
    if not isinstance(value, list):
        return False, "a list of card ids, e.g. [0, 3] (empty: every card)"
    ids = [_int(v) for v in value]
    if any(i is None or i < 0 for i in ids):
        return False, "card ids: integers >= 0"
    if device_count and any(i >= device_count for i in ids):
        return False, f"card ids of this host: 0..{device_count - 1} ({device_count} devices)"
    return True, ""


def problems(settings: dict[str, Any] | None, device_count: int | None = None) -> list[dict[str, str]]:
    """Problems (code ``bad_setting``, severity error) of ``settings`` (variable name -> value as given)."""
    s = {k: v for k, v in (settings or {}).items() if v is not None}
    out: list[dict[str, str]] = []
    for name in BOOL_SETTINGS:
        if name in s and not is_bool(s[name]):
            out.append(_problem(name, s[name], "true or false", f"set {name} to true or false"))
    for name, low, fix in (("fa_verify_timeout", 1, "seconds each card's check may run, e.g. 300"),
                           ("fa_build_jobs", 0, "0 (derived from CPUs and memory) or the -j to force"),
                           ("fa_build_jobs_cap", 1, "the largest -j to derive, e.g. 64"),
                           ("fa_preflight_expect_npus", 0, "the NPU count each host must show (0: any)")):
        if name in s:
            n = _int(s[name])
            if n is None or n < low:
                out.append(_problem(name, s[name], f"an integer >= {low}", f"set {name} to {fix}"))
    if "fa_rolling_batch" in s and not batch_ok(s["fa_rolling_batch"]):
        out.append(_problem("fa_rolling_batch", s["fa_rolling_batch"],
                            "a host count >= 1, a percentage such as '25%', or a list of those such as [1, '10%']",
                            "set fa_rolling_batch to e.g. 16, '25%' or [1, '10%', '25%']"))
    if "fa_rolling_max_fail_percent" in s and not percent_ok(s["fa_rolling_max_fail_percent"]):
        out.append(_problem("fa_rolling_max_fail_percent", s["fa_rolling_max_fail_percent"], "a number from 0 to 100",
                            "set fa_rolling_max_fail_percent to the share of a batch that may fail, e.g. 10"))
    if "fa_verify_devices" in s:
        ok, needed = _devices(s["fa_verify_devices"], device_count)
        if not ok:
            out.append(_problem("fa_verify_devices", s["fa_verify_devices"], needed,
                                "list the cards to check (-e fa_verify_devices=0,3, or a YAML list), or leave "
                                "fa_verify_devices empty for every card"))
    return out
