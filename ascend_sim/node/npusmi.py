"""SIMULATOR: a fake ``npu-smi`` that prints what the real tool prints, from /etc/ascend-sim/host.json.

Formats follow captures of the real tool (ascend-facts.md §3 and the issue dumps it cites):
- ``npu-smi info``: the 98-column table of A2 (``Chip`` header), A3 (two chips per NPU, ``Chip  Phy-ID``,
  chips of one NPU separated by a full-width dashed rule) and first-generation 910 boards, and the
  106-column 310P table (no HBM column, ``Chip    Device``), followed by the process table.
- ``npu-smi info -l``, ``-m`` (tab-indented, 31-column fields), ``-t board -i N [-c C]``, ``-t memory``,
  ``-t health``, ``-t common``, ``-t product -i N [-c C]``; ``npu-smi -v``.
Unknown options and ids print an error and exit non-zero, as the real tool does.

host.json keys read here only (docs/compatibility.md):
- ``chip_name``: the name npu-smi prints for every chip instead of the model's (``info`` Name column, ``-m`` Chip Name,
  ``-t board -c`` Chip Name). ``"910B"`` is the first-generation 910B as vllm-ascend issue #3010 shows it (Atlas 800
  Inference Server Model 3000: ``| 0     910B                | OK ...``).
- ``product_type``: the ``Product Type`` line of ``npu-smi info -t product`` (the field Huawei's OMSDK reads for the
  board model: ``npu-smi info -t product -i 0 | grep 'Product Type'``, SystemUtils.get_model_by_npu_smi); default per
  family below; ``""`` makes ``-t product`` unsupported, as on products where the real tool does not offer it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

if __package__:
    from .simnode import MODELS, Chip, HostConfigError, Model, chips, load_host, slow_seconds
else:  # run as /opt/ascend-sim/node/npu-smi inside a node
    from simnode import MODELS, Chip, HostConfigError, Model, chips, load_host, slow_seconds

USAGE = """Usage: npu-smi info <watch|proc|-h|-m|-l|-t type> [Options...]
       npu-smi -v | --version
Commands:
       info -l                          Show all NPU devices.
       info -m                          Show the chip mapping of all NPUs.
       info -t board -i id [-c chip_id] Show board information.
       info -t memory -i id [-c chip_id]
       info -t health -i id [-c chip_id]
       info -t common -i id [-c chip_id]
       info -t product -i id [-c chip_id]
"""

# Product Type per family when host.json has no product_type: training products (Atlas 800T A2 is the A2 training
# server of ascend-facts 3.1; Atlas 800T A3 per hiascend MindCluster docs; Atlas 300I Duo is the 310P card of
# ascend-facts 3.3, printed as in the per-chip `-t product` sample of an npu-smi parser's test data).
PRODUCT_TYPES = {"A2": "Atlas 800T A2", "A3": "Atlas 800T A3", "310P": "Atlas 300I Duo", "910": "Atlas 800 (Model 9000)"}


def _chip_name(host: dict[str, Any], default: str) -> str:
    return str(host.get("chip_name") or default)


def product_type(host: dict[str, Any]) -> str:
    value = host.get("product_type")
    return PRODUCT_TYPES[MODELS[host["model"]].family] if value is None else str(value)

# ----------------------------------------------------------------------------------------------- main table


class _Table:
    """Column geometry of one table style."""

    def __init__(self, widths: tuple[int, int, int], head_split: int) -> None:
        self.widths = widths
        self.total = sum(widths) + 4
        self.head_split = head_split

    def rule(self, char: str) -> str:
        return "+" + "+".join(char * w for w in self.widths) + "+"

    def full_rule(self) -> str:
        return "+" + "-" * (self.total - 2) + "+"

    def row(self, *cells: str) -> str:
        return "|" + "|".join(" " + c.ljust(w - 1) for c, w in zip(cells, self.widths, strict=True)) + "|"

    def banner(self, driver: str) -> str:
        left = f"npu-smi {driver}".ljust(self.head_split)
        return "| " + left + f"Version: {driver}".ljust(self.total - 3 - self.head_split) + "|"


CLASSIC = _Table((27, 15, 52), 33)
WIDE_310P = _Table((31, 17, 54), 49)


def _frac(used: Any, total: Any, left: int, right: int) -> str:
    return f"{str(used):<{left}}/ {str(total):<{right}}"


def _head_rows(model: Model) -> list[str]:
    if model.family == "310P":
        t = WIDE_310P
        return [
            t.row(f"{'NPU':<8}Name", "Health", f"{'Power(W)':<13}{'Temp(C)':<18}Hugepages-Usage(page)"),
            t.row(f"{'Chip':<8}Device", "Bus-Id", f"{'AICore(%)':<13}Memory-Usage(MB)"),
        ]
    t = CLASSIC
    second = f"{'Chip':<6}Phy-ID" if model.family == "A3" else "Chip"
    return [
        t.row(f"{'NPU':<6}Name", "Health", f"{'Power(W)':<12}{'Temp(C)':<18}Hugepages-Usage(page)"),
        t.row(second, "Bus-Id", f"{'AICore(%)':<12}{'Memory-Usage(MB)':<18}HBM-Usage(MB)"),
    ]


def _chip_rows(model: Model, chip: Chip, name: str) -> list[str]:
    if model.family == "310P":
        t = WIDE_310P
        return [
            t.row(f"{chip.npu_id:<8}{name}", chip.health, f"{chip.power:<13}{chip.temp:<18}{_frac(0, 0, 6, 14)}"),
            t.row(f"{chip.chip_id:<8}{chip.phy_id}", chip.bus_id,
                  f"{'0':<13}{_frac(chip.mem_used_mb, chip.mem_total_mb, 5, 32)}"),
        ]
    t = CLASSIC
    first = t.row(f"{chip.npu_id:<6}{name}", chip.health, f"{chip.power:<12}{chip.temp:<18}{_frac(0, 0, 5, 14)}")
    label = f"{chip.chip_id:<6}{chip.phy_id}" if model.family == "A3" else str(chip.chip_id)
    mem = f"{'0':<12}{_frac(0, 0, 5, 11)}{_frac(chip.mem_used_mb, chip.mem_total_mb, 5, 14)}"
    return [first, t.row(label, chip.bus_id, mem)]


def _process_section(model: Model, host: dict[str, Any]) -> list[str]:
    t = WIDE_310P if model.family == "310P" else CLASSIC
    name_w = t.widths[2] // 2 - 1
    lines = [
        t.rule("-"),
        t.row(f"{'NPU':<8}Chip", "Process id", f"{'Process name':<{name_w}}| Process memory(MB)"),
        t.rule("="),
    ]
    procs = host.get("processes") or []
    for npu_id in range(host["npu_count"]):
        mine = [p for p in procs if int(p.get("npu", 0)) == npu_id]
        if not mine:
            lines.append("| " + f"No running processes found in NPU {npu_id}".ljust(t.total - 3) + "|")
        for proc in mine:
            lines.append(t.row(f"{npu_id:<8}{proc.get('chip', 0)}", str(proc.get("pid", 0)),
                               f"{str(proc.get('name', 'python')):<{name_w}}| {proc.get('mem_mb', 0)}"))
        lines.append(t.rule("="))
    return lines


def render_info(host: dict[str, Any]) -> str:
    """``npu-smi info``: banner, one block per NPU, then the process table."""
    model = MODELS[host["model"]]
    t = WIDE_310P if model.family == "310P" else CLASSIC
    lines = [t.full_rule(), t.banner(host["driver_version"]), t.rule("-"), *_head_rows(model), t.rule("=")]
    all_chips = chips(host)
    for npu_id in range(host["npu_count"]):
        mine = [c for c in all_chips if c.npu_id == npu_id]
        for index, chip in enumerate(mine):
            if index:
                lines.append(t.full_rule() if model.family == "A3" else t.rule("-"))
            lines.extend(_chip_rows(model, chip, _chip_name(host, chip.name)))
        lines.append(t.rule("="))
    lines.extend(_process_section(model, host))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- key/value views


def _kv(pairs: Sequence[tuple[str, Any]]) -> str:
    return "".join(f"\t{key:<31}: {value}\n" for key, value in pairs)


def render_list(host: dict[str, Any]) -> str:
    """``npu-smi info -l``."""
    model = MODELS[host["model"]]
    out = _kv([("Total Count", host["npu_count"])])
    for npu_id in range(host["npu_count"]):
        out += "\n" + _kv([("NPU ID", npu_id), ("Chip Count", model.chips_per_npu)])
    return out


def render_map(host: dict[str, Any]) -> str:
    """``npu-smi info -m``: compute chips plus one Mcu per NPU; logic ids count compute chips."""
    model = MODELS[host["model"]]
    lines = [f"\t{'NPU ID':<31}{'Chip ID':<31}{'Chip Logic ID':<31}{'Chip Name':<30}"]
    logic = 0
    name = f"Ascend {host['chip_name']}" if host.get("chip_name") else model.map_name
    for npu_id in range(host["npu_count"]):
        for chip_id in range(model.chips_per_npu):
            lines.append(f"\t{npu_id:<31}{chip_id:<31}{logic:<31}{name}")
            logic += 1
        lines.append(f"\t{npu_id:<31}{model.chips_per_npu:<31}{'-':<31}{'Mcu':<30}")
    return "\n".join(lines) + "\n"


def _serial(host: dict[str, Any], npu_id: int) -> str:
    return f"1025C9{(npu_id * 7919 + len(host['model']) * 104729) % 1000000:06d}"


def render_board(host: dict[str, Any], npu_id: int) -> str:
    """``npu-smi info -t board -i N``: the board, no Chip Name (A2/A3/310P)."""
    model = MODELS[host["model"]]
    chip0 = next(c for c in chips(host) if c.npu_id == npu_id)
    return _kv([
        ("NPU ID", npu_id), ("Product Name", model.product_name), ("Model", "NA"), ("Manufacturer", "Huawei"),
        ("Serial Number", _serial(host, npu_id)), ("Software Version", host["driver_version"]),
        ("Firmware Version", host["firmware_version"]), ("Compatibility", "OK"), ("Board ID", model.board_id),
        ("PCB ID", "A"), ("BOM ID", 1), ("PCIe Bus Info", chip0.bus_id), ("Slot ID", npu_id), ("Class ID", "NA"),
        ("PCI Vendor ID", "0x19E5"), ("PCI Device ID", model.pci_device_id),
        ("Subsystem Vendor ID", model.subsystem_vendor), ("Subsystem Device ID", model.subsystem_device),
        ("Chip Count", model.chips_per_npu),
    ])


def render_board_chip(host: dict[str, Any], chip: Chip) -> str:
    """``npu-smi info -t board -i N -c C``: A2/310P print Chip Type + Chip Name, A3 prints NPU Name + Chip Name."""
    model = MODELS[host["model"]]
    pairs: list[tuple[str, Any]] = [("NPU ID", chip.npu_id)]
    if model.npu_name:
        pairs += [("NPU Name", model.npu_name), ("Chip ID", chip.chip_id),
                  ("Chip Name", _chip_name(host, model.chip_name))]
    else:
        pairs += [("Chip ID", chip.chip_id), ("Chip Type", model.chip_type),
                  ("Chip Name", _chip_name(host, model.chip_name))]
    pairs += [
        ("Chip Version", "V1"), ("Board ID", model.board_id), ("PCB ID", "NA"), ("BOM ID", 1),
        ("VDie ID", f"{0x14036E64 + chip.phy_id:08X} 00E04F1D 1223F2B2 84528485 104301E2"),
        ("NDie ID", "00000000 00000000 00000000 00000000 00000000"), ("Chip Position ID", chip.chip_id),
        ("PCIe Bus Info", chip.bus_id), ("Firmware Version", host["firmware_version"]),
    ]
    return _kv(pairs)


def render_memory(host: dict[str, Any], chip: Chip) -> str:
    model = MODELS[host["model"]]
    if model.has_hbm:
        pairs: list[tuple[str, Any]] = [
            ("DDR Capacity(MB)", 0), ("DDR Clock Speed(MHz)", 0), ("HBM Capacity(MB)", chip.mem_total_mb),
            ("HBM Clock Speed(MHz)", 1600), ("HBM Temperature(C)", chip.temp + 2), ("HBM Manufacturer ID", "0x57"),
        ]
    else:
        pairs = [("DDR Capacity(MB)", chip.mem_total_mb), ("DDR Clock Speed(MHz)", 3200)]
    return _kv([("NPU ID", chip.npu_id), ("Chip Count", model.chips_per_npu), *pairs, ("Chip ID", chip.chip_id)])


def render_product(host: dict[str, Any], npu_id: int, chip: Chip | None) -> str:
    """``npu-smi info -t product -i N [-c C]``: per chip, ``Product Type`` then ``Chip ID`` (the layout of -t memory)."""
    model = MODELS[host["model"]]
    ptype = product_type(host)
    if not ptype:
        raise UsageError("This device does not support querying product.", 1)
    mine = [chip] if chip else [c for c in chips(host) if c.npu_id == npu_id]
    out = _kv([("NPU ID", npu_id), ("Chip Count", model.chips_per_npu)])
    for one in mine:
        out += "\n" + _kv([("Product Type", ptype), ("Chip ID", one.chip_id)])
    return out


def render_health(chip: Chip) -> str:
    return _kv([("Health Status", chip.health), ("Error Code", "NA" if chip.health == "OK" else "80E01801"),
                ("Error Information", "NA" if chip.health == "OK" else "node type=SoC, sensor type=Memory")])


def render_common(host: dict[str, Any], chip: Chip) -> str:
    model = MODELS[host["model"]]
    usage = chip.mem_used_mb * 100 // max(chip.mem_total_mb, 1)
    rates = [("Memory Usage Rate(%)", 0), ("HBM Usage Rate(%)", usage)] if model.has_hbm else [
        ("Memory Usage Rate(%)", usage)]
    head = _kv([("NPU ID", chip.npu_id), ("Chip Count", model.chips_per_npu)])
    return head + "\n" + _kv([
        *rates, ("Aicore Usage Rate(%)", 0), ("Aicore Freq(MHZ)", 1800), ("Aicore curFreq(MHZ)", 800),
        ("Temperature(C)", chip.temp), ("NPU Real-time Power(W)", chip.power), ("Chip ID", chip.chip_id),
    ])


# ------------------------------------------------------------------------------------------------ arguments


class UsageError(Exception):
    """Bad command line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _options(args: Sequence[str]) -> dict[str, str]:
    """Parse ``-t T -i N -c C -l -m`` in any order."""
    opts: dict[str, str] = {}
    i = 0
    while i < len(args):
        flag = args[i]
        if flag in ("-l", "-m", "-h"):
            opts[flag] = ""
            i += 1
        elif flag in ("-t", "-i", "-c"):
            if i + 1 >= len(args):
                raise UsageError(f"Error: the parameter {flag} requires a value.\n{USAGE}")
            opts[flag] = args[i + 1]
            i += 2
        else:
            raise UsageError(f"Error: invalid parameter {flag}.\n{USAGE}")
    return opts


def _int_opt(opts: dict[str, str], flag: str, what: str) -> int:
    value = opts[flag]
    if not value.isdigit():
        raise UsageError(f"Error: the {what} ({value}) is invalid.", 2)
    return int(value)


def _select_chip(host: dict[str, Any], opts: dict[str, str]) -> tuple[int, Chip | None]:
    if "-i" not in opts:
        raise UsageError(f"Error: the parameter -i is required for -t {opts['-t']}.\n{USAGE}")
    npu_id = _int_opt(opts, "-i", "card id")
    if npu_id >= host["npu_count"]:
        raise UsageError(f"Error: the card id ({npu_id}) is invalid.", 2)
    if "-c" not in opts:
        return npu_id, None
    chip_id = _int_opt(opts, "-c", "chip id")
    found = [c for c in chips(host) if c.npu_id == npu_id and c.chip_id == chip_id]
    if not found:
        raise UsageError(f"Error: the chip id ({chip_id}) is invalid.", 2)
    return npu_id, found[0]


def _typed(host: dict[str, Any], opts: dict[str, str]) -> str:
    kind = opts["-t"]
    if kind not in ("board", "memory", "health", "common", "product"):
        raise UsageError(f"Error: the type ({kind}) is not supported.\n{USAGE}")
    npu_id, chip = _select_chip(host, opts)
    if kind == "board":
        return render_board_chip(host, chip) if chip else render_board(host, npu_id)
    if kind == "product":
        return render_product(host, npu_id, chip)
    chip = chip or next(c for c in chips(host) if c.npu_id == npu_id)
    if kind == "memory":
        return render_memory(host, chip)
    if kind == "health":
        return render_health(chip)
    return render_common(host, chip)


def run(argv: Sequence[str], host: dict[str, Any]) -> str:
    """Output for ``npu-smi ARGV`` (without the program name); raises :class:`UsageError`."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        raise UsageError(USAGE, 0 if argv else 1)
    if argv[0] in ("-v", "--version", "version"):
        return f"npu-smi version: {host['driver_version']}\n"
    if argv[0] != "info":
        raise UsageError(f"Error: invalid command {argv[0]}.\n{USAGE}")
    opts = _options(argv[1:])
    if "-h" in opts:
        raise UsageError(USAGE, 0)
    if "-l" in opts:
        return render_list(host)
    if "-m" in opts:
        return render_map(host)
    if "-t" in opts:
        return _typed(host, opts)
    if opts:
        raise UsageError(f"Error: missing -t.\n{USAGE}")
    return render_info(host)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        host = load_host()
    except (OSError, ValueError, HostConfigError) as exc:
        print(f"dcmi model initialized failed, because the device is used. ret is -8020 ({exc})", file=sys.stderr)
        return 8020 % 256
    # fault slow-host (what npu-smi): a busy or degraded driver makes the real tool take seconds per call
    delay = slow_seconds(host, "npu-smi")
    if delay:
        time.sleep(delay)
    try:
        sys.stdout.write(run(args, host))
    except UsageError as exc:
        (sys.stdout if exc.code == 0 else sys.stderr).write(str(exc).rstrip("\n") + "\n")
        return exc.code
    return 0
