"""Compatibility checker: a host's stack (facts) against the data in ``data/compat.yml`` and a release.

Pure functions, used by the preflight role (through ``plugins/filter/ascend_fa.py``) and by
``ascend-fa compat``. Each problem says what is wrong, what was found, what is needed and the fix. The torch /
torch_npu / CANN pairing rule is ``plugins/module_utils/fa_torch_pair.py`` (the hosts' env check applies the same one);
the version ordering is ``plugins/module_utils/fa_versions.py``, through ``versions.py``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import cmp_to_key
from pathlib import Path
from typing import Any

from ansible_collections.ascend.fa.plugins.module_utils import fa_torch_pair

from . import yamlio
from .versions import VersionError, check_version, in_range, in_ranges, parse_ranges, same_prefix, show_value, vcmp

ERROR = "error"
WARNING = "warning"


@dataclass
class Problem:
    code: str
    severity: str
    what: str
    found: str
    needed: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def line(self, host: str | None = None) -> str:
        who = f"{host}: " if host else ""
        return f"{who}[{self.severity}] {self.what} (found {self.found}; needed {self.needed}). Fix: {self.fix}"


def load_matrix(path: str | None = None) -> dict[str, Any]:
    if path:
        with open(path, encoding="utf-8") as fh:
            return yamlio.load(fh)
    with open(Path(__file__).resolve().parent / "data" / "compat.yml", encoding="utf-8") as fh:
        return yamlio.load(fh)


def release_for_tag(matrix: dict, tag: str | None) -> dict | None:
    if not tag:
        return None
    return (matrix.get("ops_transformer", {}).get("tags") or {}).get(tag)


def line_matches(version: str, line: str) -> bool:
    """``version`` is ``line``: ``9.0.X`` is any 9.0.*; ``26.0.RC1`` is that release (and its patch builds)."""
    line = str(line).strip()
    if line.upper().endswith(".X"):
        return same_prefix(version, line[:-2])
    return vcmp(version, line) == 0 or same_prefix(version, line)


def _line_floor(line: str) -> str:
    return line[:-2] if line.upper().endswith(".X") else line


def driver_records(cann: str, matrix: dict) -> list[dict]:
    """The ``cann_driver`` records whose ``cann`` (a version or a ``9.0.X`` line) is ``cann``."""
    return [rec for rec in matrix.get("cann_driver") or [] if line_matches(cann, rec["cann"])]


def paired_hdk(cann: str, matrix: dict) -> tuple[list[str], list[str]]:
    """The HDK versions/lines paired with ``cann`` over every record, and the records' source files (in order)."""
    hdk: list[str] = []
    sources: list[str] = []
    for rec in driver_records(cann, matrix):
        hdk += [h for h in rec.get("hdk") or [] if h not in hdk]
        src = str(rec.get("source", "compat.yml")).split(",", maxsplit=1)[0]
        if src not in sources:
            sources.append(src)
    lines = [h for h in hdk if h.upper().endswith(".X")]
    return [h for h in hdk if h in lines or not any(line_matches(h, x) for x in lines)], sources


def driver_min_for(cann: str, matrix: dict) -> str | None:
    """The oldest driver any record pairs with ``cann`` (a ``25.5.X`` line counts as 25.5), or None."""
    hdk, _unused = paired_hdk(cann, matrix)
    floors = sorted((_line_floor(h) for h in hdk), key=cmp_to_key(vcmp))
    return floors[0] if floors else None


_INNER = re.compile(r"V(\d{1,8})R(\d{1,8})C(\d{1,8})", re.I)


def _inner_tuple(text: str) -> tuple[int, ...] | None:
    m = _INNER.search(text or "")
    return tuple(int(x) for x in m.groups()) if m else None


def inner_in_ranges(inner: str, ranges_text: str) -> bool | None:
    """Driver ``Innerversion`` (V100R001C19SPC001B124) against a toolkit ``compatible_version`` list."""
    want = _inner_tuple(inner)
    if want is None:
        return None
    for low, high in parse_ranges(ranges_text):
        lo = _inner_tuple(low)
        hi = _inner_tuple(high) if high else lo
        if lo and hi and lo <= want <= hi:
            return True
    return False


def _known_tags(matrix: dict) -> str:
    return ", ".join(sorted((matrix.get("ops_transformer", {}).get("tags") or {}).keys()))


class Checker:
    def __init__(self, matrix: dict):
        self.m = matrix
        self.problems: list[Problem] = []

    def add(self, code: str, severity: str, what: str, found: Any, needed: Any, fix: str) -> None:
        self.problems.append(Problem(code, severity, what, str(found), str(needed), fix))

    # --- release ------------------------------------------------------------------------------
    def release(self, tag: str | None, release: dict | None) -> dict | None:
        if release is not None:
            return release
        rec = release_for_tag(self.m, tag)
        if tag and rec is None:
            first = self.m.get("ops_transformer", {}).get("first_public_release", "2025-09")
            self.add("unknown_tag", ERROR, f"ops-transformer has no tag {tag}", tag,
                     f"one of {_known_tags(self.m)}",
                     f"pick a tag that exists (ops-transformer was first published {first}; its tags follow CANN "
                     f"versions, e.g. v9.0.1); 'v1.2.0' from blog posts never existed")
        return rec

    def cann(self, stack: dict, rel: dict | None) -> None:
        cann = stack.get("cann_version")
        if not cann:
            self.add("no_cann", ERROR, "no CANN toolkit found", "none", "CANN toolkit + ops package",
                     "install Ascend-cann-toolkit and the matching ops package (8.5+: /usr/local/Ascend/cann)")
            return
        min_cann = self.m.get("ops_transformer", {}).get("min_cann", "8.5.0")
        if vcmp(cann, min_cann) < 0:
            self.add("cann_too_old_for_ops_transformer", ERROR,
                     f"ops-transformer needs CANN >= {min_cann}", cann, f">= {min_cann}",
                     f"either upgrade to CANN >= {min_cann} (toolkit + ops package, then the matching driver), or "
                     f"skip the build: on CANN {cann} FlashAttentionScore ships built in (kernels package); "
                     f"call torch_npu.npu_fusion_attention directly")
        if rel and rel.get("cann"):
            lo, hi = rel["cann"].get("min"), rel["cann"].get("max")
            if not in_range(cann, lo, hi) and vcmp(cann, min_cann) >= 0:
                self.add("cann_out_of_release_range", ERROR,
                         f"release {rel.get('tag', '')} supports CANN {lo} .. {hi}".replace("  ", " "), cann,
                         f"{lo} .. {hi}", "pick the ops-transformer tag made for this CANN (see compat.yml), "
                                          "or upgrade CANN")
            elif rel.get("toolkits") and not any(line_matches(cann, t) for t in rel["toolkits"]):
                self.add("cann_not_listed_for_release", WARNING,
                         f"the release notes do not list CANN {cann} for this ops-transformer release", cann,
                         f"{', '.join(rel['toolkits'])} ({rel.get('source', 'compat.yml')})",
                         "use a listed toolkit if the build or the verification fails")

    def driver(self, stack: dict) -> None:
        cann, drv = stack.get("cann_version"), stack.get("driver_version")
        if not drv:
            self.add("no_driver", ERROR, "no NPU driver found", "none", "Ascend HDK driver",
                     "install the Ascend HDK npu-driver and npu-firmware packages for this CANN")
            return
        if cann:
            self._driver_pairing(cann, drv)
        inner, compat = stack.get("driver_innerversion"), stack.get("cann_compatible_version")
        if inner and compat and inner_in_ranges(inner, compat) is False:
            self.add("driver_not_in_cann_compatible_version", ERROR,
                     "the installed CANN does not list this driver in its compatible_version", inner, compat,
                     "install the driver the CANN release notes name for this CANN")

    def _driver_pairing(self, cann: str, drv: str) -> None:
        """The driver against every HDK the release notes pair with ``cann`` (data: ``cann_driver``)."""
        hdk, sources = paired_hdk(cann, self.m)
        if not hdk:
            self.add("cann_driver_unknown", WARNING, f"no driver pairing recorded for CANN {cann}", cann,
                     "a cann_driver record in compat.yml", "read the CANN release notes' Ascend HDK table "
                     "(hicann/release-management <version>/release-notes.md) and add the record; driver not judged")
            return
        if any(line_matches(drv, h) for h in hdk):
            return
        lowest = driver_min_for(cann, self.m)
        needed = f"Ascend HDK {', '.join(hdk)} (per {'; '.join(sources)})"
        fix = f"install the driver and firmware of an Ascend HDK paired with CANN {cann}, or the CANN its HDK pairs with"
        if lowest and vcmp(drv, lowest) < 0:
            self.add("driver_too_old", ERROR, f"CANN {cann} needs NPU driver >= {lowest}", drv, needed, fix)
        else:
            self.add("driver_not_paired", ERROR, f"CANN {cann} is not paired with NPU driver {drv}", drv, needed, fix)

    def firmware(self, stack: dict) -> None:
        if "firmware_version" not in stack:
            return  # not asked about (CLI without --firmware)
        fw, drv = stack.get("firmware_version"), stack.get("driver_version")
        if not fw:
            self.add("no_firmware", WARNING, "no NPU firmware version found", "none", "Ascend HDK firmware",
                     "install the npu-firmware package that matches the driver")
            return
        try:
            self._firmware_ranges(stack, fw, drv)
        except VersionError as exc:   # a range read from the host's version.info files that holds no version
            self.add("invalid_version_range", ERROR, "a driver/firmware compatible_version list holds no version",
                     show_value(exc.value), "ranges such as [7.0.0,7.5.99]",
                     "reinstall the driver and firmware packages (their version.info files are damaged)")

    def _firmware_ranges(self, stack: dict, fw: str, drv: str | None) -> None:
        fw_range = stack.get("driver_compatible_fw")
        if fw_range and parse_ranges(fw_range) and not in_ranges(fw, parse_ranges(fw_range)):
            self.add("firmware_driver_mismatch", ERROR, "driver and firmware packages do not match", fw,
                     f"firmware in {fw_range} (driver compatible_version_fw)",
                     "install the firmware from the same Ascend HDK release as the driver")
        drv_range = stack.get("firmware_compatible_drv")
        if drv and drv_range and parse_ranges(drv_range) and not in_ranges(drv, parse_ranges(drv_range)):
            self.add("driver_firmware_mismatch", ERROR, "firmware does not accept this driver", drv,
                     f"driver in {drv_range} (firmware compatible_version_drv)",
                     "install driver and firmware from the same Ascend HDK release")

    def soc(self, stack: dict, rel: dict | None) -> None:
        fam = stack.get("soc_family")
        soc = stack.get("soc_version") or fam
        if stack.get("fa_supported") is False or fam in ("ascend310p", "ascend910"):
            self.add("soc_unsupported", ERROR, "FlashAttentionScore does not run on this NPU",
                     stack.get("chip_name") or soc or "none",
                     "Atlas A2/A3 training (ascend910b, ascend910_93) or Ascend 950",
                     stack.get("fa_supported_reason") or "use an A2/A3 training server; on 310P use "
                                                         "npu_prompt_flash_attention from CANN")
            return
        if not fam:
            self.add("soc_unknown", ERROR, "SoC could not be determined", soc or "none",
                     "npu-smi reporting the chip", "check that npu-smi works and the driver sees the cards")
            return
        if rel and fam not in (rel.get("soc_families") or []):
            self.add("soc_not_in_release", ERROR, f"release {rel.get('tag', '')} does not build for {fam}", fam,
                     ", ".join(rel.get("soc_families") or []), "pick a release that lists this SoC family")
        self.product(stack)

    def product(self, stack: dict) -> None:
        """Training or inference product (fact ``product_series`` from npu-smi's Product Type; absent: not asked).
        attention/flash_attention_score/README.md: Atlas A2/A3 inference series ×."""
        if "product_series" not in stack:
            return
        series, ptype = stack.get("product_series"), stack.get("product_type")
        if series == "inference":
            self.add("product_inference_unsupported", ERROR, "FlashAttentionScore does not run on Atlas inference "
                     "products (ops-transformer attention/flash_attention_score/README.md: A2/A3 推理系列 ×)",
                     ptype, "an Atlas A2/A3 training product (e.g. Atlas 800T A2) or Ascend 950",
                     "deploy on training servers; on inference products use CANN's npu_prompt_flash_attention / "
                     "npu_fused_infer_attention_score")
        elif series is None:
            self.add("product_unknown", WARNING, "cannot tell a training product from an inference one "
                     "(FlashAttentionScore: A2/A3 training √, inference ×)", ptype or "no Product Type",
                     "npu-smi info -t product reporting e.g. Atlas 800T A2",
                     "check the server model (Atlas 800T/900: training; 800I/300I/A200I: inference) by hand")

    def torch(self, stack: dict) -> None:
        """The torch_npu release-name warning, then the pairing rule of ``module_utils/fa_torch_pair.py``."""
        cann, tnpu, torch = stack.get("cann_version"), stack.get("torch_npu_version"), stack.get("torch_version")
        if not tnpu:
            return  # torch_npu is optional for the package itself; verify reports it
        table = self.m.get("torch_npu") or {}
        if re.match(r"^\d+\.\d+\.(rc\d+|\d+)$", tnpu, re.I) and vcmp(tnpu, "7.0") < 0 and not tnpu.startswith("2.") \
                and not fa_torch_pair.listed_for(tnpu, table):
            self.add("torch_npu_extension_name", WARNING,
                     f"'{tnpu}' is an Ascend Extension for PyTorch release name, not a torch_npu version",
                     tnpu, "a torch_npu version such as 2.1.0.post4",
                     "read torch_npu.__version__; the extension release maps to versions in compat.yml")
        for code, found, needed, fix in fa_torch_pair.mismatches(cann, torch, tnpu, table):
            self.add(code, ERROR, _PAIR_WHAT[code].format(cann=cann, torch=torch, torch_npu=tnpu), found,
                     f"{needed} ({_torch_source(cann, table)})" if code == fa_torch_pair.CANN_MISMATCH else needed, fix)
        for code, found, needed, fix in fa_torch_pair.pair_warnings(cann, tnpu, table):
            self.add(code, WARNING, _PAIR_WHAT[code].format(cann=cann, torch=torch, torch_npu=tnpu), found,
                     f"{needed} ({_torch_source(cann, table)})", fix)


def _torch_source(cann: str | None, table: dict) -> str:
    return str((fa_torch_pair.family(cann, table) or {}).get("source") or "compat.yml torch_npu")


# how the report words each problem of the torch pairing rule (fa_torch_pair.mismatches)
_PAIR_WHAT: dict[str, str] = {
    fa_torch_pair.CANN_MISMATCH: "torch_npu {torch_npu} is not paired with CANN {cann}",
    fa_torch_pair.TORCH_MISMATCH: "torch {torch} does not match torch_npu {torch_npu}",
    fa_torch_pair.LATER_POST: "torch_npu {torch_npu} is a later build than the one listed for CANN {cann}",
}


# the versions of a stack that are ordered (host facts or command line options), with the name an error gives them
STACK_VERSIONS: dict[str, str] = {"driver_version": "driver version", "cann_version": "CANN version",
                                  "firmware_version": "firmware version", "torch_version": "torch version",
                                  "torch_npu_version": "torch_npu version"}


def version_problems(stack: dict) -> list[Problem]:
    """One ``invalid_version`` error per version of ``stack`` that is not a plausible version string."""
    out = []
    for key, label in STACK_VERSIONS.items():
        value = stack.get(key)
        if value is None or value == "":
            continue
        try:
            check_version(value, label)
        except VersionError as exc:
            out.append(Problem("invalid_version", ERROR, f"the {label} is not a version string ({exc.reason})",
                               show_value(value), "a version such as 8.5.0",
                               f"check what reports the {label} ({key}); compatibility cannot be judged without it"))
    return out


NAME_MAX = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]*")


def option_errors(versions: dict[str, Any], names: dict[str, Any] | None = None) -> list[str]:
    """Messages for command line values that cannot be checked: ``versions`` (option -> value) must be version
    strings, ``names`` (a SoC, a tag) at most 64 letters, digits and ``._ -``. Each message names option and value."""
    out = []
    for option, value in versions.items():
        if value is not None:
            try:
                check_version(value, option)
            except VersionError as exc:
                out.append(str(exc))
    for option, value in (names or {}).items():
        if value is not None and (len(str(value)) > NAME_MAX or not _NAME.fullmatch(str(value))):
            out.append(f"{option}: {show_value(value)} is not a name (at most {NAME_MAX} letters, digits, '.', '_', "
                       "'-' and spaces, starting with a letter or digit)")
    return out


def check(stack: dict, matrix: dict | None = None, tag: str | None = None, release: dict | None = None) -> list[Problem]:
    """All problems of ``stack`` (a dict shaped like ``ansible_facts.ascend``) for release ``tag``.

    A version that is not a version string (``version_problems``) is the only problem reported: nothing can be
    compared with it."""
    bad = version_problems(stack)
    if bad:
        return bad
    c = Checker(matrix or load_matrix())
    rel = c.release(tag, release)
    c.cann(stack, rel)
    c.driver(stack)
    c.firmware(stack)
    c.soc(stack, rel)
    c.torch(stack)
    return c.problems


def blocking(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == ERROR]
