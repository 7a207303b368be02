"""ascend_detect parsers on the real samples recorded in shared/reference/ascend-facts.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.module_utils import ascend_detect as d

DATA = Path(__file__).resolve().parent.parent / "data"

DRIVER_INFO = """Version=24.1.rc3
ascendhal_version=7.35.23
aicpu_version=1.0
tdt_version=1.0
log_version=1.0
prof_version=2.0
dvppkernels_version=1.1
tsfw_version=1.0
Innerversion=V100R001C19SPC001B124
compatible_version=[V100R001C13],[V100R001C15],[V100R001C17],[V100R001C18],[V100R001C19]
compatible_version_fw=[7.0.0,7.5.99]
package_version=24.1.rc3
"""

FIRMWARE_INFO = """Version=7.5.0.1.129
firmware_version=1.0
package_version=24.1.rc3
compatible_version_drv=[23.0.0,23.0.0.],[24.0,24.0.],[24.1,24.1.]
"""

TOOLKIT_INFO = """package_name=Ascend-cann-toolkit
version=8.0.RC3
innerversion=V100R001C19SPC001B155
compatible_version=[V100R001C13,V100R001C19],[V100R001C30]
arch=aarch64
os=linux
path=/usr/local/Ascend/ascend-toolkit/8.0.RC3/aarch64-linux
"""

INSTALL_INFO = """UserName=HwHiAiUser
UserGroup=HwHiAiUser
Driver_Install_Type=full
Driver_Install_Path_Param=/usr/local/Ascend
Driver_Install_For_All=yes
Driver_Install_Mode=normal
Firmware_Install_Type=full
Firmware_Install_Path_Param=/usr/local/Ascend
"""


def test_driver_firmware_toolkit_files():
    drv = d.parse_kv(DRIVER_INFO)
    assert d.kv_get(drv, "Version") == "24.1.rc3"
    assert drv["compatible_version_fw"] == "[7.0.0,7.5.99]"
    assert d.kv_get(d.parse_kv(FIRMWARE_INFO), "Version") == "7.5.0.1.129"
    tk = d.parse_kv(TOOLKIT_INFO)
    assert d.kv_get(tk, "version") == "8.0.RC3"
    assert d.kv_get(tk, "innerversion") == "V100R001C19SPC001B155"
    assert d.kv_get(d.parse_kv(INSTALL_INFO), "driver_install_path_param") == "/usr/local/Ascend"


def test_version_cfg_running_wins_over_installed_list():
    cfg = d.parse_version_cfg(
        "toolkit_installed_version=[7.0.0.5.242:7.0.RC1][7.1.0.3.220:7.0.0][7.3.0.1.231:8.0.RC2]\n"
        "toolkit_running_version=[7.1.0.3.220:7.0.0]\n")
    assert cfg["toolkit_installed_version"] == ["7.0.RC1", "7.0.0", "8.0.RC2"]
    assert d.running_cann_version(cfg) == "7.0.0"
    single = d.parse_version_cfg("# version: 1.0\nruntime_running_version=[7.6.0.1.220:8.0.0]\n"
                                 "toolkit_running_version=[7.6.0.1.220:8.0.0]\nopp_kernel_running_version=[...]\n"
                                 "toolkit_upgrade_version=[...]\ntoolkit_installed_version=[7.6.0.1.220:8.0.0]\n")
    assert d.running_cann_version(single) == "8.0.0"
    # several installed, none running: refuse to guess
    assert d.running_cann_version(d.parse_version_cfg("toolkit_installed_version=[a:7.0.0][b:8.0.0]")) is None


def test_npu_smi_a2():
    t = d.parse_npu_smi_info((DATA / "npu_smi_a2_910b2.txt").read_text())
    assert t["version"] == "23.0.3"
    assert len(t["chips"]) == 2
    c = t["chips"][0]
    assert c == {"npu_id": 0, "chip_id": 0, "name": "910B2", "health": "OK", "bus_id": "0000:C1:00.0",
                 "hbm_total_mb": 65536, "hbm_used_mb": 4495, "memory_total_mb": 0, "memory_used_mb": 0,
                 "power_w": 94.8, "temp_c": 44.0}


def test_npu_smi_a3_two_chips_per_npu():
    t = d.parse_npu_smi_info((DATA / "npu_smi_a3.txt").read_text())
    assert [(c["npu_id"], c["chip_id"], c["name"]) for c in t["chips"]] == [(0, 0, "Ascend910"), (0, 1, "Ascend910")]
    assert t["chips"][1]["bus_id"] == "0000:9F:00.0"
    assert t["chips"][0]["hbm_used_mb"] == 3416
    # the second chip of an A3 NPU prints '-' for power (one sensor per NPU): no reading, not 0
    assert [(c["power_w"], c["temp_c"]) for c in t["chips"]] == [(178.5, 36.0), (None, 36.0)]


def test_npu_smi_310p_has_no_hbm():
    t = d.parse_npu_smi_info((DATA / "npu_smi_310p3.txt").read_text())
    (c,) = t["chips"]
    assert (c["npu_id"], c["name"], c["hbm_total_mb"], c["hbm_used_mb"]) == (2, "310P3", None, None)
    assert (c["memory_used_mb"], c["memory_total_mb"]) == (1529, 44280)
    assert t["version"] == "25.2.0"
    assert (c["power_w"], c["temp_c"]) == (None, 45.0)   # 310P prints NA for power


def test_npu_smi_map_and_list():
    rows = d.parse_npu_smi_map("NPU ID    Chip ID    Chip Logic ID    Chip Name\n"
                               "4         0          0                Ascend 910B3\n"
                               "4         1          -                Mcu\n")
    assert rows == [{"npu_id": 4, "chip_id": 0, "chip_logic_id": 0, "chip_name": "Ascend 910B3"}]
    assert d.soc_version_from_name(rows[0]["chip_name"]) == "ascend910b3"
    assert d.parse_npu_smi_list("        Total Count                    : 2\n\n        NPU ID                         : 0\n"
                                "        Product Name                   : IT21DMDA\n\n"
                                "        NPU ID                         : 1\n") == [0, 1]


@pytest.mark.parametrize("board,chip_board,soc,family", [
    ({"NPU ID": "0", "Chip ID": "0", "Chip Type": "Ascend", "Chip Name": "910B4"}, None, "ascend910b4", "ascend910b"),
    ({"NPU ID": "0", "Software Version": "24.1.rc3"}, {"Chip Type": "Ascend", "Chip Name": "910B1"}, "ascend910b1",
     "ascend910b"),
    ({"NPU ID": "0", "NPU Name": "9392", "Chip ID": "0", "Chip Name": "Ascend910"}, None, "ascend910_9392",
     "ascend910_93"),
    ({"NPU ID": "0"}, {"NPU Name": "9362", "Chip ID": "0", "Chip Name": "Ascend910"}, "ascend910_9362", "ascend910_93"),
    ({"Chip Type": "Ascend", "Chip Name": "310P3"}, None, "ascend310p3", "ascend310p"),
    ({"Chip Type": "Ascend", "Chip Name": "910B2C"}, None, "ascend910b2c", "ascend910b"),
    ({"Chip Type": "Ascend", "Chip Name": "910A"}, None, "ascend910a", "ascend910"),
])
def test_soc_derivation(board, chip_board, soc, family):
    got = d.soc_version_from_board(board, chip_board)
    assert got == soc
    assert d.soc_family(got) == family


def test_fa_support():
    assert d.fa_support("ascend910b")[0] and d.fa_support("ascend910_93")[0]
    assert not d.fa_support("ascend310p")[0]
    assert not d.fa_support("ascend910")[0]
    assert not d.fa_support(None)[0]


# --- first-generation 910B and the product series (names as the sources print them) ---------------------------------
@pytest.mark.parametrize("name,bare", [
    ("910B", True), ("Ascend 910B", True), ("ascend910b", True),     # vllm-ascend #3010: Name "910B" (Model 3000)
    ("910B3", False), ("Ascend 910B3", False), ("910B2C", False), ("Ascend910", False), ("910A", False), (None, False)])
def test_bare_910b(name, bare):
    assert d.is_bare_910b(name) is bare


@pytest.mark.parametrize("product,series", [
    # inference: op docs "Atlas 800I A2 推理产品/A200I A2 Box 异构组件", "Atlas 300I A2 推理卡"; nvtop #421 "Atlas 300I Duo"
    ("Atlas 800I A2", "inference"), ("A200I A2 Box", "inference"), ("Atlas 300I A2", "inference"),
    ("Atlas 300I Duo", "inference"), ("Atlas 800I A3 SuperPoD", "inference"),
    # training: ascend-facts 3.1 "Atlas 800T A2"; MindCluster "Atlas 800T A3 SuperPoD", "A200T A3 Box8", "Atlas 900 A3"
    ("Atlas 800T A2", "training"), ("Atlas 800T A3 SuperPoD", "training"), ("A200T A3 Box8", "training"),
    ("Atlas 900 A3 SuperPoD", "training"), ("Atlas 800 (Model 9000)", "training"),
    ("Atlas 800 (Model 3000)", "inference"),
    ("IT21HMDC_Bin5", None), ("NA", None), ("", None), (None, None)])
def test_product_series(product, series):
    assert d.product_series(product) == series


def test_product_type_from_output():
    out = "NPU ID : 0\nChip Count : 1\n\nProduct Type : Atlas 800I A2\nChip ID : 0\n"
    assert d.product_type_from(out) == "Atlas 800I A2"
    assert d.product_type_from("NPU ID : 0\nProduct Type : NA\n") is None
