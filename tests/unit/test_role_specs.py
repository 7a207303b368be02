"""Every role's defaults/main.yml and meta/argument_specs.yml agree: each default has a spec (in one of the role's
entry points) and each specced option with a default value has it in defaults, with a value of the specced type and,
where the spec lists choices, one of them. A variable added to one file and forgotten in the other fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())
TYPES = {"bool": (bool,), "int": (int,), "float": (int, float), "list": (list,), "dict": (dict,), "str": (str,),
         "path": (str,)}


def _load(path: Path) -> dict:
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def _options(role: Path) -> dict[str, dict]:
    specs = _load(role / "meta" / "argument_specs.yml")["argument_specs"]
    merged: dict[str, dict] = {}
    for entry in specs.values():
        merged.update(entry.get("options") or {})
    return merged


def test_every_role_with_defaults_has_argument_specs():
    with_defaults = {p.name for p in (ROOT / "roles").iterdir() if (p / "defaults" / "main.yml").is_file()}
    assert with_defaults <= {p.name for p in ROLES}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_and_argument_specs_agree(role):
    defaults = _load(role / "defaults" / "main.yml")
    options = _options(role)
    assert not sorted(set(defaults) - set(options)), f"{role.name}: defaults without a spec"
    for name, value in defaults.items():
        spec = options[name]
        if isinstance(value, str) and "{{" in value:
            continue   # templated: its type is known only at run time
        kind = spec.get("type", "str")
        if kind in TYPES and not (isinstance(value, bool) and kind in ("int", "float")):
            assert isinstance(value, TYPES[kind]), f"{role.name}: {name} = {value!r} is not a {kind}"
        if spec.get("choices"):
            assert value in spec["choices"], f"{role.name}: {name} = {value!r} not in {spec['choices']}"
        assert spec.get("description"), f"{role.name}: {name} has no description"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_prefix(role):
    """Role-prefixed variables: every variable a role defines starts with fa_ (the project's prefix)."""
    for name in _options(role):
        assert name.startswith("fa_"), f"{role.name}: {name}"


def test_the_check_can_fail(tmp_path):
    role = tmp_path / "r"
    (role / "defaults").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "defaults" / "main.yml").write_text("fa_x: 1\nfa_y: true\n")
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n      fa_x: {type: bool, description: x}\n")
    with pytest.raises(AssertionError, match="defaults without a spec"):
        test_defaults_and_argument_specs_agree(role)
    (role / "defaults" / "main.yml").write_text("fa_x: 1\n")
    with pytest.raises(AssertionError, match="is not a bool"):
        test_defaults_and_argument_specs_agree(role)


def test_old_rollout_names_still_set_the_new_ones(tmp_path):
    """fa_rolling_* (before 0.2) still reach the role for one release: each fa_rollout_* default falls back to the
    old name, and the playbooks' serial / max_fail_percentage read it too (the settings gate warns about it)."""
    import json
    import os
    import subprocess
    import sys

    defaults = ROOT / "roles" / "fa_rollout" / "defaults" / "main.yml"
    deploy = yaml.safe_load((ROOT / "playbooks" / "deploy.yml").read_text())[1]
    out = tmp_path / "out.json"
    play = tmp_path / "pb.yml"
    play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "vars_files": [str(defaults)],
        "vars": {"serial": deploy["serial"], "fail": deploy["max_fail_percentage"]},
        "tasks": [{"ansible.builtin.copy": {"dest": str(out), "mode": "0644", "content": (
            "{{ {'verify': fa_rollout_verify | bool, 'drain': fa_rollout_drain_command, 'rollback': "
            "fa_rollout_auto_rollback | bool, 'serial': serial | string, 'fail': fail | string} | to_json }}")}}]}]))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "default",
           "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", "ANSIBLE_FORKS": "7"}

    def run(*extra: str) -> dict:
        p = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                            "-e", f"ansible_python_interpreter={sys.executable}", str(play), *extra],
                           capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(out.read_text())

    assert run() == {"verify": True, "drain": [], "rollback": True, "serial": "7", "fail": "100"}
    old = run("-e", '{"fa_rolling_verify": false, "fa_rolling_drain_command": ["systemctl", "stop", "vllm"], '
                    '"fa_rolling_auto_rollback": false, "fa_rolling_batch": 3, "fa_rolling_max_fail_percent": 20}')
    assert old == {"verify": False, "drain": ["systemctl", "stop", "vllm"], "rollback": False, "serial": "3",
                   "fail": "20"}
    both = run("-e", '{"fa_rolling_verify": false, "fa_rollout_verify": true, "fa_rolling_batch": 3, '
                     '"fa_rollout_batch": 5}')
    assert both["verify"] is True and both["serial"] == "5"      # the new name wins
