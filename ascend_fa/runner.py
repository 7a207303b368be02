"""Run ascend-fa playbooks through ansible-runner (its Python API and event stream).

No SSH, forking or retry logic lives here: ``ansible_runner.run`` starts ``ansible-playbook`` with the repo's
``ansible.cfg``, every event goes to the caller's ``on_event`` (the progress display), and the final stats become a
:class:`RunResult` whose :attr:`RunResult.exit_code` is the number of failed + unreachable hosts.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.ascend.fa.plugins.plugin_utils import redact

from ascend_fa import PROJECT_ROOT
from ascend_fa.progress import failure_message

REPO = PROJECT_ROOT

# Subcommand -> playbook, relative to the repo root. The only place that knows where the playbooks are.
PLAYBOOKS: dict[str, str] = {
    "deploy": "deploy_fa.yml",
    "preflight": "playbooks/preflight.yml",
    "verify": "playbooks/verify.yml",
    "upgrade": "playbooks/upgrade_fa.yml",
    "rollback": "playbooks/rollback_fa.yml",
    "bench": "playbooks/bench.yml",
    "doctor": "playbooks/doctor.yml",
}

MAX_EXIT = 125          # exit codes 1..125: that many failed/unreachable hosts (125: 125 or more)
EXIT_NOT_RUN = 126      # the run did not complete: playbook missing, syntax error, runner error, timeout
EXIT_CANCELED = 130     # interrupted (Ctrl-C)

EventHandler = Callable[[dict[str, Any]], None]

# Facts worth keeping from this run's events for the report: fresher than the cache (ascend_facts ran before the
# install) or never cached at all (plain set_fact). fa_installed: the manifest module fa_install returned.
RUN_FACTS = frozenset({"ascend", "fa_build_key", "fa_problems", "fa_warnings", "fa_blocking", "fa_needs_install",
                       "fa_installed", "fa_rollout_result", "fa_rollout_from"})


class PlaybookMissing(FileNotFoundError):
    """The subcommand's playbook is not in this checkout."""


def playbook_path(command: str, repo: Path = REPO) -> Path:
    """Absolute path of the playbook behind ``command``; :class:`PlaybookMissing` when it is not there."""
    if command not in PLAYBOOKS:
        raise KeyError(f"no playbook for subcommand {command!r}; known: {', '.join(sorted(PLAYBOOKS))}")
    path = repo / PLAYBOOKS[command]
    if not path.is_file():
        raise PlaybookMissing(
            f"'ascend-fa {command}' runs {PLAYBOOKS[command]}, which is not in {repo} (yet): "
            f"update the checkout, or run the playbook you have with ansible-playbook"
        )
    return path


def exit_code(failed_hosts: int, status: str, rc: int | None = 0) -> int:
    """0: all ok. 1..125: that many failed + unreachable hosts (capped). 126: no host failed, yet the run did
    not complete (syntax error, missing file, runner error, timeout). 130: canceled (Ctrl-C)."""
    if status == "canceled":     # an interrupted run is unfinished, whatever had failed by then
        return EXIT_CANCELED
    if failed_hosts > 0:
        return min(failed_hosts, MAX_EXIT)
    if status != "successful" or (rc or 0) != 0:
        return EXIT_NOT_RUN
    return 0


@dataclass
class RunResult:
    """What one playbook run ended with."""

    rc: int
    status: str
    stats: dict[str, dict[str, int]]
    failed_hosts: list[str] = field(default_factory=list)
    unreachable_hosts: list[str] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)   # host -> its last fatal failure message
    hosts: list[str] = field(default_factory=list)           # every host that had an event, in order
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)   # host -> RUN_FACTS seen in this run
    artifact_dir: str | None = None
    seconds: float = 0.0
    no_hosts: bool = False    # the first play matched no host: nothing ran (empty group, --limit outside it)

    @property
    def exit_code(self) -> int:
        return exit_code(len(self.failed_hosts) + len(self.unreachable_hosts), self.status, self.rc)

    def host_state(self, host: str) -> str:
        """ok | changed | failed | unreachable | not run, from the final stats."""
        if host in self.unreachable_hosts:
            return "unreachable"
        if host in self.failed_hosts:
            return "failed"
        if self.stats.get("changed", {}).get(host):
            return "changed"
        if any(host in self.stats.get(k, {}) for k in ("ok", "skipped", "processed")):
            return "ok"
        return "not run"


def split_stats(stats: Mapping[str, Mapping[str, int]] | None) -> tuple[list[str], list[str]]:
    """(failed hosts, unreachable hosts) from ansible's recap; a host that is both counts as unreachable."""
    stats = stats or {}
    dark = sorted(h for h, n in (stats.get("dark") or {}).items() if n)
    failed = sorted(h for h, n in (stats.get("failures") or {}).items() if n and h not in dark)
    return failed, dark


def build_cmdline(check: bool = False, diff: bool = False, extra_files: Sequence[str] = (),
                  extra_args: Sequence[str] = ()) -> str | None:
    """The ``ansible-playbook`` options ansible-runner has no keyword for."""
    args: list[str] = []
    if check:
        args.append("--check")
    if diff:
        args.append("--diff")
    for f in extra_files:
        args += ["-e", f if f.startswith("@") else f"@{f}"]
    args += list(extra_args)
    return " ".join(shlex.quote(a) for a in args) or None


def ansible_cfg(repo: Path = REPO) -> configparser.ConfigParser:
    """The repo's ansible.cfg (interpolation off: ansible does not interpolate either)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(repo / "ansible.cfg")
    return cfg


def fact_cache_dir(env: Mapping[str, str] | None = None, repo: Path = REPO) -> Path:
    """The jsonfile fact cache ansible uses: $ANSIBLE_CACHE_PLUGIN_CONNECTION, else ansible.cfg's
    ``fact_caching_connection`` (relative paths are relative to the repo), else ``~/.cache/ascend-fa/facts``."""
    env = os.environ if env is None else env
    value = env.get("ANSIBLE_CACHE_PLUGIN_CONNECTION") or ansible_cfg(repo).get(
        "defaults", "fact_caching_connection", fallback="~/.cache/ascend-fa/facts")
    path = Path(os.path.expandvars(value)).expanduser()
    return path if path.is_absolute() else (repo / path).resolve()


def _cfg_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")


def runner_envvars(extra: Mapping[str, str] | None = None, repo: Path = REPO) -> dict[str, str]:
    """Environment of the run: the repo's ansible.cfg, no colour codes in event text, plus ``extra``.

    ansible-runner switches host key checking off unless the environment sets it; ascend-fa keeps what
    ansible.cfg (or the caller's environment) says, so ``ascend-fa deploy`` trusts exactly what the playbook does.
    """
    env = {"ANSIBLE_CONFIG": str(repo / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
    env.update(extra or {})
    if "ANSIBLE_HOST_KEY_CHECKING" not in env and "ANSIBLE_HOST_KEY_CHECKING" not in os.environ:
        cfg_value = ansible_cfg(repo).get("defaults", "host_key_checking", fallback=None)
        env["ANSIBLE_HOST_KEY_CHECKING"] = str(_cfg_bool(cfg_value, True))
    # ansible-playbook of this interpreter's environment (the venv) first, so the CLI works without activating it
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", os.environ.get("PATH", ""))
    if bindir not in path.split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (bindir, path) if p)
    return env


def new_ident(playbook: str | os.PathLike[str]) -> str:
    stem = Path(playbook).stem.replace("_", "-")
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}-{uuid.uuid4().hex[:6]}"


class _EventTap:
    """Keeps what RunResult needs from the event stream and forwards every event to the caller."""

    def __init__(self, on_event: EventHandler | None):
        self.on_event = on_event
        self.messages: dict[str, str] = {}
        self.hosts: list[str] = []
        self.facts: dict[str, dict[str, Any]] = {}
        self.plays = 0
        self.first_play_empty = False
        self.broken = False

    def __call__(self, event: dict[str, Any]) -> bool:
        for step in (self._record, self.on_event):
            if step is None:
                continue
            try:
                step(event)
            except Exception as exc:  # noqa: BLE001 - a display problem must never stop a deployment
                if not self.broken:
                    print(f"ascend-fa: progress display error (the run goes on): {type(exc).__name__}: {exc}",
                          file=sys.stderr)
                self.broken = True
        return True   # keep the event in artifacts/<ident>/job_events (the audit trail)

    def _record(self, event: dict[str, Any]) -> None:
        data = event.get("event_data") or {}
        kind = event.get("event")
        if kind == "playbook_on_play_start":
            self.plays += 1
        elif kind == "playbook_on_no_hosts_matched" and self.plays == 1:
            self.first_play_empty = True
        host = data.get("host")
        if host and host not in self.hosts and event.get("event", "").startswith("runner_on_"):
            self.hosts.append(host)
        msg = failure_message(event)
        if host and msg:
            self.messages[host] = msg
        if host and event.get("event") == "runner_on_ok":
            self._keep_facts(host, data)

    def _keep_facts(self, host: str, data: Mapping[str, Any]) -> None:
        res = data.get("res") if isinstance(data.get("res"), Mapping) else {}
        facts = res.get("ansible_facts") if isinstance(res.get("ansible_facts"), Mapping) else {}
        kept = {k: v for k, v in facts.items() if k in RUN_FACTS}
        if str(data.get("task_action") or "").rsplit(".", 1)[-1] == "fa_install" and "manifest" in res:
            kept["fa_installed"] = res["manifest"]
        if kept:
            self.facts.setdefault(host, {}).update(kept)


def run_playbook(
    playbook: str | os.PathLike[str],
    inventory: str | os.PathLike[str] | Sequence[str],
    limit: str | None = None,
    tags: str | None = None,
    skip_tags: str | None = None,
    check: bool = False,
    extravars: Mapping[str, Any] | None = None,
    forks: int | None = None,
    on_event: EventHandler | None = None,
    *,
    extra_files: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    diff: bool = False,
    verbosity: int | None = None,
    envvars: Mapping[str, str] | None = None,
    private_data_dir: str | os.PathLike[str] | None = None,
    ident: str | None = None,
    cancel: Callable[[], bool] | None = None,
    secrets: Mapping[str, Any] | None = None,
    repo: Path = REPO,
) -> RunResult:
    """Run ``playbook`` on ``inventory`` with ansible-runner; events go to ``on_event`` as they happen.

    ``extravars`` travel as one JSON ``-e``; ``extra_files`` as ``-e @file`` (ansible reads them, vault included).
    ``secrets``, and the variables of ``extravars`` whose names say they are secrets (``ascend_fa/redact.py``:
    ``ansible_become_password``, ``*_token``, ...), never reach an argv, the environment or the artifacts: they go
    to ansible-playbook as ``-e @file``, a 0600 file in a private folder removed when the run ends
    (:func:`secret_vars_file`). Artifacts (``job_events/``, ``stdout``, ``rc``, ``command``: its environment
    with secret-named variables masked) stay in ``<private_data_dir>/artifacts/<ident>``, readable by the owner only.
    """
    pdd = Path(private_data_dir) if private_data_dir else repo / ".work" / "runner"
    pdd.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        pdd.chmod(0o700)
    plain, hidden = redact.split_secrets(extravars or {})
    with secret_vars_file({**hidden, **(secrets or {})}) as secret_file:
        return _run(playbook, inventory, limit, tags, skip_tags, check, plain, forks, on_event,
                    extra_files=[*extra_files, *([secret_file] if secret_file else [])], extra_args=extra_args,
                    diff=diff, verbosity=verbosity, envvars=envvars, pdd=pdd, ident=ident, cancel=cancel, repo=repo)


@contextlib.contextmanager
def secret_vars_file(secrets: Mapping[str, Any] | None) -> Iterator[str | None]:
    """A JSON file of ``secrets`` for ``-e @file``: mode 0600 in a fresh 0700 folder, both removed afterwards."""
    if not secrets:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="ascend-fa-secrets-")
    try:
        path = os.path.join(folder, "vars.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dict(secrets), f)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def scrub_command_file(artifact_dir: str | os.PathLike[str]) -> None:
    """ansible-runner keeps the run's whole environment in ``artifacts/<ident>/command``: mask the values of
    secret-named variables there (a token in the caller's environment, say)."""
    path = Path(artifact_dir) / "command"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(data, dict) or not isinstance(data.get("env"), dict):
        return
    data["env"] = redact.mask_env(data["env"])
    if isinstance(data.get("command"), list):
        data["command"] = redact.mask_argv([str(a) for a in data["command"]])
    tmp = path.with_name(".command.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    os.replace(tmp, path)


def _run(playbook: str | os.PathLike[str], inventory: str | os.PathLike[str] | Sequence[str], limit: str | None,
         tags: str | None, skip_tags: str | None, check: bool, extravars: Mapping[str, Any] | None, forks: int | None,
         on_event: EventHandler | None, *, extra_files: Sequence[str], extra_args: Sequence[str], diff: bool,
         verbosity: int | None, envvars: Mapping[str, str] | None, pdd: Path, ident: str | None,
         cancel: Callable[[], bool] | None, repo: Path) -> RunResult:
    import ansible_runner

    inv: str | list[str] = [str(Path(i).resolve()) if Path(i).exists() else str(i) for i in inventory] \
        if isinstance(inventory, (list, tuple)) else (str(Path(inventory).resolve()) if Path(inventory).exists()
                                                      else str(inventory))
    env = runner_envvars(envvars, repo)
    tap = _EventTap(on_event)
    started = time.monotonic()
    r = ansible_runner.run(
        private_data_dir=str(pdd),
        ident=ident or new_ident(playbook),
        project_dir=str(repo),
        playbook=str(Path(playbook).resolve()),
        inventory=inv,
        limit=limit,
        tags=tags,
        skip_tags=skip_tags,
        forks=forks,
        verbosity=verbosity,
        extravars=dict(extravars) if extravars else None,
        cmdline=build_cmdline(check, diff, extra_files, extra_args),
        envvars=env,
        # ansible-runner points the fact cache into its artifacts; keep the one ansible.cfg names, so later runs
        # (--limit, report) see every host's facts exactly as after ansible-playbook.
        fact_cache=str(fact_cache_dir({**os.environ, **env}, repo)),
        quiet=True,
        event_handler=tap,
        cancel_callback=cancel,
        rotate_artifacts=50,
        suppress_env_files=True,
    )
    scrub_command_file(r.config.artifact_dir)
    stats = r.stats or {}
    failed, dark = split_stats(stats)
    hosts = list(tap.hosts)
    for cat in stats.values():
        hosts += [h for h in (cat or {}) if h not in hosts]
    return RunResult(
        rc=int(r.rc if r.rc is not None else -1), status=str(r.status), stats={k: dict(v or {}) for k, v in stats.items()},
        failed_hosts=failed, unreachable_hosts=dark,
        messages={h: m for h, m in tap.messages.items() if h in failed or h in dark},
        hosts=hosts, facts=tap.facts, artifact_dir=str(r.config.artifact_dir), seconds=time.monotonic() - started,
        no_hosts=tap.first_play_empty,
    )
