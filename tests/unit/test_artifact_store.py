"""fa_artifact_store: claim / busy / stale takeover / publish with sha256 check."""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible_collections.ascend.fa.plugins.modules import fa_artifact_store as mod


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def store(tmp_path, clock):
    return mod.Store(str(tmp_path / "store"), clock=clock, sleep=clock.sleep)


def upload(tmp_path, key, data=b"package"):
    inc = tmp_path / "store" / ".incoming" / key
    inc.mkdir(parents=True, exist_ok=True)
    (inc / "pkg.run").write_bytes(data)
    return str(inc / "pkg.run"), {"file": "pkg.run", "sha256": hashlib.sha256(data).hexdigest(), "build_key": key}


def test_first_claim_acquires_second_is_busy_then_present(tmp_path):
    c = Clock()
    s = store(tmp_path, c)
    assert s.claim("k", "A", False, 10, 100, 1)["state"] == "acquired"
    busy = s.claim("k", "B", False, 10, 100, 1)
    assert busy["state"] == "busy" and busy["holder"]["owner"] == "A"
    assert s.claim("k", "A", False, 10, 100, 1)["state"] == "acquired"   # the owner itself again
    path, meta = upload(tmp_path, "k")
    published = s.publish("k", "A", path, meta)
    assert published["sha256"] == meta["sha256"]
    assert not (tmp_path / "store" / "k.lock").exists()
    got = s.claim("k", "B", True, 10, 100, 1)
    assert got["state"] == "present" and got["meta"]["path"].endswith("k/pkg.run")


def test_waiter_times_out_then_takes_over_a_stale_lock(tmp_path):
    c = Clock()
    s = store(tmp_path, c)
    s.claim("k", "dead-run", False, 10, 100, 1)
    assert s.claim("k", "B", True, 30, 100, 5)["state"] == "timeout"
    c.t += 100
    assert s.claim("k", "B", True, 30, 100, 5)["state"] == "acquired"
    assert json.loads((tmp_path / "store" / "k.lock" / "owner.json").read_text())["owner"] == "B"


def test_corrupt_upload_is_not_published_and_a_bad_artifact_is_not_served(tmp_path):
    c = Clock()
    s = store(tmp_path, c)
    s.claim("k", "A", False, 10, 100, 1)
    path, meta = upload(tmp_path, "k")
    meta["sha256"] = "0" * 64
    with pytest.raises(ValueError, match="not published"):
        s.publish("k", "A", path, meta)
    assert s.lookup("k") is None
    path, meta = upload(tmp_path, "k")
    s.publish("k", "A", path, meta)
    (tmp_path / "store" / "k" / "pkg.run").write_bytes(b"truncated")
    assert s.lookup("k") is None


def test_release_only_by_owner(tmp_path):
    c = Clock()
    s = store(tmp_path, c)
    s.claim("k", "A", False, 10, 100, 1)
    assert not s.release("k", "B")
    assert s.release("k", "A")
    assert s.claim("k", "B", False, 10, 100, 1)["state"] == "acquired"


# --- trust: the store cannot check HMACs (no key on the store host); a controller that did not sign an entry claims it
# again with distrust_sha256, and the store treats that entry as absent so the caller rebuilds it
def test_distrusted_entry_counts_as_absent_and_the_caller_takes_the_lock(tmp_path):
    c = Clock()
    s = store(tmp_path, c)
    s.claim("k", "A", False, 10, 100, 1)
    path, meta = upload(tmp_path, "k")
    s.publish("k", "A", path, meta)
    assert s.claim("k", "B", False, 10, 100, 1)["state"] == "present"
    assert s.claim("k", "B", False, 10, 100, 1, distrust_sha256=meta["sha256"])["state"] == "acquired"
    assert s.claim("k", "C", False, 10, 100, 1, distrust_sha256=meta["sha256"])["state"] == "busy"
    # B rebuilds and publishes over it: a new package, present for everyone again
    path, meta2 = upload(tmp_path, "k", b"rebuilt package")
    assert s.publish("k", "B", path, meta2)["sha256"] == meta2["sha256"]
    assert s.claim("k", "C", True, 10, 100, 1, distrust_sha256=meta["sha256"])["state"] == "present"


def test_record_for_another_key_or_with_a_path_as_file_is_never_present(tmp_path):
    c = Clock()
    s = store(tmp_path, c)
    path, meta = upload(tmp_path, "k1")
    s.publish("k1", "A", path, meta)
    # swapped: k2's folder holds k1's entry
    (tmp_path / "store" / "k1").rename(tmp_path / "store" / "k2")
    assert s.lookup("k2") is None
    path, meta = upload(tmp_path, "k3")
    with pytest.raises(ValueError, match="plain file name and this key"):
        s.publish("k3", "A", path, {**meta, "file": "../k1/pkg.run"})
    with pytest.raises(ValueError, match="plain file name and this key"):
        s.publish("k3", "A", path, {**meta, "build_key": "k9"})
    (tmp_path / "store" / "k4").mkdir()
    (tmp_path / "store" / "k4" / "artifact.json").write_text(json.dumps({**meta, "build_key": "k4",
                                                                          "file": "../k3/pkg.run"}))
    assert s.lookup("k4") is None
