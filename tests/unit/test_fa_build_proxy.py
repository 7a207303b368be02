"""Item 7 of issue 21: the build's proxy reaches build.sh through its environment only, and a proxy password never
comes back in what fa_build returns (log tail, messages)."""

from __future__ import annotations

import pytest
from ansible_collections.ascend.fa.plugins.modules import fa_build

PROXY = {"https_proxy": "http://alice:s3cr3t-pw@proxy.example:3128", "no_proxy": "localhost,.example"}


def test_proxy_variables_are_exported_in_both_cases():
    env = fa_build.proxy_environ({**PROXY, "http_proxy": ""})
    assert env == {"https_proxy": PROXY["https_proxy"], "HTTPS_PROXY": PROXY["https_proxy"],
                   "no_proxy": "localhost,.example", "NO_PROXY": "localhost,.example"}


@pytest.mark.parametrize("bad", [{"LD_PRELOAD": "/x.so"}, {"https_proxy": "http://p\nexport X=1"},
                                 {"ftp_proxy": "http://p"}])
def test_anything_but_the_three_proxy_variables_is_refused(bad):
    with pytest.raises(ValueError):
        fa_build.proxy_environ(bad)


def test_credentials_are_masked_in_logs():
    log = ("-- Downloading https://gitcode.com/x.tar.gz via http://alice:s3cr3t-pw@proxy.example:3128\n"
           "curl: (56) Proxy auth for alice with password s3cr3t-pw failed")
    out = fa_build.redact(log, PROXY)
    assert "s3cr3t-pw" not in out and "alice:" not in out
    assert "http://***@proxy.example:3128" in out and "https://gitcode.com/x.tar.gz" in out


def test_the_build_line_carries_no_proxy():
    line = fa_build.command_line(["/cann/set_env.sh"], "/src", ["bash", "build.sh", "--pkg"], "/log", 60)
    assert "proxy" not in line
