"""The fleet report: every host's versions, package and cards, coloured by health and verification.

Inputs, all on the controller:

- the fact cache (``ansible.cfg``: jsonfile at ``~/.cache/ascend-fa/facts``): per host ``ascend`` (module
  ``ascend_facts``, shape in docs/contracts.md) and any cached set_facts (``fa_build_key``, ``fa_problems``);
- the results folder (``fa_results_dir``, default ``<repo>/out``): ``verify/<host>.json`` (role fa_verify),
  ``bench/<host>.json`` (playbooks/bench.yml: ``kernels/fa_bench.py`` output), ``upgrade/<host>.json``
  (role fa_rollout);
- optionally the outcome of the run that just ended (host -> state, message).

Outputs: a rich terminal table, JSON, and one self-contained HTML page (inline CSS and SVG, no external asset).
"""

from __future__ import annotations

import html
import json
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
    verify: str = "none"                 # pass | fail | none
    latency_ms: float | None = None
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    reason: str | None = None
    outlier: bool = False
    outlier_ratio: float | None = None
    status: str = "unverified"           # ok | warn | fail | unverified

    @property
    def label(self) -> str:
        return f"{self.card}"

    def title(self, host: str) -> str:
        bits = [f"{host} card {self.card}"]
        if self.npu_id is not None:
            bits.append(f"npu {self.npu_id} chip {self.chip_id}")
        bits.append(f"health {self.health or '?'}")
        bits.append(f"verify {self.verify}")
        if self.latency_ms is not None:
            bits.append(f"{self.latency_ms:.3g} ms")
        if self.max_abs_err is not None:
            bits.append(f"max abs err {self.max_abs_err:.2g}")
        if self.outlier and self.outlier_ratio:
            bits.append(f"outlier: {self.outlier_ratio:.2f}x median")
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
    change: str | None = None            # fa_rollout_result: installed|upgraded|reinstalled|unchanged|rolled_back|failed
    verify_ok: bool | None = None
    verify_summary: str | None = None
    checked_at: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)   # preflight's fa_problems (all severities)
    blocking: list[dict[str, Any]] = field(default_factory=list)   # those that stop the host (fa_blocking)
    errors: list[dict[str, Any]] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)
    bench: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None

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
            "cards_unhealthy": sum(1 for c in cards if _health_class(c.health) != "ok"),
            "outliers": len(self.outliers),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title, "generated_at": self.generated_at, "facts_dir": self.facts_dir,
            "results_dir": self.results_dir, "summary": self.summary(),
            "hosts": [asdict(h) for h in self.hosts], "outliers": self.outliers, "bench": self.bench,
        }

    def summary_line(self) -> str:
        s = self.summary()
        return (f"{s['hosts']} hosts: {s['hosts_ok']} ok, {s['hosts_warn']} warning, {s['hosts_failed']} failed, "
                f"{s['hosts_unverified']} unverified | {s['cards']} cards: {s['cards_passed']} passed, "
                f"{s['cards_failed']} failed, {s['cards_unverified']} unverified, {s['cards_unhealthy']} unhealthy | "
                f"{s['outliers']} latency outliers")


# ------------------------------------------------------------------------------------------------ loading
def _untag(obj: dict[str, Any]) -> Any:
    """ansible-core 2.19 cache payloads carry tagged values as ``{"value": .., "__ansible_type": ..}``."""
    if "__ansible_type" in obj:
        for key in ("value", "iso8601"):
            if key in obj:
                return obj[key]
    return obj


def decode_cache_file(text: str) -> dict[str, Any]:
    """One jsonfile cache file: ansible-core >= 2.19 wraps the facts as a JSON string in ``__payload__``."""
    data = json.loads(text, object_hook=_untag)
    if isinstance(data, dict) and isinstance(data.get("__payload__"), str):
        data = json.loads(data["__payload__"], object_hook=_untag)
    return data if isinstance(data, dict) else {}


def _cache_host(name: str) -> tuple[str, int]:
    """``s1_node1`` -> (``node1``, 1); a file without the schema prefix (older ansible) -> (name, 0)."""
    head, sep, rest = name.partition("_")
    if sep and head[:1] == "s" and head[1:].isdigit() and rest:
        return rest, int(head[1:])
    return name, 0


def load_facts(facts_dir: str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """host -> cached facts (``ascend`` and friends); the newest cache schema wins for a host cached twice."""
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    d = Path(facts_dir) if facts_dir else None
    if d is None or not d.is_dir():
        return {}
    for f in sorted(d.iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        host, schema = _cache_host(f.name)
        try:
            data = decode_cache_file(f.read_text())
        except (OSError, ValueError):
            continue
        if host not in found or schema >= found[host][0]:
            found[host] = (schema, data)
    return {h: v for h, (_, v) in found.items()}


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
def _health_class(health: str | None) -> str:
    h = (health or "").strip().lower()
    if not h:
        return "unknown"
    if h in HEALTH_OK:
        return "ok"
    return "warn" if h in HEALTH_WARN else "fail"


def _num(v: Any) -> float | None:
    try:
        return None if v is None or isinstance(v, bool) else float(v)
    except (TypeError, ValueError):
        return None


def _chips_by_card(ascend: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    """Chips keyed by logical device id (``logic_id``; else their order, which is what npu-smi lists)."""
    chips = [c for c in ascend.get("chips") or [] if isinstance(c, Mapping)]
    out: dict[int, Mapping[str, Any]] = {}
    for i, c in enumerate(chips):
        lid = c.get("logic_id")
        out[int(lid) if isinstance(lid, int) or (isinstance(lid, str) and lid.isdigit()) else i] = c
    return out


def card_status(c: Card) -> str:
    health = _health_class(c.health)
    if c.verify == "fail" or health == "fail":
        return "fail"
    if health == "warn" or c.outlier:
        return "warn"
    return "ok" if c.verify == "pass" else "unverified"


def build_cards(ascend: Mapping[str, Any], verify: Mapping[str, Any] | None) -> list[Card]:
    chips = _chips_by_card(ascend)
    results = {int(r["card"]): r for r in (verify or {}).get("cards") or []
               if isinstance(r, Mapping) and isinstance(r.get("card"), int)}
    count = int(ascend.get("device_count") or ascend.get("npu_count") or 0) if not chips else 0
    ids = sorted(set(chips) | set(results) | set(range(count)))
    cards = []
    for i in ids:
        chip, res = chips.get(i, {}), results.get(i)
        c = Card(card=i, npu_id=chip.get("npu_id"), chip_id=chip.get("chip_id"), name=chip.get("name"),
                 health=chip.get("health"), hbm_used_mb=chip.get("hbm_used_mb"), hbm_total_mb=chip.get("hbm_total_mb"))
        if res is not None:
            c.verify = "pass" if res.get("ok") else "fail"
            c.latency_ms, c.max_abs_err = _num(res.get("latency_ms")), _num(res.get("max_abs_err"))
            c.max_rel_err, c.reason = _num(res.get("max_rel_err")), res.get("reason")
        cards.append(c)
    return cards


def _versions(ascend: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, str | None]:
    pkg = ascend.get("fa_package") if isinstance(ascend.get("fa_package"), Mapping) else {}
    cann = ascend.get("cann_version")
    chip = ascend.get("chip_name") or ascend.get("npu_name")
    devices = ascend.get("device_count", ascend.get("npu_count"))
    return {
        "soc": ascend.get("soc_version"),
        "chips": f"{chip} x{devices}" if chip and devices is not None else chip,
        "driver": ascend.get("driver_version"),
        "firmware": ascend.get("firmware_version"),
        "cann": f"{cann} ({ascend['cann_layout']})" if cann and ascend.get("cann_layout") else cann,
        "torch": ascend.get("torch_version"),
        "torch_npu": ascend.get("torch_npu_version"),
        "python": ascend.get("python_version"),
        "arch": ascend.get("arch"),
        "package": pkg.get("recipe") or (None if pkg else "-"),
        "build_key": pkg.get("build_key") or extra.get("fa_build_key"),
    }


def host_status(h: HostReport) -> str:
    """fail: the run failed it, verification failed, a card is unhealthy, or preflight found a blocking problem.
    warn: a card with a health warning or a latency outlier, or a host the run should have installed but did not reach
    (run state "not installed"). Non-blocking problems are notes, not a status."""
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
        facts["ascend"] = ascend
    return facts


def build_host(host: str, facts: Mapping[str, Any] | None, verify: Mapping[str, Any] | None,
               run: Mapping[str, Any] | None = None) -> HostReport:
    facts = facts or {}
    ascend = facts.get("ascend") if isinstance(facts.get("ascend"), Mapping) else {}
    h = HostReport(host=host, has_facts=bool(ascend))
    h.versions = _versions(ascend, facts)
    h.package_state, h.package_detail = ascend.get("fa_package_state"), ascend.get("fa_package_detail")
    h.fa_supported, h.fa_supported_reason = ascend.get("fa_supported"), ascend.get("fa_supported_reason")
    h.problems = [p for p in facts.get("fa_problems") or [] if isinstance(p, Mapping)]
    blocking = facts.get("fa_blocking")
    h.blocking = [p for p in (blocking if isinstance(blocking, list)
                              else [p for p in h.problems if p.get("severity") == "error"]) if isinstance(p, Mapping)]
    h.errors = [e for e in ascend.get("errors") or [] if isinstance(e, Mapping)]
    h.cards = build_cards(ascend, verify)
    if verify:
        h.verify_ok = bool(verify.get("ok"))
        h.verify_summary = verify.get("summary") or verify.get("msg")
        h.checked_at = verify.get("checked_at")
    if run:
        h.run_state, h.run_message = run.get("state"), run.get("message")
    h.change = facts.get("fa_rollout_result")
    return h


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
        lat = [c.latency_ms for _, c in peers if c.latency_ms is not None]
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


def bench_rows(bench: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per host x (batch, seq) from fa_bench grid JSON."""
    rows = []
    for host, data in sorted(bench.items()):
        for r in data.get("results") or []:
            st, fa = r.get("standard") or {}, r.get("flash") or {}
            rows.append({
                "host": host, "batch": r.get("batch"), "seq": r.get("seq"), "heads": r.get("heads"),
                "head_dim": r.get("head_dim"), "dtype": r.get("dtype") or data.get("dtype"),
                "device": data.get("device_name") or data.get("device"),
                "standard_ms": _num(st.get("latency_ms")) if st.get("ok") else None,
                "standard_oom": bool(st.get("oom")), "flash_ms": _num(fa.get("latency_ms")) if fa.get("ok") else None,
                "flash_oom": bool(fa.get("oom")), "speedup": _num(r.get("speedup")), "mem_ratio": _num(r.get("mem_ratio")),
                "error": st.get("error") if not st.get("ok") and not st.get("oom") else fa.get("error"),
            })
    return rows


def build_report(facts_dir: str | os.PathLike[str] | None = None, results_dir: str | os.PathLike[str] | None = None,
                 hosts: Iterable[str] | None = None, run: Mapping[str, Mapping[str, Any]] | None = None,
                 title: str = "ascend-fa fleet report",
                 run_facts: Mapping[str, Mapping[str, Any]] | None = None) -> FleetReport:
    """The fleet model. ``hosts``: only these (in this order); default every host with facts or results.
    ``run``: host -> {state, message} of the run that just ended; ``run_facts``: host -> facts its events carried."""
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
        h = build_host(name, facts.get(name), verify.get(name), run.get(name))
        h.bench, h.rollout = bench.get(name), upgrade.get(name)
        reports.append(h)
    outliers = flag_outliers(reports)
    for h in reports:
        for c in h.cards:
            c.status = card_status(c)
        h.status = host_status(h)
    return FleetReport(
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        facts_dir=str(facts_dir) if facts_dir else None, results_dir=str(results_dir) if results_dir else None,
        hosts=reports, outliers=outliers, bench=bench_rows({h: b for h, b in bench.items() if h in names}),
        title=title,
    )


NOT_COMPARED = frozenset({"soc", "chips"})       # a mixed fleet is normal: no highlight for the hardware
PER_SOC = frozenset({"build_key"})               # one build per SoC family: compare within the same SoC only


def differing(hosts: Sequence[HostReport]) -> dict[str, dict[str, bool]]:
    """host -> field -> True where the value differs from the most common one among its peers (the fleet, or for
    the build key the hosts with the same SoC): the versions worth a second look."""
    out: dict[str, dict[str, bool]] = {h.host: {} for h in hosts}
    with_facts = [h for h in hosts if h.has_facts]
    for key, _ in VERSION_FIELDS:
        if key in NOT_COMPARED:
            continue
        groups: dict[Any, list[HostReport]] = {}
        for h in with_facts:
            groups.setdefault(h.versions.get("soc") if key in PER_SOC else None, []).append(h)
        for members in groups.values():
            values = Counter(h.versions.get(key) for h in members)
            if len(values) <= 1:
                continue
            common = values.most_common(1)[0][0]
            for h in members:
                out[h.host][key] = h.versions.get(key) != common
    return out


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
    return f"{v:.3g}" if v is not None else "-"


def terminal_table(report: FleetReport) -> Any:
    """A rich Table: one row per host."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=report.title, title_justify="left")
    for col, kw in (("host", {"no_wrap": True}), ("status", {}), ("SoC", {}), ("cards", {"no_wrap": True}),
                    ("pass", {"justify": "right"}), ("lat ms med/max", {"justify": "right"}), ("CANN", {}),
                    ("driver", {}), ("package", {}), ("run", {})):
        t.add_column(col, **kw)
    for h in report.hosts:
        lat = h.latencies()
        verified = sum(1 for c in h.cards if c.verify != "none")
        t.add_row(
            h.host, Text(h.status, style=STATUS_STYLE.get(h.status, "")), h.versions.get("soc") or "-", _cards_text(h),
            f"{sum(1 for c in h.cards if c.verify == 'pass')}/{verified}" if verified else "-",
            f"{_ms(statistics.median(lat))}/{_ms(max(lat))}" if lat else "-",
            h.versions.get("cann") or "-", h.versions.get("driver") or "-", h.versions.get("package") or "-",
            f"{h.run_state or '-'}{f' ({h.change})' if h.change else ''}",
        )
    return t


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
    if not h.has_facts:
        return "no facts cached for this host"
    return ""


def shorten(text: str | None, limit: int = 240) -> str:
    """One line of at most ``limit`` characters (the JSON and the HTML tooltip keep the full text)."""
    t = " ".join(str(text or "").split())
    return t if len(t) <= limit else t[: limit - 1] + "…"


def problem_line(p: Mapping[str, Any]) -> str:
    return f"[{p.get('severity', '?')}] {p.get('what')}: {p.get('found')} (needs {p.get('needed')})"


def print_terminal(report: FleetReport, console: Any = None) -> None:
    """The table, then one line per host that is not ok and one per latency outlier."""
    from rich.console import Console
    from rich.markup import escape

    if console is None:
        console = Console()
        if not console.is_terminal:   # a pipe or a CI log: no 80-column wrap
            console = Console(width=200)
    console.print(terminal_table(report))
    console.print(report.summary_line(), highlight=False)
    for h in report.hosts:
        note = shorten(host_note(h))
        if note and h.status != "ok":
            style = STATUS_STYLE.get(h.status, "")
            console.print(f"[{style}]{h.status}[/] {escape(h.host)}: {escape(note)}", highlight=False)
    for o in report.outliers:
        console.print(f"[yellow]outlier[/]: {o['host']} card {o['card']}: {o['latency_ms']:.3g} ms = {o['ratio']:.2f}x the "
                      f"{o['group']} median {o['median_ms']:.3g} ms", highlight=False)


# ------------------------------------------------------------------------------------------------ html
def bench_svg(rows: Sequence[Mapping[str, Any]], width: int = 760, height: int = 300) -> str:
    """Grouped bars, per (batch, seq): median standard vs FlashAttention latency over the hosts; OOM marked."""
    configs = sorted({(r["batch"], r["seq"]) for r in rows}, key=lambda bs: (bs[0] or 0, bs[1] or 0))
    if not configs:
        return ""
    series: list[tuple[str, str, str]] = [("standard_ms", "standard attention", "#9aa5b1"),
                                          ("flash_ms", "FlashAttention", "#2b6cb0")]
    med: dict[tuple[Any, Any], dict[str, float | None]] = {}
    oom: dict[tuple[Any, Any], bool] = {}
    for cfg in configs:
        mine = [r for r in rows if (r["batch"], r["seq"]) == cfg]
        med[cfg] = {k: (statistics.median(v) if (v := [r[k] for r in mine if r[k] is not None]) else None)
                    for k, _, _ in series}
        oom[cfg] = any(r["standard_oom"] for r in mine)
    top = max([v for m in med.values() for v in m.values() if v is not None] or [1.0])
    left, bottom, pad = 60, 40, 20
    plot_w, plot_h = width - left - pad, height - bottom - pad - 20
    group_w = plot_w / len(configs)
    bar_w = min(36.0, group_w / 3)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="benchmark latency">',
           f'<line x1="{left}" y1="{pad}" x2="{left}" y2="{pad + plot_h}" stroke="#444"/>',
           f'<line x1="{left}" y1="{pad + plot_h}" x2="{left + plot_w}" y2="{pad + plot_h}" stroke="#444"/>']
    for i in range(5):
        v = top * i / 4
        y = pad + plot_h - plot_h * i / 4
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v:.3g}</text>')
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
    out.append(f'<text x="14" y="{pad + plot_h / 2:.0f}" font-size="11" transform="rotate(-90 14 {pad + plot_h / 2:.0f})" '
               'text-anchor="middle">latency (ms, median over hosts)</text>')
    for gi, cfg in enumerate(configs):
        x0 = left + gi * group_w + (group_w - 2 * bar_w) / 2
        for si, (key, label, colour) in enumerate(series):
            v = med[cfg][key]
            x = x0 + si * bar_w
            if v is None:
                if key == "standard_ms" and oom[cfg]:
                    out.append(f'<text x="{x + bar_w / 2:.1f}" y="{pad + plot_h - 4}" font-size="11" fill="#c53030" '
                               'text-anchor="middle">OOM</text>')
                continue
            h = plot_h * v / top
            out.append(f'<rect x="{x:.1f}" y="{pad + plot_h - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                       f'fill="{colour}"><title>{html.escape(label)} b={cfg[0]} s={cfg[1]}: {v:.4g} ms</title></rect>')
        out.append(f'<text x="{left + gi * group_w + group_w / 2:.1f}" y="{pad + plot_h + 16}" font-size="11" '
                   f'text-anchor="middle">b{cfg[0]} s{cfg[1]}</text>')
    for si, (_, label, colour) in enumerate(series):
        out.append(f'<rect x="{left + 10 + si * 170}" y="{height - 16}" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{left + 26 + si * 170}" y="{height - 6}" font-size="12">{html.escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("ascend_fa", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["ms"] = _ms
    env.filters["shorten"] = shorten
    return env


def render_html(report: FleetReport) -> str:
    """The whole report as one HTML page (inline CSS and SVG; nothing fetched when it is opened)."""
    from markupsafe import Markup

    tpl = _env().get_template(TEMPLATE)
    return tpl.render(report=report, summary=report.summary(), hosts=report.hosts, max_cards=report.max_cards,
                      version_fields=VERSION_FIELDS, differs=differing(report.hosts),
                      notes={h.host: host_note(h) for h in report.hosts},
                      bench_svg=Markup(bench_svg(report.bench)) if report.bench else None)


def write_json(report: FleetReport, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    return p


def write_html(report: FleetReport, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(report))
    return p
