"""Known-error classifier: log text -> class, cause, fix and source, from signatures (regexes) kept as data.

Standard library only (shipped to hosts as ``plugins/module_utils/fa_known_errors.py``). Used on build logs
(fa_build), per-card stderr (fa_verify), the fresh-shell environment check (fa_env_check, through fa_env_lib) and by
``ascend-fa explain`` for a log a user pastes.

Where the signatures live: ``plugins/module_utils/fa_known_errors_data.py`` (``PLACEHOLDERS``, ``SIGNATURES``;
reviewed, commented, one entry per field error), the only copy. Modules run on the managed hosts, which cannot read
controller files; as module_utils the data travels with the modules that import this classifier, so every module gets
the same signatures with no extra parameter, and the controller imports the same file. ``classify(...,
signatures=...)`` still takes other signatures (tests, a user's file given to ``ascend-fa explain --signatures``).
"""

from __future__ import annotations

import copy
import re

from ansible_collections.ascend.fa.plugins.module_utils.fa_known_errors_data import PLACEHOLDERS, SIGNATURES

UNKNOWN = "unknown"
TAIL_LINES = 20
MAX_TEXT = 4 * 1024 * 1024   # classify at most the last 4 MiB of a log
DATA_FILE = "plugins/module_utils/fa_known_errors_data.py"


def default_data() -> dict:
    """The shipped signatures, ``{"placeholders": ..., "signatures": [...]}`` (a copy: the caller may change it)."""
    return copy.deepcopy({"placeholders": PLACEHOLDERS, "signatures": SIGNATURES})


class Signatures:
    """Compiled signatures: ``entries`` in match order, each with its compiled ``regexes``."""

    def __init__(self, data: dict | None = None):
        data = default_data() if data is None else data
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
            "fix": f"read the last lines below; if the error is new, add its signature to {DATA_FILE}",
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
