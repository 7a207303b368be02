"""Pure parsers for the Ascend software stack: npu-smi output, version files, SoC names.

Standard library only: this file is shipped to managed hosts as an Ansible module_utils
(``from plugins/module_utils/ascend_detect.py import ...``) and imported by the unit tests directly.
Every format handled here is recorded, with its source, in ``shared/reference/ascend-facts.md``.
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------------------------------------------
# key=value files: driver/firmware version.info, ascend_toolkit_install.info, /etc/ascend_install.info
# ---------------------------------------------------------------------------------------------------


def parse_kv(text: str) -> dict[str, str]:
    """Parse ``key=value`` lines (values may be quoted); comments and blank lines are skipped."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _unused, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def kv_get(data: dict[str, str], *keys: str) -> str | None:
    """First present key, case-insensitive (install.info files differ in capitalisation)."""
    lower = {k.lower(): v for k, v in data.items()}
    for key in keys:
        if key.lower() in lower and lower[key.lower()] != "":
            return lower[key.lower()]
    return None


_CFG_ENTRY = re.compile(r"\[([^\]:]*):([^\]]*)\]")


def parse_version_cfg(text: str) -> dict[str, list[str]]:
    """Parse ``version.cfg``: ``toolkit_installed_version=[7.6.0.1.220:8.0.0][...]`` -> release names."""
    out: dict[str, list[str]] = {}
    for key, value in parse_kv(text).items():
        out[key] = [release for _inner, release in _CFG_ENTRY.findall(value)]
    return out


def running_cann_version(cfg: dict[str, list[str]]) -> str | None:
    """The running CANN release from version.cfg: ``*_running_version`` wins over the installed list."""
    for key in ("toolkit_running_version", "runtime_running_version", "opp_running_version"):
        if cfg.get(key):
            return cfg[key][-1]
    installed = cfg.get("toolkit_installed_version") or []
    return installed[-1] if len(installed) == 1 else None


# ---------------------------------------------------------------------------------------------------
# npu-smi
# ---------------------------------------------------------------------------------------------------

_HEADER = re.compile(r"npu-smi\s+(\S+)\s+Version:\s*(\S+)")
_BUS = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_PAIR = re.compile(r"(\d+)\s*/\s*(\d+)")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_npu_smi_info(text: str) -> dict:
    """Parse the ``npu-smi info`` table (A2 910B*, A3 Ascend910 x2 chips, 310P without HBM).

    Returns ``{"version": driver, "chips": [...]}``; each chip has npu_id, chip_id, name, health, bus_id,
    hbm_total_mb and hbm_used_mb (``None`` when the table has no HBM column, as on 310P), memory_*, power_w and
    temp_c (row 1's Power(W) / Temp(C); ``None`` where npu-smi prints ``NA`` or ``-``, as a 310P or an A3's second
    chip does). The process table at the end is ignored.
    """
    version = None
    m = _HEADER.search(text)
    if m:
        version = m.group(2)
    chips: list[dict] = []
    has_hbm = "HBM-Usage" in text
    pending: list[str] | None = None
    for line in text.splitlines():
        s = line.strip()
        if not s.startswith("|") or s.startswith("+"):
            continue
        if "Process id" in s or "Process name" in s:
            break  # the process table follows; nothing more about chips
        cells = _cells(s)
        if len(cells) < 3:
            continue
        first = cells[0].split()
        if not first or not first[0].isdigit():
            continue
        if pending is None:
            # row 1: "<npu> <name>" | health | power temp hugepages
            if len(first) < 2 or _BUS.match(cells[1]):
                continue
            pending = [cells[0], cells[1], cells[2]]
            continue
        # row 2: "<chip> [phy-id|device]" | bus-id | aicore memory [hbm]
        npu_cells, row2 = pending, cells
        pending = None
        if not _BUS.match(row2[1]):
            continue
        npu_tokens = npu_cells[0].split()
        chip_tokens = row2[0].split()
        pairs = _PAIR.findall(row2[2])
        power, temp = (npu_cells[2].split() + [None, None])[:2]
        hbm_used = hbm_total = None
        mem_used = mem_total = None
        if pairs:
            mem_used, mem_total = int(pairs[0][0]), int(pairs[0][1])
        if has_hbm and len(pairs) >= 2:
            hbm_used, hbm_total = int(pairs[-1][0]), int(pairs[-1][1])
        chips.append({
            "npu_id": int(npu_tokens[0]),
            "chip_id": int(chip_tokens[0]),
            "name": " ".join(npu_tokens[1:]),
            "health": npu_cells[1],
            "bus_id": row2[1],
            "hbm_total_mb": hbm_total,
            "hbm_used_mb": hbm_used,
            "memory_total_mb": mem_total,
            "memory_used_mb": mem_used,
            "power_w": _reading(power),
            "temp_c": _reading(temp),
        })
    return {"version": version, "chips": chips}


def _reading(token: str | None) -> float | None:
    """A Power(W) / Temp(C) cell: a number, or None for npu-smi's ``NA`` / ``-`` (no sensor reading)."""
    try:
        value = float(token) if token else None
    except ValueError:
        return None
    return value if value is not None and 0 <= value < 10000 else None


def parse_npu_smi_list(text: str) -> list[int]:
    """``npu-smi info -l``: the NPU IDs."""
    return [int(m) for m in re.findall(r"NPU ID\s*:\s*(\d+)", text)]


def parse_npu_smi_map(text: str) -> list[dict]:
    """``npu-smi info -m``: rows of NPU ID, Chip ID, Chip Logic ID, Chip Name (Mcu rows dropped)."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        name = " ".join(parts[3:])
        if name.lower() == "mcu":
            continue
        rows.append({
            "npu_id": int(parts[0]),
            "chip_id": int(parts[1]) if parts[1].isdigit() else None,
            "chip_logic_id": int(parts[2]) if parts[2].isdigit() else None,
            "chip_name": name,
        })
    return rows


def parse_board(text: str) -> dict[str, str]:
    """``npu-smi info -t board -i N [-c C]``: ``Key : value`` lines."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _unused, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key and key not in out:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------------
# SoC
# ---------------------------------------------------------------------------------------------------


def soc_version_from_board(board: dict[str, str], chip_board: dict[str, str] | None = None) -> str | None:
    """Derive the SoC name as vllm-ascend's ``get_chip_type`` does.

    ``board`` is ``-t board -i N``; when it has no Chip Name, ``chip_board`` (``... -c 0``) is used.
    A2/310P: (Chip Type + Chip Name).lower() -> ascend910b3 / ascend310p3.
    A3 and 950: (Chip Name + '_' + NPU Name).lower() -> ascend910_9392.
    """
    info = dict(chip_board or {})
    info.update({k: v for k, v in board.items() if v})
    chip_name = (board.get("Chip Name") or (chip_board or {}).get("Chip Name") or "").replace(" ", "")
    chip_type = (info.get("Chip Type") or "").replace(" ", "")
    npu_name = (info.get("NPU Name") or "").replace(" ", "")
    if not chip_name:
        return None
    low = chip_name.lower()
    if "310" in low:
        return (chip_type + chip_name).lower() if chip_type else _prefixed(low)
    if "910" in low:
        if chip_type:
            return (chip_type + chip_name).lower()
        if npu_name:
            return (chip_name + "_" + npu_name).lower()
        return _prefixed(low)
    if "950" in low:
        return (chip_name + "_" + npu_name).lower() if npu_name else _prefixed(low)
    if "a2g3" in low:
        return "ascend910b1"
    return _prefixed(low)


def _prefixed(name: str) -> str:
    return name if name.startswith("ascend") else "ascend" + name


def soc_version_from_name(name: str) -> str | None:
    """Fallback from an ``npu-smi info`` / ``-m`` chip name: ``910B2`` or ``Ascend 910B3`` -> ascend910b2."""
    n = (name or "").replace(" ", "").lower()
    if not n:
        return None
    if n in ("ascend910", "910"):
        return None  # A3 (two chips named Ascend910) or first-gen 910: needs the board's NPU Name
    return _prefixed(n)


SOC_FAMILIES = ("ascend910b", "ascend910_93", "ascend950", "ascend310p", "ascend910")


def soc_family(soc_version: str | None) -> str | None:
    """Map a SoC name to the ops-transformer ``--soc`` value.

    ascend910b1..b4, b2c, b4-1 -> ascend910b; ascend910_93xx -> ascend910_93; ascend950* -> ascend950;
    ascend310p* -> ascend310p; ascend910 / ascend910a / ascend910pro* (first generation) -> ascend910.
    """
    s = (soc_version or "").lower()
    if not s:
        return None
    if re.match(r"^ascend910b", s):
        return "ascend910b"
    if re.match(r"^ascend910_93", s):
        return "ascend910_93"
    if s.startswith("ascend950"):
        return "ascend950"
    if s.startswith("ascend310p"):
        return "ascend310p"
    if re.match(r"^ascend910(a|pro[ab]?|premiuma)?$", s):
        return "ascend910"
    return None


# Product support of FlashAttentionScore (ops-transformer attention/flash_attention_score/README.md, 2026):
# Atlas A2 training, Atlas A3 training and Ascend 950 yes; 310P (inference series) and first-gen 910 no.
FA_SUPPORT = {
    "ascend910b": (True, "Atlas A2 training series: FlashAttentionScore supported"),
    "ascend910_93": (True, "Atlas A3 training series: FlashAttentionScore supported"),
    "ascend950": (True, "Ascend 950PR/950DT: FlashAttentionScore supported"),
    "ascend310p": (False, "Atlas inference series (310P) does not support FlashAttentionScore; "
                          "use npu_prompt_flash_attention (built into CANN) instead"),
    "ascend910": (False, "first-generation Ascend 910 (Atlas training series) does not support FlashAttentionScore"),
}


# A Name read from the host as a bare "910B" (no digit after the B) is the first-generation Ascend 910B: vllm-ascend
# issue #3010 (Atlas 800 Inference Server Model 3000, 8 x 910B 32 GB: `| 0     910B  | OK ...`). "ascend910b" is also
# the ops-transformer --soc value of the A2 family, so only names read from npu-smi are judged this way.
_BARE_910B = re.compile(r"(ascend)?910b")
FIRST_GEN_910B_REASON = ("npu-smi names the chip '910B' with no digit: a first-generation Ascend 910B (e.g. Atlas 800 "
                         "inference server Model 3000), not an Atlas A2 910B1-910B4; FlashAttentionScore supports "
                         "Atlas A2/A3 training and Ascend 950 (ops-transformer attention/flash_attention_score/README.md)")


def is_bare_910b(chip_name: str | None) -> bool:
    """A chip name read from npu-smi (``910B``, ``Ascend 910B``) with no digit after the B."""
    return bool(_BARE_910B.fullmatch((chip_name or "").replace(" ", "").lower()))


# `npu-smi info -t product -i N` prints "Product Type : <model>" per chip (the field Huawei's OMSDK reads for the board
# model: SystemUtils.get_model_by_npu_smi). Atlas product names mark inference with "I" after the number (Atlas 800I
# A2, Atlas 300I A2/Duo, A200I A2 Box: op docs "Atlas A2 训练系列产品/Atlas 800I A2 推理产品/A200I A2 Box 异构组件")
# and training with "T" (Atlas 800T A2, Atlas 800T A3, A200T A3 Box8) or the 900 PoD/SuperPoD (hiascend MindCluster
# docs); Atlas 800 Model 9000 is the 910 training server, Model 3000 the inference one (ascend-deployer, issue #3010).
_INFERENCE = re.compile(r"\b(A?\d{3,4}I|Model\s*3000)\b", re.I)
_TRAINING = re.compile(r"\b(A?\d{3,4}T|Atlas\s*900|Model\s*9000)\b", re.I)


def product_series(product_type: str | None) -> str | None:
    """``training``, ``inference`` or None (cannot tell) from npu-smi's Product Type."""
    text = product_type or ""
    if _INFERENCE.search(text):
        return "inference"
    if _TRAINING.search(text):
        return "training"
    return None


def product_type_from(text: str) -> str | None:
    """The first ``Product Type`` of ``npu-smi info -t product -i N`` output."""
    value = parse_board(text).get("Product Type")
    return value if value and value.upper() != "NA" else None


def fa_support(family: str | None) -> tuple[bool, str]:
    if family is None:
        return False, "SoC unknown: cannot tell whether FlashAttentionScore runs here"
    return FA_SUPPORT.get(family, (False, f"SoC family {family} is not known to support FlashAttentionScore"))


# ---------------------------------------------------------------------------------------------------
# /proc
# ---------------------------------------------------------------------------------------------------


def parse_meminfo_total_mb(text: str) -> int | None:
    m = re.search(r"^MemTotal:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) // 1024 if m else None
