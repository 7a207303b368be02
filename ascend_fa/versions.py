"""Ordering of Ascend version strings: CANN ``8.0.RC1`` < ``8.0.0`` < ``8.5.0-beta.1`` < ``8.5.0``,
drivers ``24.1.rc1`` < ``24.1.0``, firmware ``7.5.0.1.129``, torch_npu ``2.1.0.post4``.

A release candidate (``RCn``) or alpha/beta tag in a position sorts before the final release of that position.

Every version is checked before it is ordered (:func:`check_version`): a version comes from a command line option, a
host's facts or a data file, and an absurd one (5000 digits, 40 components, a control character, a shell metacharacter)
is a :class:`VersionError` that names where it came from and the value, never a traceback from deep inside a comparison.
"""

from __future__ import annotations

import re
from functools import total_ordering
from typing import Any

from ascend_fa.safetext import strip_controls

MAX_LENGTH = 64            # the longest real one is a driver Innerversion, V100R001C19SPC001B124 (21)
MAX_COMPONENTS = 8         # 2.1.0.post4.dev20240101+cpu has 6; firmware 7.5.0.1.129 has 5
MAX_DIGITS = 8             # a number in a version: 8 digits for date-stamped builds (dev20240101)
_ALLOWED = re.compile(r"[A-Za-z0-9]+(?:[.\-_+][A-Za-z0-9]*)*")
_SHOWN = 40                # how much of a bad value an error message repeats
EXAMPLES = "dot-separated numbers and tags such as 8.5.0, 8.0.RC1, 24.1.rc1, 7.5.0.1.129 or 2.1.0.post4"


class VersionError(ValueError):
    """An absurd or malformed version string; the message names ``what`` (an option, a fact) and the value."""

    def __init__(self, what: str, value: Any, reason: str):
        self.what, self.value, self.reason = what, value, reason
        super().__init__(f"{what}: {show_value(value)} is not a version ({reason}); expected {EXAMPLES}")


def show_value(value: Any, limit: int = _SHOWN) -> str:
    """A value for an error message: quoted, control characters shown as escapes, long ones cut with their length."""
    text = str(value)
    shown = repr(text[:limit])
    return shown + (f"... ({len(text)} characters)" if len(text) > limit else "")


def check_version(value: Any, what: str = "version") -> str:
    """``value`` stripped when it is a plausible version string, else :class:`VersionError` naming ``what``."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise VersionError(what, value, f"a {type(value).__name__}, not a string")
    text = str(value).strip()
    if not text:
        raise VersionError(what, value, "empty")
    if len(text) > MAX_LENGTH:
        raise VersionError(what, value, f"{len(text)} characters, more than {MAX_LENGTH}")
    if strip_controls(text, keep_newlines=False) != text:
        raise VersionError(what, value, "it contains a control character")
    if not _ALLOWED.fullmatch(text):
        bad = sorted({c for c in text if not (c.isascii() and (c.isalnum() or c in ".-_+"))})
        raise VersionError(what, value, f"character{'s' if len(bad) > 1 else ''} {' '.join(map(repr, bad))} "
                                        "not allowed (letters, digits and . - _ + only)" if bad
                           else "it must start with a letter or a digit")
    chunks = [c for c in re.split(r"[.\-_+]", text) if c]
    if len(chunks) > MAX_COMPONENTS:
        raise VersionError(what, value, f"{len(chunks)} components, more than {MAX_COMPONENTS}")
    longest = max((len(n) for n in re.findall(r"\d+", text)), default=0)
    if longest > MAX_DIGITS:
        raise VersionError(what, value, f"a number of {longest} digits, more than {MAX_DIGITS}")
    return text


_TOKEN = re.compile(r"(\d+)|([A-Za-z]+)")
_PRE = {"alpha": 0, "a": 0, "beta": 1, "b": 1, "rc": 2, "t": 2}
_POST = {"post": 4, "spc": 4}


def _key(version: str) -> tuple:
    parts: list[tuple] = []
    for chunk in re.split(r"[.\-_+]", check_version(version).lower()):
        if not chunk:
            continue
        tokens = _TOKEN.findall(chunk)
        if not tokens:
            continue
        num, word = tokens[0]
        if num:
            parts.append((3, int(num)))  # a plain number: final release at this position
            rest = tokens[1:]
        else:
            rest = tokens
        while rest:
            num2, word2 = rest[0]
            rest = rest[1:]
            if word2:
                n = 0
                if rest and rest[0][0]:
                    n = int(rest[0][0])
                    rest = rest[1:]
                if word2 in _POST:
                    parts.append((_POST[word2], n))
                else:
                    # "RC1" as its own position (8.0.RC1) ranks below "0" (8.0.0)
                    parts.append((-1, _PRE.get(word2, 1), n))
            else:
                parts.append((3, int(num2)))
    return tuple(parts)


def _cmp_parts(a: tuple, b: tuple) -> int:
    """Compare position by position; a missing position counts as ``0`` (so ``8.5`` == ``8.5.0``)."""
    pad = (3, 0)
    for i in range(max(len(a), len(b))):
        pa = a[i] if i < len(a) else pad
        pb = b[i] if i < len(b) else pad
        if pa != pb:
            return -1 if pa < pb else 1
    return 0


@total_ordering
class Version:
    def __init__(self, text: str):
        self.text = str(text)
        self.parts = _key(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and _cmp_parts(self.parts, other.parts) == 0

    def __lt__(self, other: Version) -> bool:
        return _cmp_parts(self.parts, other.parts) < 0

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Version({self.text!r})"


def vcmp(a: str, b: str) -> int:
    return _cmp_parts(_key(a), _key(b))


def in_range(version: str, minimum: str | None = None, maximum: str | None = None) -> bool:
    """Inclusive range; ``maximum`` ending in ``.x`` (e.g. ``9.0.x``) means any release of that prefix."""
    if minimum and vcmp(version, minimum) < 0:
        return False
    if maximum:
        if maximum.endswith(".x") or maximum.endswith("."):
            prefix = maximum.rstrip("x").rstrip(".")
            return vcmp(version, prefix) <= 0 or same_prefix(version, prefix)
        return vcmp(version, maximum) <= 0
    return True


def same_prefix(version: str, prefix: str) -> bool:
    v = [p for p in re.split(r"[.\-]", version.lower()) if p]
    p = [q for q in re.split(r"[.\-]", prefix.lower()) if q]
    return v[: len(p)] == p


_RANGE = re.compile(r"\[([^\]]*)\]")


def parse_ranges(text: str | None) -> list[tuple[str, str | None]]:
    """``[7.0.0,7.5.99]`` / ``[23.0.0,23.0.0.],[24.1,24.1.]`` / ``[V100R001C13,V100R001C19],[V100R001C30]``."""
    out: list[tuple[str, str | None]] = []
    for body in _RANGE.findall(text or ""):
        items = [x.strip() for x in body.split(",") if x.strip()]
        if not items:
            continue
        out.append((items[0], items[1] if len(items) > 1 else None))
    return out


def in_ranges(version: str, ranges: list[tuple[str, str | None]]) -> bool:
    """True when ``version`` is in any range; ``[a]`` alone means prefix ``a``; ``b.`` means prefix ``b``."""
    for low, high in ranges:
        if high is None:
            if same_prefix(version, low) or version.startswith(low):
                return True
            continue
        if high.endswith("."):
            if same_prefix(version, high[:-1]) or vcmp(version, low) >= 0 and vcmp(version, high[:-1]) <= 0:
                return True
            continue
        if vcmp(version, low) >= 0 and vcmp(version, high) <= 0:
            return True
    return False
