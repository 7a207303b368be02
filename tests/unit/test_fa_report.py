"""plugins/action/fa_report.py: the controller-side report writer (no module, no remote work)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[2]
from ansible_collections.ascend.fa.plugins.action import fa_report as fa_report


def test_render_content_dict_as_sorted_json_with_newline():
    text = fa_report.render_content({"b": 1, "a": [1, 2]})
    assert text.endswith("}\n")
    assert json.loads(text) == {"a": [1, 2], "b": 1}
    assert text.index('"a"') < text.index('"b"')


def test_render_content_text():
    assert fa_report.render_content("x") == "x\n"
    assert fa_report.render_content("x\n") == "x\n"
    assert fa_report.render_content("") == ""


def test_parse_mode():
    assert fa_report.parse_mode("0640") == 0o640
    assert fa_report.parse_mode(0o600) == 0o600
    with pytest.raises(ValueError, match="octal"):
        fa_report.parse_mode("rw-r--r--")


def test_write_atomic_creates_folders_and_reports_rewrites(tmp_path):
    path = tmp_path / "a" / "b" / "host1.json"
    assert fa_report.write_atomic(str(path), "one\n", 0o640) is True
    assert path.read_text() == "one\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert fa_report.write_atomic(str(path), "one\n", 0o644) is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert fa_report.write_atomic(str(path), "two\n", 0o644) is True
    assert path.read_text() == "two\n"
    assert [p.name for p in path.parent.iterdir()] == ["host1.json"]  # no temp file left


def test_write_atomic_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old\n")
    with mock.patch.object(os, "replace", side_effect=OSError("disk full")), pytest.raises(OSError):
        fa_report.write_atomic(str(path), "new\n", 0o644)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# ------------------------------------------------------------------ plugins/action/fa_gate.py (preflight verdict)
from ansible_collections.ascend.fa.plugins.action import fa_gate as fa_gate


def test_gate_passes_with_warnings_and_summary():
    r = fa_gate.verdict(["h1: [warning] w (found a; needed b). Fix: c"], [], "h1: already converged")
    assert r == {"changed": False, "blocking": [], "problem_warnings": ["h1: [warning] w (found a; needed b). Fix: c"],
                 "warnings": ["h1: [warning] w (found a; needed b). Fix: c"], "msg": "h1: already converged"}


def test_gate_fails_with_one_line_per_blocking_problem():
    lines = ["h1: [error] CANN too old (found 8.0.RC1; needed >= 8.5.0). Fix: install CANN 8.5",
             "h1: [error] NPU 0 not healthy (found Alarm; needed OK). Fix: drain the card"]
    r = fa_gate.verdict([], lines, "ignored")
    assert r["failed"] is True and r["msg"].splitlines() == lines and "warnings" not in r


def test_gate_quiet_when_nothing_to_say():
    r = fa_gate.verdict([], [], "")
    assert "failed" not in r and "warnings" not in r and r["msg"] == ""
