"""Known-error classifier: log text -> class, cause, fix and source, from signatures (regexes) kept as data.

Standard library only (shipped to hosts as ``plugins/module_utils/fa_known_errors.py``). Used on build logs
(fa_build), per-card stderr (fa_verify), the fresh-shell environment check (fa_env_check, through fa_env_lib) and by
``ascend-fa explain`` for a log a user pastes.

Where the signatures live: ``plugins/module_utils/fa_known_errors_data.py`` (``PLACEHOLDERS``, ``SIGNATURES``;
reviewed, commented, one entry per field error), the only copy. Modules run on the managed hosts, which cannot read
controller files; as module_utils the data travels with the modules that import this classifier, so every module gets
the same signatures with no extra parameter, and the controller imports the same file. ``classify(...,
signatures=...)`` still takes other signatures (tests, a user's file given to ``ascend-fa explain --signatures``).

Generic codes (facts 9.5): ``EZ9999`` (and every module's ``E*9999``), ``EZ1001``, aclnn ``561103``
(ACLNN_ERR_INNER_NULLPTR) and ``561000`` say that a call failed, not why; CANN prints the cause on the lines around
them ("Cannot find bin of op ..." = no kernel binary, "aicore error" = the kernel faulted on the device, a tiling
check = the workload). Signatures of kind ``generic`` match such codes; a generic match is the class only when no
other class matched within ``CONTEXT_LINES`` of it, and then it is reported as not known (``known: False``) with the
evidence that is missing. Every result lists the generic codes it saw in ``codes`` (code, meaning, the class that
explained it or None).
"""

from __future__ import annotations

import copy
import re

from ansible_collections.ascend.fa.plugins.module_utils.fa_known_errors_data import (
    GENERIC_CODES,
    PLACEHOLDERS,
    SIGNATURES,
)

UNKNOWN = "unknown"
GENERIC = "generic"
CONTEXT_LINES = 30   # a generic code is explained by a class that matched this many lines before or after it
WINDOW_LINE_CHARS = 8192
_QUIET_KINDS = ("harmless", GENERIC)
TAIL_LINES = 20
MAX_TEXT = 4 * 1024 * 1024   # classify at most the last 4 MiB of a log
DATA_FILE = "plugins/module_utils/fa_known_errors_data.py"


def default_data() -> dict:
    """The shipped signatures, ``{"placeholders": ..., "signatures": [...]}`` (a copy: the caller may change it)."""
    return copy.deepcopy({"placeholders": PLACEHOLDERS, "signatures": SIGNATURES, "generic_codes": GENERIC_CODES})


class Signatures:
    """Compiled signatures: ``entries`` in match order, each with its compiled ``regexes``."""

    def __init__(self, data: dict | None = None):
        data = default_data() if data is None else data
        self.placeholders: dict = dict(data.get("placeholders") or {})
        # what each generic code means is a fact of CANN, not of a signatures file: the shipped table fills gaps
        self.generic_codes: dict = dict(GENERIC_CODES, **(data.get("generic_codes") or {}))
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


def code_meaning(code: str, generic_codes: dict | None = None) -> str:
    """What a generic code means (``GENERIC_CODES``; any ``E?9999`` is the module inner-error family)."""
    table = GENERIC_CODES if generic_codes is None else generic_codes
    code = (code or "").upper()
    if code in table:
        return str(table[code])
    if re.fullmatch(r"E[0-9A-Z]9999", code):
        return str(table.get("E*9999", ""))
    return ""


def _result(entry: dict, m, text: str, sigs: Signatures) -> dict:
    placeholders = sigs.placeholders
    groups = {k: v for k, v in m.groupdict().items() if v}
    if entry.get("kind") == GENERIC and groups.get("code"):
        groups["meaning"] = code_meaning(groups["code"], sigs.generic_codes)
    return {
        "class": entry["class"],
        "known": entry.get("kind") != GENERIC,
        "kind": entry.get("kind", "install"),
        "cause": render(entry.get("cause", ""), groups, placeholders),
        "fix": render(entry.get("fix", ""), groups, placeholders),
        "check": entry.get("check", ""),
        "source": entry.get("source", ""),
        "missing": render(entry.get("missing", ""), groups, placeholders),
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
            found.append(_result(entry, m, text, sigs))
    return found


def _line_no(text: str, pos: int) -> int:
    return text.count("\n", 0, pos)


def _window(text: str, line: int, around: int = CONTEXT_LINES) -> str:
    """The lines around ``line``, each cut to ``WINDOW_LINE_CHARS`` (a hostile log cannot make this slow)."""
    lines = text.splitlines()
    return "\n".join(ln[:WINDOW_LINE_CHARS] for ln in lines[max(0, line - around):line + around + 1])


def _explained_by(text: str, line: int, sigs: Signatures) -> str | None:
    """The first class (in signature order, neither generic nor harmless) matching near ``line``, or None."""
    near = _window(text, line)
    for entry in sigs.entries:
        if entry.get("kind") not in _QUIET_KINDS and _match_entry(entry, near) is not None:
            return entry["class"]
    return None


def generic_codes(text: str, signatures=None) -> list[dict]:
    """Every generic code in ``text`` (once each, at its latest line): ``code``, ``meaning`` and ``explained_by``
    (the class that matched within ``CONTEXT_LINES`` of it, or None: the log lacks the lines that name the cause)."""
    sigs = _as_signatures(signatures)
    text = (text or "")[-MAX_TEXT:]
    latest: dict[str, int] = {}
    for entry in sigs.entries:
        if entry.get("kind") != GENERIC:
            continue
        for rx in entry["regexes"]:
            for m in rx.finditer(text):
                code = (m.groupdict().get("code") or m.group(0)).upper()
                latest[code] = max(latest.get(code, -1), m.start())
    by_line: dict[int, str | None] = {}
    codes = []
    for code, pos in sorted(latest.items(), key=lambda kv: kv[1]):
        line = _line_no(text, pos)
        if line not in by_line:
            by_line[line] = _explained_by(text, line, sigs)
        codes.append({"code": code, "meaning": code_meaning(code, sigs.generic_codes), "explained_by": by_line[line]})
    return codes


def classify(text: str, signatures=None, tail_lines: int = TAIL_LINES) -> dict:
    """The class of the error in ``text``: the first signature (in file order) that matches, with the other
    matching classes in ``also``. Unknown text gives ``class: unknown`` and the last lines of the log, never
    nothing. A harmless probe message (kind ``harmless``) only wins when nothing else matched."""
    sigs = _as_signatures(signatures)
    found = classify_all(text, sigs)
    codes = generic_codes(text, sigs)
    unexplained = any(c["explained_by"] is None for c in codes)
    real = [f for f in found if f["kind"] not in _QUIET_KINDS]
    generic = [f for f in found if f["kind"] == GENERIC and (unexplained or not real)]
    ordered = real + generic + [f for f in found if f["kind"] == "harmless"]
    if not ordered:
        return {
            "class": UNKNOWN, "known": False, "kind": UNKNOWN,
            "cause": "no known error signature matches this log",
            "fix": f"read the last lines below; if the error is new, add its signature to {DATA_FILE}",
            "check": "", "source": "", "missing": "", "matched": "", "groups": {}, "also": [], "codes": codes,
            "tail": tail(text, tail_lines),
        }
    best = dict(ordered[0])
    # other classes matched on other lines (a generic signature matching the same line adds nothing)
    best["also"] = [f["class"] for f in ordered[1:] if f["line_start"] != best["line_start"]]
    best["codes"] = codes
    best["tail"] = tail(text, tail_lines)
    return best


def describe(result: dict) -> str:
    """One line: ``<class>: <cause>. Fix: <fix>`` (unknown and generic: the class and what to do)."""
    return f"{result['class']}: {result['cause']}. Fix: {result['fix']}"


def diagnosis(text: str, signatures=None) -> dict:
    """What modules attach to a failure: class, cause, fix, source, the matched line (no tail: they have one)."""
    res = classify(text, signatures)
    return {k: res[k] for k in ("class", "known", "kind", "cause", "fix", "source", "matched")}
