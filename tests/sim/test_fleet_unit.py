"""SIMULATOR tests: fleet planning, inventory, faults and image settings (pure parts; no containers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ascend_sim import fleet, image
from ascend_sim.image import SimError
from ascend_sim.node.simnode import bump_version, layout_for


def test_plan_hosts_names_addresses_and_cycling() -> None:
    planned = fleet.plan_hosts("asim5", 5, 3, models=["910B3", "A3-9392"], cann_versions=["8.5.0", "8.3.RC1"])
    assert [h["name"] for h in planned] == ["asim5-node1", "asim5-node2", "asim5-node3"]
    assert [h["address"] for h in planned] == ["127.0.5.1", "127.0.5.2", "127.0.5.3"]
    assert [h["config"]["model"] for h in planned] == ["910B3", "A3-9392", "910B3"]
    assert [h["config"]["cann_version"] for h in planned] == ["8.5.0", "8.3.RC1", "8.5.0"]
    assert all(h["config"]["npu_count"] == 8 for h in planned)


def test_plan_hosts_overrides_by_index_and_name() -> None:
    planned = fleet.plan_hosts("f", 2, 3, overrides={2: {"npu_count": 4}, "node3": {"driver_version": "24.1.rc3"},
                                                     "f-node1": {"health": {"0": "Alarm"}}})
    assert planned[1]["config"]["npu_count"] == 4
    assert planned[2]["config"]["driver_version"] == "24.1.rc3"
    assert planned[0]["config"]["health"] == {"0": "Alarm"}


@pytest.mark.parametrize("kw", [{"models": ["H100"]}, {"cann_layouts": ["rpm"]}, {"overrides": {1: {"npu_count": 0}}}])
def test_plan_hosts_rejects_bad_input(kw: dict) -> None:
    with pytest.raises(SimError):
        fleet.plan_hosts("f", 2, 1, **kw)


def test_plan_hosts_rejects_bad_octet() -> None:
    with pytest.raises(SimError):
        fleet.plan_hosts("f", 0, 1)


def test_inventory_keeps_host_key_checking_on(tmp_path: Path) -> None:
    inv = fleet.render_inventory(tmp_path, fleet.plan_hosts("asim9", 9, 2))
    group = inv["all"]["children"]["ascend"]
    host = group["hosts"]["asim9-node2"]
    assert host["ansible_host"] == "127.0.9.2" and host["ansible_user"] == "root"
    assert host["ansible_ssh_private_key_file"] == str(tmp_path / "id_ed25519")
    assert host["ansible_python_interpreter"] == "/usr/bin/python3"
    assert "StrictHostKeyChecking=yes" in host["ansible_ssh_common_args"]
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in host["ansible_ssh_common_args"]
    assert group["vars"]["fa_recipe"] == "sim-ops-transformer-v9.0.1"
    assert group["vars"]["fa_recipe_dirs"][0].endswith("ascend_sim/recipes")


def _config() -> dict:
    return fleet.plan_hosts("f", 2, 1)[0]["config"]


def test_fault_card_health_and_hbm() -> None:
    config, actions = fleet.apply_fault(_config(), "card-health", npu=3, level="Alarm")
    assert config["health"] == {"3": "Alarm"} and actions == []
    config, _ = fleet.apply_fault(config, "card-health", npu=1, chip=1, level="Warning")
    assert config["health"] == {"3": "Alarm", "1:1": "Warning"}
    config, _ = fleet.apply_fault(config, "hbm-used", npu="all", mb=61000)
    assert set(config["hbm_used_mb"].values()) == {61000} and len(config["hbm_used_mb"]) == 8
    with pytest.raises(SimError):
        fleet.apply_fault(config, "card-health", level="Broken")


def test_fault_flags_versions_and_clear() -> None:
    config, _ = fleet.apply_fault(_config(), "remove-npu-smi")
    config, _ = fleet.apply_fault(config, "no-cann")
    assert config["faults"] == ["no-cann", "remove-npu-smi"]
    config, _ = fleet.apply_fault(config, "cann-upgrade")
    assert config["cann_version"] == "8.5.1"
    config, _ = fleet.apply_fault(config, "cann-upgrade", version="9.0.0")
    assert config["cann_version"] == "9.0.0"
    config, _ = fleet.apply_fault(config, "torch-npu-mismatch")
    assert config["torch_npu_version"] == "2.1.0.post4"
    config, _ = fleet.apply_fault(config, "clear")
    assert config["faults"] == [] and config["health"] == {}
    assert [e["fault"] for e in config["fault_log"]][:2] == ["remove-npu-smi", "no-cann"]


@pytest.mark.parametrize("fault", ["corrupt-lib", "vendor-not-first"])
def test_one_shot_faults_become_sim_apply_actions(fault: str) -> None:
    config, actions = fleet.apply_fault(_config(), fault)
    assert actions == [fault] and config["faults"] == []


def test_unknown_fault() -> None:
    with pytest.raises(SimError):
        fleet.apply_fault(_config(), "meteor")


def test_cli_set_parsing() -> None:
    assert fleet._parse_set(["2.npu_count=4", "node1.cann_version=8.3.RC1", "1.health={\"0\": \"Alarm\"}"]) == {
        "2": {"npu_count": 4}, "node1": {"cann_version": "8.3.RC1"}, "1": {"health": {"0": "Alarm"}}}
    with pytest.raises(SimError):
        fleet._parse_set(["npu_count=4"])


def test_public_names() -> None:
    assert fleet.list is fleet.list_fleets
    assert callable(fleet.create) and callable(fleet.destroy) and callable(fleet.inject_fault)


@pytest.mark.parametrize(("old", "new"), [("8.5.0", "8.5.1"), ("8.3.RC1", "8.3.RC2"), ("9.0.9", "9.0.10")])
def test_bump_version(old: str, new: str) -> None:
    assert bump_version(old) == new


@pytest.mark.parametrize(("version", "layout"), [("8.3.RC1", "toolkit"), ("8.0.0", "toolkit"), ("8.5.0", "cann"),
                                                 ("9.0.0", "cann"), ("8.5.0-beta.1", "cann")])
def test_layout_for(version: str, layout: str) -> None:
    assert layout_for(version) == layout


def test_containers_conf_and_image_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASCEND_SIM_HOME", str(tmp_path))
    text = image.containers_conf_text()
    assert 'runtime = "runc"' in text and '"nproc=4096:4096"' in text and "nofile=" in text
    path = image.ensure_containers_conf()
    assert path == tmp_path / "containers.conf" and path.read_text() == text
    assert image.podman_env()["CONTAINERS_CONF"] == str(path)
    tag = image.image_tag()
    assert tag.startswith("localhost/ascend-sim-node:") and tag == image.image_tag()


def test_apt_mirror(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n")
    assert image.apt_mirror(sources) == "http://mirror.example/debian"
    assert image.apt_mirror(tmp_path / "missing") == image.DEFAULT_MIRROR


def test_plan_hosts_package_pad_reaches_every_host_json() -> None:
    planned = fleet.plan_hosts("f", 2, 3, package_pad_mib=32, overrides={3: {"package_pad_mib": 1}})
    assert [h["config"]["package_pad_mib"] for h in planned] == [32, 32, 1]
    assert all(h["config"]["package_pad_mib"] == 0 for h in fleet.plan_hosts("f", 2, 2))


@pytest.mark.parametrize("pad", [-1, 1025, "32", 1.5, True])
def test_plan_hosts_rejects_bad_package_pad(pad) -> None:
    with pytest.raises(SimError, match="package_pad_mib"):
        fleet.plan_hosts("f", 2, 1, overrides={1: {"package_pad_mib": pad}})
