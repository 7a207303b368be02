"""Re-record tiny_pipeline.jsonl: run tiny_pipeline.yml through ascend_fa.runner and keep the events, trimmed.

    .venv/bin/python tests/data/runner_events/record.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from ascend_fa.runner import run_playbook  # noqa: E402

DATA_KEYS = ("host", "role", "task", "play", "task_action", "ignore_errors", "start", "end", "duration")
STATS_KEYS = ("changed", "dark", "failures", "ignored", "ok", "processed", "rescued", "skipped")
RES_KEYS = ("msg", "changed", "failed", "rc", "unreachable", "skipped", "item")


def _res(res: dict) -> dict:
    out = {k: res[k] for k in RES_KEYS if k in res}
    if res.get("stderr"):
        out["stderr"] = str(res["stderr"])[-200:]
    if isinstance(res.get("results"), list):
        out["results"] = [_res(r) for r in res["results"] if isinstance(r, dict)]
    return out


def trim(event: dict) -> dict:
    data = event.get("event_data") or {}
    kept = {k: data[k] for k in DATA_KEYS if k in data}
    if isinstance(data.get("res"), dict):
        kept["res"] = _res(data["res"])
    if event.get("event") == "playbook_on_stats":
        kept.update({k: data.get(k) or {} for k in STATS_KEYS})
    return {"event": event["event"], "counter": event["counter"], "created": event["created"], "event_data": kept}


def main() -> None:
    events: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        result = run_playbook(HERE / "tiny_pipeline.yml", HERE / "inventory.yml", private_data_dir=tmp,
                              envvars={"ANSIBLE_CACHE_PLUGIN_CONNECTION": f"{tmp}/facts"},
                              on_event=events.append)
    events.sort(key=lambda e: e["counter"])
    with open(HERE / "tiny_pipeline.jsonl", "w") as fh:
        for e in events:
            fh.write(json.dumps(trim(e), sort_keys=True) + "\n")
    print(f"{len(events)} events; rc={result.rc} failed={result.failed_hosts} unreachable={result.unreachable_hosts}")


if __name__ == "__main__":
    main()
