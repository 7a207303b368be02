"""SIMULATOR tests: the non-root SSH user ``ops`` and its sudo password knob (pure parts; no containers).

The node side (login with the fleet key, StrictModes, sudo with and without a password) is exercised on a real
container by tests/e2e/test_nonroot_ssh.py.
"""

from __future__ import annotations

import pytest

from ascend_sim import fleet
from ascend_sim.image import SimError
from ascend_sim.node import sim_apply
from ascend_sim.node.simnode import DEFAULTS, HostConfigError, normalize

SHADOW = "root:*:20000:0:99999:7:::\nops:!:20792:0:99999:7:::\ntrainer:$y$j9T$abc$def:20792:0:99999:7:::\n"


def test_sudoers_line_with_and_without_a_password():
    assert sim_apply.render_ops_sudoers(False).splitlines()[-1] == "ops ALL=(ALL:ALL) NOPASSWD: ALL"
    assert sim_apply.render_ops_sudoers(True).splitlines()[-1] == "ops ALL=(ALL:ALL) ALL"
    # sudo skips a sudoers.d file whose name contains "." or ends in "~" (sudoers(5) @includedir)
    name = sim_apply.OPS_SUDOERS.rsplit("/", 1)[1]
    assert "." not in name and not name.endswith("~")


def test_shadow_field():
    assert sim_apply.shadow_field(SHADOW, "ops") == "!"
    assert sim_apply.shadow_field(SHADOW, "trainer") == "$y$j9T$abc$def"
    assert sim_apply.shadow_field(SHADOW, "nobody") == ""


@pytest.mark.parametrize("bad", ["", "two\nlines", "nul\0", 7])
def test_host_json_refuses_a_password_that_is_not_one_line(bad):
    with pytest.raises(HostConfigError, match="ops_sudo_password"):
        normalize({**DEFAULTS, "ops_sudo_password": bad})


def test_sudo_password_fault_sets_the_password_logs_no_value_and_clear_drops_it():
    config, actions = fleet.apply_fault(normalize(dict(DEFAULTS)), "sudo-password", password="s3cret pw")
    assert config["ops_sudo_password"] == "s3cret pw" and actions == []
    assert config["fault_log"][-1] == {"fault": "sudo-password", "password": "***"}
    cleared, _ = fleet.apply_fault(config, "clear")
    assert cleared["ops_sudo_password"] is None
    with pytest.raises(SimError, match="sudo-password"):
        fleet.apply_fault(normalize(dict(DEFAULTS)), "sudo-password")


def test_cli_reads_the_password_from_a_file_not_argv(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\nignored\n")
    args = fleet._parser().parse_args(["inject-fault", str(tmp_path), "1", "sudo-password",
                                       "--password-file", str(secret)])
    assert fleet._cli_fault_kw(args) == {"password": "from-file"}
