"""Install, keep and roll back ops-transformer custom operator packages (.run) on a host.

Standard library only (shipped as ``plugins/module_utils/fa_install_lib.py``). The module ``fa_install`` is a thin
wrapper; tests drive :class:`Installer` directly with a fake command runner.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.request

from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import (
    kernel_problems,
    manifest_entry,
    package_state,
    read_load_priority,
    read_manifest,
    read_verify_record,
    sha256_file,
    tree_digest,
    verified_entry,
    write_json_atomic,
)


class InstallError(Exception):
    def __init__(self, msg: str, **extra):
        super().__init__(msg)
        self.extra = extra


class FetchError(Exception):
    """A pull that did not give the package (refused connection, HTTP error, timeout, wrong size or sha256)."""


TRANSFER_DIR_PREFIX = "ansible-tmp-"
FETCH_CHUNK = 1 << 20


def transfer_dir(params: dict) -> str | None:
    """The action plugin's temporary folder holding ``package``, when it is one (``ansible-tmp-*``, contains it)."""
    folder, package = params.get("_transfer_dir"), params.get("package")
    if not folder or not package:
        return None
    folder = os.path.abspath(folder)
    if not os.path.basename(folder).startswith(TRANSFER_DIR_PREFIX):
        return None
    if os.path.dirname(os.path.abspath(package)) != folder:
        return None
    return folder


def remove_transfer_dir(folder: str | None) -> bool:
    if not folder:
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return not os.path.exists(folder)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The seed serves the file itself: a redirect is not followed anywhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused", headers, fp)


def _stream(resp, out, sha: str, size: int) -> None:
    """Copy the body of ``resp`` into ``out``: at most ``size`` bytes, exactly ``size``, with sha256 ``sha``."""
    length = resp.headers.get("Content-Length")
    if length is not None and length.strip() != str(size):
        raise FetchError(f"the server announces {length} bytes, the controller's signed record says {size}")
    digest, got = hashlib.sha256(), 0
    while True:
        chunk = resp.read(min(FETCH_CHUNK, size + 1 - got))
        if not chunk:
            break
        got += len(chunk)
        if got > size:
            raise FetchError(f"the body is larger than the {size} bytes of the controller's signed record: refused")
        digest.update(chunk)
        out.write(chunk)
    if got != size:
        raise FetchError(f"the body ended after {got} of {size} bytes")
    if digest.hexdigest() != sha:
        raise FetchError(f"what it served has sha256 {digest.hexdigest()}, the controller's signed record says {sha} "
                         "(the served copy is corrupted or was replaced): refused, not installed")


def download(url: str, folder: str, sha: str, size: int, timeout: float) -> str:
    """Pull ``url`` into a private temporary file in ``folder`` (0600, this user's): at most ``size`` bytes, then
    its size and sha256 checked against the controller's signed record. No proxy (an address of the cluster) and no
    redirect. Returns the file; raises FetchError and leaves no file on any failure."""
    if not re.match(r"\Ahttps?://[^\s]+\Z", url or ""):
        raise FetchError("not an http:// or https:// URL")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{sha[:16]}.", suffix=".pull", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "ascend-fa"})
            with opener.open(request, timeout=timeout) as resp:
                _stream(resp, out, sha, size)
        return tmp
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, FetchError):
            raise
        if isinstance(exc, urllib.error.HTTPError):
            raise FetchError(f"HTTP {exc.code} {exc.reason}") from exc
        if isinstance(exc, urllib.error.URLError):
            raise FetchError(f"cannot connect: {exc.reason}") from exc
        if isinstance(exc, (OSError, http.client.HTTPException, ValueError)):
            raise FetchError(f"{type(exc).__name__}: {exc}") from exc
        raise


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tail(text: str, lines: int = 30) -> str:
    return "\n".join((text or "").rstrip().splitlines()[-lines:])


def sourced(scripts: list[str], command: str) -> str:
    """A bash command line that sources ``scripts`` (quietly tolerating unset variables) then runs ``command``."""
    parts = [f"source {shlex.quote(s)} >/dev/null" for s in scripts if s]
    return "; ".join(["set -e"] + parts + [command])


def set_load_priority_first(config_ini: str, vendor: str) -> None:
    """Put ``vendor`` first in ``load_priority=`` (what the package's install.sh does without --install-path)."""
    lines: list[str] = []
    found = False
    if os.path.isfile(config_ini):
        with open(config_ini, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("load_priority="):
            names = [n for n in line.split("=", 1)[1].split(",") if n.strip() and n.strip() != vendor]
            lines[i] = "load_priority=" + ",".join([vendor] + names)
            found = True
    if not found:
        lines.append(f"load_priority={vendor}")
    with open(config_ini, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(config_ini, 0o640)


def remove_from_load_priority(config_ini: str, vendor: str) -> None:
    if not os.path.isfile(config_ini):
        return
    with open(config_ini, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    out = []
    for line in lines:
        if line.strip().startswith("load_priority="):
            names = [n for n in line.split("=", 1)[1].split(",") if n.strip() and n.strip() != vendor]
            if not names:
                continue
            line = "load_priority=" + ",".join(names)
        out.append(line)
    with open(config_ini, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + ("\n" if out else ""))


class Installer:
    """One host's package state. ``run(cmd_str) -> (rc, out, err)`` runs a bash command line."""

    def __init__(self, params: dict, run, check_mode: bool = False):
        self.p = params
        self.run = run
        self.check_mode = check_mode
        self.state_dir = params["state_dir"]
        self.pkg_dir = os.path.join(self.state_dir, "packages")
        self.messages: list[str] = []
        # how the installed package reached the host: kept, pulled (fetch_url), pushed or given (see present())
        self.source: str | None = None

    # --- environment ----------------------------------------------------------------------------
    def opp_path(self) -> str:
        if self.p.get("install_path"):
            return self.p["install_path"]
        rc, out, err = self.run(sourced(self.p["set_env"], 'printf "%s" "${ASCEND_OPP_PATH:-}"'))
        if rc != 0 or not out.strip():
            raise InstallError(f"ASCEND_OPP_PATH is not set after sourcing {', '.join(self.p['set_env'])}: "
                               f"{tail(err or out, 5)}. Fix: check the CANN install (set_env.sh) or set fa_install_path")
        return out.strip().splitlines()[-1]

    def vendor_dir(self, opp: str) -> str:
        return os.path.join(opp, "vendors", self.p["vendor_dir_name"])

    # --- decisions ------------------------------------------------------------------------------
    def current(self) -> dict | None:
        return read_manifest(self.state_dir)

    def is_converged(self, manifest: dict | None) -> bool:
        if not manifest or self.p.get("force"):
            return False
        if manifest.get("sha256") != self.p["sha256"] or manifest.get("build_key") != self.p["meta"].get("build_key"):
            return False
        st = package_state(manifest, self.p["meta"].get("cann_version"), self.p["meta"].get("cann_install_time"))
        if st["state"] != "installed":
            return False
        if "install_for_all" in manifest and bool(manifest["install_for_all"]) != bool(self.p.get("install_for_all")):
            return False   # fa_install_for_all changed: install again with (or without) --install-for-all
        return self.registration_ok(manifest)

    def registration_ok(self, manifest: dict) -> bool:
        conf = self.p["ldconfig_file"]
        want = self.ld_conf_text(manifest["vendor_dir"])
        try:
            with open(conf, encoding="utf-8") as fh:
                if fh.read() != want:
                    return False
        except OSError:
            return False
        return os.path.isfile(os.path.join(self.state_dir, "set_env.bash"))

    # --- actions --------------------------------------------------------------------------------
    def kept_path(self, sha: str) -> str:
        return os.path.join(self.pkg_dir, f"{sha}.run")

    def resolve_package(self, package: str | None, sha: str) -> str:
        """The file to install: ``package`` when it is on the host, else the kept copy ``packages/<sha>.run``, else
        the package pulled from ``fetch_url`` (``self.source`` says which: given, kept or pulled)."""
        if package and os.path.isfile(package):
            self.source = "given"
            return package
        kept = self.kept_path(sha)
        if os.path.isfile(kept) and sha256_file(kept) == sha:
            self.source = "kept"
            return kept
        why = "a corrupted kept copy" if os.path.isfile(kept) else "no kept copy"
        extra: dict = {}
        if self.p.get("fetch_url"):
            try:
                pulled = self.pull(sha)
            except FetchError as exc:
                extra["fetch_error"] = f"pulling {self.p['fetch_url']} failed: {exc}"
                why += f"; {extra['fetch_error']}"
            else:
                self.source = "pulled"
                return pulled
        raise InstallError(f"package {sha} is not on the host ({f'no {package}, ' if package else ''}{why} "
                           f"{kept}) and what is installed is not this package, intact. Fix: give src (the "
                           "fa_install action transfers the .run from the controller) or rerun the deploy",
                           package_needed=True, **extra)

    def pull(self, sha: str) -> str:
        """The package downloaded from ``fetch_url`` into ``packages/`` (a private temporary file, checked)."""
        size = self.p.get("size")
        if not isinstance(size, int) or size < 0:
            raise FetchError("the package's size (from the controller's signed record) was not given")
        return download(self.p["fetch_url"], self.pkg_dir, sha, size, float(self.p.get("fetch_timeout") or 60))

    def verify_checksum(self, package: str, sha: str) -> None:
        if not os.path.isfile(package):
            raise InstallError(f"package {package} is not on the host. Fix: rerun the deploy (fa_install's src "
                               "transfers it)", package_needed=True)
        got = sha256_file(package)
        if got != sha:
            raise InstallError(f"checksum mismatch for {package}: expected sha256 {sha}, found {got}. The artifact was "
                               "corrupted or tampered with; nothing was installed. Fix: delete the cached artifact on "
                               "the controller and rerun to rebuild it", expected=sha, found=got)

    def require_trusted(self, package: str, sha: str) -> None:
        """Run ``package`` only when its sha256 is one the controller signed: ``trusted_sha256`` (the rollbacks give the
        sha256s of the signed records in the controller's artifact cache, ascend_fa/trust.py). Not given: not checked
        (state=present: the fa_install action checked the signed record right before the transfer)."""
        trusted = self.p.get("trusted_sha256")
        if trusted is None or sha in trusted:
            return
        raise InstallError(f"kept package {package} (sha256 {sha}) is not one the controller built and signed (it is not "
                           f"among the {len(trusted)} signed record(s) of its artifact cache): not run, nothing was "
                           "changed. Fix: deploy a release from the controller's cache instead (-e fa_recipe=...), or "
                           "restore that release's cache entry; see docs/security.md", untrusted_sha256=sha)

    def ld_conf_text(self, vendor_dir: str) -> str:
        dirs = [os.path.join(vendor_dir, d) for d in self.p["ld_library_dirs"]]
        # ld.so.conf has no quoting: a folder is one line of a strict charset (no newline, space, '#', ':' or ',')
        bad = [d for d in dirs if not LD_DIR_RE.match(d) or ".." in d.split("/")]
        if bad:
            raise InstallError(f"library folder(s) {bad!r} cannot be written to {self.p['ldconfig_file']}: an absolute "
                               "path of letters, digits and . _ / + - is needed. Fix: correct the recipe's "
                               "ld_library_dirs and fa_install_path; nothing was registered")
        return "# managed by ascend-fa: FlashAttention custom operator package\n" + "\n".join(dirs) + "\n"

    def set_env_text(self, vendor_dir: str) -> str:
        lines = ["# managed by ascend-fa: source this before starting a torch_npu process",
                 "# (ASCEND_CUSTOM_OPP_PATH is read when CANN initialises: it must be set before the process starts)"]
        for script in self.p["set_env"]:
            lines.append(f"[ -f {shlex.quote(script)} ] && source {shlex.quote(script)}")
        pkg_env = os.path.join(vendor_dir, self.p.get("package_set_env") or "bin/set_env.bash")
        if self.p.get("install_path"):
            lines.append(f"[ -f {shlex.quote(pkg_env)} ] && source {shlex.quote(pkg_env)}")
        for d in self.p["ld_library_dirs"]:
            lines.append(f'export LD_LIBRARY_PATH={shlex.quote(os.path.join(vendor_dir, d))}:"${{LD_LIBRARY_PATH:-}}"')
        return "\n".join(lines) + "\n"

    def backup(self, vendor_dir: str, config_ini: str) -> dict:
        bdir = os.path.join(self.state_dir, "backup")
        if os.path.isdir(bdir):
            shutil.rmtree(bdir)
        os.makedirs(bdir)
        saved = {"vendor": None, "config": None}
        if os.path.isdir(vendor_dir):
            saved["vendor"] = os.path.join(bdir, "vendor")
            shutil.copytree(vendor_dir, saved["vendor"], symlinks=True)
        if os.path.isfile(config_ini):
            saved["config"] = os.path.join(bdir, "config.ini")
            shutil.copy2(config_ini, saved["config"])
        return saved

    def restore(self, saved: dict, vendor_dir: str, config_ini: str) -> None:
        if os.path.isdir(vendor_dir):
            shutil.rmtree(vendor_dir)
        if saved.get("vendor"):
            shutil.copytree(saved["vendor"], vendor_dir, symlinks=True)
        if saved.get("config"):
            shutil.copy2(saved["config"], config_ini)

    def installer_flags(self) -> list[str]:
        """The recipe's flags, ``--install-for-all`` when asked (install.sh v9.0.1 parses it: config.ini 755,
        ascend-facts.md 8.1 / 9.4) and ``--install-path=`` when set. Never ``--force``: v9.0.1's install.sh has none
        (it ignores any other ``--*``)."""
        flags = [f for f in self.p["flags"] if f != "--force"]
        if self.p.get("install_for_all") and INSTALL_FOR_ALL not in flags:
            flags.append(INSTALL_FOR_ALL)
        if not self.p.get("install_for_all"):
            flags = [f for f in flags if f != INSTALL_FOR_ALL]
        if self.p.get("install_path"):
            flags.append(f"--install-path={self.p['install_path']}")
        return flags

    def run_installer(self, package: str) -> str:
        flags = self.installer_flags()
        cmd = sourced(self.p["set_env"], " ".join([shlex.quote(package)] + [shlex.quote(f) for f in flags]))
        rc, out, err = self.run(cmd)
        text = (out or "") + (err or "")
        if rc != 0 or (self.p.get("success_marker") and self.p["success_marker"] not in text):
            raise InstallError(f"installer {os.path.basename(package)} {' '.join(flags)} failed (rc={rc}): "
                               f"{tail(text, 15)}", installer_output=tail(text, 60))
        return text

    def register(self, vendor_dir: str) -> None:
        conf = self.p["ldconfig_file"]
        os.makedirs(os.path.dirname(conf), exist_ok=True)
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write(self.ld_conf_text(vendor_dir))
        rc, out, err = self.run("ldconfig")
        if rc != 0:
            raise InstallError(f"ldconfig failed: {tail(err or out, 5)}")
        with open(os.path.join(self.state_dir, "set_env.bash"), "w", encoding="utf-8") as fh:
            fh.write(self.set_env_text(vendor_dir))

    def check_libraries(self, vendor_dir: str) -> None:
        missing = [lib for lib in self.p["libraries"] if not os.path.isfile(os.path.join(vendor_dir, lib))]
        if missing:
            raise InstallError(f"installer reported success but {', '.join(missing)} is missing under {vendor_dir}")

    def kernel_record(self) -> dict | bool:
        """What the manifest records of the kernels this package must have (``False``: not checked)."""
        fam = (self.p.get("meta") or {}).get("soc_family")
        if not self.p.get("check_kernels", True) or not fam:
            return False
        return {"soc_family": fam, "ops": list(self.p.get("kernel_ops") or [])}

    def check_kernels(self, vendor_dir: str) -> None:
        """The kernel binaries and configs for the host's SoC family are there (else the aclnn call fails with
        "EZ9999 ... Cannot find bin of op", ascend-facts.md 9.5): raises, so the install is undone."""
        rec = self.kernel_record()
        if not rec:
            return
        missing = kernel_problems(vendor_dir, rec["soc_family"], rec["ops"])
        if missing:
            raise InstallError(f"the package installed but cannot run on this host's SoC ({rec['soc_family']}): "
                               f"{'; '.join(missing)}. The previous tree was restored. Fix: build for --soc="
                               f"{rec['soc_family']} (the build key has the host's SoC family: delete this build's "
                               "cache entry and rerun the deploy), or check that the recipe's build command makes "
                               "kernel binaries (--pkg, not --jit)", kernels_missing=missing)

    def ensure_vendor_first(self, config_ini: str) -> None:
        """install.sh v9.0.1 rewrites load_priority only when other vendors remain on the line, and leaves a
        config.ini without that line as it is (cmake/scripts/custom/install.sh; ascend-facts 9.4): a line emptied by
        hand or by another tool stays empty after a reinstall, and op-plugin never looks at our vendor. Put it
        first ourselves, and say so."""
        vendor = self.p["vendor_dir_name"]
        try:
            order = read_load_priority(config_ini)
        except OSError:
            order = None
        if order and order[0] == vendor:
            return
        set_load_priority_first(config_ini, vendor)
        self.messages.append(f"{config_ini}: load_priority was {','.join(order) if order else '(no vendor)'} after "
                             f"the package's install.sh; put {vendor} first (op-plugin loads vendors in that order)")

    def open_for_all(self, vendor_dir: str, config_ini: str | None) -> dict:
        """With ``install_for_all``: make the vendor tree readable (folders also searchable) by every user, and
        config.ini readable, so a non-root torch_npu process finds the vendor (op-plugin reads config.ini and dlopens
        the library as the process's user, ascend-facts.md 9.1). install.sh v9.0.1 --install-for-all only chmods
        config.ini; the tree keeps the modes of the archive and root's umask. CANN's own folders above the vendor are
        never changed: those not searchable by others are reported. Without it: the root-only warning."""
        if not self.p.get("install_for_all"):
            return {"for_all": False, "opened": 0, "blocked": []}
        opened = 0
        targets = [vendor_dir] + ([config_ini] if config_ini and os.path.isfile(config_ini) else [])
        for top in targets:
            for path in _tree(top):
                opened += _add_other_read(path)
        blocked = [d for d in _ancestors(vendor_dir) if not _others_can(d, stat.S_IXOTH)]
        return {"for_all": True, "opened": opened, "blocked": blocked}

    def access_warnings(self, access: dict) -> list[str]:
        if not access.get("for_all"):
            return [f"fa_install_for_all is false: {self.vendor_dir_hint()} and vendors/config.ini stay readable by "
                    "root only (install.sh without --install-for-all: config.ini mode 640), so a non-root training "
                    "process finds no vendor and falls back to CANN's built-in kernel, or to none. Fix: leave "
                    "fa_install_for_all true, or run torch_npu as root"]
        if access.get("blocked"):
            return [f"other users cannot enter {', '.join(access['blocked'])} (no o+x): a non-root process cannot "
                    "reach the package below it. Fix: chmod o+x those folders (CANN's install decides their modes)"]
        return []

    def vendor_dir_hint(self) -> str:
        return f"vendors/{self.p['vendor_dir_name']}"

    def keep_package(self, package: str, sha: str, move: bool = False) -> str:
        """Keep ``package`` as ``packages/<sha>.run``: moved when ``move`` (a transferred temporary file), else copied."""
        os.makedirs(self.pkg_dir, exist_ok=True)
        kept = self.kept_path(sha)
        if os.path.abspath(package) != os.path.abspath(kept):
            partial = f"{kept}.partial"
            try:
                if move:
                    shutil.move(package, partial)   # a rename on the same file system, else copy + remove
                else:
                    shutil.copy2(package, partial)
                os.replace(partial, kept)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.remove(partial)
                raise InstallError(f"cannot keep the package as {kept}: {exc}; nothing was installed. Fix: free space "
                                   f"in {self.pkg_dir} (or set fa_state_dir on a larger file system) and rerun") from exc
        # a transferred file belongs to the SSH user (ops with become): the kept copy, which a rollback later runs as
        # root, must belong to the installing user (root), as after a root login, or that SSH user could swap it
        st = os.stat(kept)
        if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            os.chown(kept, os.geteuid(), os.getegid())
        os.chmod(kept, 0o755)
        return kept

    def prune(self, keep: set[str]) -> None:
        if not os.path.isdir(self.pkg_dir):
            return
        for name in os.listdir(self.pkg_dir):
            path = os.path.join(self.pkg_dir, name)
            # *.pull: a download a killed run left behind (pulls happen under the host lock, so none is in flight)
            if (name.endswith(".run") and path not in keep) or (name.startswith(".") and name.endswith(".pull")):
                os.remove(path)

    def history(self, entry: dict) -> None:
        with open(os.path.join(self.state_dir, "history.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")

    # --- entry points ---------------------------------------------------------------------------
    def present(self, package: str | None, sha: str, meta: dict, move: bool = False) -> tuple[bool, dict | None]:
        """state=present: nothing when converged, else install ``package`` (or the kept copy of ``sha`` when
        ``package`` is not given or not on the host). Returns (changed, manifest)."""
        before = self.current()
        if self.is_converged(before):
            return False, before
        if self.check_mode:
            return True, {"would_install": package or self.kept_path(sha), "previous": before}
        source = self.resolve_package(package, sha)
        if move and self.source == "given":
            self.source = "pushed"    # the action plugin's transferred copy
        pulled = self.source == "pulled"
        try:
            return True, self.install(source, sha, meta, move=(move and source == package) or pulled)
        finally:
            if pulled:
                with contextlib.suppress(OSError):
                    os.remove(source)   # moved into packages/<sha>.run, unless the install stopped before

    def install(self, package: str, sha: str, meta: dict, reason: str = "install", move: bool = False) -> dict:
        """Install ``package`` (sha256 ``sha``); on any failure restore what was there. Returns the new manifest.
        ``move``: ``package`` is a temporary copy, moved (not copied) to ``packages/<sha>.run``."""
        self.require_trusted(package, sha)
        old = self.current()
        if self.check_mode:
            return {"would_install": package, "previous": old}
        self.verify_checksum(package, sha)
        os.makedirs(self.state_dir, exist_ok=True)
        kept = self.keep_package(package, sha, move=move)
        opp = self.opp_path()
        vendor_dir = self.vendor_dir(opp)
        config_ini = os.path.join(opp, "vendors", "config.ini")
        try:
            saved = self.backup(vendor_dir, config_ini)
        except OSError as exc:
            shutil.rmtree(os.path.join(self.state_dir, "backup"), ignore_errors=True)
            raise InstallError(f"cannot back up {vendor_dir} before installing: {exc}; nothing was installed. Fix: free "
                               f"space in {self.state_dir} and rerun") from exc
        started = now_iso()
        try:
            output = self.run_installer(kept)
            self.check_libraries(vendor_dir)
            self.check_kernels(vendor_dir)
            if not self.p.get("install_path"):
                self.ensure_vendor_first(config_ini)
            access = self.open_for_all(vendor_dir, None if self.p.get("install_path") else config_ini)
            self.register(vendor_dir)
        except (InstallError, OSError) as exc:
            self.restore(saved, vendor_dir, config_ini)
            if old and os.path.isdir(old.get("vendor_dir") or ""):
                self.register(old["vendor_dir"])
            self.run("ldconfig")
            if isinstance(exc, InstallError):
                raise
            raise InstallError(f"installing {os.path.basename(package)} failed: {exc}; the previous tree was restored. "
                               "Fix: free space or fix permissions there and rerun") from exc
        previous = manifest_entry(old) if old else None
        if previous and previous.get("sha256") == sha:
            previous = old.get("previous")
        manifest = {
            **meta, "sha256": sha, "package": kept, "vendor": self.p["vendor"], "vendor_dir": vendor_dir,
            "install_path": opp, "tree_sha256": tree_digest(vendor_dir), "installed_at": now_iso(),
            "started_at": started, "previous": previous, "reason": reason,
            "installer_success": "SUCCESS" in output, "kernels": self.kernel_record(),
            "install_for_all": bool(access["for_all"]), "installer_flags": self.installer_flags(),
            "package_source": self.source or "kept",
        }
        if self.source == "pulled":
            manifest["package_url"] = self.p.get("fetch_url")
        self.messages.extend(self.access_warnings(access))
        write_json_atomic(os.path.join(self.state_dir, "manifest.json"), manifest)
        # kept: this package, the previous one (rollback_fa.yml) and the last one that passed verification here
        # (the rollout's rollback target until a newer package passes)
        self.prune({kept} | ({previous["package"]} if previous and previous.get("package") else set())
                   | self.verified_packages())
        # before the fa_install action plugin, the role copied packages to <state_dir>/incoming/: not used any more
        shutil.rmtree(os.path.join(self.state_dir, "incoming"), ignore_errors=True)
        self.history({"time": manifest["installed_at"], "action": reason, "to": meta.get("recipe"),
                      "to_sha256": sha, "from": (old or {}).get("recipe"), "from_sha256": (old or {}).get("sha256"),
                      "result": "ok"})
        return manifest

    def rollback(self) -> tuple[bool, dict | None]:
        """Back to the previous package (checksum-verified), or remove ours when there was none."""
        cur = self.current()
        if not cur:
            return False, None
        prev = cur.get("previous")
        if prev and prev.get("package") and os.path.isfile(prev["package"]):
            return True, self.restore_entry(prev, prev["package"])
        if self.check_mode:
            return True, {"would_remove": cur.get("vendor_dir")}
        self.uninstall(cur)
        return True, None

    def restore_entry(self, entry: dict, package: str) -> dict:
        """Install ``package``, the kept copy of the manifest entry ``entry`` (a "previous" or "verified" one), as a
        rollback: its own metadata, with today's CANN (the one it is now installed against, not that of its first
        install). Returns the new manifest (``would_restore`` in check mode)."""
        meta = {k: entry.get(k) for k in META_KEYS}
        meta.update({k: self.p["meta"][k] for k in ("cann_version", "cann_install_time") if self.p["meta"].get(k)})
        if self.check_mode:
            return {"would_restore": entry.get("recipe")}
        return self.install(package, entry["sha256"], meta, reason="rollback")

    def verified_packages(self) -> set[str]:
        entry = verified_entry(read_verify_record(self.state_dir))
        return {entry.get("package") or self.kept_path(entry["sha256"])} if entry else set()

    def _full_entry(self, entry: dict, cur: dict) -> dict:
        """``entry`` with its manifest keys; a record written before "verified" existed has only sha256 and recipe:
        the current manifest's "previous" of the same package fills them in."""
        prev = cur.get("previous") or {}
        if not entry.get("build_key") and prev.get("sha256") == entry["sha256"]:
            return {**prev, **{k: v for k, v in entry.items() if v is not None}}
        return entry

    def rollback_to_verified(self) -> tuple[bool, dict | None, str]:
        """Back to the last package that passed verification on this host (verify.json "verified"; its kept copy,
        checksum-verified), or remove ours when none ever passed. Nothing when the installed package is that one.
        Returns (changed, manifest, what happened)."""
        cur = self.current()
        if not cur:
            return False, None, "no ascend-fa package on this host: nothing to roll back"
        target = verified_entry(read_verify_record(self.state_dir))
        if target and target["sha256"] == cur.get("sha256"):
            return False, cur, (f"{cur.get('recipe')}, the package installed now, is the last one that passed "
                                "verification on this host: nothing older and verified to go back to, so it stays")
        if not target:
            if self.check_mode:
                return True, {"would_remove": cur.get("vendor_dir")}, "would remove: no package passed verification here"
            self.uninstall(cur)
            return True, None, "no package ever passed verification on this host: ascend-fa's package was removed"
        target = self._full_entry(target, cur)
        package = target.get("package") or self.kept_path(target["sha256"])
        if not os.path.isfile(package):
            raise InstallError(f"the last package that passed verification here ({target.get('recipe')}, sha256 "
                               f"{target['sha256'][:12]}) is no longer kept at {package}: not rolled back. Fix: deploy "
                               f"that release again (-e fa_recipe={target.get('recipe')})")
        manifest = self.restore_entry(target, package)
        verb = "would roll back" if self.check_mode else "rolled back"
        return True, manifest, f"{verb} to {target.get('recipe')}, the last package that passed verification here"

    def uninstall(self, cur: dict) -> None:
        vendor_dir = cur.get("vendor_dir") or ""
        if os.path.isdir(vendor_dir):
            shutil.rmtree(vendor_dir)
        remove_from_load_priority(os.path.join(os.path.dirname(vendor_dir), "config.ini"),
                                  os.path.basename(vendor_dir))
        for path in (self.p["ldconfig_file"], os.path.join(self.state_dir, "set_env.bash"),
                     os.path.join(self.state_dir, "manifest.json")):
            if os.path.exists(path):
                os.remove(path)
        self.run("ldconfig")
        self.history({"time": now_iso(), "action": "remove", "from": cur.get("recipe"),
                      "from_sha256": cur.get("sha256"), "result": "ok"})


LOCK_NAME = ".lock"


@contextlib.contextmanager
def host_lock(state_dir: str, timeout: float = 600.0, poll: float = 1.0):
    """Hold ``<state_dir>/.lock`` (flock) while packages change: a second ascend-fa run on the same host (another
    controller, a concurrent forced install) waits up to ``timeout`` seconds, then fails naming the holder, instead of
    two installers racing on one vendor tree ("Directory not empty"). The kernel drops the lock when the holder dies."""
    os.makedirs(state_dir, exist_ok=True)
    fd = os.open(os.path.join(state_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                    raise InstallError(f"another ascend-fa run holds {os.path.join(state_dir, LOCK_NAME)} ({holder}) "
                                       f"after {timeout:.0f}s of waiting: nothing was changed. Fix: let that run finish, "
                                       "then rerun") from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {now_iso()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _tree(top: str):
    """``top`` and, when it is a folder, everything under it (links are not followed and not changed)."""
    if os.path.islink(top):
        return
    yield top
    if os.path.isdir(top):
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    yield path


def _add_other_read(path: str) -> int:
    """o+r on a file, o+rx on a folder (like ``chmod o+rX``); 1 when the mode changed."""
    mode = os.lstat(path).st_mode
    want = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    if (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) and mode & want != want:
        os.chmod(path, stat.S_IMODE(mode) | want)
        return 1
    return 0


def _ancestors(path: str) -> list[str]:
    out = []
    cur = os.path.dirname(os.path.abspath(path))
    while cur and cur != os.path.dirname(cur):
        out.append(cur)
        cur = os.path.dirname(cur)
    return list(reversed(out))


def _others_can(path: str, bit: int) -> bool:
    try:
        return bool(os.stat(path).st_mode & bit)
    except OSError:
        return False


INSTALL_FOR_ALL = "--install-for-all"
VENDOR_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
LD_DIR_RE = re.compile(r"\A/[A-Za-z0-9._/+-]+\Z")   # one line of an ld.so.conf file
META_KEYS = ("recipe", "tag", "commit", "build_key", "soc_family", "cann_version", "arch", "cann_install_time")
