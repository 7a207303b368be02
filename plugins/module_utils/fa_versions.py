# Copyright: ascend-fa contributors
# Apache-2.0
"""The ordering of Ascend version strings, the one implementation: CANN ``8.0.RC1`` < ``8.0.0`` < ``8.5.0-beta.1`` <
``8.5.0``, drivers ``24.1.rc1`` < ``24.1.0``, firmware ``7.5.0.1.129``, torch_npu ``2.1.0`` < ``2.1.0.post4``, and
``8.5`` == ``8.5.0`` (a missing position counts as ``0``).

A release candidate (``RCn``, ``Tn``) or an alpha/beta tag in a position sorts before the final release of that
position; ``postN`` and ``SPCn`` sort after it.

Who calls it: ``plugins/plugin_utils/versions.py`` (the controller: it checks a version is plausible first, then
orders it with :func:`key` and :func:`compare_keys`), ``plugins/module_utils/fa_torch_pair.py`` and
``plugins/module_utils/fa_env_lib.py`` (on the hosts). Nothing here validates: a host-side caller passes what a host
reported, the controller validates before it calls.

Standard library only and Python 3.6+ (shipped to the hosts with the modules): no ``from __future__ import
annotations`` (3.7+), no subscripted annotations.
"""

import re

FINAL = 3                                              # a plain number: the final release at this position
PRE = {"alpha": 0, "a": 0, "beta": 1, "b": 1, "rc": 2, "t": 2}   # an unknown word ranks as beta
POST = {"post": 4, "spc": 4}
_PAD = (FINAL, 0)
_SPLIT = re.compile(r"[.\-_+]")
_TOKEN = re.compile(r"(\d+)|([A-Za-z]+)")


def _chunk_parts(chunk):
    """The positions of one dot-separated chunk: ``0rc1`` -> (FINAL, 0), (-1, PRE['rc'], 1)."""
    tokens = _TOKEN.findall(chunk)
    parts = []
    i = 0
    while i < len(tokens):
        num, word = tokens[i]
        i += 1
        if num:
            parts.append((FINAL, int(num)))
            continue
        n = 0
        if i < len(tokens) and tokens[i][0]:
            n = int(tokens[i][0])
            i += 1
        if word in POST:
            parts.append((POST[word], n))
        else:
            # "RC1" as its own position (8.0.RC1) ranks below "0" (8.0.0)
            parts.append((-1, PRE.get(word, 1), n))
    return parts


def key(version) -> tuple:
    """The sort key of ``version`` (case-insensitive, surrounding blanks ignored); compare keys with
    :func:`compare_keys`, not ``<``: keys of different lengths are padded with ``0`` positions there."""
    parts = []
    for chunk in _SPLIT.split(str(version).strip().lower()):
        parts.extend(_chunk_parts(chunk))
    return tuple(parts)


def compare_keys(a, b) -> int:
    """-1, 0 or 1: position by position, a missing position counting as ``0`` (so ``8.5`` == ``8.5.0``)."""
    for i in range(max(len(a), len(b))):
        pa = a[i] if i < len(a) else _PAD
        pb = b[i] if i < len(b) else _PAD
        if pa != pb:
            return -1 if pa < pb else 1
    return 0


def vcmp(a, b) -> int:
    """-1, 0 or 1 as version ``a`` is older than, the same as or newer than ``b`` (no validation)."""
    return compare_keys(key(a), key(b))


def vequal(a, b) -> bool:
    """``a`` and ``b`` are the same version (``2.9`` == ``2.9.0``, ``8.0.RC1`` == ``8.0.rc1``)."""
    return vcmp(a, b) == 0


def same_prefix(version, prefix) -> bool:
    """``version`` starts with the ``.``/``-`` separated positions of ``prefix`` (``2.1.0.post4`` has prefix ``2.1``),
    compared as text, case-insensitively."""
    v = [p for p in re.split(r"[.\-]", str(version).lower()) if p]
    p = [q for q in re.split(r"[.\-]", str(prefix).lower()) if q]
    return v[: len(p)] == p
