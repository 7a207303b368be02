#!/usr/bin/python
# Copyright: ascend-fa contributors
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fa_artifact_store
short_description: A content-addressed artifact store on one host, shared by every slice of a fleet run
description:
  - Runs on the artifact host (C(fa_artifact_host)). Artifacts live in C(<store_dir>/<build_key>/) as the package
    and its C(artifact.json) (sha256 and build facts); the metadata file is written last, by rename, so a
    half-written package is never served.
  - C(claim) answers, for one build key, C(present) (the artifact is there and its sha256 checks out), C(acquired)
    (this caller holds the key's lock and must build it) or, without I(wait), C(busy) (another slice is building).
    With I(wait) it polls until the artifact appears or the lock is released or stale; a stale lock (older than
    I(stale_after) seconds, e.g. from a killed run) is taken over by exactly one waiter (atomic rename).
  - C(publish) moves a package uploaded into C(<store_dir>/.incoming/) into place after checking its sha256,
    writes C(artifact.json) and releases the caller's lock. C(release) drops the caller's lock (failed build).
  - The store host cannot tell who wrote an entry; the controllers can. The record carries the HMAC of the
    controller that built it (C(hmac), C(ascend_fa/trust.py)); a controller that finds a C(present) entry it did not
    sign claims it again with I(distrust_sha256), which makes that entry count as absent, so the caller takes the lock
    and rebuilds it. An entry whose record names another build key or a file name that is not a plain name is never
    C(present).
version_added: "0.1.0"
options:
  action:
    description: What to do.
    type: str
    choices: [claim, publish, release]
    required: true
  store_dir:
    description: Root of the store on the artifact host.
    type: path
    required: true
  key:
    description: The build key.
    type: str
    required: true
  owner:
    description: Identity of the caller (one per run), recorded in the lock.
    type: str
    required: true
  wait:
    description: With C(claim), wait while another owner holds the lock.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait at most.
    type: int
    default: 7800
  stale_after:
    description: A lock older than this many seconds is stale and may be taken over.
    type: int
    default: 7800
  poll:
    description: Seconds between checks while waiting.
    type: float
    default: 2
  incoming:
    description: With C(publish), the uploaded package (inside C(<store_dir>/.incoming/)).
    type: path
  meta:
    description: With C(publish), the artifact metadata (must hold C(sha256) and C(file)).
    type: dict
  distrust_sha256:
    description:
      - With C(claim), an artifact with this sha256 counts as absent (its record is not signed by the calling
        controller's key); the caller takes the lock and rebuilds it, or waits for the slice that holds it.
    type: str
extends_documentation_fragment:
  - ascend.fa.attributes
attributes:
  check_mode:
    support: none
author: ascend-fa contributors (@ascend-fa)
"""

EXAMPLES = r"""
- name: Claim a build
  ascend.fa.fa_artifact_store:
    action: claim
    store_dir: /srv/ascend-fa/artifacts
    key: 0123456789abcdef
    owner: controller-1-12345
  delegate_to: artifact-host
"""

RETURN = r"""
state:
  description: C(present), C(acquired) or C(busy) for C(claim); C(published) or C(released) otherwise.
  returned: always
  type: str
meta:
  description: The artifact metadata when present or published (C(path) is the package on the artifact host).
  returned: when present or published
  type: dict
holder:
  description: The lock's owner record when busy.
  returned: when busy
  type: dict
"""

import json
import os
import re
import time
import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ascend.fa.plugins.module_utils.fa_manifest import sha256_file, write_json_atomic

FILE_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+-]*$")


class Store:
    def __init__(self, root: str, clock=time.time, sleep=time.sleep):
        self.root = root
        self.clock = clock
        self.sleep = sleep

    def lock_dir(self, key: str) -> str:
        return os.path.join(self.root, f"{key}.lock")

    def lookup(self, key: str, distrust_sha256: str | None = None) -> dict | None:
        """The entry of ``key`` when its package is there with the recorded sha256, its record names this key and a
        plain file name, and its sha256 is not ``distrust_sha256``."""
        meta_path = os.path.join(self.root, key, "artifact.json")
        try:
            with open(meta_path, encoding="utf-8") as fh:
                meta = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or not FILE_RE.match(str(meta.get("file") or "")):
            return None
        if meta.get("build_key") not in (None, key) or (distrust_sha256 and meta.get("sha256") == distrust_sha256):
            return None
        pkg = os.path.join(self.root, key, str(meta["file"]))
        if not os.path.isfile(pkg) or sha256_file(pkg) != meta.get("sha256"):
            return None
        meta["path"] = pkg
        return meta

    def holder(self, key: str) -> dict | None:
        try:
            with open(os.path.join(self.lock_dir(key), "owner.json"), encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError):
            try:
                return {"owner": "?", "since": os.stat(self.lock_dir(key)).st_mtime}
            except OSError:
                return None

    def try_lock(self, key: str, owner: str) -> bool:
        os.makedirs(self.root, exist_ok=True)
        try:
            os.mkdir(self.lock_dir(key))
        except FileExistsError:
            return False
        write_json_atomic(os.path.join(self.lock_dir(key), "owner.json"), {"owner": owner, "since": self.clock()})
        return True

    def break_stale(self, key: str, stale_after: float) -> bool:
        """Move a stale lock aside; the atomic rename lets exactly one waiter win."""
        held = self.holder(key)
        if not held or self.clock() - float(held.get("since", 0)) < stale_after:
            return False
        aside = f"{self.lock_dir(key)}.stale.{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.lock_dir(key), aside)
        except OSError:
            return False
        for name in os.listdir(aside):
            os.remove(os.path.join(aside, name))
        os.rmdir(aside)
        return True

    def claim(self, key: str, owner: str, wait: bool, wait_timeout: float, stale_after: float,
              poll: float, distrust_sha256: str | None = None) -> dict:
        deadline = self.clock() + wait_timeout
        while True:
            meta = self.lookup(key, distrust_sha256)
            if meta:
                return {"state": "present", "meta": meta}
            if self.try_lock(key, owner):
                return {"state": "acquired"}
            held = self.holder(key)
            if held and held.get("owner") == owner:
                return {"state": "acquired"}
            if self.break_stale(key, stale_after):
                continue
            if not wait:
                return {"state": "busy", "holder": held}
            if self.clock() >= deadline:
                return {"state": "timeout", "holder": held}
            self.sleep(poll)

    def release(self, key: str, owner: str) -> bool:
        held = self.holder(key)
        if not held or held.get("owner") != owner:
            return False
        lock = self.lock_dir(key)
        for name in os.listdir(lock):
            os.remove(os.path.join(lock, name))
        os.rmdir(lock)
        return True

    def publish(self, key: str, owner: str, incoming: str, meta: dict) -> dict:
        if not FILE_RE.match(str(meta.get("file") or "")) or meta.get("build_key") not in (None, key):
            raise ValueError(f"artifact record for {key} names file {meta.get('file')!r} and build key "
                             f"{meta.get('build_key')!r}: a plain file name and this key are needed; not published")
        got = sha256_file(incoming)
        if got != meta.get("sha256"):
            raise ValueError(f"uploaded package {incoming} has sha256 {got}, expected {meta.get('sha256')}: "
                             "not published")
        dest_dir = os.path.join(self.root, key)
        os.makedirs(dest_dir, exist_ok=True)
        os.replace(incoming, os.path.join(dest_dir, meta["file"]))
        write_json_atomic(os.path.join(dest_dir, "artifact.json"), meta)
        self.release(key, owner)
        return self.lookup(key) or {}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=["claim", "publish", "release"], required=True),
            store_dir=dict(type="path", required=True),
            key=dict(type="str", required=True, no_log=False),   # a build key, not a secret
            owner=dict(type="str", required=True),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=7800),
            stale_after=dict(type="int", default=7800),
            poll=dict(type="float", default=2),
            incoming=dict(type="path"),
            meta=dict(type="dict"),
            distrust_sha256=dict(type="str"),
        ),
        required_if=[("action", "publish", ("incoming", "meta"))],
        supports_check_mode=False,
    )
    p = module.params
    store = Store(p["store_dir"])
    if p["action"] == "claim":
        res = store.claim(p["key"], p["owner"], p["wait"], p["wait_timeout"], p["stale_after"], p["poll"],
                          p["distrust_sha256"])
        if res["state"] == "timeout":
            module.fail_json(msg=f"waited {p['wait_timeout']}s for build {p['key']} held by {res.get('holder')}; "
                                 "the other slice is still building or died recently. Fix: rerun, or remove "
                                 f"{store.lock_dir(p['key'])} if no run is building it", **res)
        module.exit_json(changed=res["state"] == "acquired", **res)
    if p["action"] == "release":
        module.exit_json(changed=store.release(p["key"], p["owner"]), state="released")
    try:
        meta = store.publish(p["key"], p["owner"], p["incoming"], p["meta"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, state="published", meta=meta)


if __name__ == "__main__":
    main()
