"""Known-error classifier: log text -> class, cause, fix and source, from signatures (regexes) kept as data.

Standard library only (shipped to hosts as ``ansible.module_utils.fa_known_errors``; the controller loads it
through ``ascend_fa._mu``). Used on build logs (fa_build), per-card stderr (fa_verify), the fresh-shell
environment check (fa_env_check) and by ``ascend-fa explain`` for a log a user pastes.

Where the signatures live: ``ascend_fa/data/known_errors.yml`` is the source (reviewed, commented, one entry per
field error). Modules run on the managed hosts, which cannot read controller files, and passing the signatures
as a module parameter would need every role that calls fa_build / fa_verify to load and pass them. The simpler
design is a JSON copy embedded below, between the GENERATED markers: every module gets the same signatures with
no extra parameter, and ``python -m ascend_fa.explain --sync-embedded`` rewrites the copy from the YAML (a unit
test fails while the two differ). ``classify(..., signatures=...)`` still takes other signatures (tests, users).
"""

# ruff: noqa: E501 - the generated JSON block below holds the signatures' long strings unwrapped
from __future__ import annotations

import json
import re

UNKNOWN = "unknown"
TAIL_LINES = 20
MAX_TEXT = 4 * 1024 * 1024   # classify at most the last 4 MiB of a log

# BEGIN GENERATED from ascend_fa/data/known_errors.yml by `python -m ascend_fa.explain --sync-embedded`
_EMBEDDED_JSON = r"""
{
 "placeholders": {
  "api": "the aclnn API",
  "device_soc": "this device's SoC",
  "error": "an error",
  "library": "the shared library",
  "package_soc": "another SoC",
  "process": "a compiler process",
  "soc": "this SoC",
  "supported": "the supported SoCs",
  "symbol": "a symbol"
 },
 "signatures": [
  {
   "cause": "the operator package was built for SoC {package_soc}, but the device is {device_soc}: it was built with the wrong --soc (or copied from another machine type)",
   "check": "preflight derives soc_family from npu-smi; the build key includes it",
   "class": "soc_mismatch",
   "examples": [
    "the socversion Ascend910B1 of bin package does not match the current device socverison Ascend310P3",
    "EZ9999: [FlashAttentionScore] the socversion ascend910_93 of bin package does not match the current device socverison Ascend910B3."
   ],
   "fix": "rebuild for this device's SoC family: let ascend-fa derive --soc from npu-smi (ascend-fa deploy builds one package per SoC family); never copy a .run between A2 (ascend910b), A3 (ascend910_93) and 310P hosts",
   "kind": "install",
   "patterns": [
    "soc\\s*_?ve?r\\w*\\s*[:=]?\\s*(?P<package_soc>[\\w.-]+)\\s+of\\s+(?:the\\s+)?bin(?:ary)?\\s+package\\s+does\\s+not\\s+match\\s+(?:with\\s+)?(?:the\\s+)?current\\s+device\\s+soc\\s*_?ve?r\\w*\\s*[:=]?\\s*(?P<device_soc>[\\w-]+(?:\\.\\w+)*)",
    "bin(?:ary)?\\s+package\\s+soc\\s*_?ve?r\\w*\\s*[:=]?\\s*(?P<package_soc>[\\w.-]+)\\s*,?\\s+(?:but|while)\\s+(?:the\\s+)?(?:current\\s+)?device\\s+soc\\s*_?ve?r\\w*\\s*(?:is\\s*)?[:=]?\\s*(?P<device_soc>[\\w-]+(?:\\.\\w+)*)"
   ],
   "source": "vllm-ascend #6676, #5599"
  },
  {
   "cause": "the SoC name {soc} is not one the tool or model accepts: an inexact name (Ascend910B instead of Ascend910B2, lower/upper case, a family where a chip is expected) or a SoC the operator does not support at all",
   "check": "preflight (soc_unsupported, soc_not_in_release)",
   "class": "soc_unsupported",
   "examples": [
    "EE1001 The argument is invalid. supported socVersion=Ascend910B2, but the model socVersion=Ascend910B",
    "SOC_VERSION ascend310b1 does not support"
   ],
   "fix": "use the exact SoC name npu-smi reports, normalised (ascend-fa derives soc_version and the --soc family from npu-smi); FlashAttentionScore runs on Atlas A2/A3 training (ascend910b, ascend910_93) and Ascend 950 only",
   "kind": "install",
   "patterns": [
    "supported\\s+socVersion\\s*[:=]\\s*(?P<supported>[\\w.,-]+).{0,120}?model\\s+socVersion\\s*[:=]\\s*(?P<soc>[\\w.-]+)",
    "SOC_?VERSION\\s*[:=]?\\s*(?P<soc>[\\w.-]+)\\s+(?:is\\s+)?(?:does\\s+not|doesn't|not)\\s+support",
    "unsupported\\s+soc[_ ]?version\\s*[:=]?\\s*(?P<soc>[\\w.-]+)",
    "soc[_ ]?version\\s*[:=]?\\s*(?P<soc>[\\w.-]+)\\s+is\\s+not\\s+(?:supported|in\\s+the\\s+supported)"
   ],
   "source": "k2-fsa/sherpa-onnx PR #2740; ggml-org/llama.cpp #10719"
  },
  {
   "cause": "NNAL/ATB ({library}) was built against another torch_npu / CANN than the one loaded: symbol {symbol} is missing",
   "check": "ascend-fa doctor (sources NNAL's set_env.sh and checks the torch/torch_npu pair)",
   "class": "nnal_torch_npu_mismatch",
   "examples": [
    "libtbe_adapter.so: undefined symbol _ZN3Mki2Dl4LoadEv",
    "ImportError: /usr/local/Ascend/nnal/atb/latest/atb/cxx_abi_1/lib/libatb.so: undefined symbol: _ZN3atb9OpsRunner4InitEv"
   ],
   "fix": "install the NNAL (Ascend-cann-nnal) release paired with this CANN and torch_npu (same CANN version), then source /usr/local/Ascend/nnal/atb/set_env.sh; pin NNAL together with CANN",
   "kind": "install",
   "patterns": [
    "(?P<library>lib(?:tbe_adapter|atb\\w*|asdops\\w*|lcal\\w*|lccl\\w*|mki\\w*)\\.so[\\w.]*)\\s*:\\s*undefined\\s+symbol:?\\s*(?P<symbol>\\S+)",
    "undefined\\s+symbol:?\\s*(?P<symbol>_ZN\\d+(?:Mki|atb|AsdOps|Lcal)\\w*)"
   ],
   "source": "Ascend/pytorch #99"
  },
  {
   "cause": "a binary was built against another CANN / torch_npu release than the one loaded (symbol {symbol} is missing): the torch_npu and CANN versions are not a supported pair",
   "check": "preflight compat (torch_npu_cann_mismatch); ascend-fa doctor (torch_pair)",
   "class": "torch_npu_cann_mismatch",
   "examples": [
    "undefined symbol: MsprofSysCycleTime",
    "ImportError: /usr/local/lib/python3.11/site-packages/torch_npu/lib/libtorch_npu.so: undefined symbol: MsprofSysCycleTime (torch-npu 2.7.1, CANN 9.0)"
   ],
   "fix": "install the torch_npu release paired with this CANN (ascend-fa compat --driver D --cann C --soc S --torch-npu T names it; e.g. torch-npu 2.7.1 needs its .post4 for CANN 9.0), or the CANN it was built for",
   "kind": "install",
   "patterns": [
    "(?:(?P<library>[\\w./+-]*\\.so[\\w.]*)\\s*:\\s*)?undefined\\s+symbol:?\\s*(?P<symbol>[A-Za-z_][\\w@.]*)"
   ],
   "source": "triton-lang/triton-ascend #328"
  },
  {
   "cause": "{api} is not provided by the loaded operator libraries: the CANN ops package is older than torch_npu's op-plugin expects, or the custom operator package that provides it is not installed or not visible",
   "check": "preflight compat (torch_npu_cann_mismatch); ascend-fa doctor (package_present, opp_path)",
   "class": "aclnn_api_missing",
   "examples": [
    "aclnnPromptFlashAttentionV3 or aclnnPromptFlashAttentionV3GetWorkspaceSize not in libopapi.so, or libopapi.so not found.",
    "aclnnFlashAttentionScoreV2 not in libopapi.so"
   ],
   "fix": "check the torch_npu / CANN pair (ascend-fa compat) and install the matching ops package; for FlashAttention run ascend-fa doctor -i INV: it names a missing or invisible package (ascend-fa deploy reinstalls it)",
   "kind": "install",
   "patterns": [
    "(?P<api>aclnn\\w+)[^\\n]{0,120}?not\\s+(?:found\\s+)?in\\s+(?P<library>lib\\w*\\.so)",
    "(?:can ?not|cannot|could\\s+not|failed\\s+to)\\s+find\\s+(?:symbol\\s+|function\\s+|api\\s+)?(?P<api>aclnn\\w+)"
   ],
   "source": "vllm-project/vllm PR #8054"
  },
  {
   "cause": "the shared library {library} is damaged (not a loadable ELF file): a partial copy, a disk error or a changed file",
   "check": "preflight drift (files_changed: sha256 of the installed tree); ascend-fa doctor (dlopen)",
   "class": "library_corrupt",
   "examples": [
    "OSError: /usr/local/Ascend/cann/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so: invalid ELF header",
    "libnnopbase.so: file too short"
   ],
   "fix": "reinstall the package: ascend-fa deploy -i INV finds the changed files (preflight: files changed) and reinstalls from the kept .run on that host only",
   "kind": "install",
   "patterns": [
    "(?P<library>[\\w./+-]*\\.so[\\w.]*)\\s*:\\s*(?:invalid\\s+ELF\\s+header|file\\s+too\\s+short|not\\s+an\\s+ELF|ELF\\s+load\\s+command\\s+\\w+|wrong\\s+ELF\\s+class\\S*|unknown\\s+file\\s+type)",
    "invalid\\s+ELF\\s+header"
   ],
   "source": "ascend-fa (installed-tree digest)"
  },
  {
   "cause": "op-plugin probes for a custom operator library at start-up; \"error:(null)\" only says no custom package is on the search path. It is harmless when no custom operator is used",
   "check": "ascend-fa doctor (dlopen, ld_cache)",
   "class": "custom_opapi_probe",
   "examples": [
    "dlopen libcust_opapi.so failed, error:(null)"
   ],
   "fix": "nothing to fix unless a custom operator (FlashAttention from ascend-fa) is expected; then run ascend-fa doctor -i INV, which checks that the vendor's op_api/lib is present, registered and loadable",
   "kind": "harmless",
   "patterns": [
    "dlopen\\s+(?P<library>\\S*libcust_opapi\\.so)\\s+failed,?\\s*error\\s*:?\\s*\\(null\\)"
   ],
   "source": "DeepLink-org/DIOPI #1363"
  },
  {
   "cause": "the custom operator package's library {library} exists in the search order but does not load ({error})",
   "check": "ascend-fa doctor (dlopen)",
   "class": "custom_opapi_unloadable",
   "examples": [
    "dlopen /usr/local/Ascend/cann/opp/vendors/customize/op_api/lib/libcust_opapi.so failed, error:libfoo.so: cannot open shared object file"
   ],
   "fix": "run ascend-fa doctor -i INV (it names a missing op_api/lib, a damaged file or a missing dependency); ascend-fa deploy reinstalls a package whose files changed",
   "kind": "install",
   "patterns": [
    "dlopen\\s+(?P<library>\\S*libcust_opapi\\.so)\\s+failed,?\\s*error\\s*:(?!\\s*\\(null\\))\\s*(?P<error>[^\\n]+)"
   ],
   "source": "DeepLink-org/DIOPI #1363"
  },
  {
   "cause": "{library} is not on the library search path of this process: the CANN (or NNAL) set_env.sh, or ascend-fa's set_env.bash, was not sourced before the process started (or the library is not installed)",
   "check": "ascend-fa doctor (cann_env, package_env, lib_on_path)",
   "class": "shared_object_missing",
   "examples": [
    "ImportError: libhccl.so: cannot open shared object file: No such file or directory",
    "OSError: libatb.so: cannot open shared object file: No such file or directory"
   ],
   "fix": "source /usr/local/Ascend/cann/set_env.sh (CANN < 8.5: /usr/local/Ascend/ascend-toolkit/set_env.sh), NNAL's /usr/local/Ascend/nnal/atb/set_env.sh where installed, and /var/lib/ascend-fa/set_env.bash in the shell or service unit that starts the process; ascend-fa doctor -i INV checks this in a fresh login shell",
   "kind": "install",
   "patterns": [
    "(?P<library>lib[\\w.+-]*?\\.so[\\w.]*)\\s*:\\s*cannot\\s+open\\s+shared\\s+object\\s+file",
    "cannot\\s+(?:open|load)\\s+(?:shared\\s+)?(?:library|object)\\s*:?\\s*(?P<library>lib[\\w.+-]*?\\.so[\\w.]*)",
    "(?:error\\s+while\\s+loading\\s+shared\\s+libraries|could\\s+not\\s+find\\s+library)\\s*:?\\s*(?P<library>lib[\\w.+-]*?\\.so[\\w.]*)",
    "ImportError:\\s*(?:\\S*/)?(?P<library>lib[\\w.+-]*?\\.so[\\w.]*)"
   ],
   "source": "vllm-ascend #262, #152"
  },
  {
   "cause": "the operator found no kernel binary: ASCEND_CUSTOM_OPP_PATH (or the package's set_env.bash) was set after CANN initialised in this process, so the custom package's kernels were never registered (or no kernel was built for this SoC)",
   "check": "ascend-fa doctor (opp_path, vendor_first)",
   "class": "custom_opp_path_late",
   "examples": [
    "SelectBin no kernel",
    "call aclnnFlashAttentionScore failed, GetWorkspaceSize=561103"
   ],
   "fix": "export ASCEND_CUSTOM_OPP_PATH / source the package's set_env.bash BEFORE the process starts (in the launcher or service unit, not from Python after import torch_npu); check the package was built for this SoC family",
   "kind": "install",
   "patterns": [
    "SelectBin[^\\n]{0,160}?(?:no\\s+kernel|not\\s+find|not\\s+found|fail)",
    "\\bSelectBin\\b",
    "GetWorkspaceSize\\s*[=:]?\\s*561103",
    "\\berror\\s*code\\s*[=:]?\\s*561103\\b"
   ],
   "source": "flashserve/flash-linear-attention-npu PR #431"
  },
  {
   "cause": "CANN's Python dependencies are missing or broken in the environment that runs torch_npu (init env failed, 500001)",
   "check": "ascend-fa doctor (pip_check)",
   "class": "cann_python_deps",
   "examples": [
    "EH9999 [Init][Env]init env failed! 500001",
    "RuntimeError: EH9999: Inner Error! [Init][Env]init env failed, error code 500001"
   ],
   "fix": "pip install CANN's Python requirements (attrs, cloudpickle, decorator, ml-dtypes, numpy, psutil, scipy, sympy, tornado) into the Python that runs torch_npu, and make pip check pass there (ascend-fa doctor runs it)",
   "kind": "install",
   "patterns": [
    "\\[Init\\]\\[Env\\]\\s*init\\s+env\\s+failed",
    "EH9999[^\\n]{0,200}?500001"
   ],
   "source": "Ascend/pytorch #7"
  },
  {
   "cause": "the build ran out of memory and the kernel killed a compiler ({process}): CANN's operator build.sh defaults to -j = 2 x nproc, more compile jobs than memory allows (16 CPUs / 24 GiB is enough to be killed)",
   "check": "preflight (build_memory) and the -j sizing in fa_build",
   "class": "build_oom",
   "examples": [
    "opc OOM-killed during build",
    "c++: fatal error: Killed signal terminated program cc1plus",
    "Out of memory: Killed process 4242 (opc) total-vm:9876543kB"
   ],
   "fix": "lower the job count: ascend-fa sizes -j by memory (recipe mem_per_job_mb, fa_build_jobs_cap); set fa_build_jobs=N for this build host, or build on a host with more memory (fa_build_host)",
   "kind": "build",
   "patterns": [
    "\\bOOM[- ]?kill",
    "out\\s+of\\s+memory:\\s+kill(?:ed)?\\s+process\\s+\\d+\\s+\\((?P<process>[\\w.+-]+)\\)",
    "fatal\\s+error:\\s+killed\\s+signal\\s+terminated\\s+program\\s+(?P<process>[\\w.+-]+)",
    "\\b(?P<process>opc|cc1plus|ccec|bisheng|ld|ld\\.lld)\\b[^\\n]{0,80}\\b(?:killed|signal\\s+9|sigkill)\\b",
    "virtual\\s+memory\\s+exhausted|cannot\\s+allocate\\s+memory"
   ],
   "source": "vllm-project/vllm-ascend PR #15139"
  },
  {
   "cause": "a CANN Toolkit upgrade uninstalls the Kernels/ops package and the custom operator (vendor) packages installed into its opp/vendors",
   "check": "preflight drift (cann_changed, missing) from the install manifest",
   "class": "custom_ops_removed_by_upgrade",
   "examples": [
    "custom ops gone after a toolkit upgrade",
    "vendor package removed by the CANN upgrade"
   ],
   "fix": "reinstall the ops package for the new CANN, then the vendor package: ascend-fa deploy -i INV finds the hosts (preflight: CANN changed since install / package missing) and rebuilds and reinstalls on those hosts only",
   "kind": "install",
   "patterns": [
    "(?:custom\\s+(?:operator\\s+|op\\s+)?(?:ops?|operators?|package)|vendor\\s+package)s?[^\\n]{0,60}?(?:gone|removed|missing|uninstalled|disappeared)[^\\n]{0,60}?(?:toolkit|CANN|kernels)\\s+(?:upgrade|update|reinstall)",
    "(?:toolkit|CANN)\\s+(?:upgrade|update)[^\\n]{0,60}?(?:removes?|removed|uninstall\\w*|deletes?|deleted)[^\\n]{0,40}?(?:custom|vendor|kernels)",
    "CANN\\s+changed\\s+since\\s+install"
   ],
   "source": "hiascend canncommercial/82RC1 instg_0030"
  },
  {
   "cause": "vendors/config.ini load_priority decides which vendor's operators win, and a vendor package has no uninstaller: another vendor listed first shadows ours; a removed vendor left in the list is searched in vain",
   "check": "ascend-fa doctor (vendor_first)",
   "class": "vendor_priority",
   "examples": [
    "vendor package cannot be uninstalled; load_priority order",
    "ascendfa_transformer is not first in load_priority=customize,ascendfa_transformer"
   ],
   "fix": "keep ascend-fa's vendor first (ascend-fa deploy reinstalls it, which puts it first again); to remove a vendor, delete opp/vendors/<vendor> and its load_priority entry (ascend-fa rollback does both and keeps the previous package)",
   "kind": "install",
   "patterns": [
    "(?:vendor|custom\\s+op(?:erator)?s?)\\s+package[^\\n]{0,40}?(?:can\\s*not|cannot|can't|could\\s+not)\\s+be\\s+uninstall",
    "\\bload_priority\\b"
   ],
   "source": "hicann/ops-transformer docs/zh/install/compile.md"
  },
  {
   "cause": "the operator rejected these inputs (a tiling or parameter check, e.g. numHeads not a multiple of numKvHeads): a workload error, not an installation problem",
   "check": "ascend-fa verify (fa_check.py runs valid shapes)",
   "class": "workload_error",
   "examples": [
    "EZ9999: Inner Error! numHeads / numKvHeads must be an integer",
    "EZ9999: Inner Error! [FlashAttentionScore] numHeads(32) should be divisible by numKvHeads(5)"
   ],
   "fix": "check the call's shapes and attributes against the operator's constraints (head counts, head_dim, layout, sparse_mode); the installation itself is fine if ascend-fa verify passes",
   "kind": "workload",
   "patterns": [
    "EZ9999[^\\n]{0,40}?Inner\\s+Error",
    "\\b(?:numHeads|numKvHeads|headNum|head_num|kvHeadNum)\\b[^\\n]{0,80}?(?:must|should|invalid|not\\s+(?:be\\s+)?(?:divisible|supported|equal|match))"
   ],
   "source": "vllm-ascend docs/source/faqs.md"
  }
 ]
}
"""
# END GENERATED


def embedded_data() -> dict:
    """The signatures file's content as embedded in this module (``{"placeholders": ..., "signatures": [...]}``)."""
    return json.loads(_EMBEDDED_JSON)


class Signatures:
    """Compiled signatures: ``entries`` in match order, each with its compiled ``regexes``."""

    def __init__(self, data: dict | None = None):
        data = embedded_data() if data is None else data
        self.placeholders: dict = dict(data.get("placeholders") or {})
        self.entries: list[dict] = []
        for entry in data.get("signatures") or []:
            compiled = [re.compile(p, re.IGNORECASE) for p in entry.get("patterns") or []]
            self.entries.append({**entry, "regexes": compiled})


_DEFAULT: Signatures | None = None


def default_signatures() -> Signatures:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Signatures()
    return _DEFAULT


def _as_signatures(signatures) -> Signatures:
    if signatures is None:
        return default_signatures()
    if isinstance(signatures, Signatures):
        return signatures
    if isinstance(signatures, list):
        return Signatures({"signatures": signatures})
    return Signatures(signatures)


class _Fill(dict):
    def __init__(self, values: dict, placeholders: dict):
        super().__init__({k: v for k, v in values.items() if v})
        self.placeholders = placeholders

    def __missing__(self, key: str) -> str:
        return str(self.placeholders.get(key, key))


def render(template: str, groups: dict, placeholders: dict | None = None) -> str:
    """``template`` with ``{name}`` replaced by the matched group (or its placeholder word); other braces kept."""
    fill = _Fill(groups or {}, placeholders or {})
    return re.sub(r"\{(\w+)\}", lambda m: str(fill[m.group(1)]), " ".join(str(template or "").split()))


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join((text or "").rstrip().splitlines()[-lines:])


def _line_of(text: str, start: int, end: int) -> str:
    lo = text.rfind("\n", 0, start) + 1
    hi = text.find("\n", end)
    return text[lo:hi if hi >= 0 else len(text)].strip()[:400]


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _match_entry(entry: dict, text: str):
    """The match on the latest line (the freshest error of a log); on one line, the first pattern listed wins."""
    best, best_line = None, -1
    for rx in entry["regexes"]:
        for m in rx.finditer(text):
            line = _line_start(text, m.start())
            if line > best_line:
                best, best_line = m, line
    return best


def _result(entry: dict, m, text: str, placeholders: dict) -> dict:
    groups = {k: v for k, v in m.groupdict().items() if v}
    return {
        "class": entry["class"],
        "known": True,
        "kind": entry.get("kind", "install"),
        "cause": render(entry.get("cause", ""), groups, placeholders),
        "fix": render(entry.get("fix", ""), groups, placeholders),
        "check": entry.get("check", ""),
        "source": entry.get("source", ""),
        "matched": _line_of(text, m.start(), m.end()),
        "line_start": _line_start(text, m.start()),
        "groups": groups,
    }


def classify_all(text: str, signatures=None) -> list[dict]:
    """Every class whose signature matches ``text``, in signature order (the most specific first)."""
    sigs = _as_signatures(signatures)
    text = (text or "")[-MAX_TEXT:]
    found = []
    for entry in sigs.entries:
        m = _match_entry(entry, text)
        if m is not None:
            found.append(_result(entry, m, text, sigs.placeholders))
    return found


def classify(text: str, signatures=None, tail_lines: int = TAIL_LINES) -> dict:
    """The class of the error in ``text``: the first signature (in file order) that matches, with the other
    matching classes in ``also``. Unknown text gives ``class: unknown`` and the last lines of the log, never
    nothing. A harmless probe message (kind ``harmless``) only wins when nothing else matched."""
    found = classify_all(text, signatures)
    real = [f for f in found if f["kind"] != "harmless"]
    ordered = real + [f for f in found if f["kind"] == "harmless"]
    if not ordered:
        return {
            "class": UNKNOWN, "known": False, "kind": UNKNOWN,
            "cause": "no known error signature matches this log",
            "fix": "read the last lines below; if the error is new, add its signature to ascend_fa/data/known_errors.yml",
            "check": "", "source": "", "matched": "", "groups": {}, "also": [],
            "tail": tail(text, tail_lines),
        }
    best = dict(ordered[0])
    # other classes matched on other lines (a generic signature matching the same line adds nothing)
    best["also"] = [f["class"] for f in ordered[1:] if f["line_start"] != best["line_start"]]
    best["tail"] = tail(text, tail_lines)
    return best


def describe(result: dict) -> str:
    """One line: ``<class>: <cause>. Fix: <fix>`` (unknown: the class and what to do)."""
    return f"{result['class']}: {result['cause']}. Fix: {result['fix']}"


def diagnosis(text: str, signatures=None) -> dict:
    """What modules attach to a failure: class, cause, fix, source, the matched line (no tail: they have one)."""
    res = classify(text, signatures)
    return {k: res[k] for k in ("class", "known", "kind", "cause", "fix", "source", "matched")}
