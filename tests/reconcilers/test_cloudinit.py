"""cloud-init user data: the env file's quoting, template substitution, stable output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from reconcilers.cloudinit import (
    CLOUD_CONFIG_HEADER,
    default_user_data,
    env_file,
    render_template,
    substitute,
    user_data,
)
from reconcilers.environment import RenderError

AWKWARD = {
    "PLAIN": "value",
    "QUOTES": 'say "hi" and \'bye\'',
    "DOLLAR": "$HOME ${PATH} $(id) `id`",
    "BACKSLASH": "C:\\dir\\ and \\n literal",
    "MULTILINE": "line one\nline two\n\ntrailing  ",
    "EMPTY": "",
    "UNICODE": "héllo ✓",
}


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_env_file_reads_back_exactly_in_a_posix_shell(tmp_path: Path) -> None:
    path = tmp_path / "session.env"
    path.write_text(env_file(AWKWARD), encoding="utf-8")
    script = f'. "{path}"; ' + "; ".join(
        f'printf "%s\\0" "${name}"' for name in sorted(AWKWARD))
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True, timeout=10)
    values = out.stdout.decode("utf-8").split("\0")[:-1]
    assert values == [AWKWARD[name] for name in sorted(AWKWARD)]


def test_env_file_is_sorted_one_assignment_per_variable() -> None:
    assert env_file({"B": "2", "A": "1"}) == 'A="1"\nB="2"\n'


def test_default_user_data_round_trips_through_yaml() -> None:
    text = default_user_data(AWKWARD, token="tok\nwith newline")
    assert text.startswith(CLOUD_CONFIG_HEADER + "\n")
    files = {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}
    assert files["/etc/ambient/session.env"] == env_file(AWKWARD)
    assert files["/etc/ambient/agui-token"] == "tok\nwith newline"


def test_blank_template_means_the_default() -> None:
    assert user_data({"A": "1"}, token="t", template="  \n") == default_user_data(
        {"A": "1"}, token="t")


@pytest.mark.parametrize(("text", "expected"), [
    ("${A}", "1"),
    ("x${A}y${B}z", "x1y2z"),
    ("$${A}", "${A}"),
    ("$$${A}", "$${A}"),
    ("$A $ {A} $$ cost: 5$", "$A $ {A} $$ cost: 5$"),
    ("${V}", "${A}"),
], ids=["whole", "embedded", "escaped", "first-dollar-pair-escapes", "other-dollars-kept",
        "values-not-rescanned"])
def test_substitute(text: str, expected: str) -> None:
    assert substitute(text, {"A": "1", "B": "2", "V": "${A}"}) == expected


def test_template_substitutes_keys_and_values_and_keeps_other_scalars() -> None:
    template = ("#cloud-config\nbootcmd:\n  - echo ${A}\nhostname: h-${A}\n${B}: true\n"
                "write_files:\n  - path: /x\n    permissions: 0600\n    defer: yes\n")
    config = yaml.safe_load(render_template(template, {"A": "1", "B": "custom_key"}))
    assert config == {"bootcmd": ["echo 1"], "hostname": "h-1", "custom_key": True,
                      "write_files": [{"path": "/x", "permissions": 0o600, "defer": True}]}


def test_unknown_placeholder_message_lists_the_known_names_not_values() -> None:
    with pytest.raises(RenderError) as err:
        render_template("#cloud-config\na: ${NOPE}\n", {"KNOWN": "secret-value"})
    assert "${NOPE}" in err.value.message and "KNOWN" in err.value.message
    assert "secret-value" not in err.value.message


@given(st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True), st.text(),
                       max_size=5), st.text())
def test_default_user_data_is_stable_and_loses_nothing(env: dict[str, str],
                                                      token: str) -> None:
    first = default_user_data(env, token=token)
    assert first == default_user_data(env, token=token)
    files = {f["path"]: f["content"] for f in yaml.safe_load(first)["write_files"]}
    assert files["/etc/ambient/session.env"] == env_file(env)
    assert files["/etc/ambient/agui-token"] == token
