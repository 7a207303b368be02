"""The run's settings, checked on the controller before any host is touched.

Settings that later phases use (the rollout's batches and failure budget, the verification's timeout and cards, the
build's ``-j``, the booleans given as ``-e k=v`` strings) used to fail late or not at all: a negative timeout after
the package was installed, ``fa_rollout_batch=abc`` as an "Unexpected Exception" of Ansible's, ``fa_install_force=maybe``
silently false. Preflight's verdict takes these problems as blocking (``fa_preflight_ignore`` does not apply), so a
host with a bad setting stops in preflight with the variable, its value and the fix, and nothing is changed.

The string settings that reach a command or a path on a host or the controller (vendor, folders, commands, the
repository, the recipe's name, the hooks' argv) are checked against strict patterns (:data:`STRINGS`): a value is a
word or a path, never shell syntax (``;``, ``$(...)``, backticks, quotes, spaces, newlines) and never a way out of its
folder (``..``). The same patterns check the recipes' fields (``ascend_fa/recipes.py``).

A value of ``None`` means "not set here" (the role's default applies) and is not checked.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from .compat import ERROR, WARNING, Problem

CODE = "bad_setting"
# What Ansible's boolean filter and argument specs accept (ansible.module_utils.parsing.convert_bool)
TRUE_WORDS = {"y", "yes", "on", "1", "true", "t"}
FALSE_WORDS = {"n", "no", "off", "0", "false", "f"}
BOOL_SETTINGS = ("fa_install_force", "fa_rollout_verify", "fa_preflight_env_check", "fa_preflight_require_healthy",
                 "fa_preflight_fast_path", "fa_preflight_end_converged", "fa_preflight_quick_converged",
                 "fa_preflight_reuse_npu_facts", "fa_rollout_auto_rollback", "fa_verify_quick")
DEPRECATED_CODE = "deprecated_setting"
# Old names still honoured for one release, each with a warning naming its replacement (the roles read them).
_FAST_PATH = ("the three switches of the rerun fast path are one now; false turns the whole fast path off "
              "(every host gets the full check, npu-smi included)")
DEPRECATED: dict[str, tuple[str, str]] = {
    "fa_preflight_end_converged": ("fa_preflight_fast_path", _FAST_PATH),
    "fa_preflight_quick_converged": ("fa_preflight_fast_path", _FAST_PATH),
    "fa_preflight_reuse_npu_facts": ("fa_preflight_fast_path", _FAST_PATH),
    **{f"fa_rolling_{n}": (f"fa_rollout_{n}", "the role fa_rollout owns these variables, so they carry its name")
       for n in ("batch", "max_fail_percent", "verify", "auto_rollback", "drain_command", "undrain_command",
                 "drain_tasks", "undrain_tasks")},
}
SOURCES = ("pull", "push")   # fa_install_source (docs/distribution.md)
BATCH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
WHERE = "(-e, group_vars or host_vars)"


# The run's settings as preflight reads them (:func:`collect`, action plugin fa_preflight), in this order: each from
# its variable as given (None: not set, not checked); a replaced name's value stands in for its replacement while
# the replacement is not set (DEPRECATED), and the deprecated names are read too, to be warned about.
GATHERED: tuple[str, ...] = (
    "fa_install_force",
    "fa_rollout_verify",
    "fa_rollout_auto_rollback",
    "fa_rollout_batch",
    "fa_rollout_max_fail_percent",
    "fa_preflight_env_check",
    "fa_preflight_require_healthy",
    "fa_preflight_fast_path",
    "fa_rolling_verify",
    "fa_rolling_auto_rollback",
    "fa_rolling_batch",
    "fa_rolling_max_fail_percent",
    "fa_rolling_drain_command",
    "fa_rolling_undrain_command",
    "fa_rolling_drain_tasks",
    "fa_rolling_undrain_tasks",
    "fa_preflight_end_converged",
    "fa_preflight_quick_converged",
    "fa_preflight_reuse_npu_facts",
    "fa_preflight_expect_npus",
    "fa_build_jobs",
    "fa_build_jobs_cap",
    "fa_verify_timeout",
    "fa_verify_quick",
    "fa_verify_devices",
    "fa_vendor",
    "fa_install_path",
    "fa_state_dir",
    "fa_build_dir",
    "fa_ascend_home",
    "fa_python",
    "fa_npu_smi",
    "fa_repo_url",
    "fa_repo_bundle",
    "fa_recipe",
    "fa_artifact_host",
    "fa_artifact_store_dir",
    "fa_build_host",
    "fa_install_ldconfig_file",
    "fa_rollout_drain_command",
    "fa_verify_metrics_dir",
    "fa_rollout_slurm_node",
    "fa_rollout_slurm_host",
    "fa_rollout_k8s_node",
    "fa_rollout_kubectl_host",
    "fa_rollout_kubeconfig",
    "fa_rollout_undrain_command",
    "fa_install_source",
    "fa_install_seed_host",
    "fa_install_serve_port",
    "fa_install_serve_address",
    "fa_install_serve_timeout",
    "fa_install_fetch_timeout",
)
# the replacement -> the old name whose value it takes while it is not set itself
FALLBACK: dict[str, str] = {new: old for old, (new, _note) in DEPRECATED.items() if new.startswith("fa_rollout_")}


def collect(get: Any) -> dict[str, Any]:
    """The run's settings (variable -> value as given), read with ``get(name)`` (None when the variable is not
    defined). The shared store's folder counts only with ``fa_artifact_store: host``."""
    out: dict[str, Any] = {}
    for name in GATHERED:
        value = get(name)
        if value is None and name in FALLBACK:
            value = get(FALLBACK[name])
        out[name] = value
    if (get("fa_artifact_store") or "local") != "host":
        out["fa_artifact_store_dir"] = None
    return out


def _problem(name: str, value: Any, needed: str, fix: str) -> dict[str, str]:
    return Problem(CODE, ERROR, f"setting {name} is not valid", repr(value), needed, f"{fix} {WHERE}").as_dict()


# --- strict patterns for the values that reach commands and paths (re.fullmatch: no trailing newline slips by) ---
# build.sh --vendor_name takes [A-Za-z0-9_-]+ (ascend_sim/upstream/tree/build.sh, ascend-facts.md); the vendor also
# names vendors/<vendor>_transformer and load_priority= in config.ini: a letter, then letters, digits, '_'.
VENDOR = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
PATH_CHARS = re.compile(r"/[A-Za-z0-9._/+-]*")
REL_PATH_CHARS = re.compile(r"[A-Za-z0-9._+-][A-Za-z0-9._/+-]*")
COMMAND_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")
RECIPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,252}")
REPO_URL = re.compile(r"(?:https|ssh|git|file)://[A-Za-z0-9._~/:@%+=-]+")
SCP_URL = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~+][A-Za-z0-9._~/+-]*")
PATH_RULE = "an absolute path of letters, digits and . _ / + - (no '..' component, no '//', not '/' alone)"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _dotdot(path: str) -> bool:
    return ".." in path.split("/")


def abs_path_ok(value: Any) -> bool:
    """An absolute path of a strict charset: no '..' component, no '//', not the root itself."""
    return (isinstance(value, str) and len(value) <= 4096 and PATH_CHARS.fullmatch(value) is not None
            and "//" not in value and not _dotdot(value) and value.strip("/") != "")


def rel_path_ok(value: Any) -> bool:
    """A relative path of a strict charset inside its folder: no '..' component, no '//', no leading '/' or '-'."""
    return (isinstance(value, str) and len(value) <= 4096 and REL_PATH_CHARS.fullmatch(value) is not None
            and "//" not in value and not _dotdot(value))


def command_ok(value: Any) -> bool:
    """A command: a bare name found on PATH (no leading '-') or an absolute path, same charset as paths."""
    return isinstance(value, str) and (COMMAND_NAME.fullmatch(value) is not None or abs_path_ok(value))


def repo_url_ok(value: Any) -> bool:
    """A git repository: https://, ssh://, git:// or file:// URL, user@host:path, or an absolute path."""
    if not isinstance(value, str) or len(value) > 2048:
        return False
    if REPO_URL.fullmatch(value):
        rest = value.split("://", 1)[1]
        return not _dotdot(rest) and not rest.startswith("-")
    return (SCP_URL.fullmatch(value) is not None and not _dotdot(value.split(":", 1)[1])) or abs_path_ok(value)


def vendor_ok(value: Any) -> bool:
    return isinstance(value, str) and VENDOR.fullmatch(value) is not None


def recipe_name_ok(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 200 and RECIPE_NAME.fullmatch(value) is not None


def host_name_ok(value: Any) -> bool:
    return isinstance(value, str) and HOST_NAME.fullmatch(value) is not None


def argv_ok(value: Any) -> bool:
    """A hook command as argv: a list of strings, the first a command, none with a newline, NUL or control byte."""
    if not isinstance(value, list):
        return False
    if not value:
        return True
    return (all(isinstance(v, str) and not CONTROL.search(v) and len(v) <= 4096 for v in value)
            and command_ok(value[0]))


# variable -> (check, what is allowed, the fix); "" (unset) is fine for those marked optional
STRINGS: dict[str, tuple[Any, str, str, bool]] = {
    "fa_vendor": (vendor_ok, "a letter, then up to 31 letters, digits or '_' (build.sh --vendor_name; the package "
                  "installs into vendors/<vendor>_transformer)", "set fa_vendor to e.g. ascendfa", False),
    "fa_install_path": (abs_path_ok, f"empty (the CANN opp) or {PATH_RULE}",
                        "set fa_install_path to e.g. /opt/ascend-fa, or leave it empty", True),
    "fa_state_dir": (abs_path_ok, PATH_RULE, "set fa_state_dir to e.g. /var/lib/ascend-fa", False),
    "fa_build_dir": (abs_path_ok, PATH_RULE, "set fa_build_dir to e.g. /var/tmp/ascend-fa", False),
    "fa_ascend_home": (abs_path_ok, PATH_RULE, "set fa_ascend_home to e.g. /usr/local/Ascend", False),
    "fa_install_ldconfig_file": (abs_path_ok, PATH_RULE, "set fa_install_ldconfig_file to e.g. "
                                 "/etc/ld.so.conf.d/ascend-fa.conf", False),
    "fa_artifact_store_dir": (abs_path_ok, PATH_RULE, "set fa_artifact_store_dir to e.g. /srv/ascend-fa/artifacts",
                              False),
    "fa_python": (command_ok, "a command name (letters, digits, . _ + -, not starting with '-') or " + PATH_RULE,
                  "set fa_python to e.g. python3 or /usr/local/python3.11/bin/python3", False),
    "fa_npu_smi": (command_ok, "a command name (letters, digits, . _ + -, not starting with '-') or " + PATH_RULE,
                   "set fa_npu_smi to e.g. npu-smi or /usr/local/sbin/npu-smi", False),
    "fa_repo_url": (repo_url_ok, "empty (the recipe's repo_url) or an https://, ssh://, git:// or file:// URL, "
                    "user@host:path or an absolute path, of letters, digits and . _ ~ / : @ % + = - (no '..')",
                    "set fa_repo_url to e.g. https://git.example.internal/mirrors/ops-transformer.git", True),
    "fa_repo_bundle": (abs_path_ok, f"empty or {PATH_RULE} on the controller",
                       "set fa_repo_bundle to e.g. /srv/bundles/ops-transformer.bundle, or leave it empty", True),
    "fa_recipe": (recipe_name_ok, "a recipe name: a letter or digit, then letters, digits, '.', '_', '-' "
                  "(a file <name>.yml in fa_recipe_dirs or recipes/)", "set fa_recipe to e.g. ops-transformer-v9.0.1",
                  False),
    "fa_build_host": (host_name_ok,
                      "empty (each build key's first host) or an inventory host name (letters, digits, . _ : -)",
                      "set fa_build_host to a host of the inventory, or leave it empty", True),
    "fa_artifact_host": (host_name_ok,
                         "empty or an inventory host name (letters, digits, . _ : -)",
                         "set fa_artifact_host to a host of the inventory, or leave it empty", True),
    "fa_install_seed_host": (host_name_ok, "empty (each build key's own seed: the artifact host, the build host or "
                             "a host that needs the package) or an inventory host name (letters, digits, . _ : -)",
                             "set fa_install_seed_host to a host of the inventory, or leave it empty", True),
    "fa_install_serve_address": (host_name_ok, "empty (the seed's ansible_host, else its inventory name) or the host "
                                 "name or IP address the other hosts reach the seed on (letters, digits, . _ : -)",
                                 "set fa_install_serve_address to e.g. 10.0.0.11, or leave it empty", True),
    "fa_verify_metrics_dir": (abs_path_ok, f"empty (no metrics file) or {PATH_RULE}",
                              "set fa_verify_metrics_dir to node_exporter's textfile folder, e.g. "
                              "/var/lib/node_exporter/textfile_collector, or leave it empty", True),
    "fa_rollout_slurm_node": (host_name_ok, "empty (the host's short name) or a Slurm node name (letters, digits, "
                              ". _ : -)", "set fa_rollout_slurm_node to the node's NodeName in slurm.conf", True),
    "fa_rollout_slurm_host": (host_name_ok, "empty (the host itself) or an inventory host name (letters, digits, "
                              ". _ : -)", "set fa_rollout_slurm_host to a host where scontrol works", True),
    "fa_rollout_k8s_node": (host_name_ok, "empty (the host's name) or a Kubernetes node name (letters, digits, . _ : -)",
                            "set fa_rollout_k8s_node to the name 'kubectl get nodes' shows", True),
    "fa_rollout_kubectl_host": (host_name_ok, "an inventory host name, or localhost (letters, digits, . _ : -)",
                                "set fa_rollout_kubectl_host to the host that has kubectl and the kubeconfig", True),
    "fa_rollout_kubeconfig": (abs_path_ok, f"empty (kubectl's default) or {PATH_RULE} on fa_rollout_kubectl_host",
                              "set fa_rollout_kubeconfig to e.g. /etc/ascend-fa/kubeconfig, or leave it empty", True),
    "fa_rollout_drain_command": (argv_ok, "a list of argv words (run without a shell), the first a command name or "
                                 "absolute path, none with a newline, NUL or other control character",
                                 "set fa_rollout_drain_command to e.g. [systemctl, stop, vllm] (a YAML list)", True),
    "fa_rollout_undrain_command": (argv_ok, "a list of argv words (run without a shell), the first a command name "
                                   "or absolute path, none with a newline, NUL or other control character",
                                   "set fa_rollout_undrain_command to e.g. [systemctl, start, vllm] (a YAML list)",
                                   True),
}


def string_problems(s: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for name, (check, needed, fix, optional) in STRINGS.items():
        if name not in s:
            continue
        value = s[name]
        if optional and value in ("", []):
            continue
        if not check(value):
            out.append(_problem(name, value, needed, fix))
    return out


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
    out: list[dict[str, str]] = string_problems(s)
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
    for name, low, high, fix in (("fa_install_serve_port", 1024, 65535, "a free TCP port open between the hosts, "
                                  "e.g. 58642"),
                                 ("fa_install_serve_timeout", 1, None, "seconds the seed's server may run, e.g. 7200"),
                                 ("fa_install_fetch_timeout", 1, None, "seconds a pull may stall, e.g. 60")):
        if name in s:
            n = _int(s[name])
            if n is None or n < low or (high is not None and n > high):
                needed = f"an integer from {low} to {high}" if high else f"an integer >= {low}"
                out.append(_problem(name, s[name], needed, f"set {name} to {fix}"))
    if "fa_install_source" in s and s["fa_install_source"] not in SOURCES:
        out.append(_problem("fa_install_source", s["fa_install_source"], " or ".join(SOURCES),
                            "set fa_install_source to pull (hosts fetch the package from one seed host per build key) "
                            "or push (the controller sends it to every host)"))
    if "fa_rollout_batch" in s and not batch_ok(s["fa_rollout_batch"]):
        out.append(_problem("fa_rollout_batch", s["fa_rollout_batch"],
                            "a host count >= 1, a percentage such as '25%', or a list of those such as [1, '10%']",
                            "set fa_rollout_batch to e.g. 16, '25%' or [1, '10%', '25%']"))
    if "fa_rollout_max_fail_percent" in s and not percent_ok(s["fa_rollout_max_fail_percent"]):
        out.append(_problem("fa_rollout_max_fail_percent", s["fa_rollout_max_fail_percent"], "a number from 0 to 100",
                            "set fa_rollout_max_fail_percent to the share of a batch that may fail, e.g. 10"))
    if "fa_verify_devices" in s:
        ok, needed = _devices(s["fa_verify_devices"], device_count)
        if not ok:
            out.append(_problem("fa_verify_devices", s["fa_verify_devices"], needed,
                                "list the cards to check (-e fa_verify_devices=0,3, or a YAML list), or leave "
                                "fa_verify_devices empty for every card"))
    return out


def deprecations(settings: dict[str, Any] | None) -> list[dict[str, str]]:
    """Warnings (code ``deprecated_setting``) for the old names in ``settings`` that are set: what replaces each."""
    out = []
    for name, value in (settings or {}).items():
        if value is None or name not in DEPRECATED:
            continue
        new, note = DEPRECATED[name]
        out.append(Problem(DEPRECATED_CODE, WARNING, f"setting {name} is deprecated", repr(value), new,
                           f"set {new} instead {WHERE}: {note}; {name} goes in the next release").as_dict())
    return out


# --- the roles' own argument specs, checked once per host in preflight ------------------------------------------------
# The deploy and upgrade playbooks import these roles with rolespec_validate: false: Ansible's check is a task per
# role and host (a forked worker each, about 0.03-0.04 CPU s of the controller: benchmarks/README.md); fa_install
# and fa_verify, imported by fa_rollout, had no such task already.
# Preflight checks the same specs (meta/argument_specs.yml, entry point main) for the whole run in its one task, and
# a bad value is a blocking problem like the ones above. fa_common, the first role of every play (a dependency),
# keeps Ansible's own check of its spec. The variables of GATHERED are checked above, with stricter rules.
SPEC_ROLES = ("fa_preflight", "fa_fetch", "fa_build", "fa_install", "fa_verify", "fa_rollout")
ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"


@functools.cache
def role_options(role: str, roles_dir: str = str(ROLES_DIR)) -> dict[str, dict[str, Any]]:
    """The options of ``role``'s argument spec (entry point main); {} when the role has none."""
    import yaml

    path = Path(roles_dir) / role / "meta" / "argument_specs.yml"
    if not path.is_file():
        return {}
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return ((data or {}).get("argument_specs") or {}).get("main", {}).get("options") or {}


def _needed(spec: dict[str, Any]) -> str:
    out = spec.get("type", "str")
    if spec.get("elements"):
        out += f" of {spec['elements']}"
    if spec.get("choices"):
        out += ", one of " + ", ".join(map(str, spec["choices"]))
    return out


def spec_problems(get: Any, roles: tuple[str, ...] = SPEC_ROLES, roles_dir: str = str(ROLES_DIR)
                  ) -> list[dict[str, str]]:
    """Problems (code ``bad_setting``) of the variables that ``roles``' argument specs describe, each read with
    ``get(name)`` (None: not set, not checked) and checked alone against its spec, as Ansible's role check would."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    out: list[dict[str, str]] = []
    seen: set[str] = set(GATHERED)
    for role in roles:
        for name, spec in role_options(role, roles_dir).items():
            if name in seen:
                continue
            seen.add(name)
            value = get(name)
            if value is None:
                continue
            errors = ArgumentSpecValidator({name: spec}).validate({name: value}).error_messages
            if errors:
                out.append(Problem(CODE, ERROR, f"setting {name} is not valid: {errors[0]}", repr(value),
                                   _needed(spec), f"give {name} as roles/{role}/meta/argument_specs.yml describes "
                                   f"{WHERE}").as_dict())
    return out
