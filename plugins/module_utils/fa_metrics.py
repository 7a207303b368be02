"""Prometheus textfile metrics of a verification, for node_exporter's textfile collector (host side).

Standard library only (shipped to hosts as ``plugins/module_utils/fa_metrics.py``); ``fa_verify`` calls
:func:`write_verify_metrics` after each verification, passing or failing, so a failed card becomes a metric.

The file: ``<dir>/ascend_fa.prom`` in the text exposition format 0.0.4 (prometheus/docs
``content/docs/instrumenting/exposition_formats.md``): ``# HELP`` and ``# TYPE`` before each family's samples; a
label value is any UTF-8 text with the backslash, the double quote and the line feed escaped as ``\\\\``, ``\\"``
and ``\\n``; a HELP text escapes the backslash and the line feed. node_exporter's textfile collector reads every
``*.prom`` file of ``--collector.textfile.directory`` at each scrape and does not support sample timestamps
(prometheus/node_exporter README.md, "Textfile Collector"); its README writes to ``<name>.prom.$$`` and renames it,
so a scrape never sees half a file. :func:`write_textfile` does the same with a temporary name that does not end in
``.prom`` (``tempfile.mkstemp``, created with ``O_EXCL``: no symlink planted in the folder is followed), fsync,
mode 0644 (node_exporter runs as its own user) and ``os.replace`` in the same folder (rename(2) is atomic only within
one file system; prometheus/client_python ``write_to_textfile`` does the same).

Names follow prometheus/docs ``content/docs/practices/naming.md``: one application prefix (``ascend_fa_``), base units
(``_seconds``, not milliseconds), ``_info`` for a pseudo-metric carrying metadata as labels, ``_timestamp_seconds`` for
a point in time.
"""

from __future__ import annotations

import calendar
import contextlib
import math
import os
import re
import tempfile
import time

FILE_NAME = "ascend_fa.prom"
LABEL_NAME = re.compile(r"\A[a-zA-Z_][a-zA-Z0-9_]*\Z")
METRIC_NAME = re.compile(r"\A[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
TYPES = ("gauge", "counter", "untyped")
MAX_LABEL_CHARS = 512
DIR_MODE = 0o755
FILE_MODE = 0o644

# name -> (type, help): every family this file can hold, in the order written
FAMILIES = {
    "ascend_fa_package_info": ("gauge", "The FlashAttention package ascend-fa installed on this host (install "
                               "manifest): recipe, upstream tag and commit, sha256 of the .run, vendor. Always 1."),
    "ascend_fa_package_drift": ("gauge", "1 when the installed package no longer matches its install manifest "
                                "(state: files_changed, kernels_missing, cann_changed, missing), else 0."),
    "ascend_fa_verify_ok": ("gauge", "1 when every card passed the last FlashAttention verification, else 0."),
    "ascend_fa_verify_timestamp_seconds": ("gauge", "Unix time the last FlashAttention verification finished."),
    "ascend_fa_card_pass": ("gauge", "1 when the card passed FlashAttention in the last verification, else 0."),
    "ascend_fa_card_latency_seconds": ("gauge", "Median latency of the FlashAttention cases on the card in the last "
                                       "verification."),
    "ascend_fa_card_served_by_vendor": ("gauge", "1 when the installed package's library served "
                                        "aclnnFlashAttentionScore on the card (kernels/served_by.py), else 0."),
    "ascend_fa_card_baseline_ratio": ("gauge", "Latency of our kernel over CANN's built-in FlashAttentionScore on "
                                      "the same card (only where the baseline ran)."),
}


# ------------------------------------------------------------------------------------------------ the format
def escape_label_value(value: object) -> str:
    """A label value as the exposition format wants it: backslash, double quote and line feed escaped; text that
    is not valid UTF-8 (lone surrogates from a host's bytes) replaced; at most MAX_LABEL_CHARS characters."""
    text = "" if value is None else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8")   # a lone surrogate becomes "?"
    if len(text) > MAX_LABEL_CHARS:
        text = text[:MAX_LABEL_CHARS - 3] + "..."
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("\n", "\\n")


def number(value: object) -> float | int | None:
    """A sample value from a result field: ints and floats (not bools, not strings); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def format_value(value: float | int | bool) -> str:
    """As Go's strconv.ParseFloat reads it (the format's rule): NaN, +Inf, -Inf, else Python's shortest repr."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def sample_line(name: str, labels: dict[str, object], value: float | int | bool) -> str:
    if labels:
        for key in labels:
            if not LABEL_NAME.fullmatch(key) or key.startswith("__"):
                raise ValueError(f"invalid label name {key!r}")
        inner = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
        return f"{name}{{{inner}}} {format_value(value)}"
    return f"{name} {format_value(value)}"


def render(samples: dict[str, list[tuple[dict[str, object], float | int | bool]]]) -> str:
    """The file: each family of FAMILIES that has samples, as one group (HELP, TYPE, samples), newline-terminated."""
    out = []
    for name, (kind, help_text) in FAMILIES.items():
        rows = samples.get(name) or []
        if not rows:
            continue
        if not METRIC_NAME.fullmatch(name) or kind not in TYPES:
            raise ValueError(f"invalid family {name!r} ({kind})")
        out.append(f"# HELP {name} {escape_help(help_text)}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(sample_line(name, labels, value) for labels, value in rows)
    unknown = sorted(set(samples) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown metric families {unknown}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------ what is measured
def epoch_seconds(iso_utc: str | None) -> int | None:
    """``2026-11-29T05:00:00Z`` (fa_verify's checked_at) as Unix seconds; None when it does not parse."""
    try:
        return calendar.timegm(time.strptime(str(iso_utc), "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return None


def card_labels(card: object, chips: list[dict] | None) -> dict[str, object]:
    """card (the logical device id the check pinned, ``ASCEND_RT_VISIBLE_DEVICES``) and npu-smi's NPU and chip ids
    of that device (ansible_facts.ascend.chips: ``logic_id`` -> ``npu_id``, ``chip_id``; empty when unknown)."""
    chip = next((c for c in chips or [] if isinstance(c, dict) and c.get("logic_id") == card
                 and not isinstance(card, bool)), None) or {}
    return {"card": card, "npu_id": "" if chip.get("npu_id") is None else chip["npu_id"],
            "chip_id": "" if chip.get("chip_id") is None else chip["chip_id"]}


def served_by_vendor(served: dict) -> int:
    """1 when the expected package served the call (served_by ok), or, with nothing expected, a vendor package did."""
    if served.get("ok") is None:
        return int(served.get("source") == "vendor")
    return int(served.get("ok") is True)


def card_samples(cards: list[dict], chips: list[dict] | None) -> dict[str, list]:
    out: dict[str, list] = {"ascend_fa_card_pass": [], "ascend_fa_card_latency_seconds": [],
                            "ascend_fa_card_served_by_vendor": [], "ascend_fa_card_baseline_ratio": []}
    for res in cards or []:
        if not isinstance(res, dict):
            continue
        labels = card_labels(res.get("card"), chips)
        out["ascend_fa_card_pass"].append((labels, int(res.get("ok") is True)))
        latency = number(res.get("latency_ms"))
        if latency is not None:
            # fa_check reports milliseconds; the metric is in the base unit, rounded to the nanosecond
            out["ascend_fa_card_latency_seconds"].append((labels, round(latency / 1000.0, 9)))
        served = res.get("served_by")
        if isinstance(served, dict):
            out["ascend_fa_card_served_by_vendor"].append(
                ({**labels, "library": served.get("library") or "", "source": served.get("source") or ""},
                 served_by_vendor(served)))
        base = res.get("baseline")
        ratio = number(base.get("ratio")) if isinstance(base, dict) and base.get("ran") else None
        if ratio is not None:
            out["ascend_fa_card_baseline_ratio"].append((labels, ratio))
    return out


def verify_samples(ok: bool, cards: list[dict], checked_at: str | None, manifest: dict | None,
                   drift: dict | None = None, chips: list[dict] | None = None) -> dict[str, list]:
    """Every sample of one verification: ``manifest`` the install manifest (None: no ascend-fa package, so no package
    metrics), ``drift`` fa_manifest.package_state's result for it, ``chips`` ansible_facts.ascend.chips."""
    samples: dict[str, list] = {}
    if manifest:
        samples["ascend_fa_package_info"] = [({k: manifest.get(k) or "" for k in
                                               ("recipe", "tag", "commit", "sha256", "vendor")}, 1)]
        if drift and drift.get("state"):
            state = str(drift["state"])
            samples["ascend_fa_package_drift"] = [({"state": state}, int(state != "installed"))]
    samples["ascend_fa_verify_ok"] = [({}, int(ok is True))]
    stamp = epoch_seconds(checked_at)
    if stamp is not None:
        samples["ascend_fa_verify_timestamp_seconds"] = [({}, stamp)]
    samples.update(card_samples(cards, chips))
    return samples


# ------------------------------------------------------------------------------------------------ the file
def ensure_dir(directory: str) -> list[str]:
    """Create ``directory`` and its missing parents with mode 0755 whatever the umask (node_exporter, another user,
    must reach the file); an existing folder is left as the site set it. Returns the folders created."""
    missing = []
    path = os.path.abspath(directory)
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    created = []
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise
            continue
        os.chmod(folder, DIR_MODE)
        created.append(folder)
    return created


def write_textfile(directory: str, text: str, name: str = FILE_NAME) -> str:
    """Write ``text`` to ``<directory>/<name>`` atomically (temporary file in the same folder whose name does not end
    in .prom, fsync, mode 0644, rename); returns the path. Raises OSError / ValueError."""
    if not directory or not os.path.isabs(directory) or "\0" in directory:
        raise ValueError(f"the metrics folder must be an absolute path, not {directory!r}")
    if os.path.basename(name) != name or not name.endswith(".prom"):
        raise ValueError(f"the metrics file name must be a plain *.prom name, not {name!r}")
    ensure_dir(directory)
    path = os.path.join(directory, name)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # the rename itself on disk (best effort: not every file system lets a folder be opened for fsync)
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path


def write_verify_metrics(directory: str, ok: bool, cards: list[dict], checked_at: str | None, manifest: dict | None,
                         drift: dict | None = None, chips: list[dict] | None = None) -> str:
    """:func:`verify_samples` rendered and written to ``<directory>/ascend_fa.prom``; returns the path."""
    return write_textfile(directory, render(verify_samples(ok, cards, checked_at, manifest, drift, chips)))
