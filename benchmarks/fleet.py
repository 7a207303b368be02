#!/usr/bin/env python3
"""Fleet rollout scaling on simulated Ascend hosts: ascend-fa against the naive per-host build, in one run.

A benchmark, not a test. For each fleet size N it starts a fresh simulated fleet (podman containers, sshd on
127.0.<octet>.1..N, models alternating 910B3 / A3-9392: two build keys, one NPU each), runs ``deploy_fa.yml`` with a
fresh artifact cache and times it, reruns it on the converged fleet (every host must report changed=0), then
destroys the fleet and deploys a new one the naive way (``benchmarks/naive_deploy.yml``: every host clones and
compiles itself, the seed blog's procedure). Per run it records the wall time, the PLAY RECAP, the wall time of each
pipeline phase (callback ``benchmarks/callback_plugins/phase_timer.py``), the CPU time of the controller
(ansible-playbook and everything it started, the SSH ControlPersist masters included) apart from the CPU time of the
simulated hosts (each container's cpuacct cgroup), and the machine's total busy CPU (other work on a shared
machine shows up there). Builds are counted from the artifact cache (``<cache>/*/artifact.json``). Every SSH
connection goes through ``benchmarks/ssh_meter.py`` (its ProxyCommand), which counts the SSH wire bytes the controller
sends and receives; the simulated builds pad the package with ``--package-mib`` MiB of incompressible data (32).

    .venv/bin/python benchmarks/fleet.py                                # sizes 1,8,32,64, naive included
    .venv/bin/python benchmarks/fleet.py --sizes 1,8 --skip-naive       # quick look
    .venv/bin/python benchmarks/fleet.py --mitogen                      # add a mitogen_linear pass (pip install mitogen)

Writes ``<out>/fleet.json``, ``<out>/fleet.md`` (also printed) and ``<out>/fleet.svg``; playbook logs and the
per-run phase JSON stay in ``--work`` (a temporary folder unless given).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODELS = ["910B3", "A3-9392"]
SOC_FAMILY = {"910B3": "ascend910b", "A3-9392": "ascend910_93"}
STRATEGIES = {"ours": "linear", "install": "linear, verify skipped (same work as naive)", "mitogen": "mitogen_linear"}
PHASES = ["preflight", "fetch", "build", "install", "verify", "rollout"]
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)"
                   r"\s+rescued=(\d+)\s+ignored=(\d+)", re.M)
PR_SET_CHILD_SUBREAPER = 36
SSH_METER = BENCH / "ssh_meter.py"
SSH_METER_ENV = "ASCEND_FA_BENCH_SSH_METER"   # ssh_meter.py appends one JSON line per SSH connection to this file
MIB = 1 << 20


# ------------------------------------------------------------------------------------------ measuring one run


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _wrap(spec_json: str) -> int:
    """Child mode: run ansible-playbook as a child subreaper, so that the SSH ControlPersist masters it leaves
    behind become our children; close them and reap everything, so the parent's RUSAGE_CHILDREN covers the
    controller's whole cost. Prints ``{"rc", "wall_s"}``."""
    spec = json.loads(spec_json)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    with open(spec["log"], "w") as log:
        start = time.monotonic()
        try:
            proc = subprocess.run(spec["cmd"], cwd=spec["cwd"], env=spec["env"], stdout=log, stderr=subprocess.STDOUT,
                                  timeout=spec["timeout"])
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = 124
        wall = time.monotonic() - start
    cp_dir = Path(spec["cp_dir"])
    for sock in sorted(cp_dir.iterdir()) if cp_dir.is_dir() else []:
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "ascend-fa-bench"],
                       capture_output=True, timeout=15, check=False)
    deadline = time.monotonic() + 20
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > deadline:   # a master that did not exit: ours, ended by its id
                for child in _children_of(os.getpid()):
                    os.kill(child, signal.SIGTERM)
                deadline = time.monotonic() + 5
            time.sleep(0.05)
    print(json.dumps({"rc": rc, "wall_s": round(wall, 3)}))
    return 0


def _cgroup_cpu_files(names: list[str]) -> dict[str, Path]:
    """Each container's CPU accounting file (cgroup v1 cpuacct.usage in ns, or v2 cpu.stat usage_usec)."""
    out = subprocess.run(["podman", "inspect", "--format", "{{.Name}}\t{{.State.CgroupPath}}", *names],
                         capture_output=True, text=True, check=True).stdout
    files = {}
    for line in out.splitlines():
        name, _, path = line.partition("\t")
        for candidate in (Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/") / "cpuacct.usage",
                          Path("/sys/fs/cgroup") / path.lstrip("/") / "cpu.stat"):
            if candidate.exists():
                files[name.lstrip("/")] = candidate
                break
    return files


def _node_cpu(files: dict[str, Path]) -> float:
    total = 0.0
    for path in files.values():
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.name == "cpuacct.usage":
            total += int(text) / 1e9
        else:
            usage = re.search(r"^usage_usec (\d+)", text, re.M)
            total += int(usage.group(1)) / 1e6 if usage else 0.0
    return total


def _machine_busy() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _recap(text: str) -> dict[str, dict[str, int]]:
    keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
    return {m.group(1): dict(zip(keys, map(int, m.groups()[1:]), strict=True)) for m in RECAP.finditer(text)}


def ssh_meter_totals(path: Path) -> dict[str, Any]:
    """Sum of ssh_meter.py's lines for one run: SSH wire bytes each way, the meters' own CPU, connections."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return {
        "controller_tx_bytes": sum(int(r.get("bytes_up") or 0) for r in rows),
        "controller_rx_bytes": sum(int(r.get("bytes_down") or 0) for r in rows),
        "meter_cpu_s": round(sum(float(r.get("cpu_s") or 0.0) for r in rows), 3),
        "ssh_connections": len(rows),
        "ssh_meter_errors": sorted({str(r["error"]) for r in rows if r.get("error")}),
    }


def ssh_meter_args(python: str = sys.executable) -> str:
    """``-o ProxyCommand=...`` running ssh_meter.py, for ANSIBLE_SSH/SFTP/SCP_EXTRA_ARGS (Ansible shlex-splits them
    and adds them after the inventory's ``ansible_ssh_common_args``; ssh runs the command through the shell)."""
    command = f"{shlex.quote(python)} {shlex.quote(str(SSH_METER))} %h %p"
    return "-o " + shlex.quote(f"ProxyCommand={command}")


def run_measured(cmd: list[str], env: dict[str, str], workdir: Path, label: str, cpu_files: dict[str, Path],
                 timeout: int) -> dict[str, Any]:
    """One ansible-playbook run: wall time, recap, phases, controller CPU, node CPU, machine busy CPU."""
    log = workdir / f"{label}.log"
    phases_file = workdir / f"{label}.phases.json"
    cp_dir = Path(env["ANSIBLE_SSH_CONTROL_PATH_DIR"])
    shutil.rmtree(cp_dir, ignore_errors=True)
    cp_dir.mkdir(parents=True)
    cpu_list = workdir / "cpu_files.json"
    cpu_list.write_text(json.dumps([str(p) for p in cpu_files.values()]))
    meter_log = workdir / f"{label}.ssh_meter.jsonl"
    meter_log.unlink(missing_ok=True)
    env = {**env, "PHASE_TIMER_OUT": str(phases_file), "PHASE_TIMER_CPU_FILES": str(cpu_list),
           SSH_METER_ENV: str(meter_log)}
    spec = {"cmd": cmd, "cwd": str(ROOT), "env": env, "log": str(log),
            "cp_dir": str(cp_dir), "timeout": timeout}
    node0, machine0 = _node_cpu(cpu_files), _machine_busy()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_wrap", json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    node1, machine1 = _node_cpu(cpu_files), _machine_busy()
    if proc.returncode != 0:
        raise RuntimeError(f"measuring wrapper failed: {proc.stderr[-2000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    text = log.read_text(errors="replace")
    recap = _recap(text)
    phases = json.loads(phases_file.read_text()) if phases_file.exists() else {}
    meter = ssh_meter_totals(meter_log)
    # the wrapper reaped the meters too (they are the SSH masters' ProxyCommands): their CPU is reported apart
    controller = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime) - meter["meter_cpu_s"]
    node, machine = node1 - node0, machine1 - machine0
    tasks = phases.get("tasks", [])
    return {
        "rc": res["rc"], "wall_s": res["wall_s"], "log": str(log),
        "hosts": len(recap), "failed_hosts": sorted(h for h, r in recap.items() if r["failed"] or r["unreachable"]),
        "changed_total": sum(r["changed"] for r in recap.values()),
        "hosts_changed": sum(1 for r in recap.values() if r["changed"]),
        "controller_cpu_s": round(controller, 2), "node_cpu_s": round(node, 2), "machine_busy_s": round(machine, 2),
        "other_cpu_s": round(max(machine - controller - meter["meter_cpu_s"] - node, 0.0), 2),
        **meter,
        "startup_s": phases.get("startup_seconds"),
        "phases": {p: round(phases.get("phases", {}).get(p, 0.0), 2) for p in [*PHASES, "play"]},
        "phases_cpu": {p: phases.get("phases_cpu", {}).get(p, {"controller": 0.0, "node": 0.0})
                       for p in [*PHASES, "play"]},
        "tasks": [[t["role"], t["name"], t["seconds"], t.get("controller_cpu"), t.get("node_cpu")] for t in tasks],
        "error_tail": "" if res["rc"] == 0 else text[-3000:],
    }


# ---------------------------------------------------------------------------------------------- one fleet


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work or tempfile.mkdtemp(prefix="fab-")).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.next_octet = args.octet
        self.playbook_bin = str(Path(sys.executable).parent / "ansible-playbook")

    def _octet(self) -> int:
        octet = self.next_octet
        if octet > 254:
            raise SystemExit("ran out of loopback octets (choose a lower --octet)")
        self.next_octet += 1
        return octet

    def _env(self, run_dir: Path, strategy: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update({
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ASCEND_FA_CACHE": str(run_dir / "cache"),
            "ASCEND_FA_RESULTS": str(run_dir / "results"),
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(run_dir / "facts"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(run_dir / "cp"),
            "ANSIBLE_CALLBACK_PLUGINS": str(BENCH / "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "phase_timer",
            "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
        })
        # every SSH connection the run opens goes through the byte meter: with ControlMaster=auto (ansible.cfg) that is
        # the ControlPersist master of each host; sftp/scp get it too, in case one of them opens a host's first
        # connection (Ansible gives ssh_extra_args to ssh only)
        meter = ssh_meter_args()
        env.update({"ANSIBLE_SSH_EXTRA_ARGS": meter, "ANSIBLE_SFTP_EXTRA_ARGS": meter, "ANSIBLE_SCP_EXTRA_ARGS": meter})
        if self.args.forks:
            env["ANSIBLE_FORKS"] = str(self.args.forks)
        if strategy == "mitogen_linear":
            spec = importlib.util.find_spec("ansible_mitogen")
            if spec is None or not spec.submodule_search_locations:
                raise RuntimeError("mitogen is not installed in this Python (pip install mitogen)")
            env["ANSIBLE_STRATEGY_PLUGINS"] = str(Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy")
            env["ANSIBLE_STRATEGY"] = "mitogen_linear"
        return env

    def run_mode(self, n: int, mode: str) -> dict[str, Any]:
        """Fresh fleet of n hosts, deployed by ``mode`` (ours | mitogen | naive); destroyed afterwards."""
        from ascend_sim import fleet as simfleet

        octet = self._octet()
        run_dir = self.work / f"{mode}-{n}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        fleet_dir = run_dir / "fleet"
        print(f"[{time.strftime('%H:%M:%S')}] N={n} {mode}: creating fleet on 127.0.{octet}.1-{n}", flush=True)
        info = simfleet.create(fleet_dir, hosts=n, fleet_octet=octet, models=MODELS, npus=1,
                               package_pad_mib=self.args.package_mib)
        entry: dict[str, Any] = {"octet": octet, "create_s": info["create_seconds"],
                                 "package_pad_mib": self.args.package_mib}
        try:
            names = [h["name"] for h in info["hosts"]]
            cpu_files = _cgroup_cpu_files(names)
            entry["node_cpu_measured_hosts"] = len(cpu_files)
            inventory = str(fleet_dir / "inventory.yml")
            timeout = self.args.timeout
            if mode == "naive":
                socs = run_dir / "socs.json"
                socs.write_text(json.dumps({"naive_soc_by_host": {h["name"]: SOC_FAMILY[h["model"]]
                                                                  for h in info["hosts"]}}))
                cmd = [self.playbook_bin, "-i", inventory, str(BENCH / "naive_deploy.yml"), "-e", f"@{socs}"]
                entry["first"] = run_measured(cmd, self._env(run_dir, None), run_dir, "first", cpu_files, timeout)
                entry["builds"] = n if entry["first"]["rc"] == 0 else None
                build_task = [t for t in entry["first"]["tasks"] if t[1].startswith("Build the package")]
                entry["build_task_s"] = round(sum(t[2] for t in build_task), 2)
            else:
                env = self._env(run_dir, "mitogen_linear" if mode == "mitogen" else None)
                cmd = [self.playbook_bin, "-i", inventory, str(ROOT / "deploy_fa.yml")]
                if not self.args.verify or mode == "install":
                    cmd += ["-e", "fa_rollout_verify=false"]
                entry["first"] = run_measured(cmd, env, run_dir, "first", cpu_files, timeout)
                arts = [json.loads(p.read_text()) for p in sorted((run_dir / "cache").glob("*/artifact.json"))]
                entry["builds"] = len(arts)
                entry["build_seconds"] = [float(a.get("build_seconds") or 0) for a in arts]
                entry["build_s"] = round(sum(entry["build_seconds"]), 2)
                entry["package_bytes_each"] = [int(a["size"]) for a in arts if str(a.get("size", "")).isdigit()]
                entry["package_bytes"] = (round(sum(entry["package_bytes_each"]) / len(entry["package_bytes_each"]))
                                          if entry["package_bytes_each"] else None)
                if entry["package_bytes"] and entry["package_bytes"] < self.args.package_mib * MIB:
                    print(f"WARNING: N={n} {mode}: the package has {entry['package_bytes']} bytes, less than the "
                          f"{self.args.package_mib} MiB asked: this checkout's simulated build does not pad "
                          "(ascend_sim/upstream/tree/scripts/util/gen_kernel_config.py)", file=sys.stderr)
                installed = ("installed", "upgraded", "reinstalled")
                entry["installed_hosts"] = sum(1 for p in (run_dir / "results" / "upgrade").glob("*.json")
                                               if json.loads(p.read_text()).get("result") in installed)
                entry["verified_hosts"] = sum(1 for p in (run_dir / "results" / "verify").glob("*.json")
                                              if json.loads(p.read_text()).get("ok"))
                entry["rerun"] = run_measured(cmd, env, run_dir, "rerun", cpu_files, timeout)
                entry["builds_after_rerun"] = len(list((run_dir / "cache").glob("*/artifact.json")))
                entry["rerun_changed0_all_hosts"] = (entry["rerun"]["rc"] == 0 and entry["rerun"]["hosts"] == n
                                                     and entry["rerun"]["changed_total"] == 0)
                if self.args.full_rerun:
                    # the same rerun without the fast path: every host through the full check (ascend_facts etc.)
                    entry["rerun_full"] = run_measured(cmd + ["-e", "fa_preflight_fast_path=false"], env, run_dir,
                                                       "rerun_full", cpu_files, timeout)
        finally:
            simfleet.destroy(fleet_dir)
        first = entry["first"]
        print(f"[{time.strftime('%H:%M:%S')}] N={n} {mode}: first {first['wall_s']} s rc={first['rc']}"
              + (f", rerun {entry['rerun']['wall_s']} s changed={entry['rerun']['changed_total']}" if "rerun" in entry
                 else "")
              + (f", full-check rerun {entry['rerun_full']['wall_s']} s" if "rerun_full" in entry else "")
              + f", builds {entry['builds']}"
              + (f", package {_fmt(_mib(entry.get('package_bytes')))} MiB" if entry.get("package_bytes") else "")
              + f", controller → hosts {_fmt(_mib(first.get('controller_tx_bytes')))} MiB"
              + (f", installed {entry['installed_hosts']}/{n}, verified {entry['verified_hosts']}/{n}"
                 if "installed_hosts" in entry else ""), flush=True)
        if first["rc"] != 0:
            print(first["error_tail"], file=sys.stderr)
        return entry


# ------------------------------------------------------------------------------------------------ analysis


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x, over the sizes >= 8 (over all of them when fewer than two are >= 8)."""
    if len([p for p in points if p[0] >= 8]) >= 2:
        points = [p for p in points if p[0] >= 8]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else None


def _per_core(value: float | None, cores: int) -> float | None:
    return None if value is None else value / cores


def _r(value: float | None, nd: int = 2) -> float | None:
    return None if value is None else round(value, nd)


def _bytes_summary(runs: dict[int, dict[str, Any]], big: int) -> dict[str, Any]:
    """Bytes of the first rollouts: the package, the controller's SSH bytes at each N and their slopes per added host
    (least squares, the same sizes as the other slopes); None where a run has no measurement (an older fleet.json)."""
    tx = {n: r["first"].get("controller_tx_bytes") for n, r in runs.items()}
    rx = {n: r["first"].get("controller_rx_bytes") for n, r in runs.items()}
    meter = {n: r["first"].get("meter_cpu_s") for n, r in runs.items()}
    sizes = [r.get("package_bytes") for _, r in sorted(runs.items()) if r.get("package_bytes")]
    package = runs[big].get("package_bytes") or (sizes[-1] if sizes else None)

    def slope(values: dict[int, Any]) -> float | None:
        return None if any(v is None for v in values.values()) else _slope(list(values.items()))

    tx_slope, rx_slope = slope(tx), slope(rx)
    return {
        "package_bytes": package,
        "controller_tx_bytes": tx, "controller_rx_bytes": rx, "meter_cpu_s": meter,
        "slope_controller_tx_bytes_per_host": None if tx_slope is None else round(tx_slope),
        "slope_controller_rx_bytes_per_host": None if rx_slope is None else round(rx_slope),
        "tx_per_host_over_package": None if tx_slope is None or not package else round(tx_slope / package, 4),
    }


def summarize(sizes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Ratios and slopes against the targets, for each strategy that ran."""
    out: dict[str, Any] = {}
    ns = sorted(sizes)
    cores = os.cpu_count() or 1
    for mode in STRATEGIES:
        runs = {n: sizes[n][mode] for n in ns if mode in sizes[n] and sizes[n][mode]["first"]["rc"] == 0}
        if not runs:
            continue
        big, small = max(runs), min(runs)
        ex = {n: r["first"]["wall_s"] - r.get("build_s", 0.0) for n, r in runs.items()}
        slope_pts = [(n, ex[n]) for n in runs]
        s: dict[str, Any] = {
            "largest_n": big, "smallest_n": small,
            "rollout_s": {n: r["first"]["wall_s"] for n, r in runs.items()},
            "rollout_minus_build_s": {n: _r(v) for n, v in ex.items()},
            "build_s": {n: r.get("build_s") for n, r in runs.items()},
            "rerun_s": {n: r["rerun"]["wall_s"] for n, r in runs.items()},
            "rerun_full_s": {n: r["rerun_full"]["wall_s"] for n, r in runs.items() if "rerun_full" in r},
            "slope_rollout_minus_build_s_per_host": _r(_slope(slope_pts), 3),
            "slope_points": sorted(n for n in runs if n >= 8) if len([n for n in runs if n >= 8]) >= 2 else sorted(runs),
            "slope_rollout_minus_build_verify_s_per_host": _r(_slope(
                [(n, ex[n] - runs[n]["first"]["phases"]["verify"]) for n in runs]), 3),
            "slope_rollout_s_per_host": _r(_slope([(n, runs[n]["first"]["wall_s"]) for n in runs]), 3),
            "slope_rerun_s_per_host": _r(_slope([(n, runs[n]["rerun"]["wall_s"]) for n in runs]), 3),
            "slope_controller_cpu_s_per_host": _r(_slope([(n, runs[n]["first"]["controller_cpu_s"])
                                                         for n in runs]), 3),
            # the controller's own cost per added host in wall seconds when its CPU had the machine's cores to itself
            "slope_controller_wall_equiv_s_per_host": _r(_per_core(_slope([(n, runs[n]["first"]["controller_cpu_s"])
                                                                           for n in runs]), cores), 3),
            "slope_node_cpu_s_per_host": _r(_slope([(n, runs[n]["first"]["node_cpu_s"]) for n in runs]), 3),
            "rerun_changed0_all_hosts": all(r["rerun_changed0_all_hosts"] for r in runs.values()),
            **_bytes_summary(runs, big),
        }
        if big in runs:
            s["rerun_over_rollout"] = _r(runs[big]["rerun"]["wall_s"] / runs[big]["first"]["wall_s"], 3)
            if "rerun_full" in runs[big]:
                s["rerun_full_over_rollout"] = _r(runs[big]["rerun_full"]["wall_s"] / runs[big]["first"]["wall_s"], 3)
        if big in runs and small in runs:
            s["rollout_big_over_small"] = _r(runs[big]["first"]["wall_s"] / runs[small]["first"]["wall_s"], 2)
            s["build_s_big_small"] = [runs[big].get("build_s"), runs[small].get("build_s")]
        naive = sizes[big].get("naive")
        if big in runs and naive and naive["first"]["rc"] == 0:
            s["naive_over_ours"] = _r(naive["first"]["wall_s"] / runs[big]["first"]["wall_s"], 2)
            cpu = [e["first"]["controller_cpu_s"] + e["first"]["node_cpu_s"] for e in (naive, runs[big])]
            s["naive_over_ours_cpu"] = _r(cpu[0] / cpu[1], 2) if cpu[1] else None
        s["targets"] = {
            "naive_over_ours>=10": None if "naive_over_ours" not in s else s["naive_over_ours"] >= 10,
            "slope<=0.3": None if s["slope_rollout_minus_build_s_per_host"] is None
            else s["slope_rollout_minus_build_s_per_host"] <= 0.3,
            "rerun_over_rollout<=0.1": None if "rerun_over_rollout" not in s else s["rerun_over_rollout"] <= 0.1,
            "rerun_changed0": s["rerun_changed0_all_hosts"],
            "tx_per_host_over_package<=0.05": None if s["tx_per_host_over_package"] is None
            else s["tx_per_host_over_package"] <= 0.05,
            "slope_controller_cpu<=0.8": None if s["slope_controller_cpu_s_per_host"] is None
            else s["slope_controller_cpu_s_per_host"] <= 0.8,
        }
        out[mode] = s
    return out


def task_costs(sizes: dict[int, dict[str, Any]], mode: str = "ours", run: str = "first") -> list[dict[str, Any]]:
    """Per task: wall seconds at each size and the slopes per added host (sizes >= 8) of its wall time, of the
    controller's CPU and of the hosts' CPU during it: where the time of an added host goes."""
    table: dict[tuple[str, str], dict[int, list[float]]] = {}
    for n, entry in sizes.items():
        if mode not in entry:
            continue
        for role, name, sec, ctl, node in (t + [None] * (5 - len(t)) for t in entry[mode][run]["tasks"]):
            cell = table.setdefault((role, name), {}).setdefault(n, [0.0, 0.0, 0.0])
            cell[0] += sec
            cell[1] += ctl or 0.0
            cell[2] += node or 0.0
    rows = []
    for (role, name), by_n in table.items():
        rows.append({"role": role, "task": name, "seconds": {n: round(v[0], 2) for n, v in sorted(by_n.items())},
                     "per_host_s": _r(_slope([(n, v[0]) for n, v in by_n.items()]), 4),
                     "controller_cpu_per_host_s": _r(_slope([(n, v[1]) for n, v in by_n.items()]), 4),
                     "node_cpu_per_host_s": _r(_slope([(n, v[2]) for n, v in by_n.items()]), 4)})
    rows.sort(key=lambda r: -(r["per_host_s"] or 0))
    return rows


# ------------------------------------------------------------------------------------------------- output


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def render_md(result: dict[str, Any]) -> str:
    sizes = {int(n): e for n, e in result["sizes"].items()}
    ns = sorted(sizes)
    meta = result["meta"]
    lines = [f"# Fleet rollout benchmark ({meta['date']})", "",
             f"`{meta['command']}`  ", f"commit {meta['commit']}, ansible-core {meta['ansible_core']}, "
             f"mitogen {meta.get('mitogen') or 'not used'}, {meta['cpus']} CPUs shared by controller and simulated "
             f"hosts, load average before {meta['loadavg_before']}, after {meta['loadavg_after']}; verify "
             f"{'on' if meta['verify'] else 'off'}, forks {meta['forks']}, "
             + (f"package padded with {meta['package_mib']} MiB of incompressible kernel-binary stand-in."
                if meta.get("package_mib") is not None else "package not padded, SSH bytes not measured (a run from "
                "before `--package-mib` and the SSH meter)."), "",
             *[f"- {note}" for note in meta.get("notes", [])], *([""] if meta.get("notes") else []),
             "## Rollout", "",
             "| N | strategy | rollout s | builds | build s | rollout − build s | rerun s | rerun changed | "
             "full-check rerun s | controller CPU s | node CPU s | other CPU s | meter CPU s | package MiB | "
             "controller → hosts MiB | hosts → controller MiB | naive s | naive / ours |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in ns:
        naive = sizes[n].get("naive")
        naive_s = naive["first"]["wall_s"] if naive and naive["first"]["rc"] == 0 else None
        for mode in STRATEGIES:
            e = sizes[n].get(mode)
            if not e:
                continue
            f, r = e["first"], e["rerun"]
            ratio = naive_s / f["wall_s"] if naive_s and f["rc"] == 0 else None
            lines.append("| " + " | ".join(_fmt(x) for x in [
                n, STRATEGIES[mode],
                f["wall_s"] if f["rc"] == 0 else f"FAILED rc={f['rc']}", e["builds"], e.get("build_s"),
                f["wall_s"] - e.get("build_s", 0.0), r["wall_s"], f"{r['changed_total']} ({r['hosts']} hosts)",
                (e.get("rerun_full") or {}).get("wall_s"), f["controller_cpu_s"], f["node_cpu_s"], f["other_cpu_s"],
                f.get("meter_cpu_s"), _mib(e.get("package_bytes")), _mib(f.get("controller_tx_bytes")),
                _mib(f.get("controller_rx_bytes")), naive_s if mode != "mitogen" else None, ratio]) + " |")
        if naive:
            f = naive["first"]
            lines.append("| " + " | ".join(_fmt(x) for x in [
                n, "naive (seed, every host builds)", f["wall_s"] if f["rc"] == 0 else f"FAILED rc={f['rc']}",
                naive["builds"], naive.get("build_task_s"), None, None, None, None, f["controller_cpu_s"], f["node_cpu_s"],
                f["other_cpu_s"], f.get("meter_cpu_s"), None, _mib(f.get("controller_tx_bytes")),
                _mib(f.get("controller_rx_bytes")), None, None]) + " |")
    lines += ["", "Build s: the packages' compile time from `artifact.json` (`build_seconds`, builds run one after "
              "the other); for naive, the wall time of its build task (all hosts). Node CPU: the simulated hosts' "
              "cgroups; controller CPU: ansible-playbook and all it started (SSH masters included), less the SSH byte "
              "meters (meter CPU s: `benchmarks/ssh_meter.py`, the ProxyCommand of every SSH connection); other: the "
              "rest of the machine's busy time during the run (work outside this benchmark). Package: the mean size "
              "of the run's packages (`artifact.json` `size`). Controller → hosts / hosts → controller: SSH wire bytes "
              "(encrypted, with SSH framing) of all the run's SSH connections, counted by the meters; MiB = 2^20 "
              "bytes.", "",
              "## Time per phase (first rollout / rerun, wall s)", "",
              "| N | strategy | startup | " + " | ".join(PHASES) + " | play-level |",
              "|---|---|---|" + "---|" * (len(PHASES) + 1)]
    for n in ns:
        for mode in STRATEGIES:
            e = sizes[n].get(mode)
            if not e:
                continue
            f, r = e["first"], e["rerun"]
            cells = [f"{_fmt(f['startup_s'])} / {_fmt(r['startup_s'])}"]
            cells += [f"{_fmt(f['phases'][p])} / {_fmt(r['phases'][p])}" for p in [*PHASES, "play"]]
            lines.append(f"| {n} | {STRATEGIES[mode]} | " + " | ".join(cells) + " |")
    lines += ["", "## CPU per phase, first rollout (controller / simulated hosts, CPU s)", "",
              "| N | strategy | " + " | ".join(PHASES) + " |", "|---|---|" + "---|" * len(PHASES)]
    for n in ns:
        for mode in STRATEGIES:
            e = sizes[n].get(mode)
            if not e or "phases_cpu" not in e["first"]:
                continue
            pc = e["first"]["phases_cpu"]
            lines.append(f"| {n} | {STRATEGIES[mode]} | "
                         + " | ".join(f"{_fmt(pc[p]['controller'])} / {_fmt(pc[p]['node'])}" for p in PHASES) + " |")
    lines += ["", "Phases: roles fa_preflight (+fa_common), fa_fetch, fa_build, fa_install, "
              "fa_verify, and fa_rollout's own tasks (rollout records, drain hooks); play-level: tasks outside the roles "
              "(includes of run-once steps such as the package seed, the run's summary).", "", "## Against the targets", ""]
    for mode, s in result["summary"].items():
        name = STRATEGIES[mode]
        big = s["largest_n"]
        lines += [f"**{name}** (largest N = {big})", "",
                  f"- naive({big}) / ours({big}) = {_fmt(s.get('naive_over_ours'))} (target >= 10): "
                  f"{_verdict(s['targets']['naive_over_ours>=10'])}; in CPU seconds (controller + hosts, less "
                  f"sensitive to other load) {_fmt(s.get('naive_over_ours_cpu'))}",
                  f"- controller cost per added host, slope of (rollout − build) over N = "
                  f"{s['slope_points']}: {_fmt(s['slope_rollout_minus_build_s_per_host'])} s (target <= 0.3): "
                  f"{_verdict(s['targets']['slope<=0.3'])}; build and verify phase excluded "
                  f"{_fmt(s['slope_rollout_minus_build_verify_s_per_host'])} s; the rollout itself "
                  f"{_fmt(s['slope_rollout_s_per_host'])} s; the rerun {_fmt(s['slope_rerun_s_per_host'])} s; CPU "
                  f"seconds per added host: controller {_fmt(s['slope_controller_cpu_s_per_host'])} (= "
                  f"{_fmt(s.get('slope_controller_wall_equiv_s_per_host'))} s of wall time on this machine's "
                  f"{os.cpu_count()} cores), simulated hosts "
                  f"{_fmt(s['slope_node_cpu_s_per_host'])}",
                  f"- rerun({big}) / rollout({big}) = {_fmt(s.get('rerun_over_rollout'))} (target <= 0.1): "
                  f"{_verdict(s['targets']['rerun_over_rollout<=0.1'])}; changed=0 on every host of every rerun: "
                  f"{_verdict(s['targets']['rerun_changed0'])}; without the fast path (every host through the full "
                  f"check) {_fmt(s.get('rerun_full_over_rollout'))}",
                  f"- rollout({big}) / rollout({s['smallest_n']}) = {_fmt(s.get('rollout_big_over_small'))}, with build "
                  f"{_fmt((s.get('build_s_big_small') or [None])[0])} s at N={big} and "
                  f"{_fmt((s.get('build_s_big_small') or [None, None])[1])} s at N={s['smallest_n']}",
                  f"- controller bytes per added host (SSH wire bytes, controller → hosts, slope over N = "
                  f"{s['slope_points']}): {_fmt(_mib(s.get('slope_controller_tx_bytes_per_host')))} MiB against a "
                  f"package of {_fmt(_mib(s.get('package_bytes')))} MiB: "
                  f"{_fmt4(s.get('tx_per_host_over_package'))} of the package (target <= 0.05): "
                  f"{_verdict(s['targets'].get('tx_per_host_over_package<=0.05'))}; hosts → controller "
                  f"{_fmt(_mib(s.get('slope_controller_rx_bytes_per_host')))} MiB per added host",
                  f"- controller CPU per added host (slope over N = {s['slope_points']}"
                  f"{', SSH meters taken out' if s.get('slope_controller_tx_bytes_per_host') is not None else ''}): "
                  f"{_fmt(s['slope_controller_cpu_s_per_host'])} CPU s (target <= 0.8): "
                  f"{_verdict(s['targets'].get('slope_controller_cpu<=0.8'))}", ""]
    costs = result.get("task_costs") or []
    if costs:
        lines += ["## Cost per task (linear, first rollout; wall s, slope per added host over N >= 8)", "",
                  "| role | task | " + " | ".join(f"N={n}" for n in ns)
                  + " | wall s per host | controller CPU s per host | hosts' CPU s per host |",
                  "|---|---|" + "---|" * (len(ns) + 3)]
        for row in costs[:15]:
            lines.append(f"| {row['role'] or '(play)'} | {row['task']} | "
                         + " | ".join(_fmt(row["seconds"].get(n, row["seconds"].get(str(n)))) for n in ns)
                         + f" | {_fmt(row['per_host_s'])} | {_fmt(row.get('controller_cpu_per_host_s'))}"
                         f" | {_fmt(row.get('node_cpu_per_host_s'))} |")
    return "\n".join(lines) + "\n"


def _mib(value: Any) -> float | None:
    return None if value is None else value / MIB


def _fmt4(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**missed**")


def render_svg(result: dict[str, Any]) -> str:
    """Line chart of wall time over fleet size, hand-written SVG (no plotting dependency)."""
    sizes = {int(n): e for n, e in result["sizes"].items()}
    ns = sorted(sizes)
    series: list[tuple[str, str, list[tuple[int, float]]]] = []

    def pts(mode: str, key) -> list[tuple[int, float]]:
        return [(n, key(sizes[n][mode])) for n in ns if mode in sizes[n] and sizes[n][mode]["first"]["rc"] == 0]

    series.append(("naive (every host builds)", "#d62728", pts("naive", lambda e: e["first"]["wall_s"])))
    series.append(("ascend-fa rollout", "#1f77b4", pts("ours", lambda e: e["first"]["wall_s"])))
    series.append(("ascend-fa rollout − build", "#17becf", pts("ours", lambda e: e["first"]["wall_s"] - e["build_s"])))
    series.append(("ascend-fa rerun (no-op)", "#2ca02c", pts("ours", lambda e: e["rerun"]["wall_s"])))
    series.append(("ascend-fa, verify skipped", "#ff7f0e", pts("install", lambda e: e["first"]["wall_s"])))
    series.append(("mitogen_linear rollout", "#9467bd", pts("mitogen", lambda e: e["first"]["wall_s"])))
    series.append(("mitogen_linear rerun", "#e377c2", pts("mitogen", lambda e: e["rerun"]["wall_s"])))
    series = [s for s in series if s[2]]
    width, height, left, right, top, bottom = 760, 440, 60, 220, 40, 50
    pw, ph = width - left - right, height - top - bottom
    ymax = max([y for _, _, p in series for _, y in p] + [1.0]) * 1.08
    xmax = max(ns) if ns else 1

    def sx(x: float) -> float:
        return left + pw * x / xmax

    def sy(y: float) -> float:
        return top + ph * (1 - y / ymax)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="14">Fleet rollout wall time vs hosts (simulated fleet, '
           f'{result["meta"]["cpus"]} shared CPUs)</text>',
           f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>']
    step = _nice_step(ymax)
    y = 0.0
    while y <= ymax:
        out.append(f'<line x1="{left}" y1="{sy(y):.1f}" x2="{left + pw}" y2="{sy(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
        y += step
    for n in ns:
        out.append(f'<text x="{sx(n):.1f}" y="{top + ph + 16}" text-anchor="middle">{n}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 12}" text-anchor="middle">hosts (N)</text>')
    out.append(f'<text x="16" y="{top + ph / 2}" transform="rotate(-90 16 {top + ph / 2})" '
               'text-anchor="middle">seconds</text>')
    for i, (label, color, p) in enumerate(series):
        path = " ".join(f"{sx(x):.1f},{sy(yv):.1f}" for x, yv in p)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(yv):.1f}" r="3" fill="{color}"/>' for x, yv in p]
        ly = top + 10 + 20 * i
        out.append(f'<line x1="{left + pw + 15}" y1="{ly}" x2="{left + pw + 35}" y2="{ly}" stroke="{color}" '
                   'stroke-width="2"/>')
        out.append(f'<text x="{left + pw + 40}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nice_step(ymax: float) -> float:
    raw = ymax / 6
    mag = 10 ** int(f"{raw:e}".split("e")[1])
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return float(m * mag)
    return float(10 * mag)


# ---------------------------------------------------------------------------------------------------- main


def _git_commit() -> str:
    p = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return p.stdout.strip() or "?"


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version
        return version(module)
    except Exception:  # noqa: BLE001 - not installed
        return None


def _forks() -> int:
    m = re.search(r"^forks\s*=\s*(\d+)", (ROOT / "ansible.cfg").read_text(), re.M)
    return int(m.group(1)) if m else 5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1,8,32,64", help="fleet sizes, comma separated (default 1,8,32,64)")
    p.add_argument("--octet", type=int, default=70,
                   help="first loopback octet; each fleet takes the next one (127.0.<octet>.N; default 70)")
    p.add_argument("--out", default=str(BENCH / "results"), help="where fleet.json/.md/.svg go")
    p.add_argument("--work", help="logs, caches and fleet folders (default: a new temporary folder)")
    p.add_argument("--install-only", action="store_true",
                   help="add a pass of ours with verification skipped (--skip-tags verify): the naive procedure's work")
    p.add_argument("--install-sizes", help="sizes of the install-only pass (default: --sizes)")
    p.add_argument("--mitogen", action="store_true", help="add a mitogen_linear pass (needs pip install mitogen)")
    p.add_argument("--mitogen-sizes", help="sizes of the mitogen pass (default: --sizes)")
    p.add_argument("--skip-naive", action="store_true", help="do not run the naive per-host build")
    p.add_argument("--skip-ours", action="store_true", help="run only the naive (and mitogen) passes")
    p.add_argument("--naive-sizes", help="sizes of the naive pass (default: --sizes; it compiles on every host)")
    p.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True,
                   help="run the fa_verify phase (default on; --no-verify skips the tag verify)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per ansible-playbook run")
    p.add_argument("--forks", type=int, help="ANSIBLE_FORKS for every run (default: ansible.cfg's)")
    p.add_argument("--full-rerun", action=argparse.BooleanOptionalAction, default=True,
                   help="after the rerun, a third run with fa_preflight_fast_path=false (the full check)")
    p.add_argument("--package-mib", type=int, default=32, metavar="N",
                   help="the simulated builds add N MiB of incompressible kernel-binary stand-in to each package "
                   "(default 32; 0: the bare simulated package; see benchmarks/README.md for the size)")
    p.add_argument("--render", metavar="FLEET_JSON", help="only re-render an earlier fleet.json into --out")
    args = p.parse_args(argv)
    if not 0 <= args.package_mib <= 1024:
        p.error(f"--package-mib must be within 0..1024 (MiB), not {args.package_mib}")
    return args


def write_outputs(result: dict[str, Any], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    md = render_md(result)
    (out / "fleet.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "fleet.md").write_text(md)
    (out / "fleet.svg").write_text(render_svg(result))
    return md


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        result = json.loads(Path(args.render).read_text())
        result["sizes"] = {int(n): e for n, e in result["sizes"].items()}
        result["summary"] = summarize(result["sizes"])
        result["task_costs"] = task_costs(result["sizes"])
        print(write_outputs(result, Path(args.out)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    bench = Bench(args)
    def _sizes(text: str | None) -> set[int]:
        return {int(x) for x in text.split(",") if x.strip()} if text else set(sizes)

    plan = {"ours": set() if args.skip_ours else set(sizes),
            "install": _sizes(args.install_sizes) if args.install_only else set(),
            "mitogen": _sizes(args.mitogen_sizes) if args.mitogen else set(),
            "naive": set() if args.skip_naive else _sizes(args.naive_sizes)}
    started = time.monotonic()
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python benchmarks/fleet.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": _git_commit(), "ansible_core": _version("ansible-core"), "mitogen": _version("mitogen")
        if args.mitogen else None, "python": platform.python_version(), "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()], "verify": args.verify, "forks": args.forks or _forks(),
        "models": MODELS, "npus_per_host": 1, "work": str(bench.work), "package_mib": args.package_mib,
    }
    results: dict[int, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []
    out = Path(args.out)

    def snapshot() -> dict[str, Any]:
        meta.update(loadavg_after=[round(x, 2) for x in os.getloadavg()],
                    total_s=round(time.monotonic() - started, 1), errors=errors)
        result = {"meta": meta, "sizes": results, "summary": summarize(results), "task_costs": task_costs(results)}
        return result

    for n in sizes:
        results[n] = {}
        for mode in [m for m in ("ours", "install", "mitogen", "naive") if n in plan[m]]:
            try:
                results[n][mode] = bench.run_mode(n, mode)
            except Exception as exc:  # noqa: BLE001 - one failing pass must not lose the others
                print(f"N={n} {mode}: {type(exc).__name__}: {exc}", file=sys.stderr)
                errors.append({"n": n, "mode": mode, "error": f"{type(exc).__name__}: {exc}"})
            write_outputs(snapshot(), out)   # partial results survive an interrupted run
    print(write_outputs(snapshot(), out))
    print(f"wrote {out / 'fleet.json'}, fleet.md, fleet.svg; logs in {bench.work}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_wrap":
        sys.exit(_wrap(sys.argv[2]))
    sys.exit(main())
