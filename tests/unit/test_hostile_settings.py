"""Hostile input never reaches a shell as code: every string setting that reaches a command or a path is refused in
preflight (bad_setting, naming the variable and the value), the build command runs as argv words (a hostile value stays
one word even when validation is bypassed), values written into ld.so.conf are refused when they would add lines, and
the build key changes with everything that makes the package different (vendor, build command, ops)."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from ansible_collections.ascend.fa.plugins.plugin_utils import buildplan, preflight, recipes, settings
from test_preflight_decide import GOOD

RECIPE = recipes.load("ops-transformer-v9.0.1")

# ;  $(...)  backticks  newline  space  '..'   (each one a way a value could become code or leave its folder)
HOSTILE = {
    "fa_vendor": ["ascendfa;id", "a$(id)", "a`id`", "ascendfa\n", "ascend fa", "..", "x;touch /tmp/p;id>/tmp/q;#",
                  "-ascendfa", "a" * 33, "ascend-fa"],
    "fa_install_path": ["/opt/fa;id", "/opt/fa$(touch /tmp/x)", "/opt/`id`", "/opt/fa\n", "/opt/f a", "/opt/../etc",
                        "opt/fa", "/opt//fa", "/"],
    "fa_state_dir": ["/var/lib/a;id", "/var/$(id)", "/var/`id`", "/var/lib/ascend-fa\n", "/var/lib/a b",
                     "/var/lib/../../etc", "", "/"],
    "fa_build_dir": ["/var/tmp/a;id", "/var/tmp/$(id)", "/var/tmp/`id`", "/var/tmp/a\nb", "/var/tmp/a b",
                     "/var/tmp/..", ""],
    "fa_ascend_home": ["/usr/local/Ascend;id", "/usr/$(id)", "/usr/`id`", "/usr/local/Ascend\n", "/usr/local/As cend",
                       "/usr/local/../../etc", "usr/local/Ascend"],
    "fa_python": ["python3;id", "python3$(id)", "python3`id`", "python3\n", "python3 -c import os", "../bin/python",
                  "-c", ""],
    "fa_npu_smi": ["npu-smi;id", "npu-smi$(id)", "npu-smi`id`", "npu-smi\n", "npu-smi info", "../npu-smi",
                   "--help"],
    "fa_repo_url": ["https://h.example/x.git;id", "https://h.example/$(id).git", "https://h.example/`id`.git",
                    "https://h.example/x.git\n", "https://h.example/x y.git", "https://h.example/../x.git",
                    "--upload-pack=touch /tmp/x", "ext::sh -c touch% /tmp/x", "http://h.example/x.git"],
    "fa_repo_bundle": ["/srv/b.bundle;id", "/srv/$(id).bundle", "/srv/`id`.bundle", "/srv/b.bundle\n",
                       "/srv/b b.bundle", "/srv/../etc/shadow", "b.bundle"],
    "fa_recipe": ["ops;id", "ops$(id)", "ops`id`", "ops-transformer-v9.0.1\n", "ops transformer", "../../etc/passwd",
                  "a/b", ""],
    "fa_build_host": ["h1;id", "h$(id)", "h`id`", "h1\n", "h 1", "..", "-oProxyCommand=id"],
    "fa_artifact_host": ["h1;id", "h$(id)", "h`id`", "h1\n", "h 1", ".."],
    "fa_install_seed_host": ["h1;id", "h$(id)", "h`id`", "h1\n", "h 1", "..", "-oProxyCommand=id"],
    "fa_install_serve_address": ["10.0.0.1;id", "h$(id)", "h`id`", "10.0.0.1\n", "10.0.0.1 x", "..",
                                 "-oProxyCommand=id", "h/x", "[fe80::1]"],
    "fa_artifact_store_dir": ["/srv/a;id", "/srv/$(id)", "/srv/`id`", "/srv/a\n", "/srv/a b", "/srv/../etc"],
    "fa_install_ldconfig_file": ["/etc/ld.so.conf.d/a;id", "/etc/$(id)", "/etc/`id`", "/etc/a\n", "/etc/a b",
                                 "/etc/ld.so.conf.d/../../x"],
    "fa_rollout_drain_command": [["systemctl;id"], ["$(id)"], ["`id`"], ["systemctl", "stop\nvllm"],
                                 ["systemctl stop vllm"], ["../bin/drain"], "systemctl stop vllm", ["x", "a\x00b"],
                                 ["-x"]],
    "fa_rollout_undrain_command": [["systemctl;id"], ["$(id)"], ["`id`"], ["systemctl", "start\rvllm"],
                                   ["systemctl start vllm"], ["../bin/undrain"], "systemctl start vllm"],
    "fa_verify_metrics_dir": ["/var/lib/n;id", "/var/$(id)", "/var/`id`", "/var/lib/n\n", "/var/lib/n e",
                              "/var/lib/../../etc", "textfile", "/"],
    "fa_rollout_slurm_node": ["n1;id", "n$(id)", "n`id`", "n1\n", "n 1", "..", "-oFoo", "n1,n2 state=down"],
    "fa_rollout_slurm_host": ["h1;id", "h$(id)", "h`id`", "h1\n", "h 1", ".."],
    "fa_rollout_k8s_node": ["n1;id", "n$(id)", "n`id`", "n1\n", "n 1", "--all", "-l=a"],
    "fa_rollout_kubectl_host": ["h1;id", "h$(id)", "h1\n", "h 1", "..", "-oProxyCommand=id"],
    "fa_rollout_kubeconfig": ["/etc/k;id", "/etc/$(id)", "/etc/`id`", "/etc/k\n", "/etc/k c", "/etc/../root/k",
                              "kubeconfig"],
}

GOOD_VALUES = {
    "fa_vendor": ["ascendfa", "customize", "Vendor_2", "a" * 32],
    "fa_install_path": ["", "/opt/ascend-fa", "/opt/fa_1.0+x/"],
    "fa_state_dir": ["/var/lib/ascend-fa"],
    "fa_build_dir": ["/var/tmp/ascend-fa"],
    "fa_ascend_home": ["/usr/local/Ascend"],
    "fa_python": ["python3", "python3.11", "/usr/local/python3.11/bin/python3"],
    "fa_npu_smi": ["npu-smi", "/usr/local/sbin/npu-smi"],
    "fa_repo_url": ["", "https://gitcode.com/cann/ops-transformer.git", "file:///srv/ascend-sim/upstream/o.git",
                    "ssh://git@git.example:2222/m/o.git", "git@git.example:mirrors/ops-transformer.git",
                    "/srv/mirrors/ops-transformer.git"],
    "fa_repo_bundle": ["", "/srv/bundles/ops-transformer.bundle"],
    "fa_recipe": ["ops-transformer-v9.0.1", "sim-ops-transformer-v9.0.0"],
    "fa_build_host": ["", "builder-01", "10.0.0.5", "atlas-a2-001.example.com"],
    "fa_artifact_host": ["", "store"],
    "fa_install_seed_host": ["", "atlas-a2-001", "10.0.0.5"],
    "fa_install_serve_address": ["", "10.0.0.11", "fe80::1", "seed-1.cluster.internal"],
    "fa_artifact_store_dir": ["/srv/ascend-fa/artifacts"],
    "fa_install_ldconfig_file": ["/etc/ld.so.conf.d/ascend-fa.conf"],
    "fa_rollout_drain_command": [[], ["systemctl", "stop", "vllm"], ["/usr/local/bin/drain", "--node=a;b c"]],
    "fa_rollout_undrain_command": [[], ["kubectl", "uncordon", "node-1"]],
    "fa_verify_metrics_dir": ["", "/var/lib/node_exporter/textfile_collector", "/var/lib/prometheus/node-exporter"],
    "fa_rollout_slurm_node": ["", "atlas-a2-001", "node1"],
    "fa_rollout_slurm_host": ["", "slurmctld-1"],
    "fa_rollout_k8s_node": ["", "atlas-a2-001.example.com"],
    "fa_rollout_kubectl_host": ["localhost", "bastion-1"],
    "fa_rollout_kubeconfig": ["", "/etc/ascend-fa/kubeconfig"],
}

CASES = [(name, value) for name, values in HOSTILE.items() for value in values]


def test_every_setting_that_reaches_a_command_or_path_is_checked():
    assert set(HOSTILE) == set(settings.STRINGS) == set(GOOD_VALUES)


@pytest.mark.parametrize("name, value", CASES, ids=[f"{n}={v!r}" for n, v in CASES])
def test_a_hostile_value_is_a_bad_setting_naming_variable_value_and_fix(name, value):
    problems = settings.problems({name: value})
    assert len(problems) == 1, problems
    (p,) = problems
    assert p["code"] == "bad_setting" and p["severity"] == "error"
    assert p["what"] == f"setting {name} is not valid" and p["found"] == repr(value)
    assert p["needed"] and name in p["fix"] and "(-e, group_vars or host_vars)" in p["fix"]


@pytest.mark.parametrize("name", list(GOOD_VALUES))
def test_the_usual_values_pass(name):
    for value in GOOD_VALUES[name]:
        assert settings.problems({name: value}) == [], (name, value)


def test_a_hostile_vendor_blocks_the_host_in_preflight_whatever_is_ignored():
    v = preflight.decide(GOOD, RECIPE, {"settings": {"fa_vendor": "x;touch /tmp/p;id>/tmp/q;#"},
                                        "ignore": ["bad_setting"], "vendor": "x;touch /tmp/p;id>/tmp/q;#"})
    assert [p["code"] for p in v["blocking"]] == ["bad_setting"]
    line = f"[error] setting fa_vendor is not valid (found {'x;touch /tmp/p;id>/tmp/q;#'!r}"
    from ansible_collections.ascend.fa.plugins.plugin_utils.compat import Problem
    assert Problem(**v["blocking"][0]).line("h1").startswith("h1: " + line)


# ------------------------------------------------------------------------------------------------ the build key

def test_the_build_key_holds_the_vendor_and_the_build_command_but_not_the_job_count():
    base = preflight.build_key(GOOD, RECIPE, "ascendfa")
    assert base == preflight.decide(GOOD, RECIPE, {"vendor": "ascendfa"})["build_key"]
    assert preflight.build_key(GOOD, RECIPE, "customize") != base
    flags = {**RECIPE, "build": {**RECIPE["build"], "command": RECIPE["build"]["command"] + " -O3"}}
    assert preflight.build_key(GOOD, flags, "ascendfa") != base
    ops = {**RECIPE, "build": {**RECIPE["build"], "ops": ["flash_attention_score", "other_op"]}}
    assert preflight.build_key(GOOD, ops, "ascendfa") != base
    more_memory = {**RECIPE, "build": {**RECIPE["build"], "mem_per_job_mb": 1024, "timeout": 60}}
    assert preflight.build_key(GOOD, more_memory, "ascendfa") == base
    assert preflight.build_key({**GOOD, "cpu_count": 192}, RECIPE, "ascendfa") == base
    # the key as buildplan computes it from the parts, independently of preflight
    spec = {"command": RECIPE["build"]["command"], "ops": list(RECIPE["build"]["ops"])}
    assert base == buildplan.build_key(RECIPE["name"], RECIPE["commit"], "ascend910b", "9.0.1", "x86_64", "ascendfa",
                                       spec)


# ------------------------------------------------------------------------------------------------ the build argv

def _run_build_line(tmp_path, argv):
    """Run fa_build's bash line for ``argv`` in a source tree whose build.sh prints each argument on its own line."""
    from ansible_collections.ascend.fa.plugins.modules import fa_build

    src = tmp_path / "src"
    src.mkdir()
    (src / "build.sh").write_text('for a in "$@"; do printf "<%s>\\n" "$a"; done\n')
    log = tmp_path / "build.log"
    line = fa_build.command_line([], str(src), argv, str(log), 60)
    p = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60)
    return p, log.read_text() if log.exists() else ""


HOSTILE_WORDS = ["x;touch {m};#", "$(touch {m})", "`touch {m}`", "x\ntouch {m}", "a b > {m}", "../../{m}", "'\"{m}"]


@pytest.mark.parametrize("word", HOSTILE_WORDS)
def test_a_hostile_value_rendered_into_the_build_command_stays_one_argv_word(tmp_path, word):
    marker = tmp_path / "marker"
    vendor = word.format(m=marker)
    # validation bypassed: the words are split first and rendered one by one (what fa_recipe_argv does)
    argv = [recipes.render(w, soc_family="ascend910b", ops=["flash_attention_score"], vendor=vendor, jobs=4,
                           arch="x86_64") for w in recipes.command_tokens(RECIPE["build"]["command"])]
    assert argv == ["bash", "build.sh", "--pkg", "--soc=ascend910b", "--ops=flash_attention_score",
                    f"--vendor_name={vendor}", "-j4"]
    p, log = _run_build_line(tmp_path, argv)
    assert p.returncode == 0, p.stderr
    # build.sh got exactly five arguments, the vendor's intact in one of them
    assert log == f"<--pkg>\n<--soc=ascend910b>\n<--ops=flash_attention_score>\n<--vendor_name={vendor}>\n<-j4>\n"
    assert not marker.exists()


def test_render_argv_refuses_a_value_that_is_not_a_plain_word():
    ok = recipes.render_argv(RECIPE["build"]["command"], soc_family="ascend910_93", ops=["flash_attention_score"],
                             vendor="ascendfa", jobs=8, arch="aarch64")
    assert ok == ["bash", "build.sh", "--pkg", "--soc=ascend910_93", "--ops=flash_attention_score",
                  "--vendor_name=ascendfa", "-j8"]
    for name, value in (("vendor", "x;id"), ("arch", "x86_64 ;id"), ("soc_family", "$(id)"), ("ops", ["a", "`id`"]),
                        ("jobs", "8\n")):
        values = {"soc_family": "ascend910b", "ops": ["flash_attention_score"], "vendor": "v", "jobs": 8,
                  "arch": "x86_64", name: value}
        with pytest.raises(recipes.RecipeError, match=f"the value {name}="):
            recipes.render_argv(RECIPE["build"]["command"], **values)


def test_the_build_line_quotes_every_word_and_the_paths():
    from ansible_collections.ascend.fa.plugins.modules import fa_build

    line = fa_build.command_line(["/usr/local/Ascend/cann/set_env.sh"], "/var/tmp/a b", ["bash", "x;id"], "/l og", 9)
    assert f"cd {shlex.quote('/var/tmp/a b')} && timeout --kill-after=30 9 bash 'x;id' > '/l og' 2>&1" in line
    with pytest.raises(ValueError):
        fa_build.command_line([], "/src", [], "/log", 9)


# ------------------------------------------------------------------------------------------------ install texts

def test_ld_conf_text_refuses_a_folder_that_would_add_a_line(tmp_path):
    from ansible_collections.ascend.fa.plugins.module_utils.fa_install_lib import Installer, InstallError

    params = {"state_dir": str(tmp_path / "state"), "set_env": ["/usr/local/Ascend/cann/set_env.sh"],
              "ld_library_dirs": ["op_api/lib"], "ldconfig_file": str(tmp_path / "ascend-fa.conf"),
              "install_path": "/opt/fa", "package_set_env": "bin/set_env.bash"}
    inst = Installer(params, lambda cmd: (0, "", ""))
    assert inst.ld_conf_text("/opt/fa/vendors/ascendfa_transformer").splitlines()[1:] == [
        "/opt/fa/vendors/ascendfa_transformer/op_api/lib"]
    for vendor_dir in ("/opt/fa\ninclude /tmp/evil.conf", "/opt/f a", "/opt/fa#x", "/opt/../etc"):
        with pytest.raises(InstallError, match="nothing was registered"):
            inst.ld_conf_text(vendor_dir)
    # set_env.bash: every path is one quoted word; sourcing it runs nothing of the value
    marker = tmp_path / "marker"
    text = inst.set_env_text(f"/opt/fa$(touch {marker})/vendors/v")
    subprocess.run(["bash", "-c", text], capture_output=True, timeout=30)
    assert not marker.exists()
