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
#   kind:     install | build | workload | device | harmless | generic
#             (harmless: a probe message that is not itself the failure; generic: a code that names no cause by
#             itself, reported only when no other class matched within CONTEXT_LINES of it)
#   missing:  (generic only) the evidence that would name the cause
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
    "op": "the operator",
    "key": "of these inputs",
    "unit": "AI Core",
    "detail": "see the matched line",
    "code": "the code",
    "meaning": "a generic error code",
}

# What each generic code means (the "meaning" of the generic class). Sources: hiascend CANN maintenref
# atlaserrorcode_15_0314 ("E*9*** Inner Error": a module's inner error, "troubleshoot by the error message"),
# atlaserrorcode_15_0477 (EZ1001 AclNN_Parameter_Error); hicann/ops-transformer docs/zh/context/aclnn返回码.md @e4800825
# (561xxx); torch_npu ERR00100 / ERR01100 (hiascend PyTorch troubleshooting trbst_0035).
GENERIC_CODES = {
    "E*9999": "the inner-error code of a CANN module; EZ9999 is the operators' one",
    "EZ1001": "aclnn parameter error, 'Parameter validation failed. Please check the log.'",
    "561000": "ACLNN_ERR_INNER, an internal error of the aclnn API",
    "561103": ("ACLNN_ERR_INNER_NULLPTR, an inner step of the aclnn API returned null; a failed tiling check, a missing "
               "kernel and a late ASCEND_CUSTOM_OPP_PATH are among the causes"),
    "ACLNN_ERR_INNER": "561000, an internal error of the aclnn API",
    "ACLNN_ERR_INNER_NULLPTR": "561103, an inner step of the aclnn API returned null",
    "ERR00100": "torch_npu: an ACL API call failed",
    "ERR01100": "torch_npu: an operator's ACL API call failed",
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
            r"(?P<library>lib(?:tbe_adapter|atb\w*|asdops\w*|lcal\w*|lccl\w*|mki\w*)\.so[\w.]{0,40})\s*:\s*undefined\s+symbol:?\s*(?P<symbol>\S+)",
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
            r"(?:(?<![\w./+-])(?P<library>[\w./+-]{0,300}\.so[\w.]{0,40})\s*:\s*)?undefined\s+symbol:?\s*(?P<symbol>[A-Za-z_][\w@.]*)",
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
            (r"(?<![\w./+-])(?P<library>[\w./+-]{0,300}\.so[\w.]{0,40})\s*:\s*(?:invalid\s+ELF\s+header|file\s+too\s+short|not\s+an\s+ELF|ELF\s+load\s+"
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
            r"dlopen\s+(?P<library>\S{0,300}libcust_opapi\.so)\s+failed,?\s*error\s*:?\s*\(null\)",
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
            r"dlopen\s+(?P<library>\S{0,300}libcust_opapi\.so)\s+failed,?\s*error\s*:(?!\s*\(null\))\s*(?P<error>[^\n]+)",
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
            r"(?P<library>lib[\w.+-]{0,200}?\.so[\w.]{0,40})\s*:\s*cannot\s+open\s+shared\s+object\s+file",
            r"cannot\s+(?:open|load)\s+(?:shared\s+)?(?:library|object)\s*:?\s*(?P<library>lib[\w.+-]{0,200}?\.so[\w.]{0,40})",
            r"(?:error\s+while\s+loading\s+shared\s+libraries|could\s+not\s+find\s+library)\s*:?\s*(?P<library>lib[\w.+-]{0,200}?\.so[\w.]{0,40})",
            r"ImportError:\s*(?:\S*/)?(?P<library>lib[\w.+-]{0,200}?\.so[\w.]{0,40})",
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
        "class": "kernel_binary_missing",
        "patterns": [
            # op_executor SelectBin's message (CANN opbase src/nnopbase/.../op_executor: "Cannot find bin of op %s,
            # integral key %s."), followed by "Cannot find binary for op X." in the TraceBack
            r"Cannot\s+find\s+bin(?:ary)?\s+(?:of|for)\s+op\s+(?P<op>\w+)(?:,\s*integral\s+key\s+(?P<key>[^\s.]+))?",
            r"\bSelectBin\b[^\n]{0,160}?(?:no\s+kernel|not\s+find|not\s+found|fail)",
            r"\bSelectBin\b",
            # ACLNN_ERR_INNER_FIND_KERNEL_ERROR (hicann/ops-transformer docs/zh/context/aclnn返回码.md)
            r"\bACLNN_ERR_INNER_FIND_KERNEL_ERROR\b",
            r"(?:error\s*code\s*(?:is\s*)?|errno\s*|GetWorkspaceSize\s*|ret(?:urn)?\s*(?:code|value)?\s*)[=:]?\s*561003\b",
        ],
        "cause": (
            "no kernel binary of {op} matches this call (key {key}) on this device: the package was built for another "
            "SoC (wrong --soc), is incomplete (kernel files missing or removed), was never registered in this process "
            "(ASCEND_CUSTOM_OPP_PATH exported after CANN initialised), or has no kernel for this dtype/format"
        ),
        "fix": (
            "check that the vendor tree holds {op}'s kernels for this host's SoC: "
            "<vendor>/op_impl/ai_core/tbe/kernel/<soc_family>/ (.o and .json) and "
            "op_impl/ai_core/tbe/kernel/config/<soc_family>/; check the build's --soc against the SoC npu-smi reports "
            "(ascend-fa derives it; ascend-fa deploy rebuilds and reinstalls a package built for another SoC or with "
            "files missing); export ASCEND_CUSTOM_OPP_PATH / source set_env.bash before the process starts; check "
            "the dtype and layout against the operator's documentation"
        ),
        "check": "installed-package check (kernel binaries for the host's SoC); ascend-fa verify",
        "source": ("hiascend PyTorch 7.0.0 troubleshooting trbst_0035 (Cannot find bin of op); vllm-project/vllm-ascend #37; "
                   "flashserve/flash-linear-attention-npu PR #431 (SelectBin, late ASCEND_CUSTOM_OPP_PATH); facts 9.5"),
        "kind": "install",
        "examples": [
            "EZ9999: [PID: 775] 2025-02-16-12:18:25.258.321 Cannot find bin of op Range, integral key 0/1/|int64/ND/int64/ND/int64/ND/int64/ND/.",
            "EZ9999: Inner Error!\nEZ9999: [PID: 4242] Cannot find bin of op FlashAttentionScore, integral key 0/1/|bf16/ND/bf16/ND/bf16/ND/.",
            "SelectBin no kernel",
            "call aclnnFlashAttentionScore failed, error code is 561003",
        ],
    },
    {
        "class": "device_kernel_fault",
        "patterns": [
            # runtime texts: "there is an aicore error exception", "Kernel task happen error, retCode=0x26, [aicore
            # exception]", "[aicpu exception]", "[Error]: The aicore execution is abnormal."
            r"\b(?P<unit>aicore|ai\s+core|aivec|aicpu|vector\s+core)\s+(?:error\s+)?exception\b",
            r"exception\s+of\s+(?:fftsplus\s+)?(?P<unit>aicore|aivec|aicpu)\s+error",
            r"\b(?P<unit>aicore|aivec|aicpu)\s+error\b",
            r"The\s+(?P<unit>aicore|ai\s+core|vector\s+core|aicpu)\s+execution\s+is\s+abnormal",
            r"\b(?P<unit>AICORE|AICPU)\s+Kernel\s+task\s+happen\s+error",
            r"Kernel\s+task\s+happen\s+error,\s*retCode\s*=\s*(?P<retcode>0x[0-9a-f]+)",
        ],
        "cause": (
            "the kernel faulted on the device ({unit} exception): a kernel bug or an out-of-range access for these "
            "inputs, or a faulty card; the operator was found and launched, so it is not a missing file"
        ),
        "fix": (
            "collect the evidence: the plog of the process under ~/ascend/log (ASCEND_GLOBAL_LOG_LEVEL=1) and the device "
            "log (msnpureport); check the card's health (npu-smi info -t health -i <card>); run ascend-fa verify on "
            "that card: if CANN's own FlashAttentionScore passes there, suspect the custom kernel, else the card"
        ),
        "check": "ascend-fa verify (per card); preflight card health",
        "source": "huawei-csl/pto-dsl PR #90; hw-native-sys/PTOAS PR #426; open-mmlab/mmcv #3203; Ascend/pytorch #66; facts 9.5",
        "kind": "device",
        "examples": [
            ("EZ9999[PID: 8146] (EZ9999):  The error from device(chipId:7, dieId:0), serial number is 6, "
             "there is an exception of fftsplus aicore error, core id is 12"),
            "Kernel task happen error, retCode=0x26, [aicore exception].",
            "[Error]: The vector core execution is abnormal.",
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
        "class": "third_party_download_failed",
        "patterns": [
            r"Each\s+download\s+failed!",
            r"Failed\s+to\s+clone\s+repository:?\s*'?(?P<detail>[^'\n]{0,200})",
            r"status_code:\s*(?:6|7|28|35|56)\b[^\n]{0,80}",
        ],
        "cause": (
            "the build host could not download ops-transformer's third-party sources (cmake/third_party/*.cmake: opbase, "
            "json, eigen, abseil, protobuf, makeself): it is offline, or its proxy is not set for the build "
            "(build.sh fetches them unless --cann_3rd_lib_path points at them)"
        ),
        "fix": (
            "hand the build a third-party bundle: fa_build_third_party_bundle=<tar.gz on the controller or https URL> with "
            "fa_build_third_party_sha256 (build.sh gets --cann_3rd_lib_path; docs/building.md says how to make one), or "
            "set fa_proxy_env (https_proxy, no_proxy) so the build host reaches the internet"
        ),
        "check": "fa_build (the build log); docs/building.md (offline build hosts)",
        "source": "ascend-facts.md 9.4; CMake ExternalProject/FetchContent download errors (OSGeo/gdal #11883)",
        "kind": "build",
        "examples": [
            ("  Each download failed!\n    error: downloading 'https://github.com/nlohmann/json/archive/v3.11.3.tar.gz' "
             "failed\n          status_code: 6\n          status_string: \"Couldn't resolve host name\""),
            "  Failed to clone repository: 'https://gitcode.com/cann/opbase.git'",
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
            r"\b(?:numHeads|numKvHeads|headNum|head_num|kvHeadNum)\b[^\n]{0,80}?(?:must|should|invalid|not\s+(?:be\s+)?(?:divisible|supported|equal|match))",
            r"\bnumHeads\s*/\s*numKvHeads\b",   # the ratio that must be an integer (GQA head counts)
            # the operator's tiling (parameter) checks: "Tiling failed", "[FILE:flash_attention_score_tiling_general.cpp]"
            r"\bget\s+unsupported\s+(?P<detail>\w+\s+shape)",
            r"\[FUNC:\w+\]\[FILE:\w{0,80}tiling\w{0,80}\.cpp\]",
            r"\btiling\s+fail(?:ed|ure)\b",
            # ACLNN_ERR_INNER_TILING_ERROR, ACLNN_ERR_PARAM_INVALID, ACLNN_ERR_PARAM_NULLPTR (aclnn返回码.md)
            r"\bACLNN_ERR_(?:INNER_TILING_ERROR|PARAM_INVALID|PARAM_NULLPTR)\b",
            r"(?:error\s*code\s*(?:is\s*)?|errno\s*|GetWorkspaceSize\s*)[=:]?\s*(?:561002|161002|161001)\b",
        ],
        "cause": (
            "the operator rejected these inputs in its parameter or tiling check ({detail}): a workload error (shapes, "
            "head counts, mask shape, layout, sparse_mode, dtype), not an installation problem"
        ),
        "fix": (
            "check the call's shapes and attributes against the operator's constraints (head counts, head_dim, layout, "
            "atten_mask shape, sparse_mode); the installation itself is fine if ascend-fa verify passes"
        ),
        "check": "ascend-fa verify (fa_check.py runs valid shapes)",
        "source": "vllm-ascend docs/source/faqs.md; vllm-project/vllm-ascend #6573, #6076; PKU-YuanGroup/Open-Sora-Plan #360",
        "kind": "workload",
        "examples": [
            "EZ9999: Inner Error! numHeads / numKvHeads must be an integer",
            "EZ9999: Inner Error! [FlashAttentionScore] numHeads(32) should be divisible by numKvHeads(5)",
            "EZ9999: 2024-07-27-05:01:55.672.958  get unsupported atten_mask shape, the shape is [2, 1, 28800, 28800]",
            "call aclnnFusedInferAttentionScoreV3 failed, error code is 561002",
        ],
    },
    {
        # Generic codes: they say THAT something failed, the lines around them say WHAT (facts 9.5). This entry only
        # wins when no other class matched near the code (fa_known_errors.classify: kind generic).
        "class": "generic",
        "patterns": [
            # E*9999: every CANN module's inner error (hiascend maintenref atlaserrorcode_15_0314 "E*9*** Inner Error")
            r"\b(?P<code>E[0-9A-Z]9999)\b",
            # EZ1001 AclNN_Parameter_Error: "Parameter validation failed. Please check the log." (atlaserrorcode_15_0477)
            r"\b(?P<code>EZ1001)\b",
            # aclnn ACLNN_ERR_INNER (561000) and ACLNN_ERR_INNER_NULLPTR (561103) (aclnn返回码.md)
            r"(?:error\s*code\s*(?:is\s*)?|errno\s*|GetWorkspaceSize\s*|ret(?:urn)?\s*(?:code|value)?\s*)[=:]?\s*(?P<code>561000|561103)\b",
            r"\b(?P<code>ACLNN_ERR_INNER_NULLPTR|ACLNN_ERR_INNER)\b",
            # torch_npu's own wrappers around a failed ACL call
            r"\b(?P<code>ERR0[01]100)\s+(?:PTA|OPS)\s+call\s+acl\s+api\s+failed",
        ],
        "cause": (
            "{code} is a generic code ({meaning}): it says that a call failed, not why. The cause is in the lines around "
            "it, and none of the lines here names one"
        ),
        "fix": (
            "capture the full log of the failing process, with the lines printed after {code} (CANN names the cause "
            "there: 'Cannot find bin of op', an aicore error, a tiling check); ASCEND_GLOBAL_LOG_LEVEL=1 makes CANN log "
            "more, and the plog files under ~/ascend/log hold it; then run ascend-fa explain on that log"
        ),
        "missing": "the lines around {code} that name the cause (the error text after it, or the plog under ~/ascend/log)",
        "check": "",
        "source": ("hiascend CANN maintenref atlaserrorcode_15_0314 (E*9999), atlaserrorcode_15_0477 (EZ1001); "
                   "hicann/ops-transformer docs/zh/context/aclnn返回码.md (561xxx); facts 9.5"),
        "kind": "generic",
        "examples": [
            "RuntimeError: call aclnnFlashAttentionScore failed, detail:EZ9999: Inner Error!",
            "call aclnnFlashAttentionScore failed, GetWorkspaceSize=561103",
            "NPU function error: call aclnnFlashAttentionScore failed, error code is 561103",
        ],
    },
]
