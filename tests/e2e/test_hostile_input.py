"""Hostile input on a simulated fleet (issue 19): values given with -e that would run commands on the controller or
the host (;, $(...), backticks, newlines, spaces, '..') stop the host in preflight, naming each variable, before
anything runs: no marker file appears on the controller or the host, nothing is built, nothing is installed.

Before, -e '{"fa_vendor": "x;touch /tmp/p;id>/tmp/q;#"}' ran `id` as root on the build host (the rendered build
command went to bash -c unquoted) and fa_install_path='/opt/fa$(touch /tmp/x)' ended up in a sourced script."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def fleet(make_fleet):
    return make_fleet("hostile", octet=70, hosts=1, npus=1)


@pytest.fixture
def markers():
    """Unique marker paths under /tmp (a folder both the controller and the host have); none may ever exist."""
    token = uuid.uuid4().hex[:10]
    made: list[str] = []

    def marker(name: str) -> str:
        made.append(f"/tmp/fa-hostile-{token}-{name}")
        return made[-1]

    yield marker
    for path in made:
        Path(path).unlink(missing_ok=True)


def _no_marker_anywhere(fleet, paths: list[str]) -> None:
    assert [p for p in paths if Path(p).exists()] == [], "a hostile value ran on the controller"
    host = fleet.hosts[0]
    listing = fleet.sh(host, "ls -1 /tmp")
    assert listing.returncode == 0, listing.stderr
    left = [p for p in paths if Path(p).name in listing.stdout.split()]
    assert left == [], f"a hostile value ran on {host}"


def _nothing_built_or_installed(fleet) -> None:
    assert fleet.builds() == [] and not any(fleet.cache.glob("*/*.run")), "something was built"
    assert fleet.manifest(fleet.hosts[0]) is None, "something was installed"
    left = fleet.sh(fleet.hosts[0], "ls -d /var/tmp/ascend-fa/src/* /opt/fa* 2>/dev/null")
    assert left.stdout.strip() == "", f"the host was changed: {left.stdout}"


def test_hostile_settings_stop_the_host_in_preflight_and_nothing_runs(fleet, markers):
    host = fleet.hosts[0]
    m = {name: markers(name) for name in ("vendor", "vendor_id", "install_path", "python", "npu_smi", "state_dir",
                                          "build_dir", "ascend_home", "repo_url", "repo_bundle", "build_host",
                                          "drain")}
    hostile = {
        "fa_vendor": f"x;touch {m['vendor']};id>{m['vendor_id']};#",
        "fa_install_path": f"/opt/fa$(touch {m['install_path']})",
        "fa_python": f"python3`touch {m['python']}`",
        "fa_npu_smi": f"npu-smi$(touch {m['npu_smi']})",
        "fa_state_dir": f"/var/lib/ascend-fa\ntouch {m['state_dir']}",
        "fa_build_dir": f"/var/tmp/../../tmp/x;touch {m['build_dir']}",
        "fa_ascend_home": f"/usr/local/Ascend touch {m['ascend_home']}",
        "fa_repo_url": f"--upload-pack=touch {m['repo_url']}",
        "fa_repo_bundle": f"/tmp/b.bundle;touch {m['repo_bundle']}",
        "fa_build_host": f"-oProxyCommand=touch {m['build_host']}",
        "fa_rollout_drain_command": ["systemctl", f"stop\ntouch {m['drain']}"],
        # of the roles' argument specs, checked by preflight (the playbooks import those roles without Ansible's
        # per-host check): a type the spec refuses
        "fa_build_timeout": "ten minutes",
        "fa_fetch_depth": {"depth": 1},
    }
    run = fleet.play("deploy_fa.yml", "-e", json.dumps(hostile))
    assert run.rc != 0 and run.failed() == [host], run.out[-4000:]
    # stopped by preflight's settings gate, before ascend_facts ran anything on the host; each variable named
    # (the one-task preflight stops at its settings step: ascend_facts never ran)
    assert "TASK [ascend.fa.fa_preflight : Check this host" in run.out and "step: settings" in run.out, run.out[-3000:]
    for name in hostile:
        assert f"{host}: [error] setting {name} is not valid" in run.out, (name, run.out[-4000:])
    assert "Unexpected Exception" not in run.out and "Traceback" not in run.out
    assert set(run.changed().values()) == {0}
    _no_marker_anywhere(fleet, list(m.values()))
    _nothing_built_or_installed(fleet)


def test_a_recipe_name_that_leaves_the_recipe_folders_is_refused(fleet, markers, tmp_path):
    """fa_recipe is loaded (fa_common) before preflight: a path in it is an error naming the value, not a file read."""
    marker = markers("recipe")
    evil = tmp_path / "evil.yml"            # a recipe the name tries to reach
    evil.write_text((Path(__file__).resolve().parents[2] / "ascend_sim/recipes/sim-ops-transformer-v9.0.1.yml")
                    .read_text().replace("name: sim-ops-transformer-v9.0.1", "name: evil"))
    name = "../" * 12 + str(tmp_path / "evil").lstrip("/")
    for value in (name, f"x;touch {marker}", f"$(touch {marker})"):
        run = fleet.play("deploy_fa.yml", "-e", json.dumps({"fa_recipe": value}))
        assert run.rc != 0 and run.failed() == [fleet.hosts[0]], run.out[-3000:]
        assert f"fa_recipe {value!r} is not a recipe name" in run.out.replace("\\\\", "\\"), run.out[-3000:]
        assert "Fix: set fa_recipe to one of:" in run.out
    _no_marker_anywhere(fleet, [marker])
    _nothing_built_or_installed(fleet)


def test_the_vendor_is_part_of_the_build_key_and_the_build_runs_as_argv(fleet):
    """A package built for another vendor is another package: a deploy with a new fa_vendor builds again (its own
    build key) instead of installing the cached package of the old vendor under the new vendor's name."""
    host = fleet.hosts[0]
    first = fleet.play("deploy_fa.yml")
    assert first.rc == 0, first.out[-4000:]
    (built,) = fleet.builds()
    assert "ascendfa_linux" in built["file"] and fleet.manifest(host)["vendor"] == "ascendfa"
    second = fleet.play("deploy_fa.yml", "-e", "fa_vendor=vendorb")
    assert second.rc == 0, second.out[-4000:]
    builds = {b["build_key"]: b for b in fleet.builds()}
    assert len(builds) == 2 and built["build_key"] in builds, builds
    (new,) = [b for k, b in builds.items() if k != built["build_key"]]
    assert "vendorb_linux" in new["file"]
    m = fleet.manifest(host)
    assert m["vendor"] == "vendorb" and m["build_key"] == new["build_key"] and m["vendor_dir"].endswith("/vendorb_transformer")
    cfg = fleet.sh(host, "grep ^load_priority= {}/config.ini".format(m["vendor_dir"].rsplit("/", 1)[0]))
    assert cfg.stdout.strip().split("=", 1)[1].split(",")[0] == "vendorb_transformer", cfg.stdout
