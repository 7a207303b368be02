"""``ascend-fa explain FILE|-``: the class, cause and fix of the error in a log a user pastes.

The signatures are data (``plugins/module_utils/fa_known_errors_data.py``) and the classifier is
``plugins/module_utils/fa_known_errors.py``: the same code and data the modules use on the hosts, imported here
through Ansible's collection loader. ``--signatures FILE`` classifies with a user's YAML file of signatures instead
(same fields). An unknown error is reported as unknown with the last lines of the log, never hidden.

Generic codes (``EZ9999`` and the other ``E*9999``, ``EZ1001``, aclnn ``561103``/``561000``; facts 9.5) are named as
such: when a line near the code names the cause, the class comes from that line and the output says so; when none
does, the class is ``generic``, the output says what evidence the log lacks, and the exit code is 1 (not classified).

A pasted log may carry terminal escape sequences (colours, but also OSC title/hyperlink/clipboard writes, cursor moves
and erases that forge what the terminal shows): they and every other control character but newline and tab are
stripped (``strip_controls`` of ``plugin_utils/safetext.py``) before the text is classified, and from every line printed.

:func:`register` adds the ``explain`` and ``doctor`` subcommands to the ``ascend-fa`` parser (``doctor`` only when
the parser does not have it yet).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.ascend.fa.plugins.module_utils import fa_known_errors as ke
from ansible_collections.ascend.fa.plugins.plugin_utils import yamlio
from ansible_collections.ascend.fa.plugins.plugin_utils.safetext import strip_controls

EXIT_KNOWN = 0
EXIT_UNKNOWN = 1
EXIT_ERROR = 2


def load_signatures(path: str | Path | None = None) -> dict[str, Any]:
    """A user's YAML signatures file (``placeholders``, ``signatures``), or without ``path`` the shipped signatures
    (``plugins/module_utils/fa_known_errors_data.py``)."""
    if not path:
        return ke.default_data()
    data = yamlio.load(Path(path).read_text(encoding="utf-8")) or {}
    return {"placeholders": data.get("placeholders") or {}, "signatures": data.get("signatures") or []}


def explain_text(text: str, signatures: dict[str, Any] | None = None) -> dict[str, Any]:
    """The classification of ``text`` (control sequences stripped first) plus every other matching class."""
    sigs = ke.Signatures(signatures) if signatures is not None else ke.default_signatures()
    text = strip_controls(text)
    best = ke.classify(text, sigs)
    others = [r for r in ke.classify_all(text, sigs) if r["class"] in best.get("also", [])]
    return {**best, "others": others}


def format_result(res: dict[str, Any], source: str = "") -> list[str]:
    """Lines for the terminal, free of control characters (a signatures file or a file name may carry them too)."""
    return [strip_controls(line, keep_newlines=False) for line in _result_lines(res, source)]


def _code_lines(res: dict[str, Any]) -> list[str]:
    """One line per generic code seen: what it means and which line explained it (or that none did)."""
    lines = []
    for c in res.get("codes") or []:
        how = (f"classified by the line near it ({c['explained_by']})" if c.get("explained_by")
               else "no line near it names the cause")
        lines.append(f"  generic code {c['code']}: {c.get('meaning') or 'a generic code'}; {how}")
    return lines


def _generic_lines(res: dict[str, Any], where: str) -> list[str]:
    lines = [f"generic{where}: the log has a generic error code but not the lines that name its cause",
             f"  matched: {res['matched']}",
             f"  cause:   {res['cause']}",
             f"  missing: {res.get('missing') or 'the lines around the code'}",
             f"  fix:     {res['fix']}"]
    lines += _code_lines(res)
    lines += [f"also: {other['class']}: {other['matched']}" for other in res.get("others") or []]
    return lines


def _result_lines(res: dict[str, Any], source: str) -> list[str]:
    where = f" in {source}" if source and source != "-" else ""
    if res.get("kind") == ke.GENERIC:
        return _generic_lines(res, where)
    if not res["known"]:
        lines = [f"unknown error{where}: no known signature matches. The last lines of the log:"]
        lines += [f"  | {line}" for line in (res.get("tail") or "(empty)").splitlines()]
        lines.append(f"Fix: {res['fix']}")
        return lines
    lines = [f"{res['class']}{where}" + (" (harmless by itself)" if res["kind"] == "harmless" else ""),
             f"  matched: {res['matched']}",
             f"  cause:   {res['cause']}",
             f"  fix:     {res['fix']}"]
    if res.get("check"):
        lines.append(f"  caught earlier by: {res['check']}")
    if res.get("source"):
        lines.append(f"  reported in: {res['source']}")
    lines += _code_lines(res)
    for other in res.get("others") or []:
        lines.append(f"also: {other['class']}: {other['matched']}")
        lines.append(f"  fix: {other['fix']}")
    return lines


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    return Path(source).read_text(encoding="utf-8", errors="replace")


def cmd_explain(a: argparse.Namespace) -> int:
    if not a.file:
        print("ascend-fa explain: give a log file, or - for standard input", file=sys.stderr)
        return EXIT_ERROR
    try:
        text = _read(a.file)
        sigs = load_signatures(a.signatures) if a.signatures else None
    except (OSError, yaml.YAMLError) as exc:
        print(strip_controls(f"ascend-fa explain: {exc}"), file=sys.stderr)
        return EXIT_ERROR
    res = explain_text(text, sigs)
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print("\n".join(format_result(res, a.file)))
    return EXIT_KNOWN if res["known"] else EXIT_UNKNOWN


def _has_command(subparsers: Any, name: str) -> bool:
    return name in getattr(subparsers, "choices", {})


def register(subparsers: Any) -> None:
    """Add ``explain`` to an ``add_subparsers()`` object (``doctor`` is a playbook subcommand of ascend_fa/cli.py)."""
    if not _has_command(subparsers, "explain"):
        e = subparsers.add_parser(
            "explain", help="name the class, cause and fix of an error in a log (file or - for stdin)",
            description="Classify the error in a build log, a kernel's stderr or any log you paste, using the "
                        "known-error signatures (plugins/module_utils/fa_known_errors_data.py). A generic code (EZ9999, "
                        "561103, ...) is classified by the lines around it; alone it is reported as generic with the "
                        "evidence it lacks. Exit 0: known, 1: unknown or generic (the last lines or the missing "
                        "evidence are shown), 2: the input could not be read.")
        e.add_argument("file", nargs="?", help="log file, or - to read standard input")
        e.add_argument("--json", action="store_true", help="print the classification as JSON")
        e.add_argument("--signatures", help="another signatures file, YAML with the fields of "
                                            "plugins/module_utils/fa_known_errors_data.py (placeholders, signatures)")
        e.set_defaults(func=cmd_explain)


def main(argv: list[str] | None = None) -> int:
    """``python -m ascend_fa.explain [FILE|-] [--json] [--signatures FILE]``."""
    parser = argparse.ArgumentParser(prog="ascend-fa")
    sub = parser.add_subparsers(dest="cmd")
    register(sub)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("explain", "doctor"):
        args = ["explain", *args]
    a = parser.parse_args(args)
    return int(a.func(a) or 0)


if __name__ == "__main__":
    sys.exit(main())
