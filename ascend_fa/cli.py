"""The ``ascend-fa`` command line."""

from __future__ import annotations

import argparse
import json
import sys

from ascend_fa import __version__, compat


def _stack_from_args(a: argparse.Namespace) -> dict:
    from ascend_fa._mu import load

    det = load("ascend_detect")
    soc = (a.soc or "").strip().lower().replace(" ", "") or None
    fam = soc if soc in det.SOC_FAMILIES else det.soc_family(soc)
    ok, why = det.fa_support(fam)
    stack = {
        "driver_version": a.driver, "cann_version": a.cann,
        "soc_version": soc, "soc_family": fam, "fa_supported": ok if fam else None,
        "fa_supported_reason": why, "torch_version": a.torch, "torch_npu_version": a.torch_npu,
    }
    if a.firmware:
        stack["firmware_version"] = a.firmware
    return stack


def cmd_compat(a: argparse.Namespace) -> int:
    stack = _stack_from_args(a)
    problems = compat.check(stack, compat.load_matrix(a.matrix), tag=a.tag)
    if a.json:
        print(json.dumps({"stack": stack, "problems": [p.as_dict() for p in problems]}, indent=2))
    else:
        for p in problems:
            print(p.line())
        if not problems:
            print(f"ok: driver {a.driver}, CANN {a.cann}, {stack['soc_family']}, tag {a.tag}: no problem found")
    return 1 if compat.blocking(problems) else 0


def cmd_sim(a: argparse.Namespace) -> int:
    from ascend_sim import fleet

    if a.sim_cmd == "create":
        models = a.models.split(",") if a.models else None
        info = fleet.create(a.dir, hosts=a.hosts, models=models, fleet_octet=a.octet)
        print(f"simulated fleet ready: {a.dir}/inventory.yml ({len(info.get('hosts', []))} hosts)")
        return 0
    if a.sim_cmd == "destroy":
        fleet.destroy(a.dir)
        return 0
    if a.sim_cmd == "inject-fault":
        kw = dict(kv.split("=", 1) for kv in a.param)
        fleet.inject_fault(a.dir, a.host, a.fault, **kw)
        return 0
    if a.sim_cmd == "list":
        print(json.dumps(fleet.list(a.dir) if a.dir else fleet.list(), indent=2, default=str))
        return 0
    return 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ascend-fa", description=__doc__)
    p.add_argument("--version", action="version", version=f"ascend-fa {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("compat", help="check a driver/CANN/SoC/tag/torch_npu combination against the data")
    c.add_argument("--driver", required=True)
    c.add_argument("--cann", required=True)
    c.add_argument("--soc", required=True, help="SoC name (ascend910b3, ascend910_9392) or --soc family")
    c.add_argument("--tag", help="ops-transformer tag, e.g. v9.0.1")
    c.add_argument("--firmware")
    c.add_argument("--torch-npu", dest="torch_npu")
    c.add_argument("--torch")
    c.add_argument("--matrix", help="another compat.yml")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compat)

    s = sub.add_parser("sim", help="the simulated fleet (podman containers standing in for Atlas nodes)")
    ssub = s.add_subparsers(dest="sim_cmd", required=True)
    sc = ssub.add_parser("create")
    sc.add_argument("--hosts", type=int, default=4)
    sc.add_argument("--dir", required=True)
    sc.add_argument("--models", help="comma-separated, cycled over hosts: 910B3,A3-9392,310P3,...")
    sc.add_argument("--octet", type=int, default=2, help="hosts get 127.0.<octet>.N")
    sd = ssub.add_parser("destroy")
    sd.add_argument("--dir", required=True)
    sf = ssub.add_parser("inject-fault")
    sf.add_argument("--dir", required=True)
    sf.add_argument("host")
    sf.add_argument("fault")
    sf.add_argument("param", nargs="*", help="key=value")
    sl = ssub.add_parser("list")
    sl.add_argument("--dir")
    s.set_defaults(func=cmd_sim)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
