"""``ascend-fa explain FILE|-``: the class, cause and fix of the error in a log a user pastes.

The signatures are data (``ascend_fa/data/known_errors.yml``); the classifier is ``module_utils/fa_known_errors.py``
(shared with the modules on the hosts, which carry an embedded JSON copy of the YAML: ``--sync-embedded`` rewrites
it). An unknown error is reported as unknown with the last lines of the log, never hidden.

A pasted log may carry terminal escape sequences (colours, but also OSC title/hyperlink/clipboard writes, cursor moves
and erases that forge what the terminal shows): they and every other control character but newline and tab are
stripped (:func:`ascend_fa.safetext.strip_controls`) before the text is classified, and from every line printed.

:func:`register` adds the ``explain`` and ``doctor`` subcommands to the ``ascend-fa`` parser (``doctor`` only when
the parser does not have it yet).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ascend_fa import PROJECT_ROOT, yamlio
from ascend_fa._mu import load
from ascend_fa.safetext import strip_controls

EMBED_FILE = PROJECT_ROOT / "module_utils" / "fa_known_errors.py"
_EMBED_RE = re.compile(r'(_EMBEDDED_JSON = r""")\n.*?\n(""")', re.S)

EXIT_KNOWN = 0
EXIT_UNKNOWN = 1
EXIT_ERROR = 2


def ke():
    """The classifier module (module_utils/fa_known_errors.py)."""
    return load("fa_known_errors")


def load_signatures(path: str | Path | None = None) -> dict[str, Any]:
    """The signatures file (default: the one shipped in ascend_fa/data)."""
    text = Path(path).read_text(encoding="utf-8") if path else \
        resources.files("ascend_fa").joinpath("data/known_errors.yml").read_text(encoding="utf-8")
    data = yamlio.load(text) or {}
    return {"placeholders": data.get("placeholders") or {}, "signatures": data.get("signatures") or []}


def embedded_json(data: dict[str, Any]) -> str:
    """The JSON text embedded in module_utils/fa_known_errors.py for ``data`` (stable formatting)."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=True)


def sync_embedded(path: Path = EMBED_FILE, data: dict[str, Any] | None = None) -> bool:
    """Rewrite the embedded copy from the YAML; return whether the file changed."""
    data = load_signatures() if data is None else data
    text = path.read_text(encoding="utf-8")
    if not _EMBED_RE.search(text):
        raise RuntimeError(f"no _EMBEDDED_JSON block in {path}")
    new = _EMBED_RE.sub(lambda m: f"{m.group(1)}\n{embedded_json(data)}\n{m.group(2)}", text, count=1)
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


def explain_text(text: str, signatures: dict[str, Any] | None = None) -> dict[str, Any]:
    """The classification of ``text`` (control sequences stripped first) plus every other matching class."""
    mod = ke()
    sigs = mod.Signatures(signatures) if signatures is not None else mod.Signatures(load_signatures())
    text = strip_controls(text)
    best = mod.classify(text, sigs)
    others = [r for r in mod.classify_all(text, sigs) if r["class"] in best.get("also", [])]
    return {**best, "others": others}


def format_result(res: dict[str, Any], source: str = "") -> list[str]:
    """Lines for the terminal, free of control characters (a signatures file or a file name may carry them too)."""
    return [strip_controls(line, keep_newlines=False) for line in _result_lines(res, source)]


def _result_lines(res: dict[str, Any], source: str) -> list[str]:
    where = f" in {source}" if source and source != "-" else ""
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
    for other in res.get("others") or []:
        lines.append(f"also: {other['class']}: {other['matched']}")
        lines.append(f"  fix: {other['fix']}")
    return lines


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    return Path(source).read_text(encoding="utf-8", errors="replace")


def cmd_explain(a: argparse.Namespace) -> int:
    if a.sync_embedded:
        changed = sync_embedded()
        print(f"{EMBED_FILE}: {'updated' if changed else 'already in sync'}")
        return 0
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
    """Add ``explain`` and (unless already there) ``doctor`` to an ``add_subparsers()`` object."""
    if not _has_command(subparsers, "explain"):
        e = subparsers.add_parser(
            "explain", help="name the class, cause and fix of an error in a log (file or - for stdin)",
            description="Classify the error in a build log, a kernel's stderr or any log you paste, using the "
                        "known-error signatures (ascend_fa/data/known_errors.yml). Exit 0: known, 1: unknown "
                        "(the last lines are shown), 2: the input could not be read.")
        e.add_argument("file", nargs="?", help="log file, or - to read standard input")
        e.add_argument("--json", action="store_true", help="print the classification as JSON")
        e.add_argument("--signatures", help="another signatures file (same schema as known_errors.yml)")
        e.add_argument("--sync-embedded", action="store_true",
                       help="maintainers: rewrite the JSON copy embedded in module_utils/fa_known_errors.py")
        e.set_defaults(func=cmd_explain)
    if not _has_command(subparsers, "doctor"):
        from ascend_fa import doctor

        doctor.add_parser(subparsers)


def main(argv: list[str] | None = None) -> int:
    """``python -m ascend_fa.explain [FILE|-] [--json] [--sync-embedded]``."""
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
