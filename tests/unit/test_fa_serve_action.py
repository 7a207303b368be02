"""The fa_serve action plugin: the controller pushes a copy to the seed only when no file of the seed has the package,
checks the signed record before that, and turns a seed failure into a warning when asked (the role's seed step).

As in test_fa_install_action: a fake connection whose "remote" is this machine, the module run in-process (its
``execute``), and a real server started on 127.0.0.1 (stopped after each test)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from ansible_collections.ascend.fa.plugins.action import fa_serve as action
from ansible_collections.ascend.fa.plugins.module_utils import fa_serve_lib as lib
from ansible_collections.ascend.fa.plugins.modules import fa_serve as module
from ansible_collections.ascend.fa.plugins.plugin_utils import trust

TEST_KEY = "s" * 40
BODY = b"#!/bin/bash\necho SUCCESS\n" * 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Seed:
    def __init__(self, root: Path):
        self.root = root
        self.src = root / "controller/cache/k1/cann-ops-transformer.run"
        self.src.parent.mkdir(parents=True)
        self.src.write_bytes(BODY)
        self.sha = hashlib.sha256(BODY).hexdigest()
        record = trust.sign({"file": self.src.name, "sha256": self.sha, "build_key": "k1", "size": len(BODY)},
                            TEST_KEY.encode())
        (self.src.parent / "artifact.json").write_text(json.dumps(record))
        self.folder = str(root / "seed/state/serve")
        self.port = free_port()
        self.calls: list[str] = []

    def task(self, check_mode: bool = False, **over) -> dict:
        self.calls.clear()
        args = {"state": "started", "folder": self.folder, "address": "127.0.0.1", "port": self.port,
                "timeout": 120, "sha256": self.sha, "src": str(self.src), "sources": [], **over}
        shell = SimpleNamespace(tmpdir=None, join_path=os.path.join)
        task = SimpleNamespace(args=args, action="fa_serve", check_mode=check_mode, async_val=0, delegate_to="seed-1")
        plugin = action.ActionModule(task, SimpleNamespace(_shell=shell), None, None, None)
        seed = self

        def make_tmp_path(*_a, **_k):
            seed.calls.append("mkdir")
            shell.tmpdir = str(seed.root / f"remote-tmp/ansible-tmp-{len(seed.calls)}-1-2")
            os.makedirs(shell.tmpdir)
            plugin._cleanup_remote_tmp = True     # as ActionBase._make_tmp_path does
            return shell.tmpdir

        def transfer_file(local, remote):
            seed.calls.append("put")
            shutil.copy(local, remote)
            return remote

        def execute_module(module_name=None, module_args=None, task_vars=None, **_k):
            seed.calls.append(f"module:{module_name}")
            params = {"package": None, "_transfer_dir": None, "sources": [], **module_args}
            failed, result = module.execute(params, check_mode)
            result.setdefault("changed", False)
            if failed:
                result["failed"] = True
            return result

        def remove_tmp_path(path, force=False):
            seed.calls.append("rm")
            shutil.rmtree(path)
            shell.tmpdir = None

        plugin._make_tmp_path = make_tmp_path
        plugin._transfer_file = transfer_file
        plugin._fixup_perms2 = lambda *a, **k: None
        plugin._execute_module = execute_module
        plugin._remove_tmp_path = remove_tmp_path
        plugin._find_needle = lambda _kind, path: path
        return plugin.run(task_vars={"inventory_hostname": "atlas-1"})


@pytest.fixture
def seed(tmp_path, monkeypatch):
    monkeypatch.setenv(trust.KEY_ENV, TEST_KEY)
    s = Seed(tmp_path)
    yield s
    lib.stop(s.folder)


def test_a_copy_on_the_seed_means_no_push(seed):
    build_out = seed.root / "seed/build_out.run"
    build_out.parent.mkdir(parents=True, exist_ok=True)
    build_out.write_bytes(BODY)
    res = seed.task(sources=[str(seed.root / "absent.run"), str(build_out)])
    assert not res.get("failed"), res
    assert seed.calls == ["module:fa_serve"] and res["placed"] == f"copied from {build_out}"
    assert res["source"] == {"host": "seed-1", "url": f"http://127.0.0.1:{seed.port}/{seed.sha}.run",
                             "sha256": seed.sha, "size": len(BODY), "folder": seed.folder,
                             "placed": f"copied from {build_out}"}
    assert res["seed"] == {"host": "seed-1", "folder": seed.folder} and res["served"] is True


def test_no_copy_on_the_seed_means_exactly_one_push(seed):
    res = seed.task()
    assert not res.get("failed"), res
    assert seed.calls == ["module:fa_serve", "mkdir", "put", "module:fa_serve"]
    assert res["placed"] == "pushed" and res["source"]["url"].endswith(f"/{seed.sha}.run")
    assert Path(seed.folder, f"{seed.sha}.run").read_bytes() == BODY
    assert os.listdir(seed.root / "remote-tmp") == []              # the module removed the transfer folder
    res = seed.task()                                               # the next seed step: nothing travels
    assert seed.calls == ["module:fa_serve"] and res["changed"] is False and res["placed"] == "kept"


def test_an_unsigned_cache_entry_is_never_served(seed, monkeypatch):
    monkeypatch.setenv(trust.KEY_ENV, "another-controller-" + "k" * 32)
    with pytest.raises(action.AnsibleActionFail, match="refused, nothing was transferred"):
        seed.task()
    assert seed.calls == [] and not os.path.exists(seed.folder)


def test_check_mode_pushes_and_starts_nothing(seed):
    res = seed.task(check_mode=True)
    assert not res.get("failed") and res["changed"] and seed.calls == ["module:fa_serve"]
    assert "source" not in res and not os.path.exists(seed.folder)


def test_a_failed_seed_is_a_warning_when_asked(seed):
    with socket.socket() as other:
        other.bind(("127.0.0.1", seed.port))
        other.listen()
        res = seed.task(on_failure="warn")
        assert not res.get("failed") and res["served"] is False and "source" not in res
        (warning,) = res["warnings"]
        assert warning.startswith(f"seed-1: cannot serve packages on 127.0.0.1:{seed.port}")
        assert "fa_install_serve_port" in warning and "pushed from the controller instead" in warning
        res = seed.task()
        assert res["failed"] and res["msg"].startswith("seed-1: cannot serve packages")
