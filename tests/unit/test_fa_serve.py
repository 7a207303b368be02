"""fa_serve (issue #23): the seed host's package server serves exactly ``/<sha256>.run`` of its folder and nothing else,
exits by itself when its lease runs out, is idempotent, names a taken port, and is stopped only when it is ours.

The server is the real one: ``fa_serve_lib.start`` writes the library into the folder and runs it with this Python as
a detached process on 127.0.0.1 (a free port per test), as the module does on a host."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.module_utils import fa_serve_lib as lib
from ansible_collections.ascend.fa.plugins.modules import fa_serve

BODY = b"#!/bin/bash\necho SUCCESS\n" + bytes(range(256)) * 64
SHA = hashlib.sha256(BODY).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, path: str, method: str = "GET") -> tuple[int, bytes, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)   # the path goes out as it is
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, dict(resp.getheaders())


@pytest.fixture
def served(tmp_path):
    """A running server of ``folder`` holding the package, stopped (and checked gone) after the test."""
    folder = str(tmp_path / "state" / "serve")
    source = tmp_path / "build_out.run"
    source.write_bytes(BODY)
    port = free_port()
    lib.ensure_folder(folder)
    assert lib.place(folder, SHA, [str(tmp_path / "absent.run"), str(source)]) == (True, f"copied from {source}")
    changed, info = lib.start(folder, "127.0.0.1", port, 300)
    assert changed and info["url"] == f"http://127.0.0.1:{port}/"
    yield folder, port, info["pid"]
    lib.stop(folder)
    assert lib.process_argv(info["pid"]) is None


# --- what is served --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path,name", [
    (f"/{SHA}.run", f"{SHA}.run"),
    ("/", None), ("", None), (f"{SHA}.run", None), (f"//{SHA}.run", None), (f"/{SHA}.run/", None),
    (f"/{SHA}.run?x=1", None), (f"/{SHA.upper()}.run", None), (f"/{SHA[:-1]}.run", None), (f"/../{SHA}.run", None),
    (f"/%2e%2e/{SHA}.run", None), ("/server.json", None), ("/.fa_serve.py", None), (f"/{SHA}.run\n", None),
])
def test_only_exact_package_names_are_requested(path, name):
    assert lib.requested_name(path) == name


def test_serves_the_package_by_get_and_head(served):
    folder, port, pid = served
    status, body, headers = request(port, f"/{SHA}.run")
    assert status == 200 and body == BODY and headers["Content-Length"] == str(len(BODY))
    status, body, headers = request(port, f"/{SHA}.run", "HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(len(BODY))
    # the server runs as a detached process of its own session, not as root
    status_lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid = next(int(line.split()[1]) for line in status_lines if line.startswith("Uid:"))
    assert uid == (lib.NOBODY if os.geteuid() == 0 else os.geteuid())
    assert os.getsid(pid) == pid


def test_no_listing_no_other_file_no_traversal_no_symlink(served, tmp_path):
    folder, port, _ = served
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    other = hashlib.sha256(b"other").hexdigest()
    os.symlink(secret, os.path.join(folder, f"{other}.run"))      # a link in the folder is never followed
    os.mkdir(os.path.join(folder, f"{'c' * 64}.run"))                # nor is a folder served
    for path in ("/", "/server.json", "/server.log", "/.fa_serve.py", f"/../{SHA}.run", f"/%2e%2e/{SHA}.run",
                 f"/{other}.run", f"/{'c' * 64}.run", f"/{SHA}.run?download=1",
                 "/../../../../etc/passwd", f"/{SHA.upper()}.run"):
        status, body, _ = request(port, path)
        assert status == 404, path
        assert b"secret" not in body and BODY not in body
    # (http.server itself reads "//x" as "/x" since Python 3.11.5: the same file, nothing outside the folder)
    for method in ("POST", "PUT", "DELETE"):
        assert request(port, f"/{SHA}.run", method)[0] == 501


def test_started_again_is_idempotent_and_renews_the_lease(served):
    folder, port, pid = served
    record = os.path.join(folder, lib.RECORD)
    os.utime(record, (time.time() - 100, time.time() - 100))
    changed, info = lib.start(folder, "127.0.0.1", port, 300)
    assert not changed and info["pid"] == pid
    assert time.time() - os.stat(record).st_mtime < 5
    failed, res = fa_serve.run_module({"state": "started", "folder": folder, "address": "127.0.0.1", "port": port,
                                       "timeout": 300, "sha256": SHA, "sources": [], "package": None}, False)
    assert not failed and res["changed"] is False and res["placed"] == "kept" and res["pid"] == pid
    assert res["package_url"] == f"http://127.0.0.1:{port}/{SHA}.run" and res["size"] == len(BODY)


def test_other_settings_replace_the_server(served):
    folder, port, pid = served
    port2 = free_port()
    changed, info = lib.start(folder, "127.0.0.1", port2, 300)
    assert changed and info["pid"] != pid and lib.process_argv(pid) is None
    assert request(port2, f"/{SHA}.run")[0] == 200


def test_a_port_held_by_another_program_is_a_clear_failure(tmp_path):
    folder = str(tmp_path / "serve")
    lib.ensure_folder(folder)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(lib.ServeError) as exc:
            lib.start(folder, "127.0.0.1", port, 60)
    msg = str(exc.value)
    assert f"cannot serve packages on 127.0.0.1:{port}" in msg and "Address already in use" in msg
    assert "fa_install_serve_port" in msg and lib.our_server(folder) is None


def test_an_address_not_of_this_host_is_a_clear_failure(tmp_path):
    folder = str(tmp_path / "serve")
    lib.ensure_folder(folder)
    with pytest.raises(lib.ServeError, match="192.0.2.1 is not an address of this host.*fa_install_serve_address"):
        lib.start(folder, "192.0.2.1", free_port(), 60)    # TEST-NET-1: never local


def test_the_server_exits_by_itself_when_its_lease_runs_out(tmp_path):
    folder = str(tmp_path / "serve")
    lib.ensure_folder(folder)
    port = free_port()
    _, info = lib.start(folder, "127.0.0.1", port, 1)
    deadline = time.monotonic() + 10
    while lib.process_argv(info["pid"]) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lib.process_argv(info["pid"]) is None
    with socket.socket() as s:                      # and the port is free again
        s.bind(("127.0.0.1", port))


def test_lease_over():
    folder_fd = None
    try:
        import tempfile
        d = tempfile.mkdtemp()
        folder_fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        assert lib.lease_over(folder_fd, 42, 10)                   # no record: stopped
        lib.write_json_atomic(os.path.join(d, lib.RECORD), {"pid": 42})
        assert not lib.lease_over(folder_fd, 42, 10)
        assert lib.lease_over(folder_fd, 43, 10)                   # another server's record
        assert lib.lease_over(folder_fd, 42, 10, now=time.time() + 11)
        # a download 5 s ago keeps it: the rollout is still pulling
        assert not lib.lease_over(folder_fd, 42, 10, now=time.time() + 11, last_served=time.time() + 6)
    finally:
        if folder_fd is not None:
            os.close(folder_fd)


def test_stop_kills_only_our_own_process(tmp_path):
    folder = str(tmp_path / "serve")
    lib.ensure_folder(folder)
    Path(folder, f"{SHA}.run").write_bytes(BODY)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # a record naming a process that is not this folder's server (a reused pid, or a forged record)
        lib.write_json_atomic(os.path.join(folder, lib.RECORD), {"pid": stranger.pid, "port": 1})
        assert lib.our_server(folder) is None
        changed, done = lib.stop(folder)
        assert changed and stranger.poll() is None                 # not killed
        assert not any("stopped" in d for d in done)
        assert sorted(os.listdir(folder)) == []                    # the copy and the record are gone
    finally:
        stranger.kill()
        stranger.wait()
    assert lib.stop(folder) == (False, [])                         # nothing left: unchanged
    assert lib.stop(str(tmp_path / "never")) == (False, [])


def test_stop_in_check_mode_changes_nothing(served):
    folder, port, pid = served
    changed, done = lib.stop(folder, check_mode=True)
    assert changed and done[0] == f"stopped the server (pid {pid})"
    assert lib.process_argv(pid) is not None and request(port, f"/{SHA}.run")[0] == 200
    changed, done = lib.stop(folder)
    assert changed and lib.process_argv(pid) is None
    assert sorted(os.listdir(folder)) == [lib.LOG]                 # the log stays
    with pytest.raises(OSError):
        request(port, f"/{SHA}.run")


# --- placing the copy ------------------------------------------------------------------------------------------
def test_place_takes_the_first_source_with_the_right_sha(tmp_path):
    folder = str(tmp_path / "serve")
    lib.ensure_folder(folder)
    wrong = tmp_path / "wrong.run"
    wrong.write_bytes(b"garbage")
    good = tmp_path / "good.run"
    good.write_bytes(BODY)
    assert lib.place(folder, SHA, [str(wrong), str(good)]) == (True, f"copied from {good}")
    served_file = Path(folder, f"{SHA}.run")
    assert served_file.read_bytes() == BODY and oct(served_file.stat().st_mode & 0o777) == "0o644"
    assert lib.place(folder, SHA, []) == (False, "kept")
    served_file.write_bytes(b"garbage")                             # a corrupted served copy is replaced
    assert lib.place(folder, SHA, [str(good)]) == (True, f"copied from {good}")
    assert served_file.read_bytes() == BODY


def test_place_without_a_copy_asks_for_the_package(tmp_path):
    folder = str(tmp_path / "serve")
    lib.ensure_folder(folder)
    with pytest.raises(lib.ServeError) as exc:
        lib.place(folder, SHA, [str(tmp_path / "absent.run")])
    assert exc.value.extra == {"package_needed": True} and os.listdir(folder) == []
    with pytest.raises(lib.ServeError, match="not a sha256"):
        lib.place(folder, "../x", [])


def test_folder_must_be_a_real_folder_of_ours(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(lib.ServeError, match="not a folder"):
        lib.ensure_folder(str(link))
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o777)
    open_dir.chmod(0o777)
    assert lib.ensure_folder(str(open_dir)) is True and oct(open_dir.stat().st_mode & 0o777) == "0o755"
    assert lib.ensure_folder(str(open_dir)) is False
    if os.geteuid() == 0:
        os.chown(open_dir, 1234, 1234)
        with pytest.raises(lib.ServeError, match="belongs to uid 1234"):
            lib.ensure_folder(str(open_dir))


# --- the module's checks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("over,msg", [
    ({"port": 80}, "not a port from 1024 to 65535"), ({"port": 70000}, "not a port"),
    ({"timeout": 0}, "must be a number of seconds"), ({"address": "a b"}, "not a host name"),
    ({"address": "-oProxy"}, "not a host name"), ({"address": "h/x"}, "not a host name"),
    ({"folder": "/var/lib/ascend-fa/packages"}, "prunes"),
])
def test_module_refuses_bad_arguments(over, msg):
    p = {"state": "started", "folder": "/var/lib/ascend-fa/serve", "address": "10.0.0.1", "port": 58642,
         "timeout": 7200, **over}
    assert any(msg in line for line in fa_serve.problems(p))


def test_module_check_mode_starts_nothing(tmp_path):
    folder = str(tmp_path / "serve")
    failed, res = fa_serve.run_module({"state": "started", "folder": folder, "address": "127.0.0.1",
                                       "port": free_port(), "timeout": 60, "sha256": SHA, "sources": [],
                                       "package": None}, True)
    assert failed and res["package_needed"]                        # nothing to serve: the action would push
    good = tmp_path / "good.run"
    good.write_bytes(BODY)
    failed, res = fa_serve.run_module({"state": "started", "folder": folder, "address": "127.0.0.1",
                                       "port": free_port(), "timeout": 60, "sha256": SHA, "sources": [str(good)],
                                       "package": None}, True)
    assert not failed and res["changed"] and res["pid"] is None and not os.path.exists(folder)


def test_record_is_json_with_the_settings(served):
    folder, port, pid = served
    record = json.loads(Path(folder, lib.RECORD).read_text())
    assert record["pid"] == pid and record["port"] == port and record["folder"] == folder
    assert lib.our_server(folder)["argv"][1] == os.path.join(folder, lib.SCRIPT)
