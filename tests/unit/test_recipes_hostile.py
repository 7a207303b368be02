"""ascend_fa/recipes.py: a recipe is input like any other. Every field rendered into a command or a path is checked
(no shell syntax, no '..'), the recipe's name cannot leave the recipe folders, placeholders are a small fixed set
(rendered in a sandbox), and the build command is split into argv words before anything is rendered."""

from __future__ import annotations

import copy

import pytest
import yaml
from ansible_collections.ascend.fa.plugins.plugin_utils import recipes

from ascend_fa import PROJECT_ROOT

BASE = yaml.safe_load((PROJECT_ROOT / "recipes/ops-transformer-v9.0.1.yml").read_text())


def _load(tmp_path, data, name="hostile"):
    data = {**data, "name": data.get("name", name)}
    (tmp_path / f"{name}.yml").write_text(yaml.safe_dump(data))
    return recipes.load(name, [str(tmp_path)])


def _with(path: str, value):
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return data


def test_the_shipped_and_simulated_recipes_pass():
    for d in (PROJECT_ROOT / "recipes", PROJECT_ROOT / "ascend_sim/recipes"):
        for path in d.glob("*.yml"):
            recipes.load(path.stem, [str(d)])


HOSTILE_FIELDS = [
    ("build.command", "bash build.sh --vendor_name={{ vendor }};id"),
    ("build.command", "bash build.sh $(touch /tmp/x)"),
    ("build.command", "bash build.sh `id`"),
    ("build.command", "bash build.sh\nid"),
    ("build.command", "bash build.sh '--soc=a b'"),
    ("build.command", "bash build.sh > /tmp/x"),
    ("build.command", "bash build.sh | sh"),
    ("build.command", "bash build.sh --x={{ ''.__class__ }}"),
    ("build.command", "bash build.sh {% for x in range(3) %}a{% endfor %}"),
    ("build.command", "bash build.sh --x={{ lookup('pipe', 'id') }}"),
    ("build.command", "bash build.sh 'unclosed"),
    ("build.ops", ["flash_attention_score;id"]),
    ("build.ops", ["$(id)"]),
    ("build.ops", "flash_attention_score"),
    ("build.output_glob", "build_out/*.run;id"),
    ("build.output_glob", "../../etc/*"),
    ("build.output_glob", "/etc/*.run"),
    ("build.output_glob", "build_out/`id`.run"),
    ("build.timeout", "7200;id"),
    ("tag", "v9.0.1;id"),
    ("tag", "--upload-pack=id"),
    ("tag", "v9.0.1\n"),
    ("tag", "v9/../../x"),
    ("repo_url", "ext::sh -c touch% /tmp/x"),
    ("repo_url", "https://h.example/x.git;id"),
    ("repo_url", "--upload-pack=id"),
    ("soc_families", ["ascend910b;id"]),
    ("install.flags", ["--quiet;id"]),
    ("install.flags", ["--quiet $(id)"]),
    ("install.flags", ["--install-path=/tmp/x"]),
    ("install.flags", ["`id`"]),
    ("install.vendor_dir", "{{ vendor }}_transformer;id"),
    ("install.vendor_dir", ".."),
    ("install.vendor_dir", "../../etc"),
    ("install.vendor_dir", "a b"),
    ("install.libraries", ["op_api/lib/libcust_opapi.so;id"]),
    ("install.libraries", ["../../../etc/passwd"]),
    ("install.libraries", ["/etc/passwd"]),
    ("install.libraries", ["op_api/lib/$(id).so"]),
    ("install.ld_library_dirs", ["op_api/lib\ninclude /tmp/evil.conf"]),
    ("install.ld_library_dirs", ["../../lib"]),
    ("install.ld_library_dirs", ["op api/lib"]),
    ("install.set_env", "bin/set_env.bash;id"),
    ("install.set_env", "../../../root/.bashrc"),
    ("install.set_env", "bin/`id`"),
    ("install.config_ini", "../config.ini"),
    ("install.config_ini", "config.ini\n"),
]


@pytest.mark.parametrize("field, value", HOSTILE_FIELDS, ids=[f"{f}={v!r}" for f, v in HOSTILE_FIELDS])
def test_a_hostile_recipe_field_is_refused_naming_the_field_and_value(tmp_path, field, value):
    with pytest.raises(recipes.RecipeError) as exc:
        _load(tmp_path, _with(field, value))
    msg = str(exc.value)
    assert "hostile.yml" in msg and "Fix:" in msg
    assert field.split(".")[-1] in msg or "build.command" in msg
    # the value (or the offending word of the command) is shown
    shown = value if isinstance(value, str) else value[0]
    assert any(part and repr(part)[1:-1] in msg for part in [shown, *shown.split()]), msg


@pytest.mark.parametrize("name", ["../../etc/passwd", "../recipes/x", "a/b", "a;id", "$(id)", "`id`", "x\n", "a b",
                                  "", ".hidden"])
def test_a_recipe_name_cannot_leave_the_recipe_folders(tmp_path, name):
    (tmp_path / "ok.yml").write_text(yaml.safe_dump({**BASE, "name": "ok"}))
    with pytest.raises(recipes.RecipeError, match="is not a recipe name") as exc:
        recipes.load(name, [str(tmp_path)])
    assert repr(name) in str(exc.value) and "Fix: set fa_recipe to one of:" in str(exc.value)
    assert "ok" in str(exc.value).rsplit("one of:", 1)[1]


def test_the_build_command_is_split_before_rendering():
    words = recipes.command_tokens(BASE["build"]["command"])
    assert words == ["bash", "build.sh", "--pkg", "--soc={{ soc_family }}", "--ops={{ ops | join(',') }}",
                     "--vendor_name={{ vendor }}", "-j{{ jobs }}"]
    # a quoted word with a placeholder stays one word
    assert recipes.command_tokens("bash build.sh '--x={{ vendor }}' \"-y\"") == ["bash", "build.sh",
                                                                                "--x={{ vendor }}", "-y"]
    argv = recipes.render_argv(BASE["build"]["command"], soc_family="ascend950", ops=["a", "b"], vendor="v1",
                               jobs=2, arch="aarch64")
    assert argv == ["bash", "build.sh", "--pkg", "--soc=ascend950", "--ops=a,b", "--vendor_name=v1", "-j2"]


def test_rendering_is_sandboxed():
    with pytest.raises(recipes.RecipeError):
        recipes.render("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    assert recipes.render("{{ vendor }}_transformer", vendor="ascendfa") == "ascendfa_transformer"
