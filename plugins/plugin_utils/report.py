"""The fleet report: every host's versions, package and cards, coloured by health and verification.

Inputs, all on the controller:

- the fact cache (``ansible.cfg``: jsonfile at ``~/.cache/ascend-fa/facts``): per host ``ascend`` (module
  ``ascend_facts``, shape in docs/contracts.md) and any cached set_facts (``fa_build_key``, ``fa_problems``);
- the results folder (``fa_results_dir``, default ``<repo>/out``): ``verify/<host>.json`` (role fa_verify),
  ``bench/<host>.json`` (playbooks/bench.yml: ``kernels/fa_bench.py`` output), ``upgrade/<host>.json``
  (role fa_rollout);
- optionally the outcome of the run that just ended (host -> state, message).

Outputs: a rich terminal table, JSON, and one self-contained HTML page (inline CSS and SVG, no external asset).

Everything in these inputs came from hosts and is treated as hostile: the HTML template autoescapes every value (no
``Markup``; the benchmark chart is numbers validated as numbers, drawn by the template), the terminal gets text with
no control character or rich markup (``plugin_utils/safetext.py``), and a malformed value is shown, never a crash.

A verification result belongs to the package it verified: when the host's package changed since (an upgrade, an
interrupted one included), the result is shown as "not verified since install", never as the current state.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ansible_collections.ascend.fa.plugins.plugin_utils.safetext import one_line

HEALTH_OK = frozenset({"ok"})
HEALTH_WARN = frozenset({"warning", "minor"})
OUTLIER_RATIO = 1.5        # a card is an outlier when it is slower than 1.5x the median of its group...
OUTLIER_Z = 3.5            # ...and its robust z-score (median / MAD) exceeds 3.5 (or its peers are all equal)
MIN_GROUP = 3              # fewer latencies than this in a SoC group: compare against the whole fleet
VERSION_FIELDS: tuple[tuple[str, str], ...] = (
    ("soc", "SoC"), ("chips", "chips"), ("driver", "driver"), ("firmware", "firmware"), ("cann", "CANN"),
    ("torch", "torch"), ("torch_npu", "torch_npu"), ("python", "python"), ("arch", "arch"),
    ("package", "FA package"), ("build_key", "build key"),
)
TEMPLATE = "report.html.j2"
DATA = Path(__file__).resolve().parent / "data"   # the template, beside compat.yml
MAX_CARDS = 1024           # more logical devices than this in one host's facts is not a host: they are ignored


# ------------------------------------------------------------------------------------------------ model
@dataclass
class Card:
    """One logical device (what ASCEND_RT_VISIBLE_DEVICES and fa_verify's ``card`` count)."""

    card: int
    npu_id: int | None = None
    chip_id: int | None = None
    name: str | None = None
    health: str | None = None
    hbm_used_mb: int | None = None
    hbm_total_mb: int | None = None
    temp_c: float | None = None          # npu-smi info's Temp(C) (None: not given, as on older facts)
    power_w: float | None = None         # npu-smi info's Power(W) (None: "NA" or "-", as 310P and A3's 2nd chip show)
    verify: str = "none"                 # pass | fail | none
    latency_ms: float | None = None
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    reason: str | None = None
    served_library: str | None = None    # the library that served aclnnFlashAttentionScore (kernels/served_by.py)
    served_source: str | None = None     # custom_path | vendor | builtin | none
    served_vendor: str | None = None
    served_ok: bool | None = None        # our vendor served it (None: not judged)
    baseline_latency_ms: float | None = None   # CANN's built-in kernel on this card (fa_verify_baseline)
    baseline_ratio: float | None = None        # our latency / CANN's
    baseline_max_diff: float | None = None     # largest |ours - CANN's| over the cases
    outlier: bool = False
    outlier_ratio: float | None = None
    status: str = "unverified"           # ok | warn | fail | unverified

    @property
    def label(self) -> str:
        return f"{self.card}"

    @property
    def served_label(self) -> str:
        """``vendor <name>``, ``custom path <name>``, ``CANN built-in`` or ``none`` (``-``: not known)."""
        if self.served_source == "builtin":
            return "CANN built-in"
        if self.served_source in ("vendor", "custom_path"):
            return f"{'vendor' if self.served_source == 'vendor' else 'custom path'} {self.served_vendor or '?'}"
        return self.served_source or "-"

    @property
    def hbm_pct(self) -> float | None:
        """HBM in use, percent of the card's total (None when npu-smi gave no HBM, as on 310P)."""
        used, total = _num(self.hbm_used_mb), _num(self.hbm_total_mb)
        return round(100.0 * used / total, 1) if used is not None and total else None

    def health_text(self) -> str:
        """``HBM 4495/65536 MB (6.9%), 44 C, 94.8 W``: what npu-smi gave, ``-`` when it gave nothing."""
        bits = []
        if _num(self.hbm_used_mb) is not None and _num(self.hbm_total_mb):
            bits.append(f"HBM {self.hbm_used_mb}/{self.hbm_total_mb} MB ({self.hbm_pct:g}%)")
        if self.temp_c is not None:
            bits.append(f"{self.temp_c:g} C")
        if self.power_w is not None:
            bits.append(f"{self.power_w:g} W")
        return ", ".join(bits) or "-"

    def title(self, host: str) -> str:
        bits = [f"{host} card {self.card}"]
        if self.npu_id is not None:
            bits.append(f"npu {self.npu_id} chip {self.chip_id}")
        bits.append(f"health {self.health or '?'}")
        if self.health_text() != "-":
            bits.append(self.health_text())
        bits.append(f"verify {self.verify}")
        if self.latency_ms is not None:
            bits.append(f"{self.latency_ms:.3g} ms")
        if self.max_abs_err is not None:
            bits.append(f"max abs err {self.max_abs_err:.2g}")
        if self.outlier and self.outlier_ratio:
            bits.append(f"outlier: {self.outlier_ratio:.2f}x median")
        if self.served_source:
            bits.append(f"served by {self.served_label}" + (f" ({self.served_library})" if self.served_library else ""))
        if self.baseline_ratio is not None:
            bits.append(f"{self.baseline_ratio:.3g}x CANN's built-in latency")
        if self.baseline_max_diff is not None:
            bits.append(f"max diff vs CANN {self.baseline_max_diff:.2g}")
        if self.reason:
            bits.append(self.reason)
        return " | ".join(bits)


@dataclass
class HostReport:
    host: str
    status: str = "unknown"              # ok | warn | fail | unverified | unknown
    has_facts: bool = False
    versions: dict[str, str | None] = field(default_factory=dict)
    package_state: str | None = None
    package_detail: str | None = None
    fa_supported: bool | None = None
    fa_supported_reason: str | None = None
    run_state: str | None = None         # ok | changed | failed | unreachable | not run (None: no run)
    run_message: str | None = None
    change: str | None = None            # fa_rollout_result: installed|upgraded|reinstalled|verified|unchanged|rolled_back|failed
    verify_ok: bool | None = None
    verify_summary: str | None = None
    checked_at: str | None = None
    package_sha256: str | None = None
    package_installed_at: str | None = None
    package_source: str = "facts"        # facts | this run | upgrade record
    package_note: str | None = None      # why the package shown is not the one in the cached facts
    verify_state: str = "none"           # current (of the package installed now) | stale (of an earlier one) | none
    verify_package: str | None = None    # the package the verification shown belongs to (recipe, else sha256)
    verify_note: str | None = None       # stale: what was verified when, and what is installed since
    stale_verify: dict[str, Any] | None = None   # the result that no longer applies: ok, summary, checked_at, package
    problems: list[dict[str, Any]] = field(default_factory=list)   # preflight's fa_problems (all severities)
    blocking: list[dict[str, Any]] = field(default_factory=list)   # those that stop the host (fa_blocking)
    verdict_known: bool = False          # fa_blocking came from preflight's verdict (an error not in it: acknowledged)
    errors: list[dict[str, Any]] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)
    bench: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None
    since: list[str] = field(default_factory=list)   # what changed since the previous report (none: [])
    since_state: str = "none"            # new (not in the previous report) | changed | same | none (no previous report)
    drain: dict[str, Any] | None = None  # fa_drain of this run (roles/fa_rollout): the node's drain before and after

    def count(self, status: str) -> int:
        return sum(1 for c in self.cards if c.status == status)

    def latencies(self) -> list[float]:
        return [c.latency_ms for c in self.cards if c.latency_ms is not None]


@dataclass
class FleetReport:
    generated_at: str
    facts_dir: str | None
    results_dir: str | None
    hosts: list[HostReport]
    outliers: list[dict[str, Any]] = field(default_factory=list)
    bench: list[dict[str, Any]] = field(default_factory=list)
    title: str = "ascend-fa fleet report"
    header: dict[str, Any] | None = None   # the run: playbook, recipe, tag, commit, limit, tags, check, duration_s, ...
    previous_at: str | None = None         # generated_at of the previous report compared with (None: no previous one)
    gone: list[str] = field(default_factory=list)   # hosts of the previous report that this one does not cover

    @property
    def max_cards(self) -> int:
        return max((len(h.cards) for h in self.hosts), default=0)

    def summary(self) -> dict[str, int]:
        cards = [c for h in self.hosts for c in h.cards]
        return {
            "hosts": len(self.hosts),
            "hosts_ok": sum(1 for h in self.hosts if h.status == "ok"),
            "hosts_warn": sum(1 for h in self.hosts if h.status == "warn"),
            "hosts_failed": sum(1 for h in self.hosts if h.status == "fail"),
            "hosts_unverified": sum(1 for h in self.hosts if h.status in ("unverified", "unknown")),
            "cards": len(cards),
            "cards_passed": sum(1 for c in cards if c.verify == "pass"),
            "cards_failed": sum(1 for c in cards if c.verify == "fail"),
            "cards_unverified": sum(1 for c in cards if c.verify == "none"),
            "cards_unhealthy": sum(1 for c in cards if _health_class(c.health) in ("warn", "fail")),
            "outliers": len(self.outliers),
            "hosts_converged": sum(1 for h in self.hosts if converged(h)),
            "hosts_changed_since_last": sum(1 for h in self.hosts if h.since_state in ("new", "changed")),
        }

    @property
    def installs(self) -> bool:
        """The run was a deploy or an upgrade (its header names such a playbook): "nothing to install" applies."""
        name = re.split(r"[\\/]", str((self.header or {}).get("playbook") or ""))[-1]
        return bool(re.search(r"deploy|upgrade", name))

    def converged_line(self) -> str | None:
        """``nothing to install: N hosts converged`` when a deploy or upgrade changed no host and failed none."""
        if not self.installs or not self.hosts or any(h.run_state is None for h in self.hosts):
            return None
        n = sum(1 for h in self.hosts if converged(h))
        return f"nothing to install: {n} host{'s' if n != 1 else ''} converged" if n == len(self.hosts) else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title, "generated_at": self.generated_at, "facts_dir": self.facts_dir,
            "results_dir": self.results_dir, "header": self.header, "summary": self.summary(),
            "converged": self.converged_line(), "previous_at": self.previous_at, "gone": self.gone,
            "hosts": [asdict(h) for h in self.hosts], "outliers": self.outliers, "bench": self.bench,
        }

    def summary_line(self) -> str:
        s = self.summary()
        line = (f"{s['hosts']} hosts: {s['hosts_ok']} ok, {s['hosts_warn']} warning, {s['hosts_failed']} failed, "
                f"{s['hosts_unverified']} unverified | {s['cards']} cards: {s['cards_passed']} passed, "
                f"{s['cards_failed']} failed, {s['cards_unverified']} unverified, {s['cards_unhealthy']} unhealthy | "
                f"{s['outliers']} latency outliers")
        return f"{self.converged_line()} | {line}" if self.converged_line() else line


def converged(h: HostReport) -> bool:
    """The run left the host as it was (ok, no rollout) with a known package, and nothing failed on it."""
    return (h.run_state == "ok" and h.change in (None, "unchanged") and h.status != "fail"
            and h.versions.get("package") not in (None, "-"))


STATUS_RANK = {"fail": 0, "warn": 1, "unknown": 2, "unverified": 3, "ok": 4}


def ordered(hosts: Iterable[HostReport]) -> list[HostReport]:
    """Failures first, then warnings, unknown and unverified hosts, then the ok ones; by name within each."""
    return sorted(hosts, key=lambda h: (STATUS_RANK.get(h.status, 2), h.host))


# ------------------------------------------------------------------------------------------------ since last run
def previous_report(results_dir: str | os.PathLike[str] | None) -> FleetReport | None:
    """``<results_dir>/report.json`` as it is before this run's report replaces it (None: none, or unreadable)."""
    path = Path(results_dir) / "report.json" if results_dir else None
    if path is None or not path.is_file():
        return None
    try:
        return load_json(path)
    except (OSError, ValueError, TypeError):
        return None


def _card_verdicts(h: HostReport) -> dict[int, str]:
    return {c.card: c.verify for c in h.cards if isinstance(c.card, int)}


def _cards_list(ids: Iterable[int]) -> str:
    return ", ".join(str(i) for i in sorted(ids))


def since_last(h: HostReport, before: HostReport | None) -> list[str]:
    """What differs from the host's row in the previous report: its package, its status, cards newly failing or
    passing again. ``["new host"]`` when the previous report did not have it."""
    if before is None:
        return ["new host"]
    out = []
    old_pkg, new_pkg = before.versions.get("package"), h.versions.get("package")
    rebuilt = bool(before.package_sha256 and h.package_sha256 and before.package_sha256 != h.package_sha256)
    if old_pkg != new_pkg or rebuilt:
        out.append(f"package {old_pkg or '-'} -> {new_pkg or '-'}" + (" (new sha256)" if old_pkg == new_pkg else ""))
    if before.status != h.status:
        out.append(f"status {before.status} -> {h.status}")
    old, new = _card_verdicts(before), _card_verdicts(h)
    failing = [i for i, v in new.items() if v == "fail" and old.get(i) != "fail"]
    passing = [i for i, v in new.items() if v == "pass" and old.get(i) == "fail"]
    if failing:
        out.append(f"card{'s' if len(failing) > 1 else ''} {_cards_list(failing)} newly failing")
    if passing:
        out.append(f"card{'s' if len(passing) > 1 else ''} {_cards_list(passing)} passing again")
    gone = sorted(set(old) - set(new))
    if gone:
        out.append(f"card{'s' if len(gone) > 1 else ''} {_cards_list(gone)} no longer listed")
    return out


def compare_previous(hosts: Sequence[HostReport], previous: FleetReport | None) -> list[str]:
    """Fill each host's ``since`` / ``since_state`` from the previous report; the previous report's hosts that are
    not in this one (a host left the inventory, or a --limit left it out)."""
    if previous is None:
        return []
    before = {h.host: h for h in previous.hosts}
    for h in hosts:
        h.since = since_last(h, before.get(h.host))
        h.since_state = "new" if h.host not in before else ("changed" if h.since else "same")
    names = {h.host for h in hosts}
    return [name for name in before if name not in names]


# ------------------------------------------------------------------------------------------------ loading
def _plain(value: Any) -> Any:
    """Ansible's tagged values (``_AnsibleTaggedStr``, ...) as plain Python data: the report is pure data."""
    return json.loads(json.dumps(value, default=str))


_PLUGINS_READY = False


def fact_cache(facts_dir: str | os.PathLike[str]) -> Any:
    """Ansible's own jsonfile cache plugin on ``facts_dir`` (the one ansible.cfg names): its file format (the schema
    prefix of the file names, the payload wrapping) is the plugin's business, not ours. No expiry: a report shows
    every host the cache holds."""
    global _PLUGINS_READY
    from ansible.plugins.loader import cache_loader, init_plugin_loader

    if not _PLUGINS_READY:
        with warnings.catch_warnings():   # inside an Ansible process the loader is already set up: that is fine
            warnings.simplefilter("ignore", UserWarning)
            init_plugin_loader()
        _PLUGINS_READY = True
    return cache_loader.get("ansible.builtin.jsonfile", _uri=str(facts_dir), _timeout=0, _prefix="")


def load_facts(facts_dir: str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """host -> cached facts (``ascend`` and friends), read through Ansible's cache plugin API; an entry the plugin
    cannot read is skipped. ``~`` and ``$VARS`` are expanded as the cache plugin does (the callback passes ansible's
    raw ``fact_caching_connection``, e.g. ``~/.cache/ascend-fa/facts``)."""
    d = Path(os.path.expandvars(os.path.expanduser(str(facts_dir)))) if facts_dir else None
    if d is None or not d.is_dir():
        return {}
    cache = fact_cache(d)
    found: dict[str, dict[str, Any]] = {}
    for host in sorted(cache.keys()):
        try:
            data = _plain(cache.get(host))
        except Exception:   # noqa: BLE001 - a corrupt entry (the plugin raises its own errors) is left out
            continue
        if isinstance(data, dict):
            found[host] = data
    return found


def load_results(results_dir: str | os.PathLike[str] | None, kind: str) -> dict[str, dict[str, Any]]:
    """host -> ``<results_dir>/<kind>/<host>.json`` (unreadable files are skipped)."""
    d = Path(results_dir) / kind if results_dir else None
    out: dict[str, dict[str, Any]] = {}
    if d is None or not d.is_dir():
        return out
    for f in sorted(d.glob("*.json")):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out[str(data.get("host") or f.stem) if kind != "bench" else f.stem] = data
    return out


# ------------------------------------------------------------------------------------------------ building
def _text(v: Any) -> str | None:
    """A fact for display and comparison: text (a number as text, a list or mapping as compact JSON), or None."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool | int | float):
        return str(v)
    return json.dumps(v, sort_keys=True, default=str, separators=(",", ":"))


def _health_class(health: Any) -> str:
    h = (_text(health) or "").strip().lower()
    if not h:
        return "unknown"
    if h in HEALTH_OK:
        return "ok"
    return "warn" if h in HEALTH_WARN else "fail"


def _num(v: Any) -> float | None:
    """A finite number, else None (a string, NaN, infinity, a bool: not a measurement)."""
    try:
        f = None if v is None or isinstance(v, bool) else float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if f is not None and math.isfinite(f) else None


def _count(v: Any, limit: int = 1 << 31) -> int | None:
    """A non-negative integer below ``limit`` (an int, or a string of at most 10 ASCII digits), else None."""
    if isinstance(v, str) and v.isascii() and v.isdigit() and len(v) <= 10:
        v = int(v)
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < limit else None


def _chips_by_card(ascend: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    """Chips keyed by logical device id (``logic_id``; else their order, which is what npu-smi lists)."""
    chips = [c for c in (ascend.get("chips") if isinstance(ascend.get("chips"), list) else [])[:MAX_CARDS]
             if isinstance(c, Mapping)]
    out: dict[int, Mapping[str, Any]] = {}
    for i, c in enumerate(chips):
        lid = _count(c.get("logic_id"), MAX_CARDS)
        out[i if lid is None else lid] = c
    return out


def card_status(c: Card) -> str:
    health = _health_class(c.health)
    if c.verify == "fail" or health == "fail":
        return "fail"
    if health == "warn" or c.outlier:
        return "warn"
    return "ok" if c.verify == "pass" else "unverified"


SERVED_SOURCES = ("custom_path", "vendor", "builtin", "none")


def apply_served(c: Card, res: Mapping[str, Any]) -> None:
    """Which library served the card's FlashAttention, and its baseline against CANN's built-in kernel."""
    served = res.get("served_by")
    if isinstance(served, Mapping):
        src = served.get("source")
        c.served_source = src if src in SERVED_SOURCES else None
        c.served_library, c.served_vendor = _text(served.get("library")), _text(served.get("vendor"))
        c.served_ok = served.get("ok") if isinstance(served.get("ok"), bool) else None
    base = res.get("baseline")
    if isinstance(base, Mapping):
        c.baseline_latency_ms, c.baseline_ratio = _num(base.get("latency_ms")), _num(base.get("ratio"))
        c.baseline_max_diff = _num(base.get("max_diff"))


def served_text(h: HostReport) -> str:
    """The libraries that served the host's cards, with counts: ``vendor ascendfa_transformer x8``."""
    counts: dict[str, int] = {}
    for c in h.cards:
        if c.served_source:
            counts[c.served_label] = counts.get(c.served_label, 0) + 1
    return ", ".join(f"{k} x{n}" for k, n in counts.items()) or "-"


def baseline_text(h: HostReport) -> str:
    """Worst ratio of our latency over CANN's built-in kernel's, and the largest output difference."""
    ratios = [c.baseline_ratio for c in h.cards if c.baseline_ratio is not None]
    diffs = [c.baseline_max_diff for c in h.cards if c.baseline_max_diff is not None]
    if not ratios and not diffs:
        return "-"
    ratio = f"{max(ratios):.3g}x" if ratios else "-"
    return ratio + (f" / {max(diffs):.2g}" if diffs else "")


def build_cards(ascend: Mapping[str, Any], verify: Mapping[str, Any] | None) -> list[Card]:
    chips = _chips_by_card(ascend)
    cards_in = (verify or {}).get("cards")
    results = {r["card"]: r for r in (cards_in if isinstance(cards_in, list) else [])
               if isinstance(r, Mapping) and _count(r.get("card"), MAX_CARDS) is not None and isinstance(r["card"], int)}
    count = (_count(ascend.get("device_count"), MAX_CARDS + 1) or _count(ascend.get("npu_count"), MAX_CARDS + 1) or 0
             ) if not chips else 0
    ids = sorted(set(chips) | set(results) | set(range(count)))
    cards = []
    for i in ids:
        chip, res = chips.get(i, {}), results.get(i)
        c = Card(card=i, npu_id=chip.get("npu_id"), chip_id=chip.get("chip_id"), name=_text(chip.get("name")),
                 health=_text(chip.get("health")), hbm_used_mb=_count(chip.get("hbm_used_mb")),
                 hbm_total_mb=_count(chip.get("hbm_total_mb")), temp_c=_num(chip.get("temp_c")),
                 power_w=_num(chip.get("power_w")))
        if res is not None:
            c.verify = "pass" if res.get("ok") is True else "fail"
            c.latency_ms, c.max_abs_err = _num(res.get("latency_ms")), _num(res.get("max_abs_err"))
            c.max_rel_err, c.reason = _num(res.get("max_rel_err")), _text(res.get("reason"))
            apply_served(c, res)
        cards.append(c)
    return cards


def _versions(ascend: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, str | None]:
    pkg = ascend.get("fa_package") if isinstance(ascend.get("fa_package"), Mapping) else {}
    cann = _text(ascend.get("cann_version"))
    chip = _text(ascend.get("chip_name") or ascend.get("npu_name"))
    devices = _text(ascend.get("device_count", ascend.get("npu_count")))
    return {
        "soc": _text(ascend.get("soc_version")),
        "soc_family": _text(ascend.get("soc_family")),
        "chips": f"{chip} x{devices}" if chip and devices is not None else chip,
        "driver": _text(ascend.get("driver_version")),
        "firmware": _text(ascend.get("firmware_version")),
        "cann": cann,
        "cann_layout": _text(ascend.get("cann_layout")),     # toolkit | cann: both are fine, shown, never compared
        "torch": _text(ascend.get("torch_version")),
        "torch_npu": _text(ascend.get("torch_npu_version")),
        "python": _text(ascend.get("python_version")),
        "arch": _text(ascend.get("arch")),
        "package": _text(pkg.get("recipe")) or (None if pkg else "-"),
        "build_key": _text(pkg.get("build_key") or extra.get("fa_build_key")),
    }


def host_status(h: HostReport) -> str:
    """fail: the run failed it, verification failed, a card is unhealthy, or preflight found a blocking problem.
    warn: a card with a health warning or a latency outlier, or a host the run should have installed but did not reach
    (run state "not installed"). Non-blocking problems are notes, not a status. A verification of an earlier package
    counts as none: the host is "unverified"."""
    if h.run_state in ("failed", "unreachable") or h.verify_ok is False or h.count("fail") or h.blocking:
        return "fail"
    if h.count("warn") or h.run_state == "not installed":
        return "warn"
    if h.verify_ok:
        return "ok"
    return "unverified" if h.has_facts else "unknown"


def merge_run_facts(cached: Mapping[str, Any] | None, run_facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """Cached facts overlaid with what this run's events said (fresher ``ascend``; the manifest fa_install returned)."""
    facts = {**(cached or {}), **(run_facts or {})}
    if "fa_installed" in (run_facts or {}):
        ascend = dict(facts.get("ascend") or {})
        manifest = run_facts["fa_installed"] if isinstance(run_facts["fa_installed"], Mapping) else None
        ascend["fa_package"] = manifest
        ascend["fa_package_state"] = "installed" if manifest else "absent"
        ascend["fa_package_detail"] = (f"{manifest.get('recipe')} (this run)" if manifest
                                       else "no ascend-fa package after this run")
        ascend["fa_package_from_run"] = True
        facts["ascend"] = ascend
    return facts


# ------------------------------------------------------------------------------------------------ package and verification
def _when(text: Any) -> datetime | None:
    """An ISO 8601 time (``2026-11-29T05:00:00Z``; no zone: UTC), else None."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _before(a: Any, b: Any) -> bool | None:
    """Whether time ``a`` is before time ``b`` (None: one of them is missing or not a time)."""
    ta, tb = _when(a), _when(b)
    return None if ta is None or tb is None else ta < tb


def _pkg_name(recipe: Any, sha256: Any) -> str | None:
    sha = _text(sha256)
    return _text(recipe) or (f"sha256 {sha[:12]}" if sha else None)


ROLLOUT_AFTER = {"installed": "to", "upgraded": "to", "reinstalled": "to", "verified": "to", "rolled_back": "from"}


def current_package(ascend: Mapping[str, Any], rollout: Mapping[str, Any] | None) -> dict[str, Any]:
    """The package the host has now, as far as the controller knows: the cached manifest, unless the controller's
    upgrade record (``upgrade/<host>.json``) is newer than those facts and ended on another package (the facts were
    cached before the rollout: a report after an interrupted or separate run). ``{recipe, sha256, installed_at,
    source, note}``; ``recipe`` and ``sha256`` None when the host has no package."""
    pkg = ascend.get("fa_package") if isinstance(ascend.get("fa_package"), Mapping) else None
    out = {"recipe": _text((pkg or {}).get("recipe")), "sha256": _text((pkg or {}).get("sha256")),
           "installed_at": _text((pkg or {}).get("installed_at")),
           "source": "this run" if ascend.get("fa_package_from_run") else "facts", "note": None}
    if not isinstance(rollout, Mapping) or out["source"] == "this run":
        return out
    started, result = rollout.get("started"), _text(rollout.get("result"))
    # facts gathered (npu_probed_at) or a package installed (installed_at) after the rollout began: facts are newer
    facts_newer = any(_before(started, t) is True for t in (out["installed_at"], ascend.get("npu_probed_at")))
    if facts_newer or _when(started) is None:
        return out
    side = ROLLOUT_AFTER.get(result or "")
    if side is None:
        if result == "failed":
            out["note"] = (f"the rollout to {_text(rollout.get('to'))} failed at {_text(rollout.get('finished'))}, after "
                           "these facts were cached: the package may have changed (ascend-fa preflight reads it again)")
        return out
    recipe, sha = _text(rollout.get(side)), _text(rollout.get(f"{side}_sha256"))
    if (sha and sha == out["sha256"]) or (not sha and recipe == out["recipe"]):
        return out
    return {"recipe": recipe, "sha256": sha, "installed_at": None, "source": "upgrade record",
            "note": f"{result} {recipe} at {_text(rollout.get('finished'))} (upgrade record); the cached facts "
                    f"({out['recipe'] or 'no package'}) are older: ascend-fa preflight reads them again"}


def _verified_package(verify: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(recipe, sha256) a verification result names, if it names one (``package: {recipe, sha256}`` or top level)."""
    named = verify.get("package") if isinstance(verify.get("package"), Mapping) else verify
    return _text(named.get("recipe")), _text(named.get("sha256"))


def verification_state(verify: Mapping[str, Any], pkg: Mapping[str, Any], package_state: Any,
                       rollout: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """("current" | "stale", the package the result belongs to). Stale: it names another sha256 than the package
    installed now, or it is older than that package's install (or than the rollout that put it there), or the host
    has no package now. Without any of these to compare, the result is taken as of the package installed now."""
    recipe, sha = _verified_package(verify)
    checked = verify.get("checked_at")
    if sha and pkg.get("sha256"):
        return ("current" if sha == pkg["sha256"] else "stale"), _pkg_name(recipe, sha)
    if recipe and pkg.get("recipe") and recipe != pkg["recipe"]:
        return "stale", recipe
    if not pkg.get("sha256") and not pkg.get("recipe") and package_state in ("absent", "removed"):
        return "stale", _pkg_name(recipe, sha) or "another package"
    # when the package installed now was known from the upgrade record only, its install began with that rollout
    installed = pkg.get("installed_at")
    if pkg.get("source") == "upgrade record" and isinstance(rollout, Mapping):
        installed = rollout.get("started")
    if _before(checked, installed):
        other = None       # which package it was, when the upgrade record tells: verified before it, or during it
        if isinstance(rollout, Mapping) and _before(checked, rollout.get("started")):
            other = _pkg_name(rollout.get("from"), rollout.get("from_sha256"))
        elif isinstance(rollout, Mapping) and rollout.get("result") in ("rolled_back", "failed"):
            other = _pkg_name(rollout.get("to"), rollout.get("to_sha256"))
        return "stale", _pkg_name(recipe, sha) or other or "another package"
    return "current", _pkg_name(recipe, sha) or _pkg_name(pkg.get("recipe"), pkg.get("sha256"))


def _stale_note(h: HostReport, verify: Mapping[str, Any]) -> str:
    verdict = "pass" if verify.get("ok") is True else "fail"
    now = _pkg_name(h.versions.get("package") if h.versions.get("package") != "-" else None, h.package_sha256)
    when = f" installed {h.package_installed_at}" if h.package_installed_at else " is installed"
    installed = f"{now}{when}" if now else "no package installed now"
    return (f"not verified since install: {installed}; the last verification ({verdict}, "
            f"{_text(verify.get('checked_at')) or 'time unknown'}) was of {h.verify_package}")


def _facts_time(ascend: Mapping[str, Any]) -> datetime | None:
    """When the cached facts were read: the later of their npu-smi probe and their package's install (None: unknown)."""
    pkg = ascend.get("fa_package") if isinstance(ascend.get("fa_package"), Mapping) else {}
    times = [t for t in (_when(ascend.get("npu_probed_at")), _when(pkg.get("installed_at"))) if t is not None]
    return max(times) if times else None


def package_after_facts(ascend: Mapping[str, Any], verify: Mapping[str, Any] | None,
                        earlier: tuple[HostReport | None, str | None]) -> dict[str, Any] | None:
    """The package a record newer than the cached facts names, when those facts name none: on a rerun that installed
    nothing, the cache still holds the facts read before the install (the fast path reads none). First the host's
    verification (it names the package it checked), else the previous report's row. None: nothing newer is known."""
    facts_at = _facts_time(ascend)
    if facts_at is None:
        return None
    if isinstance(verify, Mapping):
        recipe, sha = _verified_package(verify)
        checked = _when(verify.get("checked_at"))
        if (recipe or sha) and checked is not None and checked > facts_at:
            return {"recipe": recipe, "sha256": sha, "installed_at": None, "source": "verification record",
                    "build_key": None,
                    "note": f"{_pkg_name(recipe, sha)} verified at {_text(verify.get('checked_at'))}, after these facts "
                            "were cached (ascend-fa preflight reads them again)"}
    before, before_at = earlier
    when = _when(before_at)
    if before is not None and when is not None and when > facts_at and before.versions.get("package") not in (None, "-"):
        return {"recipe": before.versions.get("package"), "sha256": before.package_sha256, "source": "previous report",
                "installed_at": before.package_installed_at, "build_key": before.versions.get("build_key"),
                "note": f"{before.versions.get('package')} in the report of {before_at}, newer than these facts "
                        "(ascend-fa preflight reads them again)"}
    return None


def apply_verification(h: HostReport, ascend: Mapping[str, Any], verify: Mapping[str, Any] | None,
                       rollout: Mapping[str, Any] | None,
                       earlier: tuple[HostReport | None, str | None] = (None, None)) -> None:
    """The package the host has now and the verification that belongs to it (cards, verdict), or the stale one kept
    aside (``stale_verify``) with a note saying which package it was of."""
    pkg = current_package(ascend, rollout)
    if pkg["recipe"] is None and pkg["sha256"] is None and pkg["source"] == "facts":
        pkg = package_after_facts(ascend, verify, earlier) or pkg
    h.package_sha256, h.package_installed_at, h.package_source, h.package_note = (
        pkg["sha256"], pkg["installed_at"], pkg["source"], pkg["note"])
    if pkg["source"] == "upgrade record":   # the cached build key is the old package's: none is known for this one
        h.versions["package"], h.versions["build_key"] = pkg["recipe"] or "-", None
        h.package_state, h.package_detail = ("installed" if pkg["recipe"] else "absent"), pkg["note"]
    elif pkg["source"] in ("verification record", "previous report"):
        h.versions["package"] = pkg["recipe"] or _pkg_name(None, pkg["sha256"])
        h.versions["build_key"] = h.versions.get("build_key") or pkg["build_key"]
        h.package_state, h.package_detail = "installed", pkg["note"]
    if not verify:
        h.cards = build_cards(ascend, None)
        return
    h.verify_state, h.verify_package = verification_state(verify, pkg, h.package_state, rollout)
    if h.verify_state == "stale":
        h.cards = build_cards(ascend, None)
        h.stale_verify = {"ok": verify.get("ok") is True, "summary": _text(verify.get("summary") or verify.get("msg")),
                          "checked_at": _text(verify.get("checked_at")), "package": h.verify_package}
        h.verify_note = _stale_note(h, verify)
        return
    h.cards = build_cards(ascend, verify)
    h.verify_ok = verify.get("ok") is True
    h.verify_summary = _text(verify.get("summary") or verify.get("msg"))
    h.checked_at = _text(verify.get("checked_at"))


def build_host(host: str, facts: Mapping[str, Any] | None, verify: Mapping[str, Any] | None,
               run: Mapping[str, Any] | None = None, rollout: Mapping[str, Any] | None = None,
               earlier: tuple[HostReport | None, str | None] = (None, None)) -> HostReport:
    facts = facts or {}
    ascend = facts.get("ascend") if isinstance(facts.get("ascend"), Mapping) else {}
    h = HostReport(host=host, has_facts=bool(ascend))
    h.versions = _versions(ascend, facts)
    h.package_state, h.package_detail = _text(ascend.get("fa_package_state")), _text(ascend.get("fa_package_detail"))
    h.fa_supported, h.fa_supported_reason = ascend.get("fa_supported"), _text(ascend.get("fa_supported_reason"))
    h.problems = [p for p in _list(facts.get("fa_problems")) if isinstance(p, Mapping)]
    blocking = facts.get("fa_blocking")
    h.verdict_known = isinstance(blocking, list)
    h.blocking = [p for p in (blocking if isinstance(blocking, list)
                              else [p for p in h.problems if p.get("severity") == "error"]) if isinstance(p, Mapping)]
    h.errors = [e for e in _list(ascend.get("errors")) if isinstance(e, Mapping)]
    h.rollout = rollout if isinstance(rollout, Mapping) else None
    apply_verification(h, ascend, verify if isinstance(verify, Mapping) else None, h.rollout, earlier)
    if run:
        h.run_state, h.run_message = run.get("state"), _text(run.get("message"))
    h.change = _text(facts.get("fa_rollout_result"))
    drain = facts.get("fa_drain") if isinstance(facts.get("fa_drain"), Mapping) else (h.rollout or {}).get("drain")
    h.drain = dict(drain) if isinstance(drain, Mapping) else None
    return h


def drain_note(h: HostReport) -> str | None:
    """A node left drained at the end of the run, and why (docs/drains.md); None when there is nothing to say."""
    d = h.drain or {}
    kind = _text(d.get("kind")) or "drain"
    if d.get("kept_drained_reason") is not None:
        reason = _text(d.get("kept_drained_reason")) or _text(d.get("state_before")) or "-"
        return (f"{kind}: left drained as it was before the run (someone else's drain, reason: {reason}); "
                "ascend-fa lifts only its own drain")
    if d.get("drained_by_us") and not d.get("undrained"):
        return (f"{kind}: still drained by ascend-fa (the host failed and was not rolled back). Fix: look at the "
                "failure; the next successful run resumes it, or resume it by hand")
    return None


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _group_key(h: HostReport) -> str:
    return str(h.versions.get("soc") or "fleet")


def flag_outliers(hosts: Sequence[HostReport], ratio: float = OUTLIER_RATIO, z_max: float = OUTLIER_Z) -> list[dict[str, Any]]:
    """Mark cards whose verification latency is far above their peers (same SoC, else the whole fleet).

    Both tests must hold: the ratio keeps a 5% spread among near-identical cards from counting (tiny MAD, huge z),
    the z-score keeps a noisy group (a busy host, CPU stand-ins) from flagging its ordinary spread."""
    groups: dict[str, list[tuple[HostReport, Card]]] = {}
    for h in hosts:
        for c in h.cards:
            if c.latency_ms is not None:
                groups.setdefault(_group_key(h), []).append((h, c))
    fleet = [hc for members in groups.values() for hc in members]
    found = []
    for group, members in sorted(groups.items()):
        peers, label = (members, group) if len(members) >= MIN_GROUP else (fleet, "fleet")
        if len(peers) < MIN_GROUP:
            continue
        lat = [c.latency_ms for _host, c in peers if c.latency_ms is not None]
        med = statistics.median(lat)
        mad = statistics.median([abs(x - med) for x in lat])
        for h, c in members:
            x = float(c.latency_ms or 0.0)
            z = 0.6745 * (x - med) / mad if mad > 0 else 0.0
            if med > 0 and x > ratio * med and (mad == 0 or z > z_max):
                c.outlier, c.outlier_ratio = True, round(x / med, 3)
                found.append({"host": h.host, "card": c.card, "latency_ms": x, "median_ms": round(med, 4),
                              "ratio": c.outlier_ratio, "robust_z": round(z, 2), "group": label})
    return found


def _scalar(v: Any) -> int | float | str | None:
    """A number stays a number (JSON keeps its type); anything else becomes text."""
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
        return v
    return _text(v)


def _mapping(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def bench_rows(bench: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per host x (batch, seq) from fa_bench grid JSON. Values are kept as the host wrote them for the table
    (the template escapes them); the chart takes only rows whose batch and seq are integers (:func:`bench_plot`)."""
    rows = []
    for host, data in sorted(bench.items()):
        for r in _list(data.get("results")):
            if not isinstance(r, Mapping):
                continue
            st, fa = _mapping(r.get("standard")), _mapping(r.get("flash"))
            rows.append({
                "host": host, "batch": _scalar(r.get("batch")), "seq": _scalar(r.get("seq")),
                "heads": _scalar(r.get("heads")), "head_dim": _scalar(r.get("head_dim")),
                "dtype": _text(r.get("dtype") or data.get("dtype")),
                "device": _text(data.get("device_name") or data.get("device")),
                "standard_ms": _num(st.get("latency_ms")) if st.get("ok") else None,
                "standard_oom": st.get("oom") is True, "flash_ms": _num(fa.get("latency_ms")) if fa.get("ok") else None,
                "flash_oom": fa.get("oom") is True, "speedup": _num(r.get("speedup")), "mem_ratio": _num(r.get("mem_ratio")),
                "error": _text(st.get("error") if not st.get("ok") and not st.get("oom") else fa.get("error")),
            })
    return rows


def build_report(facts_dir: str | os.PathLike[str] | None = None, results_dir: str | os.PathLike[str] | None = None,
                 hosts: Iterable[str] | None = None, run: Mapping[str, Mapping[str, Any]] | None = None,
                 title: str = "ascend-fa fleet report",
                 run_facts: Mapping[str, Mapping[str, Any]] | None = None,
                 header: Mapping[str, Any] | None = None, previous: FleetReport | None = None,
                 since_last: bool = True) -> FleetReport:
    """The fleet model. ``hosts``: only these (in this order); default every host with facts or results.
    ``run``: host -> {state, message} of the run that just ended; ``run_facts``: host -> facts its events carried;
    ``header``: the run (see :data:`HEADER_FIELDS`; any may be None). ``previous``: the report to compare with
    (default, with ``since_last``: ``<results_dir>/report.json`` as it is now, before this report replaces it)."""
    if previous is None and since_last:
        previous = previous_report(results_dir)
    before = {h.host: h for h in previous.hosts} if previous is not None else {}
    prev_at = previous.generated_at if previous is not None else None
    facts = load_facts(facts_dir)
    for host, extra in (run_facts or {}).items():
        facts[host] = merge_run_facts(facts.get(host), extra)
    verify = load_results(results_dir, "verify")
    bench = load_results(results_dir, "bench")
    upgrade = load_results(results_dir, "upgrade")
    run = run or {}
    names = list(dict.fromkeys(hosts)) if hosts is not None else sorted(
        {h for h, f in facts.items() if isinstance(f.get("ascend"), Mapping)} | set(verify) | set(run))
    reports = []
    for name in names:
        h = build_host(name, facts.get(name), verify.get(name), run.get(name), upgrade.get(name),
                       earlier=(before.get(name), prev_at))
        h.bench = bench.get(name)
        reports.append(h)
    outliers = flag_outliers(reports)
    for h in reports:
        for c in h.cards:
            c.status = card_status(c)
        h.status = host_status(h)
    gone = compare_previous(reports, previous)
    return FleetReport(
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        facts_dir=str(facts_dir) if facts_dir else None, results_dir=str(results_dir) if results_dir else None,
        hosts=reports, outliers=outliers, bench=bench_rows({h: b for h, b in bench.items() if h in names}),
        title=title, header=run_header(header), previous_at=prev_at, gone=gone,
    )


HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("playbook", "playbook"), ("recipe", "recipe"), ("tag", "tag"), ("commit", "commit"), ("limit", "limit"),
    ("tags", "tags"), ("skip_tags", "skip tags"), ("check", "check mode"), ("started", "started"),
    ("finished", "finished"), ("duration_s", "duration"), ("runner", "runner"),
)


def run_header(header: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The run header as plain data: the known fields (text, a number, a bool or a list of text; anything else as
    text), unknown keys dropped, None when there is no header."""
    if not isinstance(header, Mapping):
        return None
    out: dict[str, Any] = {}
    for key, _label in HEADER_FIELDS:
        v = header.get(key)
        if isinstance(v, list | tuple):
            out[key] = [_text(x) for x in v]
        elif isinstance(v, bool) or v is None:
            out[key] = v
        else:
            out[key] = _scalar(v)
    return out


# Versions that must agree across the hosts of one SoC family: one build key is one (SoC, CANN, arch) and its package
# is built against one CANN; torch_npu pairs with one torch; a driver older than its peers' is the usual drift. Other
# fields may differ legitimately and are never highlighted: the hardware (a mixed fleet), firmware, python, arch, the
# CANN layout (toolkit before 8.5, cann from 8.5: the same CANN either way) and the build key (it follows the SoC).
MUST_AGREE: tuple[str, ...] = ("driver", "cann", "torch", "torch_npu", "package")


def _family(h: HostReport) -> str:
    return str(h.versions.get("soc_family") or h.versions.get("soc") or "fleet")


def differing(hosts: Sequence[HostReport]) -> dict[str, dict[str, bool]]:
    """host -> field -> True where a version that must agree (:data:`MUST_AGREE`) is not the one most hosts of the
    same SoC family have (every host of a tie): the versions worth a second look."""
    out: dict[str, dict[str, bool]] = {h.host: {} for h in hosts}
    groups: dict[str, list[HostReport]] = {}
    for h in hosts:
        if h.has_facts:
            groups.setdefault(_family(h), []).append(h)
    fleet = {key: Counter(h.versions.get(key) for members in groups.values() for h in members) for key in MUST_AGREE}
    for members in groups.values():
        for key in MUST_AGREE:
            values = Counter(h.versions.get(key) for h in members).most_common()
            if len(values) <= 1:
                continue
            common = _majority(values, fleet[key])
            for h in members:
                out[h.host][key] = h.versions.get(key) != common
    return out


def _majority(values: list[tuple[Any, int]], fleet: Counter) -> Any:
    """The value most members have; a tie goes to the one most of the fleet has; still a tie: none (all differ)."""
    if values[0][1] > values[1][1]:
        return values[0][0]
    tied = sorted((fleet[v] for v, n in values if n == values[0][1]), reverse=True)
    best = [v for v, n in values if n == values[0][1] and fleet[v] == tied[0]]
    return best[0] if len(best) == 1 else object()


# ------------------------------------------------------------------------------------------------ terminal
STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "unverified": "dim", "unknown": "dim"}
CARD_GLYPH = {"ok": ("●", "green"), "warn": ("▲", "yellow"), "fail": ("✖", "bold red"), "unverified": ("○", "dim")}


def _cards_text(h: HostReport) -> Any:
    from rich.text import Text

    t = Text()
    for c in h.cards:
        glyph, style = CARD_GLYPH.get(c.status, ("?", ""))
        t.append(glyph, style=style)
    return t


def _ms(v: float | None) -> str:
    return f"{v:.3g}" if isinstance(v, int | float) and not isinstance(v, bool) else "-"


def _cell(value: Any, style: str = "", limit: int = 80) -> Any:
    """Host data for the terminal: a rich Text (never parsed as markup) with no control character, one line."""
    from rich.text import Text

    return Text(shorten(value if value not in (None, "") else "-", limit), style=style)


def terminal_table(report: FleetReport) -> Any:
    """A rich Table: one row per host (every cell from host data is plain text: see :func:`_cell`)."""
    from rich.table import Table

    t = Table(title=_cell(report.title, limit=200), title_justify="left")
    for col, kw in (("host", {"no_wrap": True}), ("status", {}), ("SoC", {}), ("cards", {"no_wrap": True}),
                    ("pass", {"justify": "right"}), ("lat ms med/max", {"justify": "right"}), ("served by", {}),
                    ("vs CANN", {"justify": "right"}), ("CANN", {}),
                    ("driver", {}), ("package", {}), ("run", {}), ("since last run", {})):
        t.add_column(col, **kw)
    for h in ordered(report.hosts):
        lat = h.latencies()
        verified = sum(1 for c in h.cards if c.verify != "none")
        package = h.versions.get("package")
        t.add_row(
            _cell(h.host), _cell(h.status, STATUS_STYLE.get(h.status, "")), _cell(h.versions.get("soc")), _cards_text(h),
            f"{sum(1 for c in h.cards if c.verify == 'pass')}/{verified}" if verified else "-",
            f"{_ms(statistics.median(lat))}/{_ms(max(lat))}" if lat else "-",
            _cell(served_text(h)), _cell(baseline_text(h)),
            _cell(h.versions.get("cann")), _cell(h.versions.get("driver")),
            _cell(f"{package or '-'}{' (not verified since install)' if h.verify_state == 'stale' else ''}"),
            _cell(f"{h.run_state or '-'}{f' ({h.change})' if h.change else ''}"),
            _cell(since_text(h)),
        )
    return t


def since_text(h: HostReport) -> str:
    """The "since last run" cell: ``-`` (no previous report), ``no change``, or what changed."""
    if h.since_state == "none":
        return "-"
    return "; ".join(h.since) or "no change"


def fix_line(p: Mapping[str, Any]) -> str:
    """A problem with its fix on the same line: ``[error] SoC: ascend310p3 (needs ...) -> fix: remove ...``."""
    return problem_line(p) + (f" -> fix: {p.get('fix')}" if p.get("fix") else "")


def host_note(h: HostReport) -> str:
    """The one thing to read about a host that is not ok."""
    if h.run_state in ("failed", "unreachable") and h.run_message:
        return h.run_message
    if h.verify_ok is False and h.verify_summary:
        return h.verify_summary
    bad = [c for c in h.cards if c.status in ("fail", "warn")]
    if bad:
        return "; ".join(f"card {c.card}: " + (c.reason or (f"health {c.health}" if _health_class(c.health) != "ok"
                                                            else f"{c.outlier_ratio}x median latency")) for c in bad)
    if h.blocking:
        return "; ".join(problem_line(p) for p in h.blocking)
    if h.verify_note:
        return h.verify_note
    if h.package_note and h.verify_state != "current":
        return h.package_note
    if not h.has_facts:
        return "no facts cached for this host"
    return ""


def shorten(text: Any, limit: int = 240) -> str:
    """One line of at most ``limit`` characters with no control character (the JSON keeps the full text)."""
    return one_line("" if text is None else text, limit)


def problem_line(p: Mapping[str, Any]) -> str:
    severity = f"{p.get('severity', '?')}, acknowledged" if p.get("acknowledged") else p.get("severity", "?")
    return f"[{severity}] {p.get('what')}: {p.get('found')} (needs {p.get('needed')})"


def print_terminal(report: FleetReport, console: Any = None) -> None:
    """The table, then one line per host that is not ok and one per latency outlier (host data as plain text)."""
    from rich.console import Console
    from rich.text import Text

    if console is None:
        console = Console()
        if not console.is_terminal:   # a pipe or a CI log: no 80-column wrap
            console = Console(width=200)
    items = header_items(report.header)
    if items:
        console.print(Text(shorten(" | ".join(f"{label} {text}" for _key, label, text in items), 600)), highlight=False)
    console.print(terminal_table(report))
    console.print(report.summary_line(), highlight=False, markup=False)
    acknowledged: dict[str, list[str]] = {}
    for h in ordered(report.hosts):
        d = host_details(h)
        blocking_only = d["note"] == "; ".join(problem_line(p) for p in h.blocking)   # the problems say it below
        if d["note"] and h.status != "ok" and not blocking_only:
            console.print(Text.assemble((h.status, STATUS_STYLE.get(h.status, "")),
                                        f" {shorten(h.host, 120)}: {shorten(d['note'])}"), highlight=False)
        for p in d["problems"]:
            if p.get("acknowledged"):   # one summary line below, not one per host
                acknowledged.setdefault(str(p.get("code") or p.get("what")), []).append(h.host)
                continue
            console.print(Text.assemble((h.status, STATUS_STYLE.get(h.status, "")),
                                        f" {shorten(h.host, 120)}: {shorten(fix_line(p), 400)}"), highlight=False)
        if d["drain"]:
            console.print(Text.assemble(("drained", "yellow"), f" {shorten(h.host, 120)}: {shorten(d['drain'], 400)}"),
                          highlight=False)
    for code, names in acknowledged.items():
        console.print(Text(shorten(f"acknowledged (fa_preflight_ignore), not blocking: {code} on {len(names)} host(s): "
                                   f"{', '.join(names)}", 400)), highlight=False)
    if report.gone:
        console.print(Text(shorten(f"in the previous report, not in this one: {', '.join(report.gone)}", 400)),
                      highlight=False)
    for o in report.outliers:
        console.print(Text.assemble(("outlier", "yellow"), f": {shorten(o['host'], 120)} card {o['card']}: "
                                    f"{o['latency_ms']:.3g} ms = {o['ratio']:.2f}x the {shorten(o['group'], 80)} "
                                    f"median {o['median_ms']:.3g} ms"), highlight=False)


# ------------------------------------------------------------------------------------------------ html
PLOT_SERIES: tuple[tuple[str, str, str], ...] = (("standard_ms", "standard attention", "#9aa5b1"),
                                                 ("flash_ms", "FlashAttention", "#2b6cb0"))


def bench_plot(rows: Sequence[Mapping[str, Any]], width: int = 760, height: int = 300) -> dict[str, Any] | None:
    """The benchmark chart as numbers (the template draws it as SVG and escapes every text): grouped bars per
    (batch, seq), the median standard vs FlashAttention latency over the hosts, OOM marked. Only rows whose batch and
    seq are integers and whose latencies are finite numbers take part; None when nothing is left to draw."""
    usable = [r for r in rows if _count(r.get("batch")) is not None and _count(r.get("seq")) is not None
              and isinstance(r.get("batch"), int) and isinstance(r.get("seq"), int)]
    configs = sorted({(int(r["batch"]), int(r["seq"])) for r in usable})
    if not configs:
        return None
    med: dict[tuple[int, int], dict[str, float | None]] = {}
    oom: dict[tuple[int, int], bool] = {}
    for cfg in configs:
        mine = [r for r in usable if (r["batch"], r["seq"]) == cfg]
        med[cfg] = {k: (statistics.median(v) if (v := [x for r in mine if (x := _num(r.get(k))) is not None]) else None)
                    for k, _label, _colour in PLOT_SERIES}
        oom[cfg] = any(r.get("standard_oom") is True for r in mine)
    top = max([v for m in med.values() for v in m.values() if v is not None and v > 0] or [1.0])
    left, bottom, pad = 60, 40, 20
    plot_w, plot_h = width - left - pad, height - bottom - pad - 20
    group_w = plot_w / len(configs)
    bar_w = min(36.0, group_w / 3)
    base = pad + plot_h
    plot: dict[str, Any] = {
        "width": width, "height": height, "left": left, "top": pad, "right": left + plot_w, "base": base,
        "ticks": [{"y": base - plot_h * i / 4, "label": f"{top * i / 4:.3g}"} for i in range(5)],
        "ylabel_y": pad + plot_h / 2, "bars": [], "oom": [], "groups": [],
        "legend": [{"x": left + 10 + si * 170, "y": height - 16, "fill": colour, "label": label}
                   for si, (_key, label, colour) in enumerate(PLOT_SERIES)],
    }
    for gi, cfg in enumerate(configs):
        x0 = left + gi * group_w + (group_w - 2 * bar_w) / 2
        for si, (key, label, colour) in enumerate(PLOT_SERIES):
            v, x = med[cfg][key], x0 + si * bar_w
            if v is None:
                if key == "standard_ms" and oom[cfg]:
                    plot["oom"].append({"x": x + bar_w / 2, "y": base - 4})
                continue
            h = plot_h * max(v, 0.0) / top
            plot["bars"].append({"x": x, "y": base - h, "w": max(bar_w - 2, 1.0), "h": h, "fill": colour,
                                 "title": f"{label} b={cfg[0]} s={cfg[1]}: {v:.4g} ms"})
        plot["groups"].append({"x": left + gi * group_w + group_w / 2, "y": base + 16, "label": f"b{cfg[0]} s{cfg[1]}"})
    return plot


def _env() -> Any:
    import jinja2

    # autoescape for every template, whatever its name: all the page's values come from hosts and results
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(DATA)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["ms"] = _ms
    env.filters["shorten"] = shorten
    env.filters["px"] = _px
    return env


def _px(v: Any) -> str:
    """A coordinate for an SVG attribute: a finite number, printed with one decimal (anything else is an error)."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise TypeError(f"not a coordinate: {v!r}")
    return f"{v:.1f}"


def _duration(v: Any) -> str:
    secs = _num(v)
    if secs is None:
        return str(v)
    m, sec = divmod(int(round(secs)), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {sec:02d}s" if h else (f"{m}m {sec:02d}s" if m else f"{secs:.3g}s")


def header_items(header: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """(key, label, text) of each header field that has a value, in :data:`HEADER_FIELDS` order."""
    out = []
    for key, label in HEADER_FIELDS:
        v = (header or {}).get(key)
        if v is None or v == "" or v == []:
            continue
        if key == "check":
            text = "yes: nothing was changed" if v is True else "no"
        elif key == "duration_s":
            text = _duration(v)
        elif isinstance(v, list | tuple):
            text = ", ".join(str(x) for x in v)
        else:
            text = str(v)
        out.append((key, label, shorten(text, 300)))
    return out


def host_problems(h: HostReport) -> list[Mapping[str, Any]]:
    """Preflight's problems, blocking ones first, each once (``fa_blocking`` may hold some that are not in
    ``fa_problems``). An error that preflight's verdict did not count (``fa_preflight_ignore``) is marked
    ``acknowledged``: the operator said it is known; it is shown, not raised as a failure."""
    seen, out = set(), []
    blocking = {json.dumps(p, sort_keys=True, default=str) for p in h.blocking}
    for p in [*h.blocking, *h.problems]:
        key = json.dumps(p, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            acknowledged = h.verdict_known and p.get("severity") == "error" and key not in blocking
            out.append({**p, "acknowledged": True} if acknowledged else p)
    return out


def host_details(h: HostReport) -> dict[str, Any]:
    """What the page says about a host beside its tables: the one note, every problem with its fix, and the other
    notes (stale verification, package record, unsupported SoC, facts errors)."""
    note = host_note(h) if h.status != "ok" or h.verify_state == "stale" else ""
    lines = [x for x in (h.verify_note, h.package_note if h.package_source != "facts" or h.verify_state != "current"
                         else None) if x and x != note]
    if h.fa_supported is False and h.fa_supported_reason:
        lines.append(f"FlashAttention not supported: {h.fa_supported_reason}")
    lines += [f"{e.get('source')}: {e.get('reason')}" for e in h.errors]
    drained = drain_note(h)
    if drained:
        lines.append(drained)
    return {"note": note, "problems": host_problems(h), "lines": lines, "drain": drained}


def render_html(report: FleetReport) -> str:
    """The whole report as one HTML page (inline CSS and SVG; nothing fetched when it is opened; every value
    autoescaped by the template). Hosts in :func:`ordered` order: failures first."""
    tpl = _env().get_template(TEMPLATE)
    hosts = ordered(report.hosts)
    details = {h.host: host_details(h) for h in hosts}
    return tpl.render(report=report, summary=report.summary(), hosts=hosts, max_cards=report.max_cards,
                      version_fields=VERSION_FIELDS, differs=differing(report.hosts), header=header_items(report.header),
                      notes_by_host={k: v for k, v in details.items() if v["note"] or v["problems"] or v["lines"]},
                      plot=bench_plot(report.bench) if report.bench else None)


def write_json(report: FleetReport, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    return p


def _fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that ``cls`` (a dataclass) has: a report.json written by another version still loads."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def load_json(path: str | os.PathLike[str]) -> FleetReport:
    """The FleetReport that :func:`write_json` wrote (``as_dict()`` of the result equals the file's, but for the
    summary, which is computed). Raises OSError / ValueError when the file is missing or is not a report."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), list):
        raise ValueError(f"{path}: not an ascend-fa report.json (no hosts list)")
    hosts = []
    for raw in data["hosts"]:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("host"), str):
            raise ValueError(f"{path}: a host entry without a name: {str(raw)[:80]}")
        h = HostReport(**_fields(HostReport, raw))
        h.cards = [Card(**_fields(Card, c)) for c in _list(raw.get("cards")) if isinstance(c, Mapping) and "card" in c]
        hosts.append(h)
    rep = FleetReport(generated_at=str(data.get("generated_at") or ""), facts_dir=data.get("facts_dir"),
                      results_dir=data.get("results_dir"), hosts=hosts,
                      **_fields(FleetReport, {k: v for k, v in data.items()
                                              if k in ("outliers", "bench", "title", "header")}))
    return rep


def write_html(report: FleetReport, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(report))
    return p
