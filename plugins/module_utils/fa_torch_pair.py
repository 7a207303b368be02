# Copyright: ascend-fa contributors
# Apache-2.0
"""The torch / torch_npu / CANN pairing rule, the one implementation.

``table`` is the ``torch_npu`` part of ``plugins/plugin_utils/data/compat.yml``: CANN version -> ``{extension: the
Ascend Extension for PyTorch release, torch_npu: [the torch_npu versions paired with that CANN, preferred first]}``.
The rule:

- ``torch_npu_cann_mismatch`` (error): the installed torch_npu is not one listed for the installed CANN (looked up by
  an equal version: ``8.5`` finds ``8.5.0``). The fix names the listed torch_npu that keeps the installed torch, else
  the first one listed, with its torch.
- ``torch_npu_later_post`` (warning, :func:`pair_warnings`, not an error): a later ``.postN`` build of a line listed for
  this CANN (``2.8.0.post5`` where CANN 9.0.0 lists ``2.8.0.post4``), when no other CANN lists that build; PyPI carries
  such builds (ascend-facts 9.2). The table (Ascend/pytorch ``COMPATIBILITY.en.md``) lists one build per line.
- ``torch_torch_npu_mismatch``: torch is not the version torch_npu is built for (torch_npu ``2.1.0.post4`` follows
  torch ``2.1.0``, ``2.1.0.rc1`` follows ``2.1.0`` (COMPATIBILITY.en.md's PyTorch column); a local tag such as
  ``+cpu`` is ignored).

Who calls it: :func:`mismatches` by ``plugins/plugin_utils/compat.py`` (``Checker.torch``, the controller's preflight and
``ascend-fa compat``, which words each problem for its report); :func:`torch_pair_problems` by
``plugins/module_utils/fa_env_lib.py`` (the ``torch_pair`` check of fa_env_check, ascend_facts and fa_verify).

Standard library only and Python 3.6+ (shipped to the hosts with the modules).
"""

import re

from ansible_collections.ascend.fa.plugins.module_utils.fa_versions import same_prefix, vcmp, vequal

CANN_MISMATCH = "torch_npu_cann_mismatch"
TORCH_MISMATCH = "torch_torch_npu_mismatch"
LATER_POST = "torch_npu_later_post"
_POST = re.compile(r"\.(post|rc)\d+$", re.I)
_POST_ONLY = re.compile(r"\.post\d+$", re.I)


def torch_for(torch_npu) -> str:
    """The torch version a torch_npu is built for: ``2.1.0.post4`` -> ``2.1.0``, ``2.1.0.rc1`` -> ``2.1.0``."""
    return _POST.sub("", torch_npu)


def listed_for(torch_npu, table):
    """The CANN keys of ``table`` that list ``torch_npu`` itself."""
    return [cann for cann, rec in table.items() if any(vequal(torch_npu, v) for v in (rec or {}).get("torch_npu") or [])]


def later_post_of(cann, torch_npu, table):
    """The line listed for ``cann`` of which ``torch_npu`` is a later ``.postN`` build, when no CANN lists that build
    itself; else None. ``2.8.0.post5`` with CANN 9.0.0 -> ``2.8.0.post4``."""
    if not torch_npu or not _POST_ONLY.search(torch_npu) or listed_for(torch_npu, table):
        return None
    base = torch_for(torch_npu)
    for line in (family(cann, table) or {}).get("torch_npu") or []:
        if vequal(torch_for(line), base) and vcmp(torch_npu, line) > 0:
            return line
    return None


def family(cann, table):
    """The record of ``table`` for CANN ``cann`` (its own key first, else an equal version); None when not listed."""
    if not cann:
        return None
    return table.get(cann) or next((rec for name, rec in table.items() if vequal(name, cann)), None)


def keeps_torch(torch, torch_npu) -> bool:
    """``torch_npu`` is built for the installed ``torch`` (its ``+local`` tag ignored)."""
    return same_prefix(torch.split("+")[0], torch_for(torch_npu))


def pick(candidates, torch):
    """The torch_npu of ``candidates`` that keeps the installed torch, else the first (the preferred one)."""
    return next((c for c in candidates if torch and keeps_torch(torch, c)), candidates[0])


def mismatches(cann, torch, torch_npu, table):
    """The rule: ``(code, found, needed, fix)`` per problem, ``found`` being the installed version at fault (torch_npu
    or torch) and ``needed`` the version(s) wanted instead. Nothing when torch_npu is not installed; no CANN, a CANN
    ``table`` does not list, or no torch: that part is not judged."""
    out = []
    if not torch_npu:
        return out
    fam = family(cann, table)
    listed = list((fam or {}).get("torch_npu") or [])
    if listed and not any(vequal(torch_npu, v) for v in listed) and not later_post_of(cann, torch_npu, table):
        chosen = pick(listed, torch)
        out.append((CANN_MISMATCH, torch_npu, " or ".join(listed),
                    f"pip install torch_npu=={chosen} torch=={torch_for(chosen)} "
                    f"(Ascend Extension for PyTorch {fam.get('extension')})"))
    if torch and not keeps_torch(torch, torch_npu):
        base = torch_for(torch_npu)
        out.append((TORCH_MISMATCH, torch, base, f"pip install torch=={base} (torch_npu follows the torch version)"))
    return out


def pair_warnings(cann, torch_npu, table):
    """The rule's warnings: ``(code, found, needed, fix)``; today only :data:`LATER_POST`."""
    line = later_post_of(cann, torch_npu, table)
    if not line:
        return []
    return [(LATER_POST, torch_npu, line,
             f"keep it if it works for you, or pip install torch_npu=={line} for the pair the table lists (a later .postN "
             "build of the same line is not in Ascend/pytorch COMPATIBILITY.en.md)")]


def torch_pair_problems(cann, torch, torch_npu, table):
    """:func:`mismatches` worded for a host's report: ``found`` names the pair (``torch_npu 2.1.0.post4 with CANN
    8.5.0``), ``needed`` what is wanted (``2.9.0 or 2.8.0.post2``, ``torch 2.1.0``)."""
    out = []
    for code, found, needed, fix in mismatches(cann, torch, torch_npu, table):
        if code == CANN_MISMATCH:
            out.append((code, f"torch_npu {found} with CANN {cann}", needed, fix))
        else:
            out.append((code, f"torch {found} with torch_npu {torch_npu}", "torch " + needed, fix))
    return out
