"""Checked comparison of Ascend version strings on the controller: CANN ``8.0.RC1`` < ``8.0.0`` < ``8.5.0-beta.1`` <
``8.5.0``, drivers ``24.1.rc1`` < ``24.1.0``, firmware ``7.5.0.1.129``, torch_npu ``2.1.0.post4``; ranges such as
``[7.0.0,7.5.99]`` and ``9.0.x``. Called by ``compat.py`` (the preflight filters and ``ascend-fa compat``).

The ordering itself lives once, in ``plugins/module_utils/fa_versions.py`` (the hosts' modules use it too); this module
adds what the controller needs around it: validation, :class:`Version`, ranges.

Every version is checked before it is ordered (:func:`check_version`): a version comes from a command line option, a
host's facts or a data file, and an absurd one (5000 digits, 40 components, a control character, a shell metacharacter)
is a :class:`VersionError` that names where it came from and the value, never a traceback from deep inside a comparison.
"""

from __future__ import annotations

import re
from functools import total_ordering
from typing import Any

from ansible_collections.ascend.fa.plugins.module_utils.fa_versions import compare_keys, key, same_prefix

from .safetext import strip_controls

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


def _key(version: str) -> tuple:
    """The sort key (``fa_versions.key``) of ``version`` once :func:`check_version` accepted it."""
    return key(check_version(version))


@total_ordering
class Version:
    def __init__(self, text: str):
        self.text = str(text)
        self.parts = _key(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and compare_keys(self.parts, other.parts) == 0

    def __lt__(self, other: Version) -> bool:
        return compare_keys(self.parts, other.parts) < 0

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Version({self.text!r})"


def vcmp(a: str, b: str) -> int:
    return compare_keys(_key(a), _key(b))


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
