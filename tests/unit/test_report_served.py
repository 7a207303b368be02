"""The fleet report shows, per card, which library served FlashAttention and the baseline against CANN's kernel.

Results are shaped as fa_verify writes them (plugins/modules/fa_verify.py RETURN: cards[].served_by, cards[].baseline).
"""

from __future__ import annotations

import io
import json

from ansible_collections.ascend.fa.plugins.plugin_utils import report

OURS = "/usr/local/Ascend/cann/opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so"
BUILTIN = "/usr/local/Ascend/cann/lib64/libopapi.so"


def _card(i: int, ok: bool, source: str, library: str, vendor: str | None, ratio: float | None) -> dict:
    return {"card": i, "ok": ok, "latency_ms": 1.0 + i / 10, "max_abs_err": 0.001,
            "reason": None if ok else "served by CANN's built-in FlashAttentionScore, not by ascendfa_transformer",
            "served_by": {"library": library, "vendor": vendor, "source": source, "ok": ok, "reason": "", "fix": ""},
            "baseline": None if ratio is None else {"ran": True, "ok": True, "latency_ms": 0.9, "ratio": ratio,
                                                    "max_diff": 0.00049, "served_by": BUILTIN}}


def _build(tmp_path) -> report.FleetReport:
    facts, results = tmp_path / "facts", tmp_path / "results"
    (results / "verify").mkdir(parents=True)
    facts.mkdir()
    cards = [_card(0, True, "vendor", OURS, "ascendfa_transformer", 1.11),
             _card(1, False, "builtin", BUILTIN, None, None)]
    (results / "verify" / "n1.json").write_text(json.dumps({"host": "n1", "ok": False, "summary": "1 of 2 cards failed",
                                                            "checked_at": "2026-12-05T00:00:00Z", "cards": cards}))
    run_facts = {"n1": {"ascend": {"device_count": 2, "soc_version": "Ascend910B3"}}}
    return report.build_report(facts, results, run_facts=run_facts)


def test_cards_carry_the_library_that_served_them(tmp_path):
    rep = _build(tmp_path)
    c0, c1 = rep.hosts[0].cards
    assert (c0.served_source, c0.served_vendor, c0.served_library, c0.served_ok) == (
        "vendor", "ascendfa_transformer", OURS, True)
    assert c0.served_label == "vendor ascendfa_transformer" and c1.served_label == "CANN built-in"
    assert (c0.baseline_ratio, c0.baseline_max_diff, c0.baseline_latency_ms) == (1.11, 0.00049, 0.9)
    assert c1.served_ok is False and c1.verify == "fail"
    assert report.served_text(rep.hosts[0]) == "vendor ascendfa_transformer x1, CANN built-in x1"
    assert report.baseline_text(rep.hosts[0]) == "1.11x / 0.00049"
    data = rep.as_dict()["hosts"][0]["cards"][0]
    assert data["served_library"] == OURS and data["baseline_ratio"] == 1.11


def test_terminal_and_html_show_it(tmp_path):
    from rich.console import Console

    rep = _build(tmp_path)
    buf = io.StringIO()
    report.print_terminal(rep, Console(file=buf, width=250, color_system=None))
    text = buf.getvalue()
    assert "served by" in text and "vendor ascendfa_transformer x1, CANN built-in x1" in text and "1.11x" in text
    page = report.render_html(rep)
    assert 'id="served"' in page and OURS in page and BUILTIN in page and "1.11x" in page
    assert "served by CANN built-in" in page                      # the card's tooltip
    assert page.count('data-card="n1:1"') == 2                    # the grid cell and the served-by row


def test_unknown_source_and_garbage_are_not_shown_as_data(tmp_path):
    c = report.Card(card=0)
    report.apply_served(c, {"served_by": {"source": "<b>x</b>", "ok": "yes", "library": 5},
                            "baseline": {"ratio": "NaN", "max_diff": "1e-3"}})
    assert c.served_source is None and c.served_ok is None and c.served_label == "-"
    assert c.baseline_ratio is None and c.served_library == "5"
