"""The fa_install action plugin: when it transfers the package, and what one task costs in remote executions.

The plugin runs here with a fake connection: the "remote" is this machine's file system, a transfer is a local copy
and the module runs in-process (library/fa_install.py's ``execute``), so the test sees the real module decisions.
The package comes from a controller cache entry whose record is signed with a test key (ascend_fa/trust.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from ansible_collections.ascend.fa.plugins.modules import fa_install as fa_install_module
from ansible_collections.ascend.fa.plugins.plugin_utils import trust

ROOT = Path(__file__).resolve().parents[2]
TEST_KEY = "t" * 40
from ansible_collections.ascend.fa.plugins.action import fa_install as action

SHA = "a" * 64
OTHER = "b" * 64


def facts(sha=None, previous=None):
    manifest = None if sha is None else {"sha256": sha, "previous": previous and {"sha256": previous}}
    return {"ascend": {"fa_package": manifest}}


# --- the decision -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,host_facts,check,want", [
    ({"src": "/c/p.run", "sha256": SHA}, facts(), False, True),                         # fresh host
    ({"src": "/c/p.run", "sha256": SHA}, None, False, True),                            # no facts at all
    ({"src": "/c/p.run", "sha256": SHA}, facts(OTHER), False, True),                    # upgrade
    ({"src": "/c/p.run", "sha256": SHA}, facts(SHA), False, False),                     # same package installed
    ({"src": "/c/p.run", "sha256": SHA, "force": True}, facts(SHA), False, False),      # force: the kept copy serves
    ({"src": "/c/p.run", "sha256": SHA}, facts(OTHER, previous=SHA), False, False),     # back to the previous one
    ({"src": "/c/p.run", "sha256": SHA}, facts(OTHER), True, False),                    # check mode
    ({"sha256": SHA, "package": "/h/p.run"}, facts(), False, False),                    # no src
    ({"state": "previous"}, facts(SHA), False, False),                                  # rollback
])
def test_transfer_decision(args, host_facts, check, want):
    transfer, why = action.transfer_decision(args, host_facts, check)
    assert transfer is want and why


def test_kept_sha256s_tolerates_odd_facts():
    assert action.kept_sha256s(None) == set()
    assert action.kept_sha256s({"ascend": {"fa_package": None}}) == set()
    assert action.kept_sha256s({"ascend": {"fa_package": "junk"}}) == set()
    assert action.kept_sha256s(facts(SHA, previous=OTHER)) == {SHA, OTHER}


# --- the plugin with a fake connection ----------------------------------------------------------------------------
FAKE_RUN = """#!/bin/bash
set -e
V=$ASCEND_OPP_PATH/vendors/ascendfa_transformer
rm -rf "$V"; mkdir -p "$V/op_api/lib"; echo lib > "$V/op_api/lib/libcust_opapi.so"
echo SUCCESS
"""

DEFAULTS = {"state": "present", "package": None, "meta": {}, "flags": ["--quiet"], "install_path": "",
            "libraries": ["op_api/lib/libcust_opapi.so"], "ld_library_dirs": ["op_api/lib"],
            "package_set_env": "bin/set_env.bash", "success_marker": "SUCCESS", "force": False, "_transfer_dir": None}


class Harness:
    """An ActionModule whose remote side is ``root`` on this machine; ``calls`` counts the remote executions."""

    def __init__(self, root: Path):
        self.root = root
        (root / "opp/vendors").mkdir(parents=True)
        (root / "set_env.sh").write_text(f"export ASCEND_OPP_PATH={root / 'opp'}\n")
        self.src = root / "controller" / "cache" / "k1" / "cann-ops-transformer.run"
        self.src.parent.mkdir(parents=True)
        self.src.write_text(FAKE_RUN)
        self.sha = hashlib.sha256(self.src.read_bytes()).hexdigest()
        self.record = trust.sign({"file": self.src.name, "sha256": self.sha, "build_key": "k1", "recipe": "r"},
                                 TEST_KEY.encode())
        (self.src.parent / "artifact.json").write_text(json.dumps(self.record))
        self.calls: list[str] = []
        self.transferred: list[str] = []

    def args(self, **over) -> dict:
        a = {"src": str(self.src), "sha256": self.sha, "set_env": [str(self.root / "set_env.sh")],
             "vendor": "ascendfa", "vendor_dir_name": "ascendfa_transformer", "state_dir": str(self.root / "state"),
             "ldconfig_file": str(self.root / "ld.so.conf.d/ascend-fa.conf"), "meta": {"build_key": "k1"}}
        a.update(over)
        return a

    def plugin(self, args: dict, check_mode: bool = False):
        shell = SimpleNamespace(tmpdir=None, join_path=os.path.join)
        task = SimpleNamespace(args=args, action="fa_install", check_mode=check_mode, async_val=0)
        plugin = action.ActionModule(task, SimpleNamespace(_shell=shell), None, None, None)
        harness = self

        def make_tmp_path(*_a, **_k):
            harness.calls.append("mkdir")
            shell.tmpdir = str(harness.root / f"remote-tmp/ansible-tmp-{len(harness.calls)}-1-2")
            os.makedirs(shell.tmpdir)
            plugin._cleanup_remote_tmp = True
            return shell.tmpdir

        def transfer_file(local, remote):
            harness.calls.append("put")
            harness.transferred.append(local)
            shutil.copy(local, remote)
            return remote

        def execute_module(module_name=None, module_args=None, task_vars=None, **_k):
            harness.calls.append(f"module:{module_name}")
            params = {**DEFAULTS, **module_args}

            def run(cmd):
                if cmd == "ldconfig":
                    return 0, "", ""
                p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
                return p.returncode, p.stdout, p.stderr
            failed, result = fa_install_module.execute(params, run, check_mode)
            result.setdefault("changed", False)
            if failed:
                result["failed"] = True
            return result

        def remove_tmp_path(path, force=False):
            harness.calls.append("rm")
            shutil.rmtree(path)
            shell.tmpdir = None

        plugin._make_tmp_path = make_tmp_path
        plugin._transfer_file = transfer_file
        plugin._fixup_perms2 = lambda *a, **k: None
        plugin._execute_module = execute_module
        plugin._remove_tmp_path = remove_tmp_path
        plugin._find_needle = lambda _kind, path: path
        return plugin

    def host_facts(self) -> dict:
        manifest_file = self.root / "state/manifest.json"
        return {"ascend": {"fa_package": json.loads(manifest_file.read_text()) if manifest_file.exists() else None}}

    def task(self, check_mode: bool = False, **over) -> dict:
        self.calls.clear()
        return self.plugin(self.args(**over), check_mode).run(task_vars={"ansible_facts": self.host_facts()})


@pytest.fixture
def harness(tmp_path, monkeypatch):
    monkeypatch.setenv(trust.KEY_ENV, TEST_KEY)
    return Harness(tmp_path)


def test_install_transfers_once_and_leaves_no_tmp(harness):
    res = harness.task()
    assert not res.get("failed"), res
    assert res["changed"] and res["package_transferred"] is True
    assert harness.calls == ["mkdir", "put", "module:fa_install"]   # the module removed its transfer folder
    assert "transfer_dir_removed" not in res
    assert os.listdir(harness.root / "remote-tmp") == []
    assert (harness.root / f"state/packages/{harness.sha}.run").is_file()
    assert res["manifest"]["sha256"] == harness.sha


def test_converged_host_costs_one_module_run(harness):
    harness.task()
    res = harness.task()
    assert res["changed"] is False and res["package_transferred"] is False
    assert harness.calls == ["module:fa_install"]


def test_check_mode_transfers_nothing(harness):
    res = harness.task(check_mode=True)
    assert res["changed"] and res["package_transferred"] is False and "check mode" in res["transfer_reason"]
    assert harness.calls == ["module:fa_install"]
    assert not (harness.root / "state/manifest.json").exists()


def test_stale_facts_fall_back_to_a_transfer(harness):
    harness.task()
    os.remove(harness.root / f"state/packages/{harness.sha}.run")                   # the kept copy is gone
    (harness.root / "opp/vendors/ascendfa_transformer/op_api/lib/libcust_opapi.so").write_text("broken")
    res = harness.task()
    assert not res.get("failed"), res
    assert res["changed"] and res["package_transferred"] is True and "stale" in res["transfer_reason"]
    assert harness.calls == ["module:fa_install", "mkdir", "put", "module:fa_install"]


def test_plugin_removes_the_tmp_when_the_module_did_not(harness, monkeypatch):
    monkeypatch.setattr(fa_install_module, "remove_transfer_dir", lambda folder: False)
    res = harness.task()
    assert res["changed"] and harness.calls == ["mkdir", "put", "module:fa_install", "rm"]
    assert os.listdir(harness.root / "remote-tmp") == []


def test_rollback_passes_through_without_src(harness):
    harness.task()
    args = {k: v for k, v in harness.args(state="previous").items() if k not in ("src", "sha256")}
    harness.calls.clear()
    res = harness.plugin(args).run(task_vars={"ansible_facts": harness.host_facts()})
    assert res["changed"] and res["rolled_back"] and "package_transferred" not in res
    assert harness.calls == ["module:fa_install"]


@pytest.mark.parametrize("over,msg", [({"package": "/h/p.run"}, "mutually exclusive"),
                                      ({"state": "previous"}, "only used with state=present")])
def test_bad_combinations(harness, over, msg):
    with pytest.raises(action.AnsibleActionFail, match=msg):
        harness.task(**over)


# --- trust: the signed record is checked before anything reaches the host ---------------------------------------
EVIL = "#!/bin/bash\ntouch {marker}\necho SUCCESS\n"


def test_transfers_a_private_checked_copy_not_the_cache_file(harness):
    res = harness.task()
    assert not res.get("failed"), res
    (sent,) = harness.transferred
    assert sent != str(harness.src) and os.path.basename(sent) == harness.src.name
    assert not os.path.exists(sent)                 # the private copy is gone after the transfer


def test_tampered_cache_package_with_fixed_sha_is_refused_before_any_transfer(harness):
    marker = harness.root / "pwned"
    evil = EVIL.format(marker=marker)
    harness.src.write_text(evil)
    evil_sha = hashlib.sha256(evil.encode()).hexdigest()
    record = json.loads((harness.src.parent / "artifact.json").read_text())
    record["sha256"] = evil_sha                      # the attacker fixes the sha256 next to the file
    (harness.src.parent / "artifact.json").write_text(json.dumps(record))
    with pytest.raises(action.AnsibleActionFail, match="refused, nothing was transferred.*does not match"):
        harness.task(sha256=evil_sha)
    assert harness.calls == [] and not marker.exists()
    assert not (harness.root / "state").exists()


def test_unsigned_or_foreign_record_is_refused(harness, monkeypatch):
    monkeypatch.setenv(trust.KEY_ENV, "another-controller-" + "k" * 32)
    with pytest.raises(action.AnsibleActionFail, match="signature"):
        harness.task()
    monkeypatch.setenv(trust.KEY_ENV, TEST_KEY)
    (harness.src.parent / "artifact.json").unlink()
    with pytest.raises(action.AnsibleActionFail, match="no readable artifact.json"):
        harness.task()
    assert harness.calls == []


def test_sha256_argument_must_be_the_signed_one(harness):
    with pytest.raises(action.AnsibleActionFail, match="the signed record says"):
        harness.task(sha256="c" * 64)
    assert harness.calls == []


def test_package_replaced_after_the_record_check_is_caught_on_the_private_copy(harness, monkeypatch):
    real = action.signed_record

    def check_then_swap(source, sha):                 # the file changes between the check and the transfer
        rec = real(source, sha)
        harness.src.write_text(EVIL.format(marker=harness.root / "pwned"))
        return rec
    monkeypatch.setattr(action, "signed_record", check_then_swap)
    with pytest.raises(action.AnsibleActionFail, match="corrupted or replaced after it was signed"):
        harness.task()
    assert "put" not in harness.calls and not (harness.root / "pwned").exists()


def test_unsafe_key_file_stops_the_install(harness, monkeypatch, tmp_path):
    monkeypatch.delenv(trust.KEY_ENV)
    keyfile = tmp_path / "k" / "cache.key"
    monkeypatch.setenv(trust.KEY_FILE_ENV, str(keyfile))
    trust.load_key(create=True)
    keyfile.chmod(0o644)
    with pytest.raises(action.AnsibleActionFail, match="chmod 600"):
        harness.task()
