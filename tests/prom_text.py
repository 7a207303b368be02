"""A strict reader of Prometheus' text exposition format 0.0.4, written from the spec (prometheus/docs
content/docs/instrumenting/exposition_formats.md), independent of the writer it checks (plugins/module_utils/fa_metrics.py):
HELP and TYPE before a family's samples, each family one group, label names and values per the EBNF with only the
escapes ``\\\\``, ``\\"`` and ``\\n``, values as Go's strconv.ParseFloat reads them, no series twice, a final line feed.
prometheus_client's parser is not installed in the venv (no dependency added for a test)."""

from __future__ import annotations

import re

METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
# Go strconv.ParseFloat as the format uses it: decimal or exponent notation, NaN, +Inf, -Inf
VALUE = re.compile(r"\A(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)\Z")


class FormatError(AssertionError):
    pass


def _unescape(text: str, allowed: dict[str, str]) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in allowed:
                raise FormatError(f"bad escape in {text!r}")
            out.append(allowed[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _labels(body: str, line: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    i = 0
    while i < len(body):
        m = re.compile(rf"({LABEL})=\"").match(body, i)
        if not m:
            raise FormatError(f"label expected at {i}: {line!r}")
        i = m.end()
        raw = []
        while True:
            if i >= len(body):
                raise FormatError(f"unterminated label value: {line!r}")
            ch = body[i]
            if ch == "\\":
                raw.append(body[i:i + 2])
                i += 2
                continue
            if ch == '"':
                i += 1
                break
            if ch == "\n":
                raise FormatError("raw line feed in a label value")
            raw.append(ch)
            i += 1
        name = m.group(1)
        if name in labels:
            raise FormatError(f"label {name} twice: {line!r}")
        labels[name] = _unescape("".join(raw), {"\\": "\\", '"': '"', "n": "\n"})
        if i < len(body):
            if body[i] != ",":
                raise FormatError(f"',' expected at {i}: {line!r}")
            i += 1
    return labels


def parse(text: str) -> dict[str, dict]:
    """family -> {"type", "help", "samples": [(labels, value)]}; raises FormatError on anything the format forbids."""
    if not text.endswith("\n"):
        raise FormatError("the file must end with a line feed")
    families: dict[str, dict] = {}
    closed: set[str] = set()
    current = None
    series = set()
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, rest = line[2:6], line[7:]
            name, _sp, arg = rest.partition(" ")
            if not re.fullmatch(METRIC, name):
                raise FormatError(f"bad metric name {name!r}")
            fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
            if name in closed or fam["samples"]:
                raise FormatError(f"{kind} of {name} after its samples or another family")
            if current and current != name:
                closed.add(current)
            current = name
            if kind == "HELP":
                if fam["help"] is not None:
                    raise FormatError(f"two HELP lines for {name}")
                fam["help"] = _unescape(arg, {"\\": "\\", "n": "\n"})
            else:
                if fam["type"] is not None or arg not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise FormatError(f"bad or second TYPE for {name}: {arg!r}")
                fam["type"] = arg
            continue
        if line.startswith("#") or not line.strip():
            raise FormatError(f"unexpected comment or blank line: {line!r}")
        m = re.fullmatch(rf"({METRIC})(?:\{{(.*)\}})? (\S+)", line, re.S)
        if not m:
            raise FormatError(f"not a sample line: {line!r}")
        name, body, value = m.groups()
        if name not in families or families[name]["type"] is None:
            raise FormatError(f"sample of {name} without its TYPE first")
        if name in closed or (current and current != name):
            raise FormatError(f"samples of {name} are not one group")
        current = name
        if not VALUE.match(value):
            raise FormatError(f"bad value {value!r}")
        labels = _labels(body or "", line)
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise FormatError(f"duplicate series {key}")
        series.add(key)
        families[name]["samples"].append((labels, float(value)))
    return families


def values(fams: dict, name: str, key: str = "card") -> dict:
    return {lab.get(key): v for lab, v in fams[name]["samples"]}
