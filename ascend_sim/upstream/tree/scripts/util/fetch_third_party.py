#!/usr/bin/env python3
"""SIMULATOR (ascend-fa): the third-party fetch of the simulated ops-transformer build (stdlib only).

Stands in for what ops-transformer v9.0.1 CMake does for a custom package (`CMakeLists.txt` lines 125-149
include `cmake/third_party/{opbase,json,eigen,abseil-cpp,ascend_protobuf,makeself-fetch}.cmake`; `gtest.cmake`
only with ENABLE_TEST). Each dependency is looked for under CANN_3RD_LIB_PATH (`--cann_3rd_lib_path`, default
`<repo>/third_party`) at the paths its .cmake file checks; a missing one is downloaded from its real URL into
`<3rd>/pkg/` (opbase: `git clone` into `<3rd>/opbase`). The simulated download writes a small stand-in archive
(no real sources). Whether the URL is reachable follows the build host's network in host.json
(`$ASCEND_SIM_HOST_JSON`, else /etc/ascend-sim/host.json; absent = online):
  network "online" (default) | "offline" | "proxy" (only through host.json "proxy_url");
and the proxy variables as libcurl (CMake's file(DOWNLOAD), git over https) reads them: for https URLs
`https_proxy`/`HTTPS_PROXY`, else `all_proxy`/`ALL_PROXY` (`http_proxy` is only for http:// URLs, and only in
lower case); `no_proxy`/`NO_PROXY` bypasses the proxy for the hosts it lists (libcurl CURLOPT_NOPROXY rules).
A failed download prints CMake's own text (ExternalProject: "Each download failed!" ... status_code 6
"Couldn't resolve host name", as quoted in OSGeo/gdal#11883; FetchContent git: "Failed to clone repository")
and exits 1.

Usage: fetch_third_party.py <cann_3rd_lib_path>          (build.sh)
       fetch_third_party.py --bundle <out.tar.gz>         (a complete offline bundle; make_repo uses it)
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import tarfile
import zipfile
from urllib.parse import urlsplit

GITCODE = "https://gitcode.com/cann-src-third-party"

# name, file in <3rd>/pkg, URL, paths (relative to <3rd>) the real .cmake accepts instead of downloading.
# Sources: ops-transformer v9.0.1 cmake/third_party/<file>.cmake (named in the comment of each entry).
DEPENDENCIES = (
    # opbase.cmake: FetchContent GIT_REPOSITORY https://gitcode.com/cann/opbase.git SOURCE_DIR <3rd>/opbase
    ("opbase", "", "https://gitcode.com/cann/opbase.git", ("opbase",)),
    # json.cmake: json/include/nlohmann/json.hpp, else include.zip (top level or pkg/), v3.11.3
    ("json", "include.zip", f"{GITCODE}/json/releases/download/v3.11.3/include.zip",
     ("json/include/nlohmann/json.hpp", "include.zip")),
    # eigen.cmake: eigen-5.0.0/ or a non-empty eigen/, else eigen-5.0.0.tar.gz (top level or pkg/)
    ("eigen", "eigen-5.0.0.tar.gz", f"{GITCODE}/eigen/releases/download/5.0.0-h0.trunk/eigen-5.0.0.tar.gz",
     ("eigen-5.0.0", "eigen/.", "eigen-5.0.0.tar.gz")),
    # abseil-cpp.cmake: lib_cache/abseil-cpp-20230802/absl/log/absl_log.h, else the archive (abseil-cpp/, pkg/, top)
    ("abseil-cpp", "abseil-cpp-20230802.1.tar.gz",
     f"{GITCODE}/abseil-cpp/releases/download/20230802.1/abseil-cpp-20230802.1.tar.gz",
     ("lib_cache/abseil-cpp-20230802/absl/log/absl_log.h", "abseil-cpp/abseil-cpp-20230802.1.tar.gz",
      "abseil-cpp-20230802.1.tar.gz")),
    # ascend_protobuf.cmake: protobuf/protobuf-all-25.1.tar.gz, protobuf/protobuf-25.1.tar.gz, pkg/, top level
    ("protobuf", "protobuf-25.1.tar.gz", f"{GITCODE}/protobuf/releases/download/v25.1/protobuf-25.1.tar.gz",
     ("protobuf/protobuf-all-25.1.tar.gz", "protobuf/protobuf-25.1.tar.gz", "protobuf-25.1.tar.gz")),
    # makeself-fetch.cmake: makeself/makeself.sh + makeself-header.sh, else the archive (top level or pkg/)
    ("makeself", "makeself-release-2.5.0-patch1.tar.gz",
     f"{GITCODE}/makeself/releases/download/release-2.5.0-patch1.0/makeself-release-2.5.0-patch1.tar.gz",
     ("makeself/makeself.sh", "makeself-release-2.5.0-patch1.tar.gz")),
)
# gtest.cmake (only with ENABLE_TEST, i.e. the unit-test builds): kept in the offline bundle for those builds.
GTEST = ("googletest", "googletest-1.14.0.tar.gz",
         f"{GITCODE}/googletest/releases/download/v1.14.0/googletest-1.14.0.tar.gz", ("gtest/include/gtest/gtest.h",))


def _present(root: str, rel: str) -> bool:
    path = os.path.join(root, rel)
    if rel.endswith("/."):  # a non-empty directory
        return os.path.isdir(path) and bool(os.listdir(path))
    return os.path.exists(path)


def found(root: str, dep: tuple) -> bool:
    _name, pkg_file, _url, paths = dep
    candidates = list(paths) + ([f"pkg/{pkg_file}"] if pkg_file else [])
    return any(_present(root, rel) for rel in candidates)


def load_host() -> dict:
    path = os.environ.get("ASCEND_SIM_HOST_JSON") or "/etc/ascend-sim/host.json"
    try:
        with open(path, encoding="utf-8") as handle:
            host = json.load(handle)
    except (OSError, ValueError):
        return {}
    return host if isinstance(host, dict) else {}


def _no_proxy(host: str) -> bool:
    value = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    for entry in (e.strip().lower() for e in value.split(",")):
        if entry == "*":
            return True
        entry = entry.lstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def proxy_for(url: str) -> str:
    """The proxy libcurl would use for ``url`` ("" = direct)."""
    parts = urlsplit(url)
    if _no_proxy((parts.hostname or "").lower()):
        return ""
    names = ("https_proxy", "HTTPS_PROXY") if parts.scheme == "https" else ("http_proxy",)
    for name in (*names, "all_proxy", "ALL_PROXY"):
        if os.environ.get(name):
            return os.environ[name]
    return ""


def _norm(proxy: str) -> str:
    proxy = proxy.strip().rstrip("/")
    return proxy if "://" in proxy else "http://" + proxy


def reachable(url: str, host: dict) -> tuple[bool, int, str, str]:
    """(ok, curl status code, status string, log line) for a download of ``url`` on this build host."""
    network = str(host.get("network") or "online")
    proxy_url = str(host.get("proxy_url") or "")
    proxy = proxy_for(url)
    if proxy:
        if proxy_url and network in ("online", "proxy") and _norm(proxy) == _norm(proxy_url):
            return True, 0, "No error", ""
        proxy_host = urlsplit(_norm(proxy)).hostname or proxy
        return False, 5, "Couldn't resolve proxy name", f"Could not resolve proxy: {proxy_host}"
    if network == "online":
        return True, 0, "No error", ""
    return False, 6, "Couldn't resolve host name", f"Could not resolve host: {urlsplit(url).hostname}"


def _stub_tar(name: str, top: str, members: tuple[str, ...]) -> bytes:
    """A small deterministic tar.gz standing in for a third-party source archive."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member in (f"{top}/SIMULATED.txt", *members):
            data = f"ascend-fa simulator stand-in for {name}; not the real source\n".encode()
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(data), 1735689600, 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _stub_zip(name: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        info = zipfile.ZipInfo("include/nlohmann/json.hpp", date_time=(2025, 1, 1, 0, 0, 0))
        zf.writestr(info, f"// ascend-fa simulator stand-in for {name}; not the real source\n")
    return out.getvalue()


def stub_archive(dep: tuple) -> bytes:
    name, pkg_file, _url, _paths = dep
    if pkg_file.endswith(".zip"):
        return _stub_zip(name)
    top = pkg_file[: -len(".tar.gz")]
    return _stub_tar(name, top, (f"{top}/README.md",))


def _fail_download(name: str, url: str, dst: str, code: int, status: str, log: str) -> None:
    print("-- Downloading...")
    print(f"   dst='{dst}'")
    print("   timeout='none'")
    print("   inactivity timeout='none'")
    print(f"-- Using src='{url}'")
    print("-- Retrying...")
    print(f"-- Using src='{url}'")
    print("-- Retry after 5 seconds (attempt #2) ...")
    print(f"-- Using src='{url}'")
    print(f"CMake Error at {name}-prefix/src/{name}-stamp/download-{name}.cmake:170 (message):")
    print("  Each download failed!")
    print()
    print(f"    error: downloading '{url}' failed")
    print(f"          status_code: {code}")
    print(f'          status_string: "{status}"')
    print("          log:")
    print("          --- LOG BEGIN ---")
    print(f"          {log}")
    print()
    print("          Closing connection 0")
    print()
    print("          --- LOG END ---")


def _fail_clone(url: str, log: str) -> None:
    print("Cloning into 'opbase'...")
    for _ in range(3):
        print(f"fatal: unable to access '{url}/': {log}")
    print("Had to git clone more than once: 3 times.")
    print("CMake Error at opbase-subbuild/opbase-populate-prefix/tmp/opbase-populate-gitclone.cmake:31 (message):")
    print(f"  Failed to clone repository: '{url}'")
    print()
    print("CMake Error at /usr/share/cmake/Modules/FetchContent.cmake:1624 (message):")
    print("  Build step for opbase failed: 2")


def fetch(root: str) -> int:
    host = load_host()
    os.makedirs(os.path.join(root, "pkg"), exist_ok=True)
    for dep in DEPENDENCIES:
        name, pkg_file, url, _paths = dep
        if found(root, dep):
            print(f"-- [ThirdPartyLib][{name}] found in {root}")
            continue
        print(f"-- [ThirdPartyLib][{name}] not found in {root}, need download from {url}")
        ok, code, status, log = reachable(url, host)
        if not ok:
            if name == "opbase":
                _fail_clone(url, log)
            else:
                _fail_download(f"third_party_{name}", url, os.path.join(root, "pkg", pkg_file), code, status, log)
            print("-- Configuring incomplete, errors occurred!")
            return 1
        if name == "opbase":
            os.makedirs(os.path.join(root, "opbase"), exist_ok=True)
            with open(os.path.join(root, "opbase", "SIMULATED.txt"), "w", encoding="utf-8") as handle:
                handle.write("ascend-fa simulator stand-in for opbase; not the real source\n")
        else:
            with open(os.path.join(root, "pkg", pkg_file), "wb") as handle:
                handle.write(stub_archive(dep))
    return 0


def write_bundle(dest: str) -> str:
    """A tar.gz whose top-level dirs are what --cann_3rd_lib_path expects: ``pkg/<archives>`` and ``opbase/``."""
    raw = io.BytesIO()
    entries: list[tuple[str, bytes | None]] = [("opbase", None), ("opbase/SIMULATED.txt",
                                               b"ascend-fa simulator stand-in for opbase; not the real source\n"),
                                              ("pkg", None)]
    for dep in (*DEPENDENCIES, GTEST):
        if dep[1]:
            entries.append((f"pkg/{dep[1]}", stub_archive(dep)))
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, data in entries:
            info = tarfile.TarInfo(path)
            info.mtime = 1735689600
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    with open(dest, "wb") as handle, gzip.GzipFile(fileobj=handle, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return dest


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--bundle":
        write_bundle(argv[1])
        return 0
    if len(argv) != 1:
        print("usage: fetch_third_party.py <cann_3rd_lib_path> | --bundle <out.tar.gz>", file=sys.stderr)
        return 2
    return fetch(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
