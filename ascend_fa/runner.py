"""Run ascend-fa playbooks through ansible-runner (its Python API and event stream).

No SSH, forking or retry logic lives here: ``ansible_runner.run`` starts ``ansible-playbook`` in the caller's working
folder with the ``ansible.cfg`` ansible itself would read there (:func:`config_file`; the repo's only when there is
none), every event goes to the caller's ``on_event`` (the progress display), and the final stats become a
:class:`RunResult` whose :attr:`RunResult.exit_code` is ansible-playbook's own exit status (:func:`exit_code`).
Interactive runs (``--step``, the ``--list-*`` and ``--syntax-check`` modes) start ansible-playbook on the caller's
terminal instead (:func:`run_direct`).
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.ascend.fa.plugins.plugin_utils import records, redact

from ascend_fa import PROJECT_ROOT

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

# Exit codes: ansible-playbook's own (ansible-core 2.19, lib/ansible/errors/__init__.py ExitCode, returned by
# lib/ansible/cli/__init__.py cli_executor and the strategy's run(): unreachable wins over failed; checked by
# running ansible-playbook in tests/unit/test_cli_dropin.py). The CLI returns ansible-playbook's rc where one ran.
EXIT_OK = 0
EXIT_ERROR = 1          # AnsibleError: missing playbook / -e @file, no host to target, inventory not parsed (rc 1)
EXIT_HOST_FAILED = 2    # a host failed (ansible-playbook's argparse also exits 2 on an unknown option)
EXIT_UNREACHABLE = 4    # a host was unreachable (ExitCode.HOST_UNREACHABLE)
EXIT_PARSER_ERROR = 4   # a playbook (or, says the CLI, an inventory) that does not parse (ExitCode.PARSER_ERROR)
EXIT_BAD_OPTIONS = 5    # ExitCode.INVALID_CLI_OPTION; the CLI's own usage errors
EXIT_INTERRUPTED = 99   # ExitCode.KEYBOARD_INTERRUPT (Ctrl-C)
EXIT_UNEXPECTED = 250   # ExitCode.UNKNOWN_ERROR; the CLI: ansible-runner could not run or finish it
ANSIBLE_EXIT_CODES = frozenset({EXIT_OK, EXIT_ERROR, EXIT_HOST_FAILED, EXIT_UNREACHABLE, EXIT_BAD_OPTIONS,
                                EXIT_INTERRUPTED, EXIT_UNEXPECTED})

EventHandler = Callable[[dict[str, Any]], None]

# Facts worth keeping from this run's events for the report: the same the callback keeps (plugin_utils/records.py)
RUN_FACTS = records.RUN_FACTS


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


def exit_code(status: str, rc: int | None) -> int:
    """The CLI's exit status for a run through ansible-runner: ansible-playbook's own rc when it ran to its end
    (0 ok, 1 error, 2 a host failed, 4 unreachable or parser error, 5 bad options, 99 interrupted, 250 unexpected);
    99 when the run was canceled (Ctrl-C: ansible-runner stops ansible-playbook, rc 254); 250 when ansible-runner
    could not run it or it ended otherwise (a signal, a timeout, an rc ansible-playbook does not use)."""
    if status == "canceled":     # an interrupted run is unfinished, whatever had failed by then
        return EXIT_INTERRUPTED
    if status in ("successful", "failed") and isinstance(rc, int) and 0 <= rc < 256:
        return rc
    return EXIT_UNEXPECTED


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
    started: float = 0.0      # wall clock (epoch seconds) when the run began
    recap: bool = False       # ansible-playbook printed its recap (playbook_on_stats): the plays ran to their end

    @property
    def exit_code(self) -> int:
        """ansible-playbook's exit status (:func:`exit_code`)."""
        return exit_code(self.status, self.rc)

    @property
    def failed_count(self) -> int:
        """Hosts that failed or were unreachable (the summary says how many; the exit status does not)."""
        return len(self.failed_hosts) + len(self.unreachable_hosts)

    def host_state(self, host: str) -> str:
        """ok | changed | failed | unreachable | not run, from the final stats (plugin_utils/records.py)."""
        return records.host_state(host, self.stats)


split_stats = records.split_stats   # (failed, unreachable) from the recap: one home, plugin_utils/records.py


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


def config_file(repo: Path = REPO) -> tuple[Path, bool]:
    """(the ansible.cfg of the run, whether it is the user's): the file ansible-playbook started in this working folder
    reads -- ``$ANSIBLE_CONFIG``, ``./ansible.cfg`` (not in a world-writable folder), ``~/.ansible.cfg``,
    ``/etc/ansible/ansible.cfg``, in ansible's own order (its ``find_ini_config_file``) -- else the repo's."""
    from ansible.config.manager import find_ini_config_file

    found = find_ini_config_file()
    return (Path(found).resolve(), True) if found else (repo / "ansible.cfg", False)


def config_values(path: Path, names: Sequence[str]) -> dict[str, Any]:
    """Settings as ansible-playbook will see them: ``path`` with this process's environment over it (ansible's own
    ConfigManager; a templated default such as ``{{ ANSIBLE_HOME ~ "/collections" }}`` is rendered here). None for a
    setting ansible cannot read (ansible-playbook then stops on it with its own message)."""
    from ansible.config.manager import ConfigManager

    try:
        manager = ConfigManager(conf_file=str(path))
    except Exception:  # noqa: BLE001 - a broken ansible.cfg: ansible-playbook says what is wrong, in its own words
        return dict.fromkeys(names)
    out: dict[str, Any] = {}
    for name in names:
        try:
            value, origin = manager.get_config_value_and_origin(name)
        except Exception:  # noqa: BLE001 - as above, for one bad setting
            out[name] = None
            continue
        if origin == "default" and name == "COLLECTIONS_PATHS":
            home = Path(str(manager.get_config_value("ANSIBLE_HOME"))).expanduser()
            value = [str(home / "collections"), "/usr/share/ansible/collections"]
        out[name] = value
    return out


def collections_root(repo: Path = REPO) -> Path | None:
    """The folder holding ``ansible_collections/ascend/fa`` for this collection: ``<checkout>/.collections`` (a link
    back to the checkout), or site-packages for an installed wheel; None when neither leads back to ``repo``."""
    for root in (repo / ".collections", repo.parent.parent.parent):
        link = root / "ansible_collections" / "ascend" / "fa"
        if link.is_dir() and link.resolve() == repo.resolve():
            return root
    return None


def finds_collection(paths: Sequence[str], scan_sys_path: bool, repo: Path = REPO) -> bool:
    """Whether ansible, searching ``paths`` (then sys.path when it scans it), meets this very ascend.fa first."""
    roots = [Path(p).expanduser() for p in paths] + ([Path(p) for p in sys.path if p] if scan_sys_path else [])
    for root in roots:
        coll = (root if root.name == "ansible_collections" else root / "ansible_collections") / "ascend" / "fa"
        if coll.is_dir():
            return coll.resolve() == repo.resolve()
    return False


RECORDS_CALLBACK = "ascend.fa.fa_records"


def fact_cache_dir(env: Mapping[str, str] | None = None, repo: Path = REPO) -> Path:
    """The jsonfile fact cache ansible uses: $ANSIBLE_CACHE_PLUGIN_CONNECTION, else the run's ansible.cfg's
    ``fact_caching_connection`` (:func:`config_file`; relative: to the working folder, as ansible resolves it), else
    ``~/.cache/ascend-fa/facts``."""
    env = os.environ if env is None else env
    value = env.get("ANSIBLE_CACHE_PLUGIN_CONNECTION")
    if not value:
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(config_file(repo)[0])
        value = cfg.get("defaults", "fact_caching_connection", fallback="~/.cache/ascend-fa/facts")
    path = Path(os.path.expandvars(value)).expanduser()
    return path if path.is_absolute() else (Path.cwd() / path).resolve()


def runner_envvars(extra: Mapping[str, str] | None = None, repo: Path = REPO) -> dict[str, str]:
    """Environment of the run: the caller's environment (ansible-runner passes it on) plus only what the project
    cannot get from the user's own setup, plus ``extra``.

    - ``ANSIBLE_CONFIG``: the file ansible would read here (:func:`config_file`); the repo's only when there is none.
    - ``ANSIBLE_CALLBACKS_ENABLED``: the config's list plus ``ascend.fa.fa_records`` (the fleet records), when missing.
    - ``ANSIBLE_COLLECTIONS_PATH``: this collection's folder first, only when the config does not find this ascend.fa.
    - ``ANSIBLE_HOST_KEY_CHECKING``: what the config says (ansible-runner would switch checking off otherwise).
    - no colour codes in event text; this interpreter's bin folder first on PATH (the venv's ansible-playbook).
    """
    cfg, _ = config_file(repo)
    env = {"ANSIBLE_CONFIG": str(cfg), "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
    names = ("CALLBACKS_ENABLED", "COLLECTIONS_PATHS", "COLLECTIONS_SCAN_SYS_PATH", "HOST_KEY_CHECKING")
    values = config_values(cfg, names)
    callbacks = [str(c) for c in values["CALLBACKS_ENABLED"] or []]
    if RECORDS_CALLBACK not in callbacks and (repo / "plugins" / "callback" / "fa_records.py").is_file():
        env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join([*callbacks, RECORDS_CALLBACK])
    paths = [str(p) for p in values["COLLECTIONS_PATHS"] or []]
    root = collections_root(repo)
    if root is not None and not finds_collection(paths, bool(values["COLLECTIONS_SCAN_SYS_PATH"]), repo):
        env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join([str(root), *paths])
    if "ANSIBLE_HOST_KEY_CHECKING" not in os.environ:
        env["ANSIBLE_HOST_KEY_CHECKING"] = str(values["HOST_KEY_CHECKING"] is not False)   # unreadable: ansible's True
    env.update(extra or {})
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
        self.recap = False
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
        elif kind == "playbook_on_stats":
            self.recap = True
        host = data.get("host")
        if host and host not in self.hosts and event.get("event", "").startswith("runner_on_"):
            self.hosts.append(host)
        msg = records.failure_message(event)
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
    passwords: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    repo: Path = REPO,
) -> RunResult:
    """Run ``playbook`` on ``inventory`` with ansible-runner; events go to ``on_event`` as they happen.

    ansible-playbook runs in ``cwd`` (default: this process's working folder), so relative paths in ``extra_args``
    and the user's ``./ansible.cfg`` mean what they mean to ansible-playbook typed there. ``extravars`` travel as one
    JSON ``-e``; ``extra_files`` as ``-e @file`` (ansible reads them, vault included); ``extra_args`` are further
    ansible-playbook options, passed as they are (as argv: ansible-runner splits the quoted line back).
    ``secrets``, and the variables of ``extravars`` whose names say they are secrets (``plugins/plugin_utils/redact.py``:
    ``ansible_become_password``, ``*_token``, ...), never reach an argv, the environment or the artifacts: they go
    to ansible-playbook as ``-e @file``, a 0600 file in a private folder removed when the run ends
    (:func:`secret_vars_file`). ``passwords`` (prompt regex -> answer) answer ansible-playbook's own prompts
    (``-k``, ``-J``) through ansible-runner's pexpect, never written anywhere. Artifacts (``job_events/``, ``stdout``,
    ``rc``, ``command``: its environment with secret-named variables masked) stay in
    ``<private_data_dir>/artifacts/<ident>``, readable by the owner only.
    """
    pdd = Path(private_data_dir) if private_data_dir else repo / ".work" / "runner"
    pdd.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        pdd.chmod(0o700)
    plain, hidden = redact.split_secrets(extravars or {})
    with secret_vars_file({**hidden, **(secrets or {})}) as secret_file:
        spec = _RunSpec(playbook=playbook, inventory=inventory, limit=limit, tags=tags, skip_tags=skip_tags,
                        forks=forks, verbosity=verbosity, extravars=plain,
                        cmdline=build_cmdline(check, diff, [*extra_files, *([secret_file] if secret_file else [])],
                                              extra_args))
        return _run(spec, on_event, envvars=envvars, pdd=pdd, ident=ident, cancel=cancel, passwords=passwords,
                    cwd=Path(cwd) if cwd else Path.cwd(), repo=repo)


@dataclass
class _RunSpec:
    """What one ansible-playbook run is asked to do."""

    playbook: str | os.PathLike[str]
    inventory: str | os.PathLike[str] | Sequence[str]
    limit: str | None = None
    tags: str | None = None
    skip_tags: str | None = None
    forks: int | None = None
    verbosity: int | None = None
    extravars: Mapping[str, Any] | None = None
    cmdline: str | None = None

    def inventories(self) -> list[str]:
        """Every ``-i`` (several accumulate, as with ansible-playbook); paths made absolute."""
        items = list(self.inventory) if isinstance(self.inventory, (list, tuple)) else [self.inventory]
        return [str(Path(i).resolve()) if Path(i).exists() else str(i) for i in items]

    def argv(self) -> list[str]:
        """The ansible-playbook options of this run, as ansible-runner would put them (for :func:`run_direct`)."""
        args = shlex.split(self.cmdline or "")
        for inv in self.inventories():
            args += ["-i", inv]
        for opt, value in (("--limit", self.limit), ("--tags", self.tags), ("--skip-tags", self.skip_tags),
                           ("--forks", self.forks)):
            args += [opt, str(value)] if value else []
        if self.extravars:
            args += ["-e", json.dumps(dict(self.extravars))]
        if self.verbosity:
            args.append("-" + "v" * int(self.verbosity))
        return [*args, str(Path(self.playbook).resolve())]


# Options with which ansible-playbook runs in the foreground on the caller's terminal (run_direct): it asks there
# (--step) or only prints (listings, syntax check); no events, no fleet report.
DIRECT_OPTIONS = frozenset({"--step", "--list-hosts", "--list-tasks", "--list-tags", "--syntax-check"})


def run_direct(playbook: str | os.PathLike[str], inventory: str | os.PathLike[str] | Sequence[str], *,
               limit: str | None = None, tags: str | None = None, skip_tags: str | None = None, check: bool = False,
               extravars: Mapping[str, Any] | None = None, forks: int | None = None, extra_files: Sequence[str] = (),
               extra_args: Sequence[str] = (), diff: bool = False, verbosity: int | None = None,
               envvars: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None,
               cwd: str | os.PathLike[str] | None = None, repo: Path = REPO) -> int:
    """ansible-playbook on this terminal (its prompts and output are the user's), same options and environment as
    :func:`run_playbook`; returns its exit status (99 when Ctrl-C stopped it)."""
    plain, hidden = redact.split_secrets(extravars or {})
    env = {**os.environ, **runner_envvars(envvars, repo)}
    env.pop("ANSIBLE_NOCOLOR", None)
    env.pop("ANSIBLE_FORCE_COLOR", None)
    exe = Path(sys.executable).parent / "ansible-playbook"
    with secret_vars_file({**hidden, **(secrets or {})}) as secret_file:
        spec = _RunSpec(playbook=playbook, inventory=inventory, limit=limit, tags=tags, skip_tags=skip_tags,
                        forks=forks, verbosity=verbosity, extravars=plain,
                        cmdline=build_cmdline(check, diff, [*extra_files, *([secret_file] if secret_file else [])],
                                              extra_args))
        proc = subprocess.Popen([str(exe) if exe.exists() else "ansible-playbook", *spec.argv()], env=env,
                                cwd=str(cwd or Path.cwd()))
        try:
            rc = proc.wait()
        except KeyboardInterrupt:        # the terminal's Ctrl-C reached ansible-playbook too: let it wind down
            rc = proc.wait()
    return EXIT_INTERRUPTED if rc < 0 else rc


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


def _run(spec: _RunSpec, on_event: EventHandler | None, *, envvars: Mapping[str, str] | None, pdd: Path,
         ident: str | None, cancel: Callable[[], bool] | None, passwords: Mapping[str, str] | None, cwd: Path,
         repo: Path) -> RunResult:
    import ansible_runner

    env = runner_envvars(envvars, repo)
    tap = _EventTap(on_event)
    started, wall = time.monotonic(), time.time()
    r = ansible_runner.run(
        private_data_dir=str(pdd),
        ident=ident or new_ident(spec.playbook),
        # ansible-runner starts ansible-playbook in project_dir: the caller's folder, as if typed there
        project_dir=str(cwd),
        playbook=str(Path(spec.playbook).resolve()),
        inventory=spec.inventories(),
        limit=spec.limit,
        tags=spec.tags,
        skip_tags=spec.skip_tags,
        forks=spec.forks,
        verbosity=spec.verbosity,
        extravars=dict(spec.extravars) if spec.extravars else None,
        cmdline=spec.cmdline,
        envvars=env,
        # not 'jsonfile': ansible-runner would then point the fact cache into its artifacts; the run keeps the cache
        # its ansible.cfg names (the repo's: a jsonfile cache that --limit runs and the report read)
        fact_cache_type="config",
        passwords=dict(passwords) if passwords else None,
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
        no_hosts=tap.first_play_empty, started=wall, recap=tap.recap,
    )
