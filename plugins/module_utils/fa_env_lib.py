# Copyright: ascend-fa contributors
# Apache-2.0
"""The fresh-login-shell environment check (checks as data in ``plugins/plugin_utils/data/env_checks.yml``), shared by the
modules that run it: fa_env_check (alone), ascend_facts (phase preflight, in the facts round trip) and fa_verify
(phase verify, before the kernel check). Also the versions probe (python, torch, torch_npu versions from package
metadata) that ascend_facts and the fresh shell both run. The ``torch_pair`` check applies the pairing rule of
``fa_torch_pair.py`` (the one compat.py applies on the controller).

Standard library only (shipped to hosts as ``plugins/module_utils/fa_env_lib.py``).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import subprocess
import sys

from ansible_collections.ascend.fa.plugins.module_utils.fa_known_errors import diagnosis
from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import (
    KERNEL_ROOT,
    kernel_problems,
    manifest_kernels,
    read_manifest,
)
from ansible_collections.ascend.fa.plugins.module_utils.fa_torch_pair import torch_pair_problems

# The versions probe: run with the interpreter whose torch / torch_npu are reported (stdlib only, any Python 3),
# prints one JSON object. ascend_facts runs it directly; the fresh shell's probe runs it for the python checks.
VERSIONS_SCRIPT = r"""
import json, platform, sys
try:
    from importlib import metadata
except ImportError:
    metadata = None
def dist(name):
    if metadata is None:
        return None, None
    for n in (name, name.replace('_', '-')):
        try:
            d = metadata.distribution(n)
            return d.version, str(d.locate_file(''))
        except Exception:
            pass
    return None, None
torch, torch_npu = dist("torch"), dist("torch_npu")
print(json.dumps({"python_version": platform.python_version(), "executable": sys.executable,
                  "torch_version": torch[0], "torch_npu_version": torch_npu[0],
                  "site_dirs": sorted(set(d for d in (torch[1], torch_npu[1]) if d))}))
"""

OK, FAIL, SKIP, IGNORED = "ok", "fail", "skip", "ignored"
PACKAGE_ENV = "set_env.bash"
NNAL_SET_ENV = "/usr/local/Ascend/nnal/atb/set_env.sh"
TAIL = 1200

# ------------------------------------------------------------------------------------------------ the fresh shell
# The shell: source each script with no positional parameters (some set_env.sh parse "$@"), note how each ended,
# then exec the probe with the module's interpreter. Scripts' stdout goes to stderr so stdout carries the JSON.
SHELL = r"""
__fa_probe=$1; __fa_args=$2; __fa_py=$3; shift 3
__fa_scripts=("$@"); set --
__fa_st=""
for __fa_s in "${__fa_scripts[@]}"; do
  if [ -f "$__fa_s" ]; then
    source "$__fa_s" 1>&2 </dev/null
    __fa_st="${__fa_st}${__fa_s}=$?;"
  else
    __fa_st="${__fa_st}${__fa_s}=missing;"
  fi
done
export __FA_SOURCED="$__fa_st"
exec "$__fa_py" -c "$__fa_probe" "$__fa_args"
"""

# The probe: runs inside the fresh shell (the module's interpreter, stdlib only), prints one JSON object.
_PROBE = r'''
import ctypes, json, os, shutil, subprocess, sys

ENV_VARS = ("ASCEND_OPP_PATH", "ASCEND_CUSTOM_OPP_PATH", "ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "LD_LIBRARY_PATH",
            "PYTHONPATH", "PATH")
TAIL = 1200

VERSIONS = __VERSIONS_SCRIPT__

# pip check when pip is there; else the same check from the installed distributions' metadata (stdlib only).
# Its key/cmp are NOT a copy of fa_versions' ordering: they match PEP 440 requirements (==x.*, ~=, !=, markers) of
# Python packages, a different job from ordering Ascend versions (8.0.RC1 < 8.0.0, SPCn), and the program runs as
# `python -c` in the target interpreter (another Python than the module's), which can import nothing of ours: using
# fa_versions would mean pasting its source text into this string.
PEP440 = r"""
def norm(n):
    return re.sub(r"[-_.]+", "-", n).lower()
def key(v):
    out = []
    for part in re.split(r"[.+!-]", v.lower()):
        m = re.match(r"^(\d+)(.*)$", part)
        if m:
            out.append((1, int(m.group(1))))
            if m.group(2):
                out.append((0, m.group(2)))
        elif part:
            out.append((0, part))
    while out and out[-1] == (1, 0):
        out.pop()
    return out
def cmp(a, b):
    a, b = key(a), key(b)
    return (a > b) - (a < b)
def ok(ver, op, want):
    if op in ("==", "==="):
        if want.endswith(".*"):
            w = want[:-2].split(".")
            return ver.split(".")[:len(w)] == w
        return cmp(ver, want) == 0
    if op == "!=":
        return not ok(ver, "==", want)
    if op == ">=":
        return cmp(ver, want) >= 0
    if op == "<=":
        return cmp(ver, want) <= 0
    if op == ">":
        return cmp(ver, want) > 0
    if op == "<":
        return cmp(ver, want) < 0
    if op == "~=":
        parts = want.split(".")
        return cmp(ver, want) >= 0 and ok(ver, "==", ".".join(parts[:-1]) + ".*")
    return True
ENV = {"python_version": ".".join(platform.python_version_tuple()[:2]), "python_full_version": platform.python_version(),
       "sys_platform": sys.platform, "platform_system": platform.system(), "platform_machine": platform.machine(),
       "os_name": os.name, "implementation_name": sys.implementation.name,
       "platform_python_implementation": platform.python_implementation()}
Q = "[\\x27\\x22]"   # a quote, either kind
CMP = re.compile(r"(\w+)\s*(===|==|!=|<=|>=|~=|<|>|not in|in)\s*" + Q + r"([^\x27\x22]*)" + Q + "|" + Q
                 + r"([^\x27\x22]*)" + Q + r"\s*(not in|in)\s*(\w+)")
def marker_true(marker):
    def one(m):
        if m.group(1):
            var, op, val = m.group(1), m.group(2), m.group(3)
            if var == "extra":
                return "False"
            have = ENV.get(var)
            if have is None:
                return "False"
            if op in ("in", "not in"):
                return str((have in val) == (op == "in"))
            if var.endswith("version"):
                return str(ok(have, op, val))
            return str({"==": have == val, "!=": have != val}.get(op, False))
        val, op, var = m.group(4), m.group(5), m.group(6)
        have = ENV.get(var)
        return "False" if have is None else str((val in have) == (op == "in"))
    expr = CMP.sub(one, marker)
    if re.sub(r"\b(True|False|and|or|not)\b|[()\s]", "", expr):
        return False
    try:
        return bool(eval(expr, {"__builtins__": {}}, {}))
    except Exception:
        return False
"""

# The installed distributions by normalised name, and a requirement line's parts (name, extras, specifier, marker):
# shared by the two scripts below (after PEP440, which defines norm).
DISTRIBUTIONS = r"""
installed = {}
for d in metadata.distributions():
    name = d.metadata.get("Name")
    if name:
        installed.setdefault(norm(name), d)
REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(\(?[^;]*?\)?)\s*(?:;(.*))?$")
def unmet(version, spec):
    # True when version fails a clause of the specifier spec (clauses this check cannot read are passed)
    for clause in [c.strip() for c in spec.split(",") if c.strip()]:
        cm = re.match(r"^(===|==|!=|<=|>=|~=|<|>)\s*(\S+)$", clause)
        if cm and not ok(version, cm.group(1), cm.group(2)):
            return True
    return False
"""

PIP_CHECK = r"""
import importlib.util, json, re, subprocess, sys, platform, os
if importlib.util.find_spec("pip") is not None:
    p = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    print(json.dumps({"tool": "pip check", "rc": p.returncode, "output": (p.stdout + p.stderr).strip()}))
    raise SystemExit(0)
from importlib import metadata
""" + PEP440 + DISTRIBUTIONS + r"""
lines = []
for n, d in sorted(installed.items()):
    for req in d.requires or []:
        m = REQ.match(req)
        if not m:
            continue
        dep, spec, marker = m.group(1), m.group(3).strip("() "), m.group(4)
        if marker and not marker_true(marker):
            continue
        have = installed.get(norm(dep))
        if have is None:
            lines.append(f"{d.metadata['Name']} {d.version} requires {dep}, which is not installed.")
            continue
        if unmet(have.version, spec):
            lines.append(f"{d.metadata['Name']} {d.version} has requirement {dep}{spec}, but you have "
                         f"{have.metadata['Name']} {have.version}.")
print(json.dumps({"tool": "stdlib (pip is not installed)", "rc": 1 if lines else 0,
                  "output": "\n".join(lines) if lines else "No broken requirements found."}))
"""


# The Python requirements of the tag (its requirements.txt, given as lines in argv[1]) against the distributions
# installed for this interpreter: one JSON object {"results": [{"req", "ok", "found"}]}.
REQS_CHECK = r"""
import json, re, sys, platform, os
try:
    from importlib import metadata
except ImportError:
    print(json.dumps({"error": "Python " + platform.python_version() + " has no importlib.metadata (3.8+)"}))
    raise SystemExit(0)
""" + PEP440 + DISTRIBUTIONS + r"""
results = []
for line in json.loads(sys.argv[1]):
    m = REQ.match(line)
    if not m:
        results.append({"req": line, "ok": None, "found": "not a requirement this check reads"})
        continue
    dep, spec, marker = m.group(1), m.group(3).strip("() "), m.group(4)
    if marker and not marker_true(marker):
        continue
    have = installed.get(norm(dep))
    if have is None:
        results.append({"req": line, "ok": False, "found": "not installed"})
        continue
    results.append({"req": line, "ok": not unmet(have.version, spec), "found": have.metadata["Name"] + " " + have.version})
print(json.dumps({"results": results, "python": sys.executable}))
"""


def tail(text, n=TAIL):
    text = (text or "").strip()
    return text if len(text) <= n else "..." + text[-n:]


def run(argv, timeout, shell=False):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, shell=shell,
                           stdin=subprocess.DEVNULL, errors="replace")
        return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
    except subprocess.TimeoutExpired:
        return {"rc": None, "stdout": "", "stderr": f"timed out after {timeout}s"}
    except OSError as exc:
        return {"rc": 127, "stdout": "", "stderr": str(exc)}


DLOPEN = r"""
import ctypes, json, os, sys
target = sys.argv[1]
try:
    ctypes.CDLL(target, mode=os.RTLD_NOW | os.RTLD_LOCAL)
except OSError as exc:
    print(json.dumps({"ok": False, "error": str(exc), "resolved": None}))
    raise SystemExit(0)
resolved = None
base = os.path.basename(target)
with open("/proc/self/maps") as fh:
    for line in fh:
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        if os.path.basename(path) == base:
            resolved = path
            break
print(json.dumps({"ok": True, "error": None, "resolved": resolved}))
"""


def dlopen(target, timeout):
    r = run([sys.executable, "-c", DLOPEN, target], timeout)
    try:
        return json.loads(r["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "error": tail(r["stderr"] or r["stdout"]) or f"exit code {r['rc']}", "resolved": None}


def load_priority(opp):
    path = os.path.join(opp, "vendors", "config.ini") if opp else ""
    out = {"path": path or None, "exists": bool(path) and os.path.isfile(path), "load_priority": None}
    if out["exists"]:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.strip().startswith("load_priority="):
                        out["load_priority"] = [v.strip() for v in line.split("=", 1)[1].split(",") if v.strip()]
                        break
        except OSError as exc:
            out["error"] = str(exc)
    return out


def python_probe(python, timeout, want_import):
    exe = python if os.path.isabs(python) else shutil.which(python)
    out = {"python": python, "found": bool(exe and os.access(exe, os.X_OK)), "path": exe}
    if not out["found"]:
        return out
    r = run([exe, "-c", VERSIONS], timeout)
    try:
        out.update(json.loads(r["stdout"].strip().splitlines()[-1]))
    except (ValueError, IndexError):
        out["versions_error"] = tail(r["stderr"] or r["stdout"])
    r = run([exe, "-c", PIP_CHECK], timeout)
    try:
        out["pip_check"] = json.loads(r["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        out["pip_check"] = {"tool": "pip check", "rc": r["rc"] if r["rc"] else 1,
                            "output": tail(r["stderr"] or r["stdout"])}
    if want_import:
        r = run([exe, "-c", "import torch_npu"], timeout)
        out["import_torch_npu"] = {"rc": r["rc"], "stderr": tail(r["stderr"])}
    return out


def tool_version(argv, timeout):
    exe = shutil.which(argv[0])
    if not exe:
        return {"found": False, "path": None, "version": None, "output": ""}
    r = run([exe] + argv[1:], timeout)
    text = (r["stdout"] or "") + (r["stderr"] or "")
    return {"found": True, "path": exe, "rc": r["rc"], "output": tail(text, 300)}


def build_probe(spec, timeout):
    """The build host's tools as the fresh shell finds them: cmake, the compilers (CC / CXX or gcc / g++) and the
    Python requirements of the tag in the Python build.sh runs (python3)."""
    out = {"cmake": tool_version(["cmake", "--version"], timeout), "compilers": {}}
    for lang in spec.get("languages") or []:
        name = os.environ.get("CC" if lang == "C" else "CXX") or ("gcc" if lang == "C" else "g++")
        info = tool_version([name, "-dumpfullversion", "-dumpversion"], timeout)
        info["name"] = name
        out["compilers"][lang] = info
    if spec.get("requirements") is not None:
        exe = shutil.which(spec.get("python") or "python3")
        if not exe:
            out["requirements"] = {"error": (spec.get("python") or "python3") + " not found on the PATH"}
        else:
            r = run([exe, "-c", REQS_CHECK, json.dumps(spec["requirements"])], timeout)
            try:
                out["requirements"] = json.loads(r["stdout"].strip().splitlines()[-1])
            except (ValueError, IndexError):
                out["requirements"] = {"error": tail(r["stderr"] or r["stdout"]) or "exit code %s" % r["rc"]}
    return out


def main():
    args = json.loads(sys.argv[1])
    timeout = int(args.get("timeout") or 120)
    sourced = []
    for item in (os.environ.pop("__FA_SOURCED", "") or "").split(";"):
        if "=" in item:
            path, status = item.rsplit("=", 1)
            sourced.append({"path": path, "status": status})
    env = {k: os.environ.get(k) for k in ENV_VARS}
    result = {"sourced": sourced, "env": env, "config_ini": load_priority(env.get("ASCEND_OPP_PATH"))}
    if args.get("lib_path"):
        result["dlopen_path"] = dlopen(args["lib_path"], timeout)
        result["dlopen_name"] = dlopen(os.path.basename(args["lib_path"]), timeout)
    result["commands"] = {}
    for cmd in args.get("commands") or []:
        r = run(cmd["command"], timeout, shell=True)
        result["commands"][cmd["id"]] = {"command": cmd["command"], "rc": r["rc"], "stdout": r["stdout"][-20000:],
                                         "stderr": tail(r["stderr"])}
    if args.get("build"):
        result["build"] = build_probe(args["build"], timeout)
    if args.get("python_checks"):
        result["python"] = python_probe(args.get("python") or "python3", timeout, args.get("import_torch_npu"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
'''
PROBE = _PROBE.replace("__VERSIONS_SCRIPT__", repr(VERSIONS_SCRIPT), 1)


# ------------------------------------------------------------------------------------------------ pure helpers
class _Fill(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def render(template, ctx, escape=False, quote=False):
    """``{name}`` -> ctx value (``re.escape``d when ``escape``, ``shlex.quote``d when ``quote``: a shell command's
    placeholders are words, never shell syntax); unknown names and regex quantifiers stay."""
    def sub(m):
        value = ctx.get(m.group(1))
        if value is None:
            return m.group(0)
        return re.escape(str(value)) if escape else shlex.quote(str(value)) if quote else str(value)
    return re.sub(r"\{(\w+)\}", sub, " ".join(str(template or "").split()) if not escape else str(template or ""))


def find_cann_set_env(ascend_home, given=""):
    """The CANN set_env.sh: the given one, else the 8.5+ layout, else the toolkit layout (None when neither exists)."""
    if given:
        return given
    for rel in ("cann/set_env.sh", "ascend-toolkit/set_env.sh"):
        path = os.path.join(ascend_home, rel)
        if os.path.isfile(path):
            return path
    return None


def context(params, manifest):
    """Everything checks refer to: paths of the package, the scripts, the names used in messages."""
    vendor_dir = (manifest or {}).get("vendor_dir") or ""
    libs = list(params.get("libraries") or ["op_api/lib/libcust_opapi.so"])
    lib_path = os.path.join(vendor_dir, libs[0]) if vendor_dir else ""
    cann = find_cann_set_env(params["ascend_home"], params.get("cann_set_env") or "")
    ctx = {
        "host": params.get("host") or os.uname()[1],
        "state_dir": params["state_dir"],
        "ascend_home": params["ascend_home"],
        "package_env": os.path.join(params["state_dir"], PACKAGE_ENV),
        "cann_set_env": cann or os.path.join(params["ascend_home"], "cann/set_env.sh"),
        "cann_found": bool(cann),
        "nnal_set_env": params.get("nnal_set_env") or NNAL_SET_ENV,
        "python": params.get("python") or "python3",
        "cann_version": params.get("cann_version") or "",
        "manifest": bool(manifest),
        "vendor_dir": vendor_dir or None,
        "vendor_name": os.path.basename(vendor_dir.rstrip("/")) if vendor_dir else None,
        "libraries": [os.path.join(vendor_dir, lib) for lib in libs] if vendor_dir else [],
        "lib_path": lib_path or None,
        "lib_dir": os.path.dirname(lib_path) if lib_path else None,
        "package_bin_env": os.path.join(vendor_dir, "bin", "set_env.bash") if vendor_dir else None,
        "install_for_all": (manifest or {}).get("install_for_all"),
    }
    ctx["kernel_soc"], ctx["kernel_ops"] = manifest_kernels(manifest) if manifest else (None, [])
    ctx.update(build_context(params))
    return ctx


# --- the build host (phase build) ---------------------------------------------------------------------------------
# ops-transformer needs CMake >= 3.16 (v9.0.1 CMakeLists.txt: cmake_minimum_required(VERSION 3.16)), gcc >= 7.3 and
# the Python packages of its requirements.txt (docs/context/build.md; ascend-facts.md 1.3 and 9.4). The minimum and
# the packages are read from the checkout of the tag being built, so a later tag's needs are checked, not ours.
GCC_MIN = (7, 3)
CMAKE_MIN_RE = re.compile(r"^\s*cmake_minimum_required\s*\(\s*VERSION\s+([0-9][0-9.]*)", re.IGNORECASE | re.MULTILINE)
PROJECT_RE = re.compile(r"^\s*project\s*\(([^)]*)\)", re.IGNORECASE | re.MULTILINE)


def _read(path, limit=1 << 20):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return None


def cmake_needs(src):
    """(minimum CMake version or None, compiler languages) of the tree's top CMakeLists.txt. CMake's project()
    enables C and CXX unless LANGUAGES says otherwise (CMake documentation of project()); a tree without
    CMakeLists.txt needs no CMake and is taken to build C only."""
    text = _read(os.path.join(src, "CMakeLists.txt")) if src else None
    if text is None:
        return None, ["C"]
    m = CMAKE_MIN_RE.search(text)
    langs = ["C", "CXX"]
    pm = PROJECT_RE.search(text)
    if pm and "LANGUAGES" in pm.group(1).split():
        words = pm.group(1).split()
        langs = [w for w in words[words.index("LANGUAGES") + 1:] if w in ("C", "CXX")] or ["C", "CXX"]
    return (m.group(1) if m else None), langs


def requirement_lines(src):
    """The requirement lines of the tree's requirements.txt (comments, blanks and pip options left out), or None when
    the tree has none."""
    text = _read(os.path.join(src, "requirements.txt")) if src else None
    if text is None:
        return None
    out = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            out.append(line)
    return out


def build_context(params):
    src = params.get("src") or ""
    cmake_min, langs = cmake_needs(src)
    return {"src": src or None, "cmake_min": cmake_min, "languages": langs, "requirements": requirement_lines(src),
            "build_python": params.get("build_python") or "python3"}


def version_tuple(text):
    m = re.search(r"(\d+(?:\.\d+)*)", text or "")
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def _vstr(v):
    return ".".join(str(x) for x in v)


def scripts_to_source(ctx, phase=None):
    """(name, path, required) in sourcing order; optional ones are sourced only when present. A build (phase build)
    sources CANN's set_env.sh only, as fa_build does."""
    if phase == "build":
        return [("cann", ctx["cann_set_env"], True)]
    out = [("cann", ctx["cann_set_env"], True), ("nnal", ctx["nnal_set_env"], False)]
    if ctx["manifest"]:
        out.append(("package", ctx["package_env"], True))
        if ctx["package_bin_env"] and os.path.isfile(ctx["package_bin_env"]):
            out.append(("package_bin", ctx["package_bin_env"], False))
    return out


def shell_argv(scripts, probe_args, python=None):
    """argv of the fresh login shell (run with an empty environment)."""
    paths = [path for _name, path, required in scripts if required or os.path.isfile(path)]
    return ["/bin/bash", "-l", "-c", SHELL, "fa_env_check", PROBE, json.dumps(probe_args), python or sys.executable,
            *paths]


def fresh_env():
    """What a login gives before the profile runs: HOME, USER, LOGNAME, SHELL; nothing from Ansible."""
    try:
        pw = pwd.getpwuid(os.getuid())
        home, user = pw.pw_dir, pw.pw_name
    except KeyError:
        home, user = "/", str(os.getuid())
    return {"HOME": home, "USER": user, "LOGNAME": user, "SHELL": "/bin/bash"}


def parse_probe(stdout):
    for line in reversed((stdout or "").strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def selected(checks, phase):
    return [c for c in checks if phase in (c.get("phases") or ["preflight", "verify", "doctor"])]


def probe_args(checks, ctx, timeout):
    probes = {c.get("probe") for c in checks}
    return {
        "timeout": timeout,
        "lib_path": ctx["lib_path"] if probes & {"dlopen", "lib_on_path"} else None,
        "commands": [{"id": c["id"], "command": render(c["command"], ctx, quote=True)} for c in checks if c.get("command")],
        "python": ctx["python"],
        "python_checks": bool(probes & {"pip_check", "torch_pair", "torch_npu_import"}),
        "import_torch_npu": "torch_npu_import" in probes,
        "build": ({"languages": ctx["languages"] if "build_compiler" in probes else [],
                   "requirements": ctx["requirements"] if "build_requirements" in probes else None,
                   "python": ctx["build_python"]} if probes & BUILD_PROBES else None),
    }


BUILD_PROBES = {"build_cmake", "build_compiler", "build_requirements"}


# --- evaluation --------------------------------------------------------------------------------------------------
def _script_status(probe, path):
    for s in (probe or {}).get("sourced") or []:
        if s["path"] == path:
            return s["status"]
    return None


def _realpath(path):
    return os.path.realpath(path) if path else None


def evaluate(check, ctx, probe, params):
    """One check: (status, found[, extra problems as (code, found, needed, fix)])."""
    kind = check.get("probe") or ("command" if check.get("command") else None)
    if kind == "script":
        which = check.get("script")
        if which == "cann":
            status = _script_status(probe, ctx["cann_set_env"])
            if not ctx["cann_found"] and status in (None, "missing"):
                return FAIL, f"no CANN set_env.sh under {ctx['ascend_home']} (cann/ or ascend-toolkit/)"
            path = ctx["cann_set_env"]
        elif which == "nnal":
            path = ctx["nnal_set_env"]
            if not os.path.isfile(path):
                return SKIP, f"{path} not present (no NNAL)"
            status = _script_status(probe, path)
        else:
            if not ctx["manifest"]:
                return SKIP, "no package installed by ascend-fa (no manifest)"
            path = ctx["package_env"]
            status = _script_status(probe, path)
        if status == "missing" or (status is None and not os.path.isfile(path)):
            return FAIL, f"{path} is missing"
        if status not in ("0", None):
            return FAIL, f"source {path} exited {status}"
        return OK, f"{path} sourced"
    if not ctx["manifest"] and kind in ("package_present", "opp_path", "vendor_first", "dlopen", "lib_on_path",
                                        "command"):
        return SKIP, "no package installed by ascend-fa (no manifest)"
    env = (probe or {}).get("env") or {}
    if kind in BUILD_PROBES:
        return evaluate_build(kind, ctx, (probe or {}).get("build") or {})
    if kind == "package_present":
        if not os.path.isdir(ctx["vendor_dir"]):
            return FAIL, f"{ctx['vendor_dir']} is gone"
        missing = [p for p in ctx["libraries"] if not os.path.isfile(p)]
        missing += kernel_problems(ctx["vendor_dir"], ctx.get("kernel_soc"), ctx.get("kernel_ops") or [])
        if missing:
            return FAIL, f"missing {'; '.join(missing)}"
        return OK, ctx["vendor_dir"] + (f" (kernels for {ctx['kernel_soc']})" if ctx.get("kernel_soc") else "")
    if kind == "others_access":
        return evaluate_access(ctx, env)
    if kind == "opp_path":
        opp, custom = env.get("ASCEND_OPP_PATH") or "", env.get("ASCEND_CUSTOM_OPP_PATH") or ""
        found = f"ASCEND_OPP_PATH={opp or '(unset)'}, ASCEND_CUSTOM_OPP_PATH={custom or '(unset)'}"
        vdir = _realpath(ctx["vendor_dir"])
        if opp and _realpath(os.path.join(opp, "vendors")) == _realpath(os.path.dirname(ctx["vendor_dir"].rstrip("/"))):
            return OK, found
        if any(_realpath(p) == vdir for p in custom.split(":") if p):
            return OK, found
        return FAIL, f"{found}; the package is at {ctx['vendor_dir']}"
    if kind == "vendor_first":
        opp = env.get("ASCEND_OPP_PATH") or ""
        if _realpath(os.path.join(opp, "vendors")) != _realpath(os.path.dirname(ctx["vendor_dir"].rstrip("/"))):
            return SKIP, "the package is not installed into the CANN opp (--install-path): load_priority does not apply"
        ini = (probe or {}).get("config_ini") or {}
        order = ini.get("load_priority")
        if not ini.get("exists"):
            return FAIL, f"{ini.get('path')} is missing"
        if not order:
            return FAIL, f"no load_priority line in {ini.get('path')}"
        if order[0] != ctx["vendor_name"]:
            return FAIL, f"load_priority={','.join(order)} ({ini.get('path')})"
        return OK, f"load_priority={','.join(order)}"
    if kind == "command":
        res = ((probe or {}).get("commands") or {}).get(check["id"])
        if res is None:
            return FAIL, "the command did not run (the fresh shell ended early)"
        want = check.get("expected") if isinstance(check.get("expected"), dict) else {}
        if "rc" in want and res["rc"] != want["rc"]:
            return FAIL, f"`{res['command']}` exited {res['rc']}: {(res.get('stderr') or res['stdout'])[-300:]}"
        if want.get("stdout_regex") and not re.search(render(want["stdout_regex"], ctx, escape=True), res["stdout"],
                                                      re.MULTILINE):
            return FAIL, f"`{res['command']}` does not list {ctx.get('lib_path')}"
        if want.get("stdout_lacks") and re.search(render(want["stdout_lacks"], ctx, escape=True), res["stdout"],
                                                  re.MULTILINE):
            return FAIL, f"`{res['command']}` lists what it should not"
        return OK, f"`{res['command']}` as expected"
    if kind == "dlopen":
        r = (probe or {}).get("dlopen_path") or {}
        return (OK, f"{ctx['lib_path']} loads") if r.get("ok") else (FAIL, str(r.get("error") or "dlopen failed"))
    if kind == "lib_on_path":
        r = (probe or {}).get("dlopen_name") or {}
        if not r.get("ok"):
            return FAIL, str(r.get("error") or "dlopen failed")
        if r.get("resolved") and _realpath(r["resolved"]) != _realpath(ctx["lib_path"]):
            return FAIL, f"libcust_opapi.so resolves to {r['resolved']}, not to {ctx['lib_path']}"
        return OK, f"resolves to {r.get('resolved')}"
    py = (probe or {}).get("python") or {}
    if kind in ("pip_check", "torch_pair", "torch_npu_import") and not py.get("found"):
        return FAIL, f"{ctx['python']} not found in the fresh shell's PATH"
    if kind == "pip_check":
        pc = py.get("pip_check") or {}
        if pc.get("rc") == 0:
            return OK, pc.get("tool", "pip check")
        return FAIL, f"{pc.get('tool', 'pip check')}: {pc.get('output', '')[-600:]}"
    if kind == "torch_pair":
        tnpu, torch = py.get("torch_npu_version"), py.get("torch_version")
        if not tnpu:
            return SKIP, f"torch_npu is not installed for {ctx['python']}"
        if not ctx["cann_version"] or not params.get("compat_torch_npu"):
            return SKIP, "no CANN version or no compatibility data given"
        extra = torch_pair_problems(ctx["cann_version"], torch, tnpu, params["compat_torch_npu"])
        if not extra:
            return OK, f"torch {torch}, torch_npu {tnpu}, CANN {ctx['cann_version']}"
        return FAIL, f"torch {torch}, torch_npu {tnpu}, CANN {ctx['cann_version']}", extra
    if kind == "torch_npu_import":
        r = py.get("import_torch_npu") or {}
        if r.get("rc") == 0:
            return OK, "import torch_npu works"
        return FAIL, f"import torch_npu exited {r.get('rc')}: {r.get('stderr', '')[-600:]}"
    return FAIL, f"unknown probe {kind!r} in check {check.get('id')}"


OTHERS_NEED = {"enter": 0o001, "dir": 0o005, "file": 0o004}   # "other" mode bits: folder entered, listed; file read


def access_blocked(path, how):
    """Why a process of another user cannot use ``path`` as ``how`` (a key of OTHERS_NEED; None when it can)."""
    need = OTHERS_NEED[how]
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if mode & need == need:
        return None
    return f"{path} (mode {mode:04o}, no o+x)" if need == 0o001 else f"{path} (mode {mode:04o})"


def access_paths(ctx, env):
    """The paths a non-root torch_npu process reads to use the package: the folders above the vendor (entered),
    config.ini (op-plugin reads load_priority), the vendor's op_api/lib and its libraries, and the kernel folders
    of the SoC family with their files."""
    vendor_dir = ctx["vendor_dir"]
    out = []
    parts = os.path.abspath(vendor_dir).split("/")
    out += [("/".join(parts[:i]) or "/", "enter") for i in range(2, len(parts))]
    opp = env.get("ASCEND_OPP_PATH") or ""
    ini = os.path.join(opp, "vendors", "config.ini") if opp else ""
    if ini and _realpath(os.path.dirname(ini)) == _realpath(os.path.dirname(vendor_dir.rstrip("/"))):
        out.append((ini, "file"))
    out.append((vendor_dir, "dir"))
    for lib in ctx["libraries"]:
        d = os.path.dirname(lib)
        while d.startswith(vendor_dir.rstrip("/") + "/"):
            out.append((d, "dir"))
            d = os.path.dirname(d)
        out.append((lib, "file"))
    if ctx.get("kernel_soc"):
        for sub in (ctx["kernel_soc"], os.path.join("config", ctx["kernel_soc"])):
            top = os.path.join(vendor_dir, KERNEL_ROOT, sub)
            for dirpath, _dirs, filenames in os.walk(top):
                out.append((dirpath, "dir"))
                out += [(os.path.join(dirpath, f), "file") for f in filenames]
    seen, uniq = set(), []
    for path, how in out:
        if path not in seen:
            seen.add(path)
            uniq.append((path, how))
    return uniq


def evaluate_access(ctx, env):
    """Whether another user's process can reach and read the package (op-plugin's checkOwner lets a non-root
    process use a root-owned library, ascend-facts.md 9.1; the file modes must let it)."""
    blocked = []
    for path, how in access_paths(ctx, env):
        why = access_blocked(path, how)
        if why:
            blocked.append(why)
    if not blocked:
        return OK, f"{ctx['vendor_dir']} and what a process reads of it are readable by every user"
    shown = ", ".join(blocked[:5]) + (f" and {len(blocked) - 5} more" if len(blocked) > 5 else "")
    root_only = " (installed with fa_install_for_all: false)" if ctx.get("install_for_all") is False else ""
    return FAIL, f"not readable by other users{root_only}: {shown}"


def evaluate_build(kind, ctx, build):
    """The build host's CMake, compilers and Python requirements (phase build)."""
    if kind == "build_cmake":
        if not ctx.get("cmake_min"):
            return SKIP, f"{ctx.get('src') or 'the source tree'} has no CMakeLists.txt with cmake_minimum_required"
        info = build.get("cmake") or {}
        if not info.get("found"):
            return FAIL, "cmake is not on the PATH"
        have, need = version_tuple(info.get("output")), version_tuple(ctx["cmake_min"])
        if have is None or have < need:
            return FAIL, f"{info.get('path')}: {(info.get('output') or '').splitlines()[0] if info.get('output') else '?'}"
        return OK, f"cmake {_vstr(have)} ({info.get('path')})"
    if kind == "build_compiler":
        bad, good = [], []
        for lang, info in sorted((build.get("compilers") or {}).items()):
            if not info.get("found"):
                bad.append(f"{info.get('name')} ({lang} compiler) is not on the PATH")
                continue
            have = version_tuple(info.get("output"))
            gnu = os.path.basename(info.get("name") or "").rstrip("0123456789.-") in ("gcc", "g++", "cc", "c++")
            if gnu and (have is None or have < GCC_MIN):
                bad.append(f"{info.get('path')} {info.get('output') or '?'} (gcc >= {_vstr(GCC_MIN)} needed)")
            else:
                good.append(f"{info.get('name')} {_vstr(have) if have else '?'}")
        if bad:
            return FAIL, "; ".join(bad)
        return OK, ", ".join(good) or "no compiler needed"
    reqs = ctx.get("requirements")
    if reqs is None:
        return SKIP, f"{ctx.get('src') or 'the source tree'} has no requirements.txt"
    res = build.get("requirements") or {}
    if res.get("error"):
        return FAIL, res["error"]
    missing = [f"{r['req']} ({r['found']})" for r in res.get("results") or [] if r.get("ok") is False]
    if missing:
        return FAIL, f"{ctx['build_python']}: " + ", ".join(missing)
    return OK, f"{len(reqs)} requirement(s) met by {res.get('python') or ctx['build_python']}"


def run_checks(checks, ctx, probe, params):
    """Evaluate the checks in order; a check whose ``needs`` did not pass is skipped."""
    status_of = {}
    results = []
    ignore = set(params.get("ignore") or [])
    for check in checks:
        cid = check["id"]
        blocked = [n for n in check.get("needs") or [] if status_of.get(n, OK) not in (OK,)]
        row = {"id": cid, "what": render(check.get("what", cid), ctx),
               "problem": render(check.get("problem") or check.get("what", cid), ctx),
               "severity": check.get("severity", "error"),
               "repair": bool(check.get("repair")), "code": check.get("code") or cid,
               "needed": render(check.get("expected") if isinstance(check.get("expected"), str)
                                else check.get("expected_text") or "as expected", ctx)}
        if blocked:
            row.update(status=SKIP, found=f"skipped: {', '.join(blocked)} did not pass", problems=[])
            status_of[cid] = SKIP
            results.append(row)
            continue
        out = evaluate(check, ctx, probe, params)
        status, found = out[0], out[1]
        fix = render(check.get("fix", ""), ctx)
        diag = None
        if status == FAIL and check.get("classify"):
            diag = diagnosis(found)
            if diag["known"]:
                found = f"{found} [known error: {diag['class']}]"
                if check.get("fix_from_class"):
                    fix = diag["fix"]
        problems = []
        if status == FAIL:
            extra = out[2] if len(out) > 2 else [(row["code"], found, row["needed"], fix)]
            for code, p_found, p_needed, p_fix in extra:
                if code in ignore:
                    continue
                problems.append({"code": code, "severity": row["severity"], "what": row["problem"], "found": p_found,
                                 "needed": p_needed, "fix": p_fix if len(out) > 2 else fix})
            if not problems:
                status = IGNORED
        row.update(status=status, found=found, fix=fix, problems=problems, diagnosis=diag)
        status_of[cid] = status if status != IGNORED else OK
        results.append(row)
    return results


def problem_line(host, p):
    return f"{host}: [{p['severity']}] {p['what']} (found {p['found']}; needed {p['needed']}). Fix: {p['fix']}"


def summarize(results, host):
    problems = [p for r in results for p in r["problems"]]
    return {
        "problems": problems,
        "lines": [problem_line(host, p) for p in problems],
        "ok": not any(p["severity"] == "error" for p in problems),
        "repair": any(r["repair"] and r["status"] == FAIL for r in results),
        "checks": [{k: v for k, v in r.items() if k != "problems"} for r in results],
    }


# ------------------------------------------------------------------------------------------------ one run
#: The options of fa_env_check that describe the host (what a caller passes in ``params``), with their defaults.
DEFAULTS = {
    "host": None,
    "state_dir": "/var/lib/ascend-fa",
    "ascend_home": "/usr/local/Ascend",
    "cann_set_env": "",
    "nnal_set_env": NNAL_SET_ENV,
    "python": "python3",
    "cann_version": "",
    "compat_torch_npu": {},
    "libraries": ["op_api/lib/libcust_opapi.so"],
    "ignore": [],
    "timeout": 180,
    "src": "",
    "build_python": "python3",
}


def check_environment(checks, phase, params):
    """Run the checks of ``phase`` in ONE fresh login shell; the result fa_env_check returns (less ``changed``).

    ``params``: the keys of ``DEFAULTS`` (missing or None ones take the default). Raises ValueError when a selected
    check has no id or neither a probe nor a command.
    """
    p = {**DEFAULTS, **{k: v for k, v in (params or {}).items() if v is not None}}
    checks = selected(checks or [], phase)
    bad = [c for c in checks if not c.get("id") or not (c.get("probe") or c.get("command"))]
    if bad:
        raise ValueError(f"every check needs an id and a probe or a command: {bad}")
    manifest = read_manifest(p["state_dir"])
    ctx = context(p, manifest)
    scripts = scripts_to_source(ctx, phase)
    argv = shell_argv(scripts, probe_args(checks, ctx, p["timeout"]))
    try:
        proc = subprocess.run(argv, env=fresh_env(), capture_output=True, text=True, timeout=p["timeout"] + 30,
                              stdin=subprocess.DEVNULL, errors="replace", cwd="/", check=False)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired:
        stdout, stderr, rc = "", f"the fresh shell ran longer than {p['timeout'] + 30}s", None
    probe = parse_probe(stdout)
    host = ctx["host"]
    if probe is None:
        probe = {}
        shell_problem = {"code": "fresh_shell", "severity": "error", "what": "a fresh login shell runs the checks",
                         "found": f"no result (exit code {rc}): {stderr.strip()[-800:]}",
                         "needed": "bash -l sourcing the environment scripts, then the probe",
                         "fix": "a sourced script ends the shell or bash/python is broken: source "
                                f"{', '.join(s[1] for s in scripts)} by hand in `env -i bash -l` and read the error"}
    else:
        shell_problem = None
    ctx["opp_path"] = ((probe.get("env") or {}).get("ASCEND_OPP_PATH")) or None
    ctx["config_ini"] = (probe.get("config_ini") or {}).get("path")
    results = run_checks(checks, ctx, probe, p)
    for res in (probe.get("commands") or {}).values():
        res["stdout"] = res["stdout"] if len(res["stdout"]) <= 2000 else "..." + res["stdout"][-2000:]
    out = summarize(results, host)
    if shell_problem:
        out["problems"].insert(0, shell_problem)
        out["lines"].insert(0, problem_line(host, shell_problem))
        out["ok"] = False
    out.update(probe=probe, host=host,
               scripts=[{"name": n, "path": s, "required": r, "status": _script_status(probe, s) or "not present"}
                        for n, s, r in scripts],
               shell=" ".join(shlex.quote(a) for a in ["env", "-i", *[f"{k}={v}" for k, v in fresh_env().items()],
                                                       "bash", "-l"]))
    return out


def not_run():
    """What ascend_facts and fa_verify return under ``env`` when no check ran."""
    return {"ran": False, "problems": [], "repair": False}
