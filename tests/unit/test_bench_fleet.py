"""benchmarks/fleet.py analysis: the bytes and CPU targets from fixed run data (no fleet, no ansible-playbook).

Independent data: the runs below are built from known lines (bytes = a + b * N, CPU = c + d * N), so the slopes and
ratios the summary must report are b, d and b / package, computed here by hand.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("ascendfa_bench_fleet", ROOT / "benchmarks" / "fleet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PACKAGE = 32 * 2**20 + 40_000


def _run(wall: float, cpu: float, tx: int | None = None, rx: int | None = None, meter: float | None = None) -> dict:
    run = {"rc": 0, "wall_s": wall, "hosts": 1, "changed_total": 0, "controller_cpu_s": cpu, "node_cpu_s": 2 * cpu,
           "other_cpu_s": 0.1, "startup_s": 1.0, "phases": {p: 1.0 for p in ["preflight", "fetch", "build", "install",
                                                                              "verify", "rollout", "play"]},
           "phases_cpu": {p: {"controller": 0.1, "node": 0.2} for p in ["preflight", "fetch", "build", "install",
                                                                          "verify", "rollout", "play"]},
           "tasks": []}
    if tx is not None:
        run.update(controller_tx_bytes=tx, controller_rx_bytes=rx, meter_cpu_s=meter)
    return run


def _entry(n: int, measured: bool = True) -> dict:
    tx = 5_000_000 + 2_000_000 * n          # a = 5 MB, b = 2 MB per host
    rx = 1_000_000 + 300_000 * n
    first = _run(10 + 3 * n, 4 + 0.5 * n, *((tx, rx, 0.01 * n) if measured else ()))
    rerun = _run(1 + 0.1 * n, 1.0)
    entry = {"first": first, "rerun": rerun, "builds": 2, "build_s": 7.0, "rerun_changed0_all_hosts": True}
    if measured:
        entry.update(package_bytes=PACKAGE, package_bytes_each=[PACKAGE, PACKAGE])
    return entry


def test_bytes_and_cpu_slopes_against_the_targets(bench) -> None:
    sizes = {n: {"ours": _entry(n)} for n in (8, 32, 64)}
    s = bench.summarize(sizes)["ours"]
    assert s["package_bytes"] == PACKAGE
    assert s["slope_controller_tx_bytes_per_host"] == 2_000_000
    assert s["slope_controller_rx_bytes_per_host"] == 300_000
    assert s["tx_per_host_over_package"] == round(2_000_000 / PACKAGE, 4)   # 0.0595
    assert s["targets"]["tx_per_host_over_package<=0.05"] is False
    assert s["slope_controller_cpu_s_per_host"] == 0.5
    assert s["targets"]["slope_controller_cpu<=0.8"] is True
    assert s["controller_tx_bytes"] == {8: 21_000_000, 32: 69_000_000, 64: 133_000_000}


def test_small_traffic_meets_the_bytes_target(bench) -> None:
    sizes = {n: {"ours": _entry(n)} for n in (2, 4)}
    for n, e in sizes.items():
        e["ours"]["first"]["controller_tx_bytes"] = 100_000 + 50_000 * n
        e["ours"]["first"]["controller_cpu_s"] = 3.0 + 1.2 * n
    s = bench.summarize(sizes)["ours"]
    assert s["slope_points"] == [2, 4]            # fewer than two sizes >= 8: all of them
    assert s["slope_controller_tx_bytes_per_host"] == 50_000
    assert s["targets"]["tx_per_host_over_package<=0.05"] is True
    assert s["targets"]["slope_controller_cpu<=0.8"] is False


def test_old_results_without_bytes_are_not_measured(bench) -> None:
    sizes = {n: {"ours": _entry(n, measured=False)} for n in (8, 32, 64)}
    s = bench.summarize(sizes)["ours"]
    assert s["package_bytes"] is None and s["slope_controller_tx_bytes_per_host"] is None
    assert s["tx_per_host_over_package"] is None
    assert s["targets"]["tx_per_host_over_package<=0.05"] is None
    result = {"meta": {"date": "d", "command": "c", "commit": "x", "ansible_core": "2.19", "cpus": 2,
                       "loadavg_before": [0], "loadavg_after": [0], "verify": True, "forks": 16},
              "sizes": sizes, "summary": {"ours": s}, "task_costs": []}
    md = bench.render_md(result)
    assert "package not padded, SSH bytes not measured" in md
    assert "of the package (target <= 0.05): not measured" in md
    row = next(line for line in md.splitlines() if line.startswith("| 8 | linear |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[12:16] == ["–", "–", "–", "–"]     # meter CPU, package, tx, rx
    assert "0.50 CPU s (target <= 0.8): met" in md    # the CPU target needs no meter
    assert "SSH meters taken out" not in md


def test_render_shows_bytes_columns_and_verdicts(bench) -> None:
    sizes = {n: {"ours": _entry(n)} for n in (8, 32, 64)}
    result = {"meta": {"date": "d", "command": "c", "commit": "x", "ansible_core": "2.19", "cpus": 2,
                       "loadavg_before": [0], "loadavg_after": [0], "verify": True, "forks": 16, "package_mib": 32},
              "sizes": sizes, "summary": bench.summarize(sizes), "task_costs": []}
    md = bench.render_md(result)
    assert "package padded with 32 MiB" in md
    row = next(line for line in md.splitlines() if line.startswith("| 64 | linear |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[13] == "32.04"                                  # package MiB
    assert cells[14] == f"{133_000_000 / 2**20:.1f}"             # controller -> hosts MiB (>= 100: one decimal)
    assert "1.91 MiB against a package of 32.04 MiB: 0.0595 of the package (target <= 0.05): **missed**" in md
    assert "SSH meters taken out): 0.50 CPU s (target <= 0.8): met" in md


def test_meter_totals_sum_lines_and_skip_garbage(bench, tmp_path: Path) -> None:
    log = tmp_path / "m.jsonl"
    lines = [{"host": "127.0.120.1", "port": 22, "bytes_up": 1000, "bytes_down": 70, "cpu_s": 0.05, "error": None},
             {"host": "127.0.120.2", "port": 22, "bytes_up": 24, "bytes_down": 6, "cpu_s": 0.04,
              "end": "error", "error": "ConnectionRefusedError: [Errno 111] Connection refused"}]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n[1]\n")
    got = bench.ssh_meter_totals(log)
    assert got == {"controller_tx_bytes": 1024, "controller_rx_bytes": 76, "meter_cpu_s": 0.09,
                   "ssh_connections": 2,
                   "ssh_meter_errors": ["ConnectionRefusedError: [Errno 111] Connection refused"]}
    assert bench.ssh_meter_totals(tmp_path / "absent")["ssh_connections"] == 0


def test_meter_args_survive_ansibles_split_and_the_shell(bench) -> None:
    python = "/opt/my python/bin/python3"
    args = shlex.split(bench.ssh_meter_args(python))      # ansible's ssh plugin shlex-splits *_extra_args
    assert args[0] == "-o" and len(args) == 2
    key, _, command = args[1].partition("=")
    assert key == "ProxyCommand"
    assert shlex.split(command) == [python, str(ROOT / "benchmarks" / "ssh_meter.py"), "%h", "%p"]


def test_package_mib_is_bounded(bench) -> None:
    assert bench.parse_args(["--package-mib", "0"]).package_mib == 0
    assert bench.parse_args([]).package_mib == 32
    with pytest.raises(SystemExit):
        bench.parse_args(["--package-mib", "5000"])
