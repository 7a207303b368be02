"""fa_install pulls the package from its seed host (``fetch_url``, issue #23): the body is limited to the signed size
and checked against the signed sha256 before anything uses it; every failure (refused connection, HTTP error, timeout,
wrong size or sha256) leaves no file and asks for the package, and the action plugin then pushes it with a warning.

The seed is a local ``ThreadingHTTPServer`` in this process whose answers each test chooses (an honest one, a liar)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from ansible_collections.ascend.fa.plugins.action import fa_install as action
from ansible_collections.ascend.fa.plugins.module_utils import fa_install_lib as lib
from ansible_collections.ascend.fa.plugins.plugin_utils import trust
from test_fa_install_action import TEST_KEY, Harness
from test_fa_install_action import harness as plain_harness  # noqa: F401  (a fixture)

BODY = b"package bytes\n" * 5000
SHA = hashlib.sha256(BODY).hexdigest()


class Seed:
    """What the fake seed answers: ``body`` (with ``length`` as Content-Length, None: none sent), ``status``,
    ``delay`` before answering; ``hits`` counts requests."""

    def __init__(self):
        self.body, self.length, self.status, self.delay, self.hits = BODY, len(BODY), 200, 0.0, 0


@pytest.fixture
def seed():
    state = Seed()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            state.hits += 1
            time.sleep(state.delay)
            self.send_response(state.status)
            if state.length is not None:
                self.send_header("Content-Length", str(state.length))
            self.end_headers()
            if state.status == 200:
                self.wfile.write(state.body)

        def log_message(self, *_a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield state
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the download --------------------------------------------------------------------------------------------------
def test_download_streams_into_a_private_file(seed, tmp_path):
    path = lib.download(f"{seed.url}{SHA}.run", str(tmp_path / "packages"), SHA, len(BODY), 5)
    assert Path(path).read_bytes() == BODY and Path(path).parent == tmp_path / "packages"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("setup,error", [
    (lambda s: setattr(s, "body", b"X" * len(BODY)), "sha256 .* the controller's signed record says"),
    (lambda s: setattr(s, "length", len(BODY) + 1), f"announces {len(BODY) + 1} bytes"),
    (lambda s: (setattr(s, "body", BODY + b"more"), setattr(s, "length", None)), "larger than the"),
    (lambda s: (setattr(s, "body", BODY[:100]), setattr(s, "length", None)), "ended after 100 of"),
    (lambda s: setattr(s, "status", 404), "HTTP 404"),
    (lambda s: setattr(s, "status", 500), "HTTP 500"),
    (lambda s: setattr(s, "delay", 3), "timed out"),
])
def test_every_bad_answer_is_refused_and_leaves_no_file(seed, tmp_path, setup, error):
    setup(seed)
    folder = tmp_path / "packages"
    with pytest.raises(lib.FetchError, match=error):
        lib.download(f"{seed.url}{SHA}.run", str(folder), SHA, len(BODY), 1)
    assert os.listdir(folder) == []


def test_refused_connection_and_redirect(tmp_path, seed):
    folder = tmp_path / "packages"
    with pytest.raises(lib.FetchError, match="cannot connect: .*refused"):
        lib.download(f"http://127.0.0.1:{closed_port()}/{SHA}.run", str(folder), SHA, len(BODY), 2)
    seed.status = 302
    with pytest.raises(lib.FetchError, match="HTTP 302"):
        lib.download(f"{seed.url}{SHA}.run", str(folder), SHA, len(BODY), 2)
    with pytest.raises(lib.FetchError, match="not an http"):
        lib.download(f"file:///etc/passwd#{SHA}.run", str(folder), SHA, len(BODY), 2)
    assert os.listdir(folder) == []


def test_no_proxy_for_the_seed(seed, tmp_path, monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert Path(lib.download(f"{seed.url}{SHA}.run", str(tmp_path), SHA, len(BODY), 5)).read_bytes() == BODY


# --- through the action plugin and the module ---------------------------------------------------------------------
@pytest.fixture
def harness(plain_harness):  # noqa: F811
    """test_fa_install_action's harness, its record signed with the package's size (as fa_build writes it)."""
    h = plain_harness
    h.record = trust.sign({**{k: v for k, v in h.record.items() if k != "hmac"}, "size": h.src.stat().st_size},
                          TEST_KEY.encode())
    (h.src.parent / "artifact.json").write_text(json.dumps(h.record))
    return h


def serve_package(seed, h: Harness) -> str:
    seed.body = h.src.read_bytes()
    seed.length = len(seed.body)
    return f"{seed.url}{h.sha}.run"


def test_host_pulls_instead_of_a_push(seed, harness):  # noqa: F811
    url = serve_package(seed, harness)
    res = harness.task(fetch_url=url, size=seed.length)
    assert not res.get("failed"), res
    assert harness.calls == ["module:fa_install"] and harness.transferred == []
    assert res["package_source"] == "pulled" and res["package_url"] == url and res["package_transferred"] is False
    assert res["manifest"]["package_source"] == "pulled" and res["manifest"]["package_url"] == url
    kept = harness.root / f"state/packages/{harness.sha}.run"
    assert kept.read_bytes() == seed.body and oct(kept.stat().st_mode & 0o777) == "0o755"
    assert os.listdir(kept.parent) == [kept.name]
    # converged: nothing travels, nothing is pulled
    res = harness.task(fetch_url=url, size=seed.length)
    assert res["changed"] is False and res["package_source"] == "kept" and seed.hits == 1


def test_size_comes_from_the_signed_record(seed, harness):  # noqa: F811
    url = serve_package(seed, harness)
    with pytest.raises(action.AnsibleActionFail, match="is not the size of the signed record"):
        harness.task(fetch_url=url, size=seed.length + 1)
    assert harness.calls == []
    res = harness.task(fetch_url=url)                     # no size given: the signed one is used
    assert res["package_source"] == "pulled", res


def test_a_record_without_size_means_a_push(seed, plain_harness):  # noqa: F811
    url = serve_package(seed, plain_harness)
    res = plain_harness.task(fetch_url=url, size=seed.length)
    assert res["package_source"] == "pushed" and seed.hits == 0
    assert res["transfer_reason"] == "the host does not have this package (no pull: the signed record has no size)"


def test_garbage_from_the_seed_falls_back_to_a_push_with_a_warning(seed, harness):  # noqa: F811
    url = serve_package(seed, harness)
    seed.body = b"\0" * seed.length                        # the seed's copy replaced, same size
    res = harness.task(fetch_url=url, size=seed.length)
    assert not res.get("failed"), res
    assert harness.calls == ["module:fa_install", "mkdir", "put", "module:fa_install"]
    assert res["package_source"] == "pushed" and res["package_transferred"] is True
    assert res["manifest"]["package_source"] == "pushed" and "package_url" not in res["manifest"]
    (warning,) = res["warnings"]
    assert url in warning and "the controller's signed record says" in warning and "fa_install_serve_port" in warning
    assert "could not pull" in warning and res["transfer_reason"] == "the pull failed"
    packages = harness.root / "state/packages"
    assert sorted(os.listdir(packages)) == [f"{harness.sha}.run"]   # no partial download left
    assert (packages / f"{harness.sha}.run").read_bytes() == harness.src.read_bytes()


def test_refused_connection_falls_back_to_a_push(harness):  # noqa: F811
    url = f"http://127.0.0.1:{closed_port()}/{harness.sha}.run"
    res = harness.task(fetch_url=url, size=len(harness.src.read_bytes()))
    assert not res.get("failed") and res["package_source"] == "pushed", res
    assert "cannot connect" in res["fetch_error"] and url in res["warnings"][0]


def test_check_mode_pulls_nothing(seed, harness):  # noqa: F811
    url = serve_package(seed, harness)
    res = harness.task(check_mode=True, fetch_url=url, size=seed.length)
    assert res["changed"] and harness.calls == ["module:fa_install"] and seed.hits == 0
    assert "package_source" not in res and not (harness.root / "state").exists()


def test_fetch_url_needs_src(harness):  # noqa: F811
    args = {k: v for k, v in harness.args(fetch_url=f"http://h:1/{harness.sha}.run", size=1).items() if k != "src"}
    with pytest.raises(action.AnsibleActionFail, match="fetch_url needs src"):
        harness.plugin(args).run(task_vars={"ansible_facts": harness.host_facts()})


@pytest.mark.parametrize("args,facts,want", [
    ({"src": "/c/p.run", "sha256": SHA, "fetch_url": f"http://h:1/{SHA}.run"}, None, False),
    ({"src": "/c/p.run", "sha256": SHA}, None, True),
])
def test_transfer_decision_with_a_pull(args, facts, want):
    transfer, why = action.transfer_decision(args, facts, False)
    assert transfer is want and (want or "pulls the package from http://h:1/" in why)


def test_a_pull_left_over_by_a_killed_run_is_pruned(seed, harness):  # noqa: F811
    packages = harness.root / "state/packages"
    packages.mkdir(parents=True)
    (packages / f".{harness.sha[:16]}.abcd.pull").write_bytes(b"half")
    url = serve_package(seed, harness)
    res = harness.task(fetch_url=url, size=seed.length)
    assert res["package_source"] == "pulled" and os.listdir(packages) == [f"{harness.sha}.run"]
