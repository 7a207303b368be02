"""Text from hosts, logs and results made safe for a terminal: no escape sequence or control character gets through.

Host output (npu-smi, build logs, error messages), cached facts and pasted logs may carry ANSI/VT sequences: colours
are harmless, but OSC sequences set the window title or write hyperlinks and the clipboard, CSI sequences move the
cursor and erase lines (a forged "ok"), and a bare carriage return overwrites what was printed before it. Everything
that prints such text (``ascend-fa explain``, the fleet report's terminal summary, the live progress) passes it
through :func:`strip_controls` first. HTML is a separate matter: the report's template escapes for HTML.
"""

from __future__ import annotations

import re
from typing import Any

# Whole sequences first, so that their parameters do not survive as text:
#   OSC  ESC ] ... (BEL | ESC \ | end of line)  window title, hyperlinks, clipboard
#   DCS/SOS/PM/APC  ESC P|X|^|_ ... (ESC \ | end of line)   (unterminated: the next line of the log stays)
#   CSI  ESC [ params intermediates final      colours, cursor moves, erase (also the 8-bit CSI 0x9b)
#   other escapes: ESC intermediates final      charset switches, reset (ESC c), ...
_SEQUENCES = re.compile(
    r"(?:\x1b\]|\x9d)[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c\n]*(?:\x1b\\|\x9c)?"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|\x1b[ -/]*[0-~]?"
)
_NEWLINES = re.compile(r"\r\n?")
# C0 but tab and newline, DEL, C1, and the Unicode bidirectional controls that reorder what a terminal shows
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: Any, keep_newlines: bool = True) -> str:
    """``text`` without terminal escape sequences and control characters (tab and newline stay unless
    ``keep_newlines`` is false, then they become spaces). A carriage return (a progress bar redrawing its line)
    becomes a newline, so the text it would have hidden stays readable."""
    s = _NEWLINES.sub("\n", _SEQUENCES.sub("", str(text)))
    s = _CONTROLS.sub("", s)
    return s if keep_newlines else re.sub(r"[\t\n]", " ", s)


def one_line(text: Any, limit: int | None = None) -> str:
    """Terminal-safe, whitespace collapsed to single spaces, at most ``limit`` characters (ends with an ellipsis)."""
    s = " ".join(strip_controls(text).split())
    return s if limit is None or len(s) <= limit else s[: limit - 1] + "…"
