"""SIMULATOR tests: the fake npu-smi prints the real tool's formats (ascend-facts.md §3 and the captures it cites)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ascend_sim.node import npusmi
from ascend_sim.node.simnode import normalize

NODE = Path(__file__).resolve().parents[2] / "ascend_sim" / "node"

# Lines quoted from real output (ascend-facts.md §3.1, §3.2, §3.3; vllm-ascend #378/#2534, nvtop #421).
A2_HEAD = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.3                   Version: 23.0.3                                               |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+"""
A2_CHIP_ROW = "| 0                         | 0000:C1:00.0  | 0           0    / 0          4495 / 65536         |"
A2_NAME_ROW = "| 0     910B2               | OK            | 94.8        44                0    / 0             |"
A3_HEAD_ROW = "| Chip  Phy-ID              | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |"
A3_CHIP_ROWS = [
    "| 0     0                   | 0000:9D:00.0  | 0           0    / 0          3416 / 65536         |",
    "| 1     1                   | 0000:9F:00.0  | 0           0    / 0          3195 / 65536         |",
]
P310_HEAD = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 25.2.0                                   Version: 25.2.0                                       |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+"""
P310_CHIP_ROW = "| 0       0                     | 0000:01:00.0    | 0            1529 / 44280                            |"
P310_NAME_ROW = "| 2       310P3                 | OK              | NA           45                0     / 0             |"
# Verbatim `npu-smi info -m` of an 8-card 910B3 host (first two NPUs), tab-indented with padded fields.
MAP_910B3 = (
    "\tNPU ID                         Chip ID                        Chip Logic ID                  Chip Name"
    "                     \n"
    "\t0                              0                              0                              Ascend 910B3\n"
    "\t0                              1                              -                              Mcu"
    "                           \n"
    "\t1                              0                              1                              Ascend 910B3\n"
    "\t1                              1                              -                              Mcu"
    "                           \n"
)
PROCESS_HEAD = "| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |"


def host(**kw: Any) -> dict[str, Any]:
    return normalize({"npu_count": 2, **kw})


def bars(line: str) -> list[int]:
    return [i for i, ch in enumerate(line) if ch in "|+"]


def test_a2_table_matches_real_header_and_rows() -> None:
    out = npusmi.render_info(host(model="910B2", driver_version="23.0.3", hbm_used_mb={"0": 4495}))
    lines = out.splitlines()
    assert "\n".join(lines[:6]) == A2_HEAD
    assert lines[7] == A2_CHIP_ROW
    assert bars(lines[6]) == bars(A2_NAME_ROW)
    assert re.fullmatch(r"\| 0     910B2               \| OK            \| \d+\.\d +\d+ +0    / 0 +\|", lines[6])
    assert lines[8] == lines[5] and lines[11] == lines[5]
    assert all(len(line) == 98 for line in lines)


def test_a2_process_table_follows_devices() -> None:
    lines = npusmi.render_info(host(model="910B3")).splitlines()
    start = lines.index(PROCESS_HEAD)
    assert lines[start - 1] == lines[2] and lines[start - 2] == lines[5]
    assert lines[start + 2] == "| No running processes found in NPU 0" + " " * 60 + "|"
    assert lines[-1] == lines[5]


def test_process_rows_come_from_host_json() -> None:
    out = npusmi.render_info(host(processes=[{"npu": 1, "chip": 0, "pid": 2290156, "name": "VLLMEngineCore",
                                              "mem_mb": 56630}]))
    assert "| 1       0                 | 2290156       | VLLMEngineCore           | 56630                   |" in out
    assert "No running processes found in NPU 1" not in out


def test_hbm_used_five_digits_touches_the_slash() -> None:
    out = npusmi.render_info(host(hbm_used_mb={"1": 60156}))
    assert "| 0           0    / 0          60156/ 65536         |" in out


def test_a3_two_chips_per_npu() -> None:
    out = npusmi.render_info(host(model="A3-9392", hbm_used_mb={"0:0": 3416, "0:1": 3195}, health={"1": "Warning"}))
    lines = out.splitlines()
    assert lines[4] == A3_HEAD_ROW
    assert lines[7] == A3_CHIP_ROWS[0] and lines[10] == A3_CHIP_ROWS[1]
    assert lines[8] == "+" + "-" * 96 + "+"  # chips of one NPU: full-width rule
    assert re.match(r"\| 0     Ascend910           \| OK            \| -           \d+ ", lines[9])
    assert lines[11] == lines[5]
    assert out.count("| 1     Ascend910           | Warning       |") == 2
    assert all(len(line) == 98 for line in lines)


def test_310p_has_no_hbm_column() -> None:
    out = npusmi.render_info(host(model="310P3", driver_version="25.2.0", hbm_used_mb={"0:0": 1529}))
    lines = out.splitlines()
    assert "\n".join(lines[:6]) == P310_HEAD
    assert lines[7] == P310_CHIP_ROW
    assert bars(lines[6]) == bars(P310_NAME_ROW) and lines[6].startswith("| 0       310P3                 | OK ")
    assert "HBM" not in out
    assert all(len(line) == 106 for line in lines)


def test_310p_matches_the_repo_fixture_structure() -> None:
    fixture = Path(__file__).resolve().parents[1] / "data" / "npu_smi_310p3.txt"
    if not fixture.exists():
        pytest.skip("fixture not present")
    real = fixture.read_text().splitlines()
    ours = npusmi.render_info(host(model="310P3", driver_version="25.2.0")).splitlines()
    assert ours[:6] == real[:6]
    assert [bars(x) for x in ours[6:9]] == [bars(x) for x in real[6:9]]


def test_chip_map_is_byte_for_byte() -> None:
    assert npusmi.render_map(host(model="910B3")) == MAP_910B3


def test_chip_map_a3_counts_logic_ids_over_chips() -> None:
    rows = [line.split() for line in npusmi.render_map(host(model="A3-9392")).splitlines()[1:]]
    assert [r[:3] for r in rows] == [["0", "0", "0"], ["0", "1", "1"], ["0", "2", "-"],
                                     ["1", "0", "2"], ["1", "1", "3"], ["1", "2", "-"]]


def test_list_view() -> None:
    out = npusmi.render_list(host(model="A3-9392"))
    assert out.startswith("\tTotal Count                    : 2\n\n\tNPU ID                         : 0\n")
    assert out.count("Chip Count                     : 2") == 2


def _kv(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if _}


def get_chip_type(h: dict[str, Any]) -> str:
    """vllm-ascend setup.py get_chip_type(), run against our output."""
    npu_id = _kv(npusmi.run(["info", "-l"], h).split("\n\n")[1])["NPU ID"]
    board = _kv(npusmi.run(["info", "-t", "board", "-i", npu_id], h))
    if "Chip Name" not in board:
        board = _kv(npusmi.run(["info", "-t", "board", "-i", npu_id, "-c", "0"], h))
    name, ctype, npu_name = board["Chip Name"], board.get("Chip Type", ""), board.get("NPU Name", "")
    if "310" in name or ("910" in name and ctype):
        return (ctype + name).lower()
    return (name + "_" + npu_name).lower()


@pytest.mark.parametrize(("model", "soc"), [("910B3", "ascend910b3"), ("910B4", "ascend910b4"),
                                             ("A3-9392", "ascend910_9392"), ("A3-9362", "ascend910_9362"),
                                             ("310P3", "ascend310p3"), ("910", "ascend910a")])
def test_soc_version_derivation(model: str, soc: str) -> None:
    assert get_chip_type(host(model=model)) == soc


def test_board_views() -> None:
    a2 = _kv(npusmi.run(["info", "-t", "board", "-i", "1"], host(model="910B3", driver_version="25.5.1")))
    assert a2["Software Version"] == "25.5.1" and a2["PCI Device ID"] == "0xD802" and a2["PCIe Bus Info"] == "0000:C2:00.0"
    a3 = _kv(npusmi.run(["info", "-i", "0", "-c", "1", "-t", "board"], host(model="A3-9392")))
    assert a3["NPU Name"] == "9392" and a3["Chip Name"] == "Ascend910" and "Chip Type" not in a3
    first = npusmi.run(["info", "-t", "board", "-i", "0", "-c", "0"], host(model="910B4")).splitlines()
    assert first[:4] == ["\tNPU ID                         : 0", "\tChip ID                        : 0",
                         "\tChip Type                      : Ascend", "\tChip Name                      : 910B4"]


def test_memory_and_health_views() -> None:
    h = host(model="910B4", health={"1": "Alarm"})
    assert _kv(npusmi.run(["info", "-t", "memory", "-i", "0", "-c", "0"], h))["HBM Capacity(MB)"] == "32768"
    assert _kv(npusmi.run(["info", "-t", "health", "-i", "1"], h))["Health Status"] == "Alarm"


@pytest.mark.parametrize("argv", [["info", "-t", "board", "-i", "9"], ["info", "-t", "board", "-i", "0", "-c", "3"],
                                  ["info", "-t", "bogus", "-i", "0"], ["info", "-x"], ["info", "-t", "board"],
                                  ["frobnicate"], ["info", "-i"], []])
def test_bad_arguments_fail(argv: list[str]) -> None:
    with pytest.raises(npusmi.UsageError) as err:
        npusmi.run(argv, host())
    assert err.value.code != 0


def test_version() -> None:
    assert npusmi.run(["-v"], host(driver_version="25.5.0")) == "npu-smi version: 25.5.0\n"


def _script(tmp_path: Path, args: list[str], config: dict[str, Any] | None) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "host.json"
    if config is not None:
        path.write_text(json.dumps(config))
    env = {**os.environ, "ASCEND_SIM_HOST_JSON": str(path)}
    return subprocess.run([sys.executable, str(NODE / "npu-smi"), *args], env=env, capture_output=True, text=True,
                          check=False)


def test_script_entry_point(tmp_path: Path) -> None:
    ok = _script(tmp_path, ["info"], {"model": "910B3"})
    assert ok.returncode == 0 and ok.stdout.count("910B3") == 8
    bad = _script(tmp_path, ["info", "-t", "board", "-i", "42"], {"model": "910B3"})
    assert bad.returncode != 0 and "invalid" in bad.stderr
    missing = _script(tmp_path / "nowhere", ["info"], None)
    assert missing.returncode != 0


# --- host.json chip_name / product_type (docs/compatibility.md) ----------------------------------------------------
# vllm-ascend issue #3010 (Atlas 800 Inference Server Model 3000): the Name cell of a first-generation 910B.
BARE_910B_NAME_ROW = "| 0     910B                | OK            | 68.2        37                0    / 0             |"


def test_chip_name_override_prints_the_bare_910b_everywhere():
    h = host(model="910B4", chip_name="910B")
    row = next(line for line in npusmi.run(["info"], h).splitlines() if line.startswith("| 0     "))
    assert re.sub(r"\d+\.\d+\s+\d+", "", row) == re.sub(r"\d+\.\d+\s+\d+", "", BARE_910B_NAME_ROW)
    assert "Ascend 910B\n" in npusmi.run(["info", "-m"], h)
    assert "Chip Name                      : 910B\n" in npusmi.run(["info", "-t", "board", "-i", "0", "-c", "0"], h)


def test_product_type_per_chip_and_unsupported():
    # Layout: "Product Type" then "Chip ID" per chip after NPU ID / Chip Count (an npu-smi parser's test data for an
    # Atlas 300I Duo); the field is the one Huawei's OMSDK greps: npu-smi info -t product -i 0 | grep 'Product Type'.
    out = npusmi.run(["info", "-t", "product", "-i", "0"], host(model="A3-9392", product_type="Atlas 800I A3"))
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    assert lines == ["NPU ID                         : 0", "Chip Count                     : 2",
                     "Product Type                   : Atlas 800I A3", "Chip ID                        : 0",
                     "Product Type                   : Atlas 800I A3", "Chip ID                        : 1"]
    assert "Atlas 800T A2" in npusmi.run(["info", "-t", "product", "-i", "1"], host(model="910B3"))
    with pytest.raises(npusmi.UsageError):
        npusmi.run(["info", "-t", "product", "-i", "0"], host(model="910B3", product_type=""))
