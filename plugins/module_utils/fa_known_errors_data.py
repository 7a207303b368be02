# Copyright: ascend-fa contributors
# Apache-2.0
"""The known-error signatures, as data: ``PLACEHOLDERS`` and ``SIGNATURES`` (the only copy).

Read by the classifier ``plugins/module_utils/fa_known_errors.py`` (which the modules fa_build, fa_verify and
fa_env_check use on the hosts, and ``ascend-fa explain`` on the controller). Standard library only, Python 3.6+: plain
literals, nothing to import.
"""

# ruff: noqa: E501 - regular expressions and example messages are kept on one line each, as they are matched

# Known errors of CANN custom operator packages, torch_npu and FlashAttention, as signatures over log text.
# Built from /work/shared/reference/field-errors.md (one entry per row, plus what ascend-fa's own checks see).
#
# The classifier (plugins/module_utils/fa_known_errors.py) tries the entries in order and reports the first that matches
# as the log's class (more specific entries come first); every other matching class is listed too.
#   class:    the class of error (stable id, printed by `ascend-fa explain`, fa_build, fa_verify and the doctor)
#   patterns: Python regular expressions, searched case-insensitively over the log; they match the CLASS of the
#             error, not one message: any SoC name, any library name, any symbol. Named groups (?P<name>...) can
#             be used in cause/fix as {name}.
#   cause:    why it happens;  fix: what to do;  check: the ascend-fa check that catches it earlier
#   source:   where it was reported (field-errors.md)
#   kind:     install | build | workload | harmless (harmless: a probe message that is not itself the failure)
#   examples: messages that must be recognised as this class (tests/unit/test_known_errors.py runs them all)
#
# Modules run on the hosts and import this file with the classifier (Ansible ships module_utils with them); the
# controller (ascend-fa explain) imports the same file: one copy. A user's own signatures file (YAML, same
# fields) is read by `ascend-fa explain --signatures FILE`.

# Words put in for a named group that did not take part in the match (e.g. {library} of a pattern without it).
PLACEHOLDERS = {
    "api": "the aclnn API",
    "device_soc": "this device's SoC",
    "error": "an error",
    "library": "the shared library",
    "package_soc": "another SoC",
    "process": "a compiler process",
    "soc": "this SoC",
    "supported": "the supported SoCs",
    "symbol": "a symbol",
}

SIGNATURES = [
    {
        "class": "soc_mismatch",
        "patterns": [
            # "socverison" (sic) is how CANN spells it in this message; any spelling of soc version is accepted
            (r"soc\s*_?ve?r\w*\s*[:=]?\s*(?P<package_soc>[\w.-]+)\s+of\s+(?:the\s+)?bin(?:ary)?\s+package\s+does\s+not\s+match\s+"
             r"(?:with\s+)?(?:the\s+)?current\s+device\s+soc\s*_?ve?r\w*\s*[:=]?\s*(?P<device_soc>[\w-]+(?:\.\w+)*)"),
            (r"bin(?:ary)?\s+package\s+soc\s*_?ve?r\w*\s*[:=]?\s*(?P<package_soc>[\w.-]+)\s*,?\s+(?:but|while)\s+(?:the\s+)?(?:current\s+"
             r")?device\s+soc\s*_?ve?r\w*\s*(?:is\s*)?[:=]?\s*(?P<device_soc>[\w-]+(?:\.\w+)*)"),
        ],
        "cause": (
            "the operator package was built for SoC {package_soc}, but the device is {device_soc}: it was built with the "
            "wrong --soc (or copied from another machine type)"
        ),
        "fix": (
            "rebuild for this device's SoC family: let ascend-fa derive --soc from npu-smi (ascend-fa deploy builds one "
            "package per SoC family); never copy a .run between A2 (ascend910b), A3 (ascend910_93) and 310P hosts"
        ),
        "check": "preflight derives soc_family from npu-smi; the build key includes it",
        "source": "vllm-ascend #6676, #5599",
        "kind": "install",
        "examples": [
            "the socversion Ascend910B1 of bin package does not match the current device socverison Ascend310P3",
            "EZ9999: [FlashAttentionScore] the socversion ascend910_93 of bin package does not match the current device socverison Ascend910B3.",
        ],
    },
    {
        "class": "soc_unsupported",
        "patterns": [
            r"supported\s+socVersion\s*[:=]\s*(?P<supported>[\w.,-]+).{0,120}?model\s+socVersion\s*[:=]\s*(?P<soc>[\w.-]+)",
            r"SOC_?VERSION\s*[:=]?\s*(?P<soc>[\w.-]+)\s+(?:is\s+)?(?:does\s+not|doesn't|not)\s+support",
            r"unsupported\s+soc[_ ]?version\s*[:=]?\s*(?P<soc>[\w.-]+)",
            r"soc[_ ]?version\s*[:=]?\s*(?P<soc>[\w.-]+)\s+is\s+not\s+(?:supported|in\s+the\s+supported)",
        ],
        "cause": (
            "the SoC name {soc} is not one the tool or model accepts: an inexact name (Ascend910B instead of Ascend910B2, "
            "lower/upper case, a family where a chip is expected) or a SoC the operator does not support at all"
        ),
        "fix": (
            "use the exact SoC name npu-smi reports, normalised (ascend-fa derives soc_version and the --soc family from "
            "npu-smi); FlashAttentionScore runs on Atlas A2/A3 training (ascend910b, ascend910_93) and Ascend 950 only"
        ),
        "check": "preflight (soc_unsupported, soc_not_in_release)",
        "source": "k2-fsa/sherpa-onnx PR #2740; ggml-org/llama.cpp #10719",
        "kind": "install",
        "examples": [
            "EE1001 The argument is invalid. supported socVersion=Ascend910B2, but the model socVersion=Ascend910B",
            "SOC_VERSION ascend310b1 does not support",
        ],
    },
    {
        "class": "nnal_torch_npu_mismatch",
        "patterns": [
            r"(?P<library>lib(?:tbe_adapter|atb\w*|asdops\w*|lcal\w*|lccl\w*|mki\w*)\.so[\w.]*)\s*:\s*undefined\s+symbol:?\s*(?P<symbol>\S+)",
            r"undefined\s+symbol:?\s*(?P<symbol>_ZN\d+(?:Mki|atb|AsdOps|Lcal)\w*)",
        ],
        "cause": (
            "NNAL/ATB ({library}) was built against another torch_npu / CANN than the one loaded: symbol {symbol} is "
            "missing"
        ),
        "fix": (
            "install the NNAL (Ascend-cann-nnal) release paired with this CANN and torch_npu (same CANN version), then "
            "source /usr/local/Ascend/nnal/atb/set_env.sh; pin NNAL together with CANN"
        ),
        "check": "ascend-fa doctor (sources NNAL's set_env.sh and checks the torch/torch_npu pair)",
        "source": "Ascend/pytorch #99",
        "kind": "install",
        "examples": [
            "libtbe_adapter.so: undefined symbol _ZN3Mki2Dl4LoadEv",
            "ImportError: /usr/local/Ascend/nnal/atb/latest/atb/cxx_abi_1/lib/libatb.so: undefined symbol: _ZN3atb9OpsRunner4InitEv",
        ],
    },
    {
        "class": "torch_npu_cann_mismatch",
        "patterns": [
            r"(?:(?P<library>[\w./+-]*\.so[\w.]*)\s*:\s*)?undefined\s+symbol:?\s*(?P<symbol>[A-Za-z_][\w@.]*)",
        ],
        "cause": (
            "a binary was built against another CANN / torch_npu release than the one loaded (symbol {symbol} is missing): "
            "the torch_npu and CANN versions are not a supported pair"
        ),
        "fix": (
            "install the torch_npu release paired with this CANN (ascend-fa compat --driver D --cann C --soc S --torch-npu T "
            "names it; e.g. torch-npu 2.7.1 needs its .post4 for CANN 9.0), or the CANN it was built for"
        ),
        "check": "preflight compat (torch_npu_cann_mismatch); ascend-fa doctor (torch_pair)",
        "source": "triton-lang/triton-ascend #328",
        "kind": "install",
        "examples": [
            "undefined symbol: MsprofSysCycleTime",
            ("ImportError: /usr/local/lib/python3.11/site-packages/torch_npu/lib/libtorch_npu.so: "
             "undefined symbol: MsprofSysCycleTime (torch-npu 2.7.1, CANN 9.0)"),
        ],
    },
    {
        "class": "aclnn_api_missing",
        "patterns": [
            r"(?P<api>aclnn\w+)[^\n]{0,120}?not\s+(?:found\s+)?in\s+(?P<library>lib\w*\.so)",
            r"(?:can ?not|cannot|could\s+not|failed\s+to)\s+find\s+(?:symbol\s+|function\s+|api\s+)?(?P<api>aclnn\w+)",
        ],
        "cause": (
            "{api} is not provided by the loaded operator libraries: the CANN ops package is older than torch_npu's "
            "op-plugin expects, or the custom operator package that provides it is not installed or not visible"
        ),
        "fix": (
            "check the torch_npu / CANN pair (ascend-fa compat) and install the matching ops package; for FlashAttention "
            "run ascend-fa doctor -i INV: it names a missing or invisible package (ascend-fa deploy reinstalls it)"
        ),
        "check": "preflight compat (torch_npu_cann_mismatch); ascend-fa doctor (package_present, opp_path)",
        "source": "vllm-project/vllm PR #8054",
        "kind": "install",
        "examples": [
            "aclnnPromptFlashAttentionV3 or aclnnPromptFlashAttentionV3GetWorkspaceSize not in libopapi.so, or libopapi.so not found.",
            "aclnnFlashAttentionScoreV2 not in libopapi.so",
        ],
    },
    {
        "class": "library_corrupt",
        "patterns": [
            (r"(?P<library>[\w./+-]*\.so[\w.]*)\s*:\s*(?:invalid\s+ELF\s+header|file\s+too\s+short|not\s+an\s+ELF|ELF\s+load\s+"
             r"command\s+\w+|wrong\s+ELF\s+class\S*|unknown\s+file\s+type)"),
            r"invalid\s+ELF\s+header",
        ],
        "cause": (
            "the shared library {library} is damaged (not a loadable ELF file): a partial copy, a disk error or a changed "
            "file"
        ),
        "fix": (
            "reinstall the package: ascend-fa deploy -i INV finds the changed files (preflight: files changed) and "
            "reinstalls from the kept .run on that host only"
        ),
        "check": "preflight drift (files_changed: sha256 of the installed tree); ascend-fa doctor (dlopen)",
        "source": "ascend-fa (installed-tree digest)",
        "kind": "install",
        "examples": [
            "OSError: /usr/local/Ascend/cann/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so: invalid ELF header",
            "libnnopbase.so: file too short",
        ],
    },
    {
        "class": "custom_opapi_probe",
        "patterns": [
            r"dlopen\s+(?P<library>\S*libcust_opapi\.so)\s+failed,?\s*error\s*:?\s*\(null\)",
        ],
        "cause": (
            'op-plugin probes for a custom operator library at start-up; "error:(null)" only says no custom package is on '
            "the search path. It is harmless when no custom operator is used"
        ),
        "fix": (
            "nothing to fix unless a custom operator (FlashAttention from ascend-fa) is expected; then run "
            "ascend-fa doctor -i INV, which checks that the vendor's op_api/lib is present, registered and loadable"
        ),
        "check": "ascend-fa doctor (dlopen, ld_cache)",
        "source": "DeepLink-org/DIOPI #1363",
        "kind": "harmless",
        "examples": [
            "dlopen libcust_opapi.so failed, error:(null)",
        ],
    },
    {
        "class": "custom_opapi_unloadable",
        "patterns": [
            r"dlopen\s+(?P<library>\S*libcust_opapi\.so)\s+failed,?\s*error\s*:(?!\s*\(null\))\s*(?P<error>[^\n]+)",
        ],
        "cause": "the custom operator package's library {library} exists in the search order but does not load ({error})",
        "fix": (
            "run ascend-fa doctor -i INV (it names a missing op_api/lib, a damaged file or a missing dependency); "
            "ascend-fa deploy reinstalls a package whose files changed"
        ),
        "check": "ascend-fa doctor (dlopen)",
        "source": "DeepLink-org/DIOPI #1363",
        "kind": "install",
        "examples": [
            "dlopen /usr/local/Ascend/cann/opp/vendors/customize/op_api/lib/libcust_opapi.so failed, error:libfoo.so: cannot open shared object file",
        ],
    },
    {
        "class": "shared_object_missing",
        "patterns": [
            r"(?P<library>lib[\w.+-]*?\.so[\w.]*)\s*:\s*cannot\s+open\s+shared\s+object\s+file",
            r"cannot\s+(?:open|load)\s+(?:shared\s+)?(?:library|object)\s*:?\s*(?P<library>lib[\w.+-]*?\.so[\w.]*)",
            r"(?:error\s+while\s+loading\s+shared\s+libraries|could\s+not\s+find\s+library)\s*:?\s*(?P<library>lib[\w.+-]*?\.so[\w.]*)",
            r"ImportError:\s*(?:\S*/)?(?P<library>lib[\w.+-]*?\.so[\w.]*)",
        ],
        "cause": (
            "{library} is not on the library search path of this process: the CANN (or NNAL) set_env.sh, or ascend-fa's "
            "set_env.bash, was not sourced before the process started (or the library is not installed)"
        ),
        "fix": (
            "source /usr/local/Ascend/cann/set_env.sh (CANN < 8.5: /usr/local/Ascend/ascend-toolkit/set_env.sh), NNAL's "
            "/usr/local/Ascend/nnal/atb/set_env.sh where installed, and /var/lib/ascend-fa/set_env.bash in the shell or "
            "service unit that starts the process; ascend-fa doctor -i INV checks this in a fresh login shell"
        ),
        "check": "ascend-fa doctor (cann_env, package_env, lib_on_path)",
        "source": "vllm-ascend #262, #152",
        "kind": "install",
        "examples": [
            "ImportError: libhccl.so: cannot open shared object file: No such file or directory",
            "OSError: libatb.so: cannot open shared object file: No such file or directory",
        ],
    },
    {
        "class": "custom_opp_path_late",
        "patterns": [
            r"SelectBin[^\n]{0,160}?(?:no\s+kernel|not\s+find|not\s+found|fail)",
            r"\bSelectBin\b",
            r"GetWorkspaceSize\s*[=:]?\s*561103",
            r"\berror\s*code\s*[=:]?\s*561103\b",
        ],
        "cause": (
            "the operator found no kernel binary: ASCEND_CUSTOM_OPP_PATH (or the package's set_env.bash) was set after "
            "CANN initialised in this process, so the custom package's kernels were never registered (or no kernel was "
            "built for this SoC)"
        ),
        "fix": (
            "export ASCEND_CUSTOM_OPP_PATH / source the package's set_env.bash BEFORE the process starts (in the launcher "
            "or service unit, not from Python after import torch_npu); check the package was built for this SoC family"
        ),
        "check": "ascend-fa doctor (opp_path, vendor_first)",
        "source": "flashserve/flash-linear-attention-npu PR #431",
        "kind": "install",
        "examples": [
            "SelectBin no kernel",
            "call aclnnFlashAttentionScore failed, GetWorkspaceSize=561103",
        ],
    },
    {
        "class": "cann_python_deps",
        "patterns": [
            r"\[Init\]\[Env\]\s*init\s+env\s+failed",
            r"EH9999[^\n]{0,200}?500001",
        ],
        "cause": (
            "CANN's Python dependencies are missing or broken in the environment that runs torch_npu (init env failed, "
            "500001)"
        ),
        "fix": (
            "pip install CANN's Python requirements (attrs, cloudpickle, decorator, ml-dtypes, numpy, psutil, scipy, sympy, "
            "tornado) into the Python that runs torch_npu, and make pip check pass there (ascend-fa doctor runs it)"
        ),
        "check": "ascend-fa doctor (pip_check)",
        "source": "Ascend/pytorch #7",
        "kind": "install",
        "examples": [
            "EH9999 [Init][Env]init env failed! 500001",
            "RuntimeError: EH9999: Inner Error! [Init][Env]init env failed, error code 500001",
        ],
    },
    {
        "class": "build_oom",
        "patterns": [
            r"\bOOM[- ]?kill",
            r"out\s+of\s+memory:\s+kill(?:ed)?\s+process\s+\d+\s+\((?P<process>[\w.+-]+)\)",
            r"fatal\s+error:\s+killed\s+signal\s+terminated\s+program\s+(?P<process>[\w.+-]+)",
            r"\b(?P<process>opc|cc1plus|ccec|bisheng|ld|ld\.lld)\b[^\n]{0,80}\b(?:killed|signal\s+9|sigkill)\b",
            r"virtual\s+memory\s+exhausted|cannot\s+allocate\s+memory",
        ],
        "cause": (
            "the build ran out of memory and the kernel killed a compiler ({process}): CANN's operator build.sh defaults "
            "to -j = 2 x nproc, more compile jobs than memory allows (16 CPUs / 24 GiB is enough to be killed)"
        ),
        "fix": (
            "lower the job count: ascend-fa sizes -j by memory (recipe mem_per_job_mb, fa_build_jobs_cap); set "
            "fa_build_jobs=N for this build host, or build on a host with more memory (fa_build_host)"
        ),
        "check": "preflight (build_memory) and the -j sizing in fa_build",
        "source": "vllm-project/vllm-ascend PR #15139",
        "kind": "build",
        "examples": [
            "opc OOM-killed during build",
            "c++: fatal error: Killed signal terminated program cc1plus",
            "Out of memory: Killed process 4242 (opc) total-vm:9876543kB",
        ],
    },
    {
        "class": "custom_ops_removed_by_upgrade",
        "patterns": [
            (r"(?:custom\s+(?:operator\s+|op\s+)?(?:ops?|operators?|package)|vendor\s+package)s?[^\n]{0,60}?(?:gone|removed|missing|uninstalled|disappeared)"
             r"[^\n]{0,60}?(?:toolkit|CANN|kernels)\s+(?:upgrade|update|reinstall)"),
            r"(?:toolkit|CANN)\s+(?:upgrade|update)[^\n]{0,60}?(?:removes?|removed|uninstall\w*|deletes?|deleted)[^\n]{0,40}?(?:custom|vendor|kernels)",
            r"CANN\s+changed\s+since\s+install",
        ],
        "cause": (
            "a CANN Toolkit upgrade uninstalls the Kernels/ops package and the custom operator (vendor) packages "
            "installed into its opp/vendors"
        ),
        "fix": (
            "reinstall the ops package for the new CANN, then the vendor package: ascend-fa deploy -i INV finds the hosts "
            "(preflight: CANN changed since install / package missing) and rebuilds and reinstalls on those hosts only"
        ),
        "check": "preflight drift (cann_changed, missing) from the install manifest",
        "source": "hiascend canncommercial/82RC1 instg_0030",
        "kind": "install",
        "examples": [
            "custom ops gone after a toolkit upgrade",
            "vendor package removed by the CANN upgrade",
        ],
    },
    {
        "class": "vendor_priority",
        "patterns": [
            r"(?:vendor|custom\s+op(?:erator)?s?)\s+package[^\n]{0,40}?(?:can\s*not|cannot|can't|could\s+not)\s+be\s+uninstall",
            r"\bload_priority\b",
        ],
        "cause": (
            "vendors/config.ini load_priority decides which vendor's operators win, and a vendor package has no "
            "uninstaller: another vendor listed first shadows ours; a removed vendor left in the list is searched in vain"
        ),
        "fix": (
            "keep ascend-fa's vendor first (ascend-fa deploy reinstalls it, which puts it first again); to remove a "
            "vendor, delete opp/vendors/<vendor> and its load_priority entry (ascend-fa rollback does both and keeps the "
            "previous package)"
        ),
        "check": "ascend-fa doctor (vendor_first)",
        "source": "hicann/ops-transformer docs/zh/install/compile.md",
        "kind": "install",
        "examples": [
            "vendor package cannot be uninstalled; load_priority order",
            "ascendfa_transformer is not first in load_priority=customize,ascendfa_transformer",
        ],
    },
    {
        "class": "workload_error",
        "patterns": [
            r"EZ9999[^\n]{0,40}?Inner\s+Error",
            r"\b(?:numHeads|numKvHeads|headNum|head_num|kvHeadNum)\b[^\n]{0,80}?(?:must|should|invalid|not\s+(?:be\s+)?(?:divisible|supported|equal|match))",
        ],
        "cause": (
            "the operator rejected these inputs (a tiling or parameter check, e.g. numHeads not a multiple of numKvHeads): "
            "a workload error, not an installation problem"
        ),
        "fix": (
            "check the call's shapes and attributes against the operator's constraints (head counts, head_dim, layout, "
            "sparse_mode); the installation itself is fine if ascend-fa verify passes"
        ),
        "check": "ascend-fa verify (fa_check.py runs valid shapes)",
        "source": "vllm-ascend docs/source/faqs.md",
        "kind": "workload",
        "examples": [
            "EZ9999: Inner Error! numHeads / numKvHeads must be an integer",
            "EZ9999: Inner Error! [FlashAttentionScore] numHeads(32) should be divisible by numKvHeads(5)",
        ],
    },
]
