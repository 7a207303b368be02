"""JUnit XML of a run, for CI systems (Jenkins, GitLab): one test suite per host, a test case per phase the host went
through (classname ``<host>.phase``) and per card (classname ``<host>.cards``, ``card <n>``, time = its latency).

The shape is the one Jenkins' JUnit plugin and GitLab's unit test reports read: ``testsuites`` > ``testsuite``
(name, tests, failures, errors, skipped, time) > ``testcase`` (classname, name, time) with at most one ``failure``
(message, type; the text), ``error`` (an unreachable host) or ``skipped`` child, and ``system-out``.

Every text came from hosts and is hostile: xml.etree escapes ``<``, ``&`` and quotes; characters XML 1.0 cannot
carry at all (C0 controls, lone surrogates, U+FFFE/U+FFFF) and terminal escape sequences are removed before.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ascend.fa.plugins.plugin_utils.safetext import strip_controls

# what XML 1.0 cannot hold (https://www.w3.org/TR/xml/#charsets), after strip_controls took C0/C1 and escapes
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_TEXT = 20000


def clean(text: Any, limit: int = MAX_TEXT) -> str:
    """``text`` as XML 1.0 can carry it: no control character or escape sequence, at most ``limit`` characters."""
    s = _NOT_XML.sub("", strip_controls("" if text is None else text))
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _first_line(text: str, limit: int = 400) -> str:
    s = " ".join(text.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


@dataclass
class Case:
    classname: str
    name: str
    time: float | None = None
    failure: str | None = None         # the test failed: why
    error: str | None = None           # it could not run (host unreachable): why
    skipped: str | None = None         # not run: why
    out: str | None = None             # system-out: what passed, or a failure that was recovered from
    kind: str = "phase"                # failure/error type attribute

    def element(self) -> ET.Element:
        tc = ET.Element("testcase", {"classname": clean(self.classname, 400), "name": clean(self.name, 400),
                                     "time": f"{max(0.0, self.time or 0.0):.3f}"})
        for tag, text in (("failure", self.failure), ("error", self.error)):
            if text is not None:
                body = clean(text)
                child = ET.SubElement(tc, tag, {"message": _first_line(body), "type": self.kind})
                child.text = body
                break
        else:
            if self.skipped is not None:
                ET.SubElement(tc, "skipped", {"message": _first_line(clean(self.skipped))})
        if self.out:
            ET.SubElement(tc, "system-out").text = clean(self.out)
        return tc


@dataclass
class Suite:
    name: str
    cases: list[Case] = field(default_factory=list)
    timestamp: str | None = None

    def counts(self) -> dict[str, int]:
        return {"tests": len(self.cases), "failures": sum(1 for c in self.cases if c.failure is not None),
                "errors": sum(1 for c in self.cases if c.failure is None and c.error is not None),
                "skipped": sum(1 for c in self.cases if c.failure is None and c.error is None and c.skipped is not None)}

    def seconds(self) -> float:
        return sum(max(0.0, c.time or 0.0) for c in self.cases)

    def element(self) -> ET.Element:
        attrs = {"name": clean(self.name, 400), **{k: str(v) for k, v in self.counts().items()},
                 "time": f"{self.seconds():.3f}"}
        if self.timestamp:
            attrs["timestamp"] = clean(self.timestamp, 40)
        el = ET.Element("testsuite", attrs)
        el.extend(c.element() for c in self.cases)
        return el


def to_xml(suites: Sequence[Suite], name: str = "ascend-fa") -> bytes:
    """The JUnit document (UTF-8, with an XML declaration)."""
    root = ET.Element("testsuites", {"name": clean(name, 400)})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        for k, v in s.counts().items():
            totals[k] += v
        root.append(s.element())
    root.attrib.update({k: str(v) for k, v in totals.items()})
    root.set("time", f"{sum(s.seconds() for s in suites):.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


# ------------------------------------------------------------------------------------------------ from a run
def phase_case(host: str, name: str, phase: Mapping[str, Any]) -> Case:
    """A host phase: failed (failure), unreachable (error), skipped (every task skipped), rescued (passes; the
    recovered failure in system-out), ok."""
    state, msg = phase.get("state"), phase.get("message")
    case = Case(f"{host}.phase", name, phase.get("seconds"))
    if state == "failed":
        case.failure = msg or "failed"
    elif state == "unreachable":
        case.error, case.kind = msg or "unreachable", "unreachable"
    elif state == "skipped":
        case.skipped = "every task of this phase was skipped on this host"
    elif state == "rescued":
        case.out = f"recovered from: {msg}" if msg else "recovered from a failure"
    return case


def card_case(host: str, card: Any, note: str | None = None) -> Case:
    """A card (report.Card): its verification failed (failure, the reason), passed (time = latency), or was not
    verified (skipped)."""
    latency = getattr(card, "latency_ms", None)
    case = Case(f"{host}.cards", f"card {getattr(card, 'card', '?')}",
                latency / 1000.0 if isinstance(latency, (int, float)) else None, kind="card")
    verify = getattr(card, "verify", "none")
    if verify == "fail":
        case.failure = getattr(card, "reason", None) or "verification failed"
    elif verify != "pass":
        case.skipped = note or "not verified"
    else:
        bits = [f"latency {latency:.3g} ms" if isinstance(latency, (int, float)) else None,
                f"health {getattr(card, 'health', None)}" if getattr(card, "health", None) else None,
                f"served by {card.served_label}" if getattr(card, "served_source", None) else None]
        case.out = ", ".join(b for b in bits if b) or None
    return case


def suites(hosts: Iterable[Any], phases: Mapping[str, Mapping[str, Mapping[str, Any]]],
           timestamp: str | None = None) -> list[Suite]:
    """One suite per host of the report (report.HostReport): its phases in run order, then its cards. A host that
    failed or was unreachable without any phase failing (e.g. before its first phase) gets a ``run`` case saying so."""
    out = []
    for h in hosts:
        name = getattr(h, "host", str(h))
        host_phases = phases.get(name) or {}
        suite = Suite(name, [phase_case(name, p, data) for p, data in host_phases.items()], timestamp)
        state, message = getattr(h, "run_state", None), getattr(h, "run_message", None)
        told = any(c.failure is not None or c.error is not None for c in suite.cases)
        if state in ("failed", "unreachable") and not told:
            case = Case(f"{name}.phase", "run")
            if state == "unreachable":
                case.error, case.kind = message or "unreachable", "unreachable"
            else:
                case.failure = message or "failed"
            suite.cases.append(case)
        elif state == "not installed" and not told:
            suite.cases.append(Case(f"{name}.phase", "run", skipped="needs the package; this run did not install it"))
        note = getattr(h, "verify_note", None)
        suite.cases += [card_case(name, c, note) for c in getattr(h, "cards", None) or []]
        out.append(suite)
    return out
