"""``ascend-fa explain`` never echoes a terminal escape sequence or control character from a pasted log
(ascend_fa/safetext.py strips them before the classification and from every printed line)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils.safetext import one_line, strip_controls

from ascend_fa import explain

ROOT = Path(__file__).resolve().parents[2]
# anything a terminal would act on: ESC, C0 but tab/newline, DEL, C1, bidi overrides
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

OSC_TITLE = "\x1b]0;pwned\x07"                    # sets the window title
OSC_LINK = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"   # a hyperlink, ST-terminated
CSI_ERASE = "\x1b[2J\x1b[H"                       # clears the screen
CSI_UP = "\x1b[1A\x1b[2K"                         # moves up and erases the line before
COLOUR = "\x1b[1;31m"
C1_CSI = "\x9b31m"                                # 8-bit CSI
HOSTILE_LOG = (f"{OSC_TITLE}{CSI_ERASE}building...\r\n"
               f"{COLOUR}undefined symbol: aclrtFoo\x1b[0m\n"
               f"progress 10%\rprogress 100%\n"
               f"{OSC_LINK} {C1_CSI}bell\x07 nul\x00 bs\x08 del\x7f \u202eevil\u202c\n"
               f"all fine{CSI_UP}\n")


@pytest.mark.parametrize(("raw", "clean"), [
    ("\x1b[31mred\x1b[0m", "red"),
    ("a\x1b]0;title\x07b", "ab"),                      # OSC ended by BEL: the title text goes too
    ("a\x1b]0;title\x1b\\b", "ab"),                    # OSC ended by ST
    ("a\x1b]0;never ended\nnext", "a\nnext"),          # an unterminated OSC stops at the end of the line
    ("a\x1bPqpayload\x1b\\b", "ab"),                   # DCS
    ("a\x1b(Bb\x1bcc", "abc"),                          # charset switch, reset
    ("a\x9b2Jb\x9d0;t\x9cc", "abc"),                    # 8-bit CSI and OSC
    ("tab\tand\nnewline", "tab\tand\nnewline"),         # kept
    ("crlf\r\nlone\rcr", "crlf\nlone\ncr"),             # a carriage return cannot overwrite a line
    ("\x00\x01\x07\x08\x0b\x0c\x7f\x85x", "x"),
    ("\u202eevil\u202c \u2066x\u2069", "evil x"),      # bidi overrides
    ("ünïcödé 中文 ✓", "ünïcödé 中文 ✓"),                  # ordinary text is untouched
])
def test_strip_controls(raw, clean):
    assert strip_controls(raw) == clean


def test_one_line_and_no_newlines():
    assert strip_controls("a\nb\tc", keep_newlines=False) == "a b c"
    assert one_line("x\x1b[2K\n  y\r\nz", limit=10) == "x y z"
    assert one_line("abcdefghijkl", limit=6) == "abcde…"


def test_explain_classifies_the_text_behind_the_escapes():
    res = explain.explain_text(HOSTILE_LOG)
    assert res["known"] and res["class"] == "torch_npu_cann_mismatch"
    assert res["matched"] == "undefined symbol: aclrtFoo"
    assert not CONTROL.search(json.dumps(res, ensure_ascii=False))
    # the lines the escapes tried to hide or overwrite are all there
    assert "progress 10%\nprogress 100%" in res["tail"] and "all fine" in res["tail"]


def test_format_result_strips_signature_text_and_source():
    res = {"known": True, "class": "x\x1b[2J", "kind": "error", "matched": "m\x1b]0;t\x07", "cause": "c\rforged",
           "fix": "f\x00", "check": "", "source": "", "others": [{"class": "o\x9b1m", "matched": "\x1b[1A", "fix": "g"}]}
    lines = explain.format_result(res, "log\x1b[31m.txt")
    assert lines[0] == "x in log.txt"
    assert not any(CONTROL.search(line) for line in lines)
    assert "  cause:   c forged" in lines


def _explain(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ascend_fa.explain", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("as_json", [False, True])
def test_explain_cli_echoes_no_control_sequence(tmp_path, as_json):
    log = tmp_path / "pasted.log"
    log.write_text(HOSTILE_LOG, encoding="utf-8")
    p = _explain(str(log), *(["--json"] if as_json else []))
    assert p.returncode == explain.EXIT_KNOWN, p.stderr
    assert "aclrtFoo" in p.stdout
    assert not CONTROL.search(p.stdout.replace("\n", "")), repr(p.stdout)
    assert "pwned" not in p.stdout          # the OSC payload is gone, not just its ESC


def test_explain_cli_unknown_log_tail_is_clean():
    p = _explain("-", stdin=f"{OSC_TITLE}something odd{CSI_ERASE}\nthen \x1b[32mthis\x1b[0m\r\n")
    assert p.returncode == explain.EXIT_UNKNOWN
    assert "  | something odd" in p.stdout and "  | then this" in p.stdout
    assert not CONTROL.search(p.stdout.replace("\n", "")), repr(p.stdout)


def test_explain_says_when_a_code_is_generic_and_what_it_lacks():
    """A generic code alone: named as generic, with the missing evidence; exit 1 (facts 9.5)."""
    p = _explain("-", stdin="\x1b[31mRuntimeError: call aclnnFlashAttentionScore failed, error code is 561103\x1b[0m\n")
    assert p.returncode == explain.EXIT_UNKNOWN, p.stderr
    assert p.stdout.startswith("generic: ") and "  missing: " in p.stdout
    assert "generic code 561103: ACLNN_ERR_INNER_NULLPTR" in p.stdout and "no line near it names the cause" in p.stdout
    assert not CONTROL.search(p.stdout.replace("\n", "")), repr(p.stdout)
    res = json.loads(_explain("-", "--json", stdin="EZ9999: Inner Error!\n").stdout)
    assert (res["class"], res["known"], res["codes"][0]["code"]) == ("generic", False, "EZ9999")


def test_explain_names_the_line_that_explained_a_generic_code():
    log = ("RuntimeError: call aclnnFlashAttentionScore failed, detail:EZ9999: Inner Error!\n"
           "EZ9999: [PID: 7] Cannot find bin of op FlashAttentionScore, integral key 0/1/|bf16/ND/.\n")
    p = _explain("-", stdin=log)
    assert p.returncode == explain.EXIT_KNOWN
    assert p.stdout.startswith("kernel_binary_missing")
    assert "generic code EZ9999:" in p.stdout and "classified by the line near it (kernel_binary_missing)" in p.stdout
