"""fa_verify's logic: run kernels/fa_check.py on every card at once and judge the results (host side).

Standard library only (shipped as ``plugins/module_utils/fa_verify_lib.py``); the module ``plugins/modules/fa_verify.py`` is a
thin wrapper (arguments, check mode, the result). Tests drive these functions directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import statistics
import subprocess
import threading
import time

from ansible_collections.ascend.fa.plugins.module_utils.fa_env_lib import check_environment, not_run
from ansible_collections.ascend.fa.plugins.module_utils.fa_known_errors import diagnosis
from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import package_state
from ansible_collections.ascend.fa.plugins.module_utils.fa_metrics import FILE_NAME as METRICS_FILE
from ansible_collections.ascend.fa.plugins.module_utils.fa_metrics import write_verify_metrics

CHECK_SCRIPT = "fa_check.py"
TAIL_CHARS = 2000
KILL_GRACE_S = 3.0
BASELINE_MODES = ("auto", "always", "never")


# ------------------------------------------------------------------------------------------------ pure logic
def resolve_devices(devices: list[int] | None, npu_count: int | None) -> list[int]:
    """The card ids to check: ``devices`` if given (validated against ``npu_count``), else ``0..npu_count-1``."""
    if devices:
        ids = [int(d) for d in devices]
        bad = [d for d in ids if d < 0 or (npu_count is not None and d >= npu_count)]
        if bad:
            raise ValueError(f"device ids out of range 0..{(npu_count or 0) - 1}: {bad}")
        dup = sorted({d for d in ids if ids.count(d) > 1})
        if dup:
            raise ValueError(f"device ids listed twice: {dup}")
        return sorted(ids)
    if npu_count is None:
        raise ValueError("give devices or npu_count (no Ascend facts or no NPU device: run the fa_preflight "
                         "role - module ascend_facts - first, or list the cards in fa_verify_devices)")
    if npu_count <= 0:
        raise ValueError(f"npu_count is {npu_count}: no card to verify")
    return list(range(npu_count))


def missing_scripts(set_env: list[str]) -> list[str]:
    return [p for p in set_env if not os.path.isfile(p)]


def build_check_args(kernels_dir: str, python: str, device_type: str, extra_args: list[str], card: int,
                     quick: bool = True, flags: list[str] | None = None) -> list[str]:
    """The fa_check.py argv (interpreter first); ``flags``: from :func:`check_flags` / :func:`baseline_flags`."""
    args = [python, os.path.join(kernels_dir, CHECK_SCRIPT)]
    if quick:
        args.append("--quick")
    if device_type and device_type != "auto":
        args += ["--device", device_type]
    args += ["--card", str(card)] + [str(a) for a in flags or []]
    return args + [str(a) for a in extra_args]


def check_flags(expect_vendor_dir: str | None, outputs_file: str | None) -> list[str]:
    """The first run: our vendor must serve the call (kernels/served_by.py); keep the outputs for the baseline."""
    flags = ["--expect-vendor-dir", expect_vendor_dir] if expect_vendor_dir else []
    return flags + (["--save-outputs", outputs_file] if outputs_file else [])


def baseline_flags(expect_vendor_dir: str | None, outputs_file: str) -> list[str]:
    """The baseline run: CANN's built-in operator (OPP overlay without our vendor), compared with our outputs."""
    flags = ["--baseline", "--compare-outputs", outputs_file]
    return flags + (["--expect-vendor-dir", expect_vendor_dir] if expect_vendor_dir else [])


def build_command(kernels_dir: str, python: str, set_env: list[str], device_type: str, extra_args: list[str],
                  card: int, quick: bool = True, flags: list[str] | None = None) -> list[str]:
    """``bash -l -c '<source each set_env script>; exec python fa_check.py ...'`` for one card.

    A login shell, as a user's training job gets: /etc/profile and /etc/profile.d run first, so a site-wide
    ``ASCEND_CUSTOM_OPP_PATH`` (which op-plugin searches before config.ini's vendors) is in the process the
    served-by check judges, exactly as in the training processes it stands for.

    The scripts' own stdout goes to stderr, so stdout carries only fa_check's JSON. A script that returns non-zero
    (some set_env files end on a failed test) is logged on stderr and the check still runs: a broken environment
    then shows up as fa_check's own error, which names what is missing.
    """
    lines = []
    for script in set_env:
        q = shlex.quote(str(script))
        lines.append(f'source {q} >&2 || echo "fa_verify: source {q} exited $?" >&2')
    check = build_check_args(kernels_dir, python, device_type, extra_args, card, quick, flags)
    lines.append("exec " + " ".join(shlex.quote(a) for a in check))
    return ["bash", "-l", "-c", "\n".join(lines)]


def card_env(base: dict[str, str], card: int, device_type: str, threads: int | None = None) -> dict[str, str]:
    """Environment of one card's process: pinned to ``card``, which it sees as device 0.

    ``threads``: CPU threads per process (``OMP_NUM_THREADS``) unless the environment already sets it, so that
    eight concurrent checks share the host's CPUs instead of each taking all of them.
    """
    env = dict(base)
    if threads and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, int(threads)))
    env["ASCEND_RT_VISIBLE_DEVICES"] = str(card)
    if device_type in ("cuda", "auto"):
        env["CUDA_VISIBLE_DEVICES"] = str(card)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the shipped kernels folder as copied
    env["LC_ALL"] = "C"
    return env


def parse_check_output(stdout: str) -> dict | None:
    """fa_check's JSON object: the last stdout line that parses as a JSON object."""
    for line in reversed((stdout or "").splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _tail(text: str | None, n: int = TAIL_CHARS) -> str:
    text = (text or "").strip()
    return text if len(text) <= n else "..." + text[-n:]


def summarize_errors(errors: list[str], limit: int = 3) -> str:
    """fa_check's ``"<case>: <message>"`` errors, with the cases that share a message grouped together."""
    groups: dict[str, list[str]] = {}
    for err in errors:
        name, sep, msg = str(err).partition(": ")
        if not sep or " " in name:
            name, msg = "", str(err)
        groups.setdefault(msg, []).append(name)
    parts = []
    for msg, names in list(groups.items())[:limit]:
        names = [n for n in names if n]
        if len(names) > 3:
            names = names[:3] + [f"{len(names) - 3} more"]
        parts.append(f"{', '.join(names)}: {msg}" if names else msg)
    if len(groups) > limit:
        parts.append(f"and {len(groups) - limit} more")
    return "; ".join(parts)


def card_result(card: int, rc: int | None, stdout: str, stderr: str, timed_out: bool, timeout: float,
                duration: float) -> dict:
    """One card's entry from its process outcome."""
    report = parse_check_output(stdout)
    res = {
        "card": card,
        "baseline": None,
        "ok": False,
        "max_abs_err": None,
        "max_rel_err": None,
        "latency_ms": None,
        "reason": None,
        "rc": rc,
        "duration_s": round(duration, 3),
        "device": None,
        "passed": 0,
        "failed": 0,
        "failed_cases": [],
        "served_by": None,
    }
    served = report.get("served_by") if isinstance(report, dict) else None
    if isinstance(served, dict):
        res["served_by"] = served_summary(served)
    if report is not None:
        res.update({
            "max_abs_err": report.get("max_abs_err"),
            "max_rel_err": report.get("max_rel_err"),
            "latency_ms": report.get("latency_ms"),
            "device": report.get("device"),
            "passed": int(report.get("passed") or 0),
            "failed": int(report.get("failed") or 0),
            "failed_cases": [c.get("name") for c in report.get("cases") or [] if not c.get("ok")],
        })
        if isinstance(report.get("compare"), dict):
            res["compare"] = report["compare"]
    if timed_out:
        res["reason"] = f"timeout after {timeout:g}s"
    elif report is None:
        res["reason"] = f"no JSON from {CHECK_SCRIPT} (exit code {rc})" + (
            f": {_tail(stderr, 300)}" if (stderr or "").strip() else "")
    elif isinstance(served, dict) and served.get("ok") is False:
        # the served-by check decides: correct numbers from another library prove nothing about our package
        res["reason"] = f"{served.get('reason')}. Fix: {served.get('fix')}"
    elif not report.get("ok"):
        res["reason"] = summarize_errors(report.get("errors") or []) or f"{CHECK_SCRIPT} reported ok=false"
    elif rc != 0:
        res["reason"] = f"{CHECK_SCRIPT} reported ok but exited {rc}"
    else:
        res["ok"] = True
    if not res["ok"]:
        res["stderr_tail"] = _tail(stderr)
        if not timed_out:
            # the class of the error (known-error signatures), its cause and fix; unknown: see stderr_tail
            res["diagnosis"] = diagnosis(f"{stderr or ''}\n{res['reason'] or ''}")
    return res


SERVED_KEYS = ("api", "library", "vendor", "source", "ok", "reason", "fix", "uid", "load_priority",
               "ASCEND_CUSTOM_OPP_PATH", "ASCEND_OPP_PATH")
CANDIDATE_KEYS = ("source", "entry", "library", "exports", "owner_ok", "owner_uid", "mapped", "note")


def served_summary(served: dict) -> dict:
    """fa_check's ``served_by``, with only the known keys (the card result is kept and reported)."""
    out = {k: served.get(k) for k in SERVED_KEYS}
    builtin = served.get("builtin") if isinstance(served.get("builtin"), dict) else {}
    out["builtin"] = {"library": builtin.get("library"), "exports": builtin.get("exports") is True}
    out["candidates"] = [{k: c.get(k) for k in CANDIDATE_KEYS} for c in served.get("candidates") or []
                         if isinstance(c, dict)]
    return out


def baseline_cards(mode: str, results: list[dict]) -> list[int]:
    """The cards to run against CANN's built-in operator: ``never`` none; ``auto`` where the built-in exports it;
    ``always`` every card whose first run finished with outputs (or all of them)."""
    if mode == "never":
        return []
    done = [r["card"] for r in results if r.get("rc") is not None and r.get("max_abs_err") is not None]
    if mode == "always":
        return done or [r["card"] for r in results]
    return [r["card"] for r in results if r["card"] in done
            and (((r.get("served_by") or {}).get("builtin") or {}).get("exports"))]


def apply_baseline(res: dict, base: dict, max_slowdown: float, mode: str = "auto") -> dict:
    """Merge the baseline run ``base`` (a card_result) into the card ``res``: latency ratio, largest output difference,
    and the budget: ``max_slowdown`` > 0 fails a card whose kernel is slower than CANN's by more than that."""
    ours, theirs = res.get("latency_ms"), base.get("latency_ms")
    served = base.get("served_by") or {}
    b = {"ran": True, "ok": bool(base.get("ok")), "latency_ms": theirs, "ratio": None, "max_diff": None,
         "served_by": served.get("library"), "reason": base.get("reason"), "max_slowdown": max_slowdown}
    compare = base.get("compare") or {}
    b["max_diff"] = compare.get("max_diff")
    if compare.get("error") or compare.get("missing"):
        b["compare_note"] = compare.get("error") or f"no saved output for {', '.join(compare['missing'])}"
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and theirs > 0:
        b["ratio"] = round(float(ours) / float(theirs), 4)
    res["baseline"] = b
    if not res["ok"]:
        return res
    if max_slowdown and b["ratio"] is not None and b["ratio"] > max_slowdown:
        res["ok"] = False
        res["reason"] = (f"our kernel {ours:.4g} ms vs CANN's built-in {theirs:.4g} ms = {b['ratio']:.3g}x, over "
                         f"fa_verify_max_slowdown {max_slowdown:g}")
    elif mode == "always" and not b["ok"]:
        res["ok"] = False
        res["reason"] = f"baseline against CANN's built-in operator failed: {b['reason']}"
    return res


def known_diagnoses(failed: list[dict]) -> list[str]:
    """``<class>: <fix>`` once per known error class among the failed cards; a generic code (EZ9999, 561103 with no
    line that explains it) says what evidence to capture."""
    seen: dict[str, str] = {}
    for r in failed:
        diag = r.get("diagnosis") or {}
        if (diag.get("known") or diag.get("class") == "generic") and diag["class"] not in seen:
            seen[diag["class"]] = diag["fix"]
    return [f"{'generic error code' if cls == 'generic' else 'known error ' + cls}: {fix}" for cls, fix in seen.items()]


def aggregate(results: list[dict]) -> dict:
    """Host verdict from the per-card entries."""
    results = sorted(results, key=lambda r: r["card"])
    failed = [r for r in results if not r["ok"]]
    errs = [r["max_abs_err"] for r in results if r.get("max_abs_err") is not None]
    rels = [r["max_rel_err"] for r in results if r.get("max_rel_err") is not None]
    lats = [r["latency_ms"] for r in results if r.get("latency_ms") is not None]
    ratios_all = [r["baseline"]["ratio"] for r in results if (r.get("baseline") or {}).get("ratio") is not None]
    ok = bool(results) and not failed
    if ok:
        summary = f"{len(results)}/{len(results)} cards passed FlashAttention"
        details = []
        if errs:
            details.append(f"max_abs_err {max(errs):.3g}")
        if lats:
            details.append(f"median latency {statistics.median(lats):.3g} ms")
        libs = sorted({(r.get("served_by") or {}).get("library") or "" for r in results} - {""})
        if libs:
            details.append(f"served by {', '.join(libs)}")
        if ratios_all:
            details.append(f"vs CANN's built-in: latency ratio max {max(ratios_all):.3g}")
        if details:
            summary += f" ({', '.join(details)})"
    elif not results:
        summary = "no card was checked"
    else:
        ids = ", ".join(str(r["card"]) for r in failed)
        summary = (f"{len(failed)} of {len(results)} cards failed FlashAttention (card {ids}): "
                   + "; ".join(f"card {r['card']}: {r['reason']}" for r in failed))
        diagnosed = known_diagnoses(failed)
        if diagnosed:
            summary += ". " + ". ".join(diagnosed)
    return {
        "ok": ok,
        "cards": results,
        "failed_cards": [r["card"] for r in failed],
        "passed": len(results) - len(failed),
        "failed": len(failed),
        "max_abs_err": max(errs) if errs else None,
        "max_rel_err": max(rels) if rels else None,
        "latency_ms": statistics.median(lats) if lats else None,
        "baseline_ratio_max": max(ratios_all) if ratios_all else None,
        "summary": summary,
    }


# ------------------------------------------------------------------------------------------------ processes
def _kill_group(proc: subprocess.Popen) -> None:
    """TERM the card's process group, then KILL whatever of the group is left after a grace period."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # also any child that outlived the leader


def run_card(card: int, argv: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run one card's check in its own session (process group); kill the group on timeout."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, text=True, errors="replace")
    except OSError as exc:
        return card_result(card, None, "", f"cannot start {argv[0]}: {exc}", False, timeout,
                           time.monotonic() - start)
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        try:
            stdout, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a grandchild holds the pipes open
            stdout, stderr = "", "process group did not exit after SIGKILL"
    return card_result(card, proc.returncode if not timed_out else None, stdout, stderr, timed_out, timeout,
                       time.monotonic() - start)


def run_all(jobs: list[tuple[int, list[str], dict[str, str]]], timeout: float) -> list[dict]:
    """Run every card's check concurrently (one thread waiting on one process per card)."""
    results: dict[int, dict] = {}

    def work(card, argv, env):
        try:
            results[card] = run_card(card, argv, env, timeout)
        except Exception as exc:  # noqa: BLE001 - one card's crash must not lose the others
            results[card] = card_result(card, None, "", f"fa_verify internal error: {exc}", False, timeout, 0.0)

    threads = [threading.Thread(target=work, args=job, daemon=True) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[card] for card, _argv, _env in jobs]


def outputs_file(outputs_dir: str | None, card: int) -> str | None:
    return os.path.join(outputs_dir, f"card{int(card)}.pt") if outputs_dir else None


def run_checks(build, cards: list[int], env_of, timeout: float, expect_vendor_dir: str | None = None,
               baseline: str = "auto", max_slowdown: float = 0.0, outputs_dir: str | None = None) -> list[dict]:
    """Every card's check, then (``baseline``) the same cases on CANN's built-in operator, card by card in parallel.

    ``build(card, flags)`` -> argv; ``env_of(card)`` -> environment. The baseline runs in separate processes after
    the first round (they compare with the outputs the first round saved in ``outputs_dir``)."""
    if baseline not in BASELINE_MODES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINE_MODES)}")
    keep = outputs_dir if baseline != "never" else None
    first = run_all([(c, build(c, check_flags(expect_vendor_dir, outputs_file(keep, c))), env_of(c))
                     for c in cards], timeout)
    todo = baseline_cards(baseline, first) if keep else []
    if not todo:
        return first
    second = {r["card"]: r for r in run_all(
        [(c, build(c, baseline_flags(expect_vendor_dir, outputs_file(keep, c))), env_of(c)) for c in todo], timeout)}
    return [apply_baseline(r, second[r["card"]], max_slowdown, baseline) if r["card"] in second else r
            for r in first]


def ship_kernels(kernels_dir: str, kernels: dict[str, str], check_mode: bool = False) -> list[str]:
    """Write the kernel files whose content differs; return the names written (or that would be)."""
    written = []
    for name, content in sorted(kernels.items()):
        if os.path.basename(name) != name or not name.endswith(".py"):
            raise ValueError(f"kernel file name {name!r} must be a plain *.py name")
        path = os.path.join(kernels_dir, name)
        try:
            with open(path, encoding="utf-8") as fh:
                if fh.read() == content:
                    continue
        except OSError:
            pass
        written.append(name)
        if not check_mode:
            os.makedirs(kernels_dir, exist_ok=True)
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(content)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    return written


def write_results(path: str, data: dict) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def write_metrics(params: dict, ok: bool, cards: list[dict], checked_at: str,
                  manifest: dict | None) -> tuple[str | None, str | None]:
    """The verification as Prometheus textfile metrics in ``params["metrics_dir"]`` (fa_metrics; nothing when unset),
    with the installed package's drift against its manifest (fa_manifest.package_state, read now: after an install
    in the same run preflight's state is stale). Returns (the file written, a warning): a folder that cannot be
    written is a warning naming the host, the folder and the fix, never a failed verification."""
    directory = params.get("metrics_dir")
    if not directory:
        return None, None
    try:
        drift = package_state(manifest, params.get("cann_version") or None, params.get("cann_install_time") or None,
                              params.get("soc_family") or None) if manifest else None
        return write_verify_metrics(directory, ok, cards, checked_at, manifest or None, drift,
                                    params.get("chips") or []), None
    except (OSError, ValueError) as exc:
        return None, (f"{params.get('env_host') or 'this host'}: cannot write the Prometheus metrics "
                      f"{os.path.join(str(directory), METRICS_FILE)}: {exc}. Fix: set fa_verify_metrics_dir to a "
                      "writable absolute folder (node_exporter's --collector.textfile.directory), run with become, "
                      "or set it to '' to write none")


def env_result(params: dict) -> dict:
    """The ``env`` result: the verify-phase environment checks (``ran: true``), or ``not_run()`` without checks.

    Raises ValueError on malformed checks."""
    if not params.get("env_checks"):
        return not_run()
    out = check_environment(params["env_checks"], "verify", {
        "host": params.get("env_host"),
        "state_dir": params.get("state_dir"),
        "ascend_home": params.get("ascend_home"),
        "cann_set_env": params.get("cann_set_env") or "",
        "nnal_set_env": params.get("nnal_set_env"),
        "python": params.get("python"),
        "cann_version": params.get("cann_version") or "",
        "compat_torch_npu": params.get("compat_torch_npu") or {},
        "libraries": params.get("libraries") or None,
        "ignore": params.get("ignore") or [],
        "timeout": params.get("env_timeout"),
    })
    out["ran"] = True
    return out


# ------------------------------------------------------------------------------------------------ module
