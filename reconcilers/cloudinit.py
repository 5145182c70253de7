"""cloud-init NoCloud user data for a VM session: the default ``#cloud-config`` or a template.

The user data carries the session's environment and its AG-UI token, so it only ever goes into
the ``<session>-cloudinit`` Secret, never into the VirtualMachine object. Everything here is a
pure function of its arguments.

**Default user data** writes, as root:

* :data:`SESSION_ENV_PATH` (mode 0600): the session env, one ``NAME="value"`` line per variable
  (see :func:`env_file`);
* :data:`TOKEN_PATH` (mode 0400): the AG-UI token, without a trailing newline;
* a systemd drop-in for :data:`RUNNER_UNIT` that reads the env file (``EnvironmentFile=``);

then reloads systemd and starts :data:`RUNNER_UNIT`. The disk image ships the unit itself (its
``ExecStart``); the operator only supplies its environment.

**Templates** (``vmConfig.cloudInitTemplate``) are ``#cloud-config`` YAML with placeholders:

* ``${NAME}`` is replaced by the value of the session env variable ``NAME`` (every name the
  runner's env has, operator-set ones such as ``SESSION_NAME`` included) or, for
  ``${AGUI_TOKEN}``, by the AG-UI token;
* ``$${`` stands for a literal ``${`` (so a shell snippet may keep its own ``$${HOME}``); any
  other ``$`` is left as it is (``$HOME`` stays ``$HOME``);
* an unknown name, an empty or malformed ``${...}`` is a :class:`RenderError`
  ``InvalidCloudInitTemplate``.

The template is parsed as YAML *before* substitution, and placeholders are replaced inside the
parsed string scalars (mapping keys included), so a value — which may come from the session's
spec, i.e. from a user — can never add keys, list items or commands to the cloud-config; values
are strings. A template that pastes values into a shell command (``runcmd``) must still quote
them itself; ``write_files`` is the safer place. The result is re-serialized, so the template's
comments are not kept. Inside YAML flow collections (``[echo ${X}]``) ``{`` is syntax: quote
such strings (``["echo ${X}"]``) or use block style.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from .environment import RenderError

CLOUD_CONFIG_HEADER = "#cloud-config"
SESSION_ENV_PATH = "/etc/ambient/session.env"
TOKEN_PATH = "/etc/ambient/agui-token"
RUNNER_UNIT = "ambient-runner.service"
"""The systemd unit the disk image ships; the default user data enables and starts it."""
RUNNER_DROPIN_PATH = f"/etc/systemd/system/{RUNNER_UNIT}.d/10-ambient-session.conf"
TOKEN_PLACEHOLDER = "AGUI_TOKEN"
"""The template placeholder for the AG-UI token (a reserved env name: no variable shadows it)."""
INVALID_TEMPLATE = "InvalidCloudInitTemplate"

# "$$" must be matched before "${" so that "$${X}" is an escaped "${" followed by "X}".
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
# What a shell and systemd's EnvironmentFile parser both unescape inside double quotes.
_ENV_ESCAPE = re.compile(r'([\\"$`])')


def user_data(env: Mapping[str, str], *, token: str, template: str = "") -> str:
    """The NoCloud user data: ``template`` filled in, or the default when it is empty."""
    if template.strip():
        return render_template(template, {**env, TOKEN_PLACEHOLDER: token})
    return default_user_data(env, token=token)


def default_user_data(env: Mapping[str, str], *, token: str) -> str:
    """The default ``#cloud-config``: env file, token file, runner drop-in, start the runner."""
    dropin = f"[Service]\nEnvironmentFile={SESSION_ENV_PATH}\n"
    config = {
        "write_files": [
            {"path": SESSION_ENV_PATH, "owner": "root:root", "permissions": "0600",
             "content": env_file(env)},
            {"path": TOKEN_PATH, "owner": "root:root", "permissions": "0400",
             "content": token},
            {"path": RUNNER_DROPIN_PATH, "owner": "root:root", "permissions": "0644",
             "content": dropin},
        ],
        "runcmd": [["systemctl", "daemon-reload"],
                   ["systemctl", "enable", "--now", RUNNER_UNIT]],
    }
    return _dump(config)


def env_file(env: Mapping[str, str]) -> str:
    """``NAME="value"`` lines, sorted by name.

    Inside the double quotes, ``\\``, ``"``, ``$`` and backquote are escaped with a backslash
    and newlines are kept: systemd's ``EnvironmentFile=`` and a POSIX shell's ``.`` both read
    that back as the original value (the shell only for names that are shell identifiers).
    """
    return "".join(f'{name}="{_env_escape(value)}"\n' for name, value in sorted(env.items()))


def _env_escape(value: str) -> str:
    return _ENV_ESCAPE.sub(r"\\\1", value)


def render_template(template: str, values: Mapping[str, str]) -> str:
    """``template`` with its placeholders replaced by ``values`` (see the module docstring)."""
    first_line = template.lstrip().partition("\n")[0].strip()
    if first_line != CLOUD_CONFIG_HEADER:
        raise RenderError(INVALID_TEMPLATE, "vmConfig.cloudInitTemplate must start with a "
                          f"{CLOUD_CONFIG_HEADER!r} line")
    try:
        config = yaml.safe_load(template)
    except yaml.YAMLError as err:
        raise RenderError(INVALID_TEMPLATE,
                          f"vmConfig.cloudInitTemplate is not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise RenderError(INVALID_TEMPLATE,
                          "vmConfig.cloudInitTemplate must be a YAML mapping (a cloud-config)")
    return _dump(_fill(config, values))


def _fill(node: Any, values: Mapping[str, str]) -> Any:
    """A copy of the parsed YAML with placeholders replaced in every string scalar."""
    if isinstance(node, str):
        return substitute(node, values)
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, dict):
        return {_fill(key, values): _fill(value, values) for key, value in node.items()}
    return node


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with ``${NAME}`` replaced from ``values`` and ``$${`` unescaped to ``${``."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group(1)
        if name is None or not _NAME.fullmatch(name):
            # Only the placeholder's own text goes into the message: never a value.
            shown = match.group(0) if name is not None else "${"
            raise RenderError(INVALID_TEMPLATE, f"vmConfig.cloudInitTemplate has a malformed "
                              f"placeholder {shown!r}; use ${{NAME}}, or $${{ for a literal ${{")
        if name not in values:
            raise RenderError(INVALID_TEMPLATE, f"vmConfig.cloudInitTemplate uses unknown "
                              f"placeholder ${{{name}}}; known: {', '.join(sorted(values))}")
        return values[name]

    return _PLACEHOLDER.sub(replace, text)


class _Dumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (file contents) as ``|`` literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # The emitter falls back to a quoted style by itself when a literal block cannot hold
    # the value exactly (trailing spaces, control characters), so this never loses data.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(config: Mapping[str, Any]) -> str:
    # Block style and insertion order keep the user data readable and byte-for-byte stable,
    # so an unchanged session never produces a diff of its cloud-init Secret. Non-ASCII text
    # is escaped on purpose: written raw, YAML 1.1 reads NEL and the Unicode line and
    # paragraph separators back as line breaks, corrupting values that contain them.
    body = yaml.dump(dict(config), Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return f"{CLOUD_CONFIG_HEADER}\n{body}"
