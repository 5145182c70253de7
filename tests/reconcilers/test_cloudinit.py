"""cloud-init user data for VM sessions (reconcilers.cloudinit).

The shell parts are executed for real: ``SECRET_ENV_SCRIPT`` runs under /bin/sh (and bash when
present) against directories laid out as the kubelet lays out a Secret volume (files behind
``..data`` symlinks), and the environment files it writes — and ``env_file``'s — are sourced
by a shell and read back byte for byte.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcilers.cloudinit import (
    CLOUD_CONFIG_HEADER,
    DEFAULT_TEMPLATE,
    ENVFROM_ENV_PATH,
    HYDRATE_UNIT,
    RUNNER_ENV_PATH,
    RUNNER_UNIT,
    SECRET_ENV_LIST_PATH,
    SECRET_ENV_PATH,
    SECRET_ENV_SCRIPT,
    SECRET_ENV_SCRIPT_PATH,
    SECRET_ENV_UNIT,
    SECRETS_ROOT,
    STATE_SYNC_ENV_PATH,
    STATE_SYNC_SECRET_ENV_PATH,
    STATE_SYNC_SECRET_ENV_UNIT,
    STATE_SYNC_SECRET_LIST_PATH,
    STATE_SYNC_SERVICE,
    STATE_SYNC_UNIT,
    GuestSetup,
    SecretRef,
    check_env_names,
    default_user_data,
    env_file,
    render_template,
    secret_env_list,
    substitute,
    user_data,
)
from reconcilers.environment import RenderError

SHELLS = [shell for shell in ("/bin/sh", shutil.which("bash")) if shell and os.path.exists(shell)]
AWKWARD = {
    "PLAIN": "value",
    "QUOTES": 'say "hi" and \'bye\'',
    "DOLLAR": "$HOME ${PATH} $(id) $((1+1))",
    "BACKQUOTE": "`id` and `rm -rf /`",
    "BACKSLASH": "C:\\dir\\ and \\n literal \\\\ double",
    "BACKSLASH_NEWLINE": "ends with \\\nnext line",
    "TRAILING_BACKSLASH": "trailing\\",
    "MULTILINE": "line one\nline two\n\n",
    "LEADING_NEWLINE": "\nstarts with a newline",
    "SPACES": "  padded  ",
    "EMPTY": "",
    "UNICODE": "héllo ✓ 日本",
    "SHELL_SYNTAX": "a; b && c | d > /tmp/x < y #comment",
    "EQUALS": "a=b=c",
}


def read_back(shell: str, files: list[Path], names: list[str]) -> dict[str, str | None]:
    """Source ``files`` in ``shell`` and return each variable's exact value (None: unset)."""
    script = "".join(f'. "{f}"; ' for f in files) + "".join(
        f'if [ "${{{n}+set}}" = set ]; then printf "%s\\0" "${n}"; '
        f'else printf "<unset>\\0"; fi; ' for n in names)
    out = subprocess.run([shell, "-c", script], check=True, capture_output=True,
                         env={"PATH": os.environ["PATH"]}).stdout
    values = out.split(b"\0")[:-1]
    assert len(values) == len(names)
    return {n: None if v == b"<unset>" else v.decode() for n, v in zip(names, values,
                                                                        strict=True)}


# env_file ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shell", SHELLS)
def test_env_file_reads_back_exactly_in_a_shell(tmp_path: Path, shell: str) -> None:
    path = tmp_path / "runner.env"
    path.write_text(env_file(AWKWARD), encoding="utf-8")
    assert read_back(shell, [path], list(AWKWARD)) == AWKWARD


def test_env_file_is_one_quoted_assignment_per_variable_in_order() -> None:
    assert env_file({"B": "2", "A": 'x"$`\\'}) == 'B="2"\nA="x\\"\\$\\`\\\\"\n'
    assert env_file({}) == ""


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True),
                       st.text(st.characters(blacklist_categories=["Cs"],
                                             blacklist_characters="\0"), max_size=20),
                       max_size=5))
def test_env_file_round_trips_any_value(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "any.env"
    path.write_text(env_file(env), encoding="utf-8")
    assert read_back("/bin/sh", [path], list(env)) == env


def test_check_env_names() -> None:
    check_env_names(["A", "_x", "ABC_123"])
    for bad in ("MY-VAR", "1X", "A.B", "", "A B", "A=B", "É"):
        with pytest.raises(RenderError) as err:
            check_env_names([bad])
        assert err.value.reason == "InvalidEnvName"


# the secret env script ------------------------------------------------------------------------
def secret_volume(root: Path, name: str, data: Mapping[str, str | bytes]) -> None:
    """A Secret volume as the kubelet writes it: the files in a timestamped directory, a
    ``..data`` symlink to it, and one symlink per key through ``..data``."""
    volume = root / name
    stamp = volume / "..2026_03_01_12_00_00.000000001"
    stamp.mkdir(parents=True)
    for key, value in data.items():
        (stamp / key).write_bytes(value if isinstance(value, bytes) else value.encode())
    (volume / "..data").symlink_to(stamp.name)
    for key in data:
        (volume / key).symlink_to(f"..data/{key}")


def run_script(tmp_path: Path, shell: str, lines: list[str]) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "ambient-secret-env"
    script.write_text(SECRET_ENV_SCRIPT)
    (tmp_path / "secret-env.list").write_text("".join(f"{line}\n" for line in lines))
    env = {"PATH": os.environ["PATH"],
           "AMBIENT_SECRET_ENV_LIST": str(tmp_path / "secret-env.list"),
           "AMBIENT_SECRETS_ROOT": str(tmp_path / "secrets"),
           "AMBIENT_ENVFROM_ENV": str(tmp_path / "run" / "envfrom.env"),
           "AMBIENT_SECRET_REFS_ENV": str(tmp_path / "run" / "secret-refs.env")}
    return subprocess.run([shell, str(script)], env=env, capture_output=True, text=True,
                          check=False)


@pytest.mark.parametrize("shell", SHELLS)
def test_the_secret_env_script_turns_shared_secrets_into_env_files(tmp_path: Path,
                                                                   shell: str) -> None:
    secrets = tmp_path / "secrets"
    secret_volume(secrets, "ambient-runner-secrets", {
        **AWKWARD, "bad-key": "skipped", "1NUMERIC": "skipped", "lower_ok": "kept"})
    secret_volume(secrets, "runner-token", {"agui-token": "tok$en\"`\\\n", "k8s-token": "jwt"})
    secret_volume(secrets, "langfuse", {"LANGFUSE_HOST": "https://lf"})
    result = run_script(tmp_path, shell, [
        "* ambient-runner-secrets",
        "* not-shared-at-all",
        "AGUI_TOKEN runner-token/agui-token",
        "BOT_TOKEN runner-token/k8s-token",
        "LANGFUSE_HOST langfuse/LANGFUSE_HOST optional",
        "LANGFUSE_SECRET_KEY langfuse/LANGFUSE_SECRET_KEY optional",
        "# a comment", "",
    ])
    assert result.returncode == 0, result.stderr
    envfrom, refs = tmp_path / "run" / "envfrom.env", tmp_path / "run" / "secret-refs.env"
    names = [*AWKWARD, "lower_ok", "bad_key", "AGUI_TOKEN", "BOT_TOKEN", "LANGFUSE_HOST",
             "LANGFUSE_SECRET_KEY"]
    values = read_back(shell, [envfrom, refs], names)
    assert values == {**AWKWARD, "lower_ok": "kept", "bad_key": None,
                      "AGUI_TOKEN": "tok$en\"`\\\n", "BOT_TOKEN": "jwt",
                      "LANGFUSE_HOST": "https://lf", "LANGFUSE_SECRET_KEY": None}
    assert "1NUMERIC" not in envfrom.read_text() and "skipped" not in envfrom.read_text()
    # the single keys and the whole Secrets go to their own files; both private
    assert "AGUI_TOKEN" not in envfrom.read_text() and "PLAIN" not in refs.read_text()
    assert envfrom.stat().st_mode & 0o077 == 0 and refs.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("shell", SHELLS)
def test_a_missing_required_key_fails_and_leaves_the_previous_files(tmp_path: Path,
                                                                    shell: str) -> None:
    secret_volume(tmp_path / "secrets", "runner-token", {"k8s-token": "jwt"})
    (tmp_path / "run").mkdir()
    previous = 'AGUI_TOKEN="old"\n'
    (tmp_path / "run" / "secret-refs.env").write_text(previous)
    result = run_script(tmp_path, shell, ["BOT_TOKEN runner-token/k8s-token",
                                          "AGUI_TOKEN runner-token/agui-token"])
    assert result.returncode == 1
    assert "runner-token/agui-token is missing" in result.stderr
    assert (tmp_path / "run" / "secret-refs.env").read_text() == previous


@pytest.mark.parametrize("shell", SHELLS)
def test_a_refreshed_secret_is_read_at_the_next_run(tmp_path: Path, shell: str) -> None:
    """The kubelet swaps ``..data`` to a new directory: the next run reads the new value."""
    volume = tmp_path / "secrets" / "runner-token"
    secret_volume(tmp_path / "secrets", "runner-token", {"k8s-token": "first"})
    assert run_script(tmp_path, shell, ["BOT_TOKEN runner-token/k8s-token"]).returncode == 0
    newer = volume / "..2026_03_01_12_45_00.000000002"
    newer.mkdir()
    (newer / "k8s-token").write_text("second")
    (volume / "..data_tmp").symlink_to(newer.name)
    os.replace(volume / "..data_tmp", volume / "..data")
    assert run_script(tmp_path, shell, ["BOT_TOKEN runner-token/k8s-token"]).returncode == 0
    assert read_back(shell, [tmp_path / "run" / "secret-refs.env"], ["BOT_TOKEN"]) == {
        "BOT_TOKEN": "second"}


# the default template -------------------------------------------------------------------------
SETUP = GuestSetup(
    env={"AGENTIC_SESSION_NAME": "s1", "AGUI_PORT": "8001", "INITIAL_PROMPT": 'fix "$x"'},
    secret_refs=[SecretRef("AGUI_TOKEN", "runner-token", "agui-token"),
                 SecretRef("LANGFUSE_HOST", "langfuse", "LANGFUSE_HOST", optional=True)],
    env_from=["ambient-runner-secrets"],
    volumes=["runner-token", "ambient-runner-secrets", "langfuse", "trusted-ca-bundle"],
    links=[("/var/run/secrets/ambient/bot-token", f"{SECRETS_ROOT}/runner-token/k8s-token")],
    state_sync_env={"SESSION_NAME": "s1", "S3_BUCKET": "b"},
    workspace=True, hydrate=True, state_sync=True)


def parsed(text: str) -> dict[str, Any]:
    assert text.startswith(CLOUD_CONFIG_HEADER + "\n")
    config = yaml.safe_load(text)
    assert isinstance(config, dict)
    return config


def files(config: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    return {f["path"]: f for f in config["write_files"]}


def test_the_default_template_writes_the_env_and_starts_the_units() -> None:
    config = parsed(default_user_data(SETUP))
    written = files(config)
    assert written[RUNNER_ENV_PATH] == {"path": RUNNER_ENV_PATH, "owner": "root:root",
                                        "permissions": "0600", "content": env_file(SETUP.env)}
    assert written[STATE_SYNC_ENV_PATH]["content"] == env_file(SETUP.state_sync_env)
    assert written[STATE_SYNC_ENV_PATH]["permissions"] == "0600"
    assert written[SECRET_ENV_LIST_PATH]["content"] == (
        "* ambient-runner-secrets\nAGUI_TOKEN runner-token/agui-token\n"
        "LANGFUSE_HOST langfuse/LANGFUSE_HOST optional\n")
    assert written[SECRET_ENV_SCRIPT_PATH]["content"] == SECRET_ENV_SCRIPT
    assert written[SECRET_ENV_SCRIPT_PATH]["permissions"] == "0755"
    dropin = written[f"/etc/systemd/system/{RUNNER_UNIT}.d/10-ambient-session.conf"]["content"]
    # whole Secrets first, then plain values, then single keys: a Pod's precedence
    assert dropin.index(ENVFROM_ENV_PATH) < dropin.index(RUNNER_ENV_PATH) < \
        dropin.index(SECRET_ENV_PATH)
    assert f"Requires={SECRET_ENV_UNIT}" in dropin and f"After={SECRET_ENV_UNIT}" in dropin
    unit = written[f"/etc/systemd/system/{SECRET_ENV_UNIT}"]["content"]
    assert f"ExecStart={SECRET_ENV_SCRIPT_PATH}" in unit and f"Before={RUNNER_UNIT}" in unit
    assert config["mounts"] == [
        *([v, f"{SECRETS_ROOT}/{v}", "virtiofs", "ro,nofail", "0", "0"] for v in SETUP.volumes),
        ["LABEL=workspace", "/workspace", "ext4", "defaults,nofail", "0", "2"]]
    assert config["fs_setup"] == [{"label": "workspace", "filesystem": "ext4",
                                   "device": "/dev/disk/by-id/virtio-workspace"}]
    assert config["bootcmd"] == [
        ["mkdir", "-p", "/var/run/secrets/ambient"],
        ["ln", "-sfn", f"{SECRETS_ROOT}/runner-token/k8s-token",
         "/var/run/secrets/ambient/bot-token"]]
    assert config["runcmd"] == [["systemctl", "daemon-reload"],
                                *(["systemctl", "enable", "--now", unit] for unit in (
                                    HYDRATE_UNIT, SECRET_ENV_UNIT, STATE_SYNC_UNIT, RUNNER_UNIT))]


def test_the_default_template_without_workspace_hydrate_or_state_sync() -> None:
    setup = GuestSetup(env={}, secret_refs=[], env_from=[], volumes=[], links=[],
                       state_sync_env={}, workspace=False, hydrate=False, state_sync=False)
    config = parsed(default_user_data(setup))
    assert "fs_setup" not in config
    assert config["mounts"] == []
    assert config["runcmd"] == [["systemctl", "daemon-reload"],
                                ["systemctl", "enable", "--now", SECRET_ENV_UNIT],
                                ["systemctl", "enable", "--now", RUNNER_UNIT]]


@pytest.mark.parametrize("shell", SHELLS)
def test_the_default_templates_env_file_reads_back_in_a_shell(tmp_path: Path,
                                                              shell: str) -> None:
    setup = GuestSetup(env=AWKWARD, secret_refs=[], env_from=[], volumes=[], links=[],
                       state_sync_env=AWKWARD, workspace=False, hydrate=False,
                       state_sync=False)
    written = files(parsed(default_user_data(setup)))
    for path in (RUNNER_ENV_PATH, STATE_SYNC_ENV_PATH):
        target = tmp_path / Path(path).name
        target.write_text(written[path]["content"], encoding="utf-8")
        assert read_back(shell, [target], list(AWKWARD)) == AWKWARD


BOT_TOKEN_REF = SecretRef("BOT_TOKEN", "runner-token", "k8s-token")


def _unit_settings(text: str, key: str) -> dict[str, str]:
    """``key=NAME=value`` lines of a unit as {NAME: value} (``key=path`` as {"": path})."""
    out = {}
    for line in text.splitlines():
        if line.startswith(f"{key}="):
            value = line.split("=", 1)[1]
            name, _, rest = value.partition("=") if key == "Environment" else ("", "", value)
            out[name] = rest
    return out


def test_init_and_sidecar_secret_variables_get_their_own_list_unit_and_dropins() -> None:
    setup = GuestSetup(**{**_fields(SETUP), "state_sync_refs": [BOT_TOKEN_REF]})
    config = parsed(default_user_data(setup))
    written = files(config)
    assert written[STATE_SYNC_SECRET_LIST_PATH]["content"] == \
        "BOT_TOKEN runner-token/k8s-token\n"
    assert "BOT_TOKEN" not in written[SECRET_ENV_LIST_PATH]["content"]
    unit = written[f"/etc/systemd/system/{STATE_SYNC_SECRET_ENV_UNIT}"]["content"]
    assert _unit_settings(unit, "Environment") == {
        "AMBIENT_SECRET_ENV_LIST": STATE_SYNC_SECRET_LIST_PATH,
        "AMBIENT_SECRET_REFS_ENV": STATE_SYNC_SECRET_ENV_PATH,
        "AMBIENT_ENVFROM_ENV": "/run/ambient/state-sync-envfrom.env"}
    assert f"ExecStart={SECRET_ENV_SCRIPT_PATH}" in unit
    assert f"Before={HYDRATE_UNIT} {STATE_SYNC_SERVICE}" in unit
    for service in (HYDRATE_UNIT, STATE_SYNC_SERVICE):
        dropin = written[f"/etc/systemd/system/{service}.d/10-ambient-session.conf"]["content"]
        assert _unit_settings(dropin, "EnvironmentFile") == {"": f"-{STATE_SYNC_SECRET_ENV_PATH}"}
        assert f"Requires={STATE_SYNC_SECRET_ENV_UNIT}" in dropin
        assert f"After={STATE_SYNC_SECRET_ENV_UNIT}" in dropin
    assert config["runcmd"][1] == ["systemctl", "enable", "--now", STATE_SYNC_SECRET_ENV_UNIT]
    # nothing to feed: no list, no unit
    for other in (GuestSetup(**{**_fields(setup), "hydrate": False, "state_sync": False}),
                  SETUP):
        assert STATE_SYNC_SECRET_LIST_PATH not in files(parsed(default_user_data(other)))
    only_sync = GuestSetup(**{**_fields(setup), "hydrate": False})
    paths = files(parsed(default_user_data(only_sync)))
    assert f"/etc/systemd/system/{HYDRATE_UNIT}.d/10-ambient-session.conf" not in paths
    assert f"/etc/systemd/system/{STATE_SYNC_SERVICE}.d/10-ambient-session.conf" in paths


def test_the_scripts_default_paths_are_the_ones_the_runner_dropin_reads() -> None:
    defaults = dict(re.findall(r"\$\{(AMBIENT_[A-Z_]+):-([^}]+)\}", SECRET_ENV_SCRIPT))
    assert defaults == {"AMBIENT_SECRET_ENV_LIST": SECRET_ENV_LIST_PATH,
                        "AMBIENT_SECRETS_ROOT": SECRETS_ROOT,
                        "AMBIENT_ENVFROM_ENV": ENVFROM_ENV_PATH,
                        "AMBIENT_SECRET_REFS_ENV": SECRET_ENV_PATH}
    dropin = files(parsed(default_user_data(SETUP)))[
        f"/etc/systemd/system/{RUNNER_UNIT}.d/10-ambient-session.conf"]["content"]
    assert [line.split("=", 1)[1] for line in dropin.splitlines()
            if line.startswith("EnvironmentFile=")] == [
        f"-{ENVFROM_ENV_PATH}", RUNNER_ENV_PATH, f"-{SECRET_ENV_PATH}"]


def test_the_user_data_is_stable() -> None:
    assert default_user_data(SETUP) == default_user_data(SETUP)


def test_non_ascii_and_line_separators_survive_the_yaml() -> None:
    env = {"A": "x\u2028y\u0085z", "B": "日本\r\n"}
    setup = GuestSetup(env=env, secret_refs=[], env_from=[], volumes=[], links=[],
                       state_sync_env={}, workspace=False, hydrate=False, state_sync=False)
    assert files(parsed(default_user_data(setup)))[RUNNER_ENV_PATH]["content"] == env_file(env)


# named templates -------------------------------------------------------------------------------
TEMPLATE = """#cloud-config
write_files:
  - path: /etc/ambient/runner.env
    content: ${AMBIENT_RUNNER_ENV}
  - path: /etc/motd
    content: "session ${AGENTIC_SESSION_NAME} on port ${AGUI_PORT}, literal $${HOME} and $5"
runcmd:
  - [echo, "${INITIAL_PROMPT}"]
  - [sh, -c, "${AMBIENT_SECRET_ENV_LIST}"]
"""


def test_a_named_template_from_the_configmap_is_filled_in() -> None:
    text = user_data(SETUP, template_name="mine", templates={"mine": TEMPLATE})
    config = parsed(text)
    assert config["write_files"][0]["content"] == env_file(SETUP.env)
    assert config["write_files"][1]["content"] == \
        "session s1 on port 8001, literal ${HOME} and $5"
    assert config["runcmd"] == [["echo", 'fix "$x"'], ["sh", "-c", secret_env_list(SETUP)]]


def test_a_named_template_gets_every_file_as_a_placeholder() -> None:
    setup = GuestSetup(**{**_fields(SETUP), "state_sync_refs": [BOT_TOKEN_REF]})
    text = ("#cloud-config\nfiles:\n  runner: ${AMBIENT_RUNNER_ENV}\n"
            "  sync: ${AMBIENT_STATE_SYNC_ENV}\n  list: ${AMBIENT_SECRET_ENV_LIST}\n"
            "  sync_list: ${AMBIENT_STATE_SYNC_SECRET_ENV_LIST}\n"
            "  script: ${AMBIENT_SECRET_ENV_SCRIPT}\n")
    config = parsed(user_data(setup, template_name="all", templates={"all": text}))
    assert config["files"] == {
        "runner": env_file(SETUP.env), "sync": env_file(SETUP.state_sync_env),
        "list": secret_env_list(SETUP), "sync_list": "BOT_TOKEN runner-token/k8s-token\n",
        "script": SECRET_ENV_SCRIPT}


def test_the_configmap_may_override_the_built_in_name() -> None:
    text = user_data(SETUP, template_name="", templates={DEFAULT_TEMPLATE: TEMPLATE})
    assert parsed(text)["write_files"][1]["path"] == "/etc/motd"
    # without an override, the empty name and the built-in name are the default template
    assert user_data(SETUP, template_name="", templates={}) == default_user_data(SETUP)
    assert user_data(SETUP, template_name=DEFAULT_TEMPLATE, templates={"x": TEMPLATE}) == \
        default_user_data(SETUP)


def test_an_unknown_template_name_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(RenderError) as err:
        user_data(SETUP, template_name="nope", templates={"mine": TEMPLATE})
    assert err.value.reason == "InvalidCloudInitTemplate"
    assert "'nope'" in err.value.message
    assert "ambient-runner-cloud-init, mine" in err.value.message


@pytest.mark.parametrize(("template", "fragment"), [
    ("write_files: []\n", "must start with"),
    ("#cloud-config\n- a\n- b\n", "must be a YAML mapping"),
    ("#cloud-config\na: [unclosed\n", "not valid YAML"),
    ("#cloud-config\na: ${NOT_DEFINED}\n", "unknown placeholder ${NOT_DEFINED}"),
    ("#cloud-config\na: ${}\n", "malformed placeholder"),
    ("#cloud-config\na: ${lower-case}\n", "malformed placeholder"),
    ("#cloud-config\na: ${UNCLOSED\n", "malformed placeholder"),
    ("#cloud-config\n${AGUI_PORT}: ${NOPE}\n", "unknown placeholder"),
])
def test_bad_templates_are_refused(template: str, fragment: str) -> None:
    with pytest.raises(RenderError) as err:
        user_data(SETUP, template_name="t", templates={"t": template})
    assert err.value.reason == "InvalidCloudInitTemplate"
    assert fragment in err.value.message


INJECTIONS = [
    "x\nruncmd:\n  - [rm, -rf, /]",
    "x\"\nruncmd: [[rm, -rf, /]]\n#",
    "'; rm -rf / #",
    "a: b",
    "- item",
    "{flow: map}",
    "|\n  block",
    "${AGUI_PORT}",  # a value is never substituted again
    "$${literal",
    "!!python/object/apply:os.system ['id']",
    "&anchor value",
    "*alias",
    "x\n---\nruncmd: [[reboot]]",
    "\u2028runcmd: [[reboot]]",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_values_can_never_inject_keys_items_or_commands(value: str) -> None:
    env = {**SETUP.env, "INITIAL_PROMPT": value}
    setup = GuestSetup(**{**_fields(SETUP), "env": env})
    config = parsed(user_data(setup, template_name="mine", templates={"mine": TEMPLATE}))
    assert set(config) == {"write_files", "runcmd"}
    assert config["runcmd"][0] == ["echo", value]
    assert len(config["runcmd"]) == 2 and len(config["write_files"]) == 2
    default = parsed(default_user_data(setup))
    assert set(default) == {"bootcmd", "write_files", "fs_setup", "mounts", "runcmd"}
    assert files(default)[RUNNER_ENV_PATH]["content"] == env_file(env)


def _fields(setup: GuestSetup) -> dict[str, Any]:
    return {name: getattr(setup, name) for name in GuestSetup.__dataclass_fields__}


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=40))
def test_any_value_is_substituted_as_an_opaque_string(value: str) -> None:
    setup = GuestSetup(**{**_fields(SETUP), "env": {**SETUP.env, "INITIAL_PROMPT": value}})
    try:
        text = user_data(setup, template_name="mine", templates={"mine": TEMPLATE})
    except RenderError:
        pytest.fail("a value made the template invalid")
    config = parsed(text)
    assert set(config) == {"write_files", "runcmd"}
    assert config["runcmd"][0] == ["echo", value]


def test_substitute() -> None:
    values = {"A": "1", "B_2": "two"}
    assert substitute("${A}-${B_2} $${A} $A $ {A} $", values) == "1-two ${A} $A $ {A} $"
    assert render_template("#cloud-config\nk: ${A}\n", values, name="t") == \
        "#cloud-config\nk: '1'\n"
