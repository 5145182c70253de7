"""cloud-init user data for a VM session: the guest gets what a Pod's runner gets.

A Pod's runner has three kinds of variables: plain values, values read from Secrets
(``secretKeyRef``: the AG-UI token, Langfuse and MLflow keys) and whole Secrets (``envFrom``:
the project's API keys in ``ambient-runner-secrets``, its integrations). A VM gets the same
through objects it references, never through its own spec:

* plain values go into this user data, which lives in the ``<n>-cloudinit`` Secret
  (``cloudInitNoCloud.secretRef``): :data:`RUNNER_ENV_PATH`, one ``NAME="value"`` line each;
* Secrets are shared into the guest with virtiofs (KubeVirt ``secret`` volumes with a
  ``virtiofs`` filesystem, mounted under :data:`SECRETS_ROOT`, tag = volume name). A oneshot
  unit runs :data:`SECRET_ENV_SCRIPT` before the runner and turns them into
  :data:`ENVFROM_ENV_PATH` (whole Secrets) and :data:`SECRET_ENV_PATH` (single keys), as
  listed in :data:`SECRET_ENV_LIST_PATH`;
* files a Pod mounts from Secrets or ConfigMaps (``/var/run/secrets/ambient/bot-token``,
  ``/app/vertex``, the CA bundle) are symlinks into the shares. virtiofs
  shares the virt-launcher pod's Secret volume live: when the operator refreshes ``k8s-token``
  the kubelet updates that volume and the guest reads the new token at its next use, without
  a restart (KubeVirt needs its ``EnableVirtioFsConfigVolumes`` feature gate for this).

The systemd drop-in orders the files as a Pod orders its variables: whole Secrets first, then
plain values, then single keys. The disk image ships ``ambient-runner.service`` (and, when the
registry entry asks for them, ``ambient-hydrate.service`` and ``ambient-state-sync.timer``,
which read :data:`STATE_SYNC_ENV_PATH`); this user data only configures and starts them.
What a Pod's init-hydrate and state-sync containers read from Secrets (``BOT_TOKEN``, a
project's own S3 credentials) is theirs, not the runner's: a second run of the script
(:data:`STATE_SYNC_SECRET_ENV_UNIT`) writes it from :data:`STATE_SYNC_SECRET_LIST_PATH` to
:data:`STATE_SYNC_SECRET_ENV_PATH`, which drop-ins add to the hydrate and state-sync services.

**Named templates.** ``vmConfig.cloudInitTemplate`` names the user data: the built-in
:data:`DEFAULT_TEMPLATE` (also used when the name is empty), or a key of the ConfigMap
``ambient-cloud-init-templates`` in the operator's namespace (which may also override the
built-in name). A template is ``#cloud-config`` YAML with placeholders:

* ``${NAME}`` is the value of the runner's plain variable ``NAME``; ``${AMBIENT_RUNNER_ENV}``,
  ``${AMBIENT_STATE_SYNC_ENV}``, ``${AMBIENT_SECRET_ENV_LIST}``,
  ``${AMBIENT_STATE_SYNC_SECRET_ENV_LIST}`` and ``${AMBIENT_SECRET_ENV_SCRIPT}`` are the
  contents of the files above;
* ``$${`` stands for a literal ``${``; any other ``$`` is left as it is;
* an unknown name, an empty or malformed ``${...}`` is a :class:`RenderError`
  ``InvalidCloudInitTemplate``.

The template is parsed as YAML *before* substitution and placeholders are replaced inside the
parsed strings, so a value — which may come from a user — can never add keys, list items or
commands to the cloud-config. Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from .environment import RenderError

CLOUD_CONFIG_HEADER = "#cloud-config"
DEFAULT_TEMPLATE = "ambient-runner-cloud-init"
RUNNER_UNIT = "ambient-runner.service"
SECRET_ENV_UNIT = "ambient-secret-env.service"
HYDRATE_UNIT = "ambient-hydrate.service"
STATE_SYNC_UNIT = "ambient-state-sync.timer"
STATE_SYNC_SERVICE = "ambient-state-sync.service"
STATE_SYNC_SECRET_ENV_UNIT = "ambient-state-sync-secret-env.service"
RUNNER_ENV_PATH = "/etc/ambient/runner.env"
STATE_SYNC_ENV_PATH = "/etc/ambient/state-sync.env"
SECRET_ENV_LIST_PATH = "/etc/ambient/secret-env.list"
SECRET_ENV_SCRIPT_PATH = "/usr/local/libexec/ambient-secret-env"
SECRETS_ROOT = "/run/ambient/secrets"
ENVFROM_ENV_PATH = "/run/ambient/envfrom.env"
SECRET_ENV_PATH = "/run/ambient/secret-refs.env"
STATE_SYNC_SECRET_LIST_PATH = "/etc/ambient/state-sync-secret-env.list"
STATE_SYNC_SECRET_ENV_PATH = "/run/ambient/state-sync-secret-refs.env"
STATE_SYNC_ENVFROM_ENV_PATH = "/run/ambient/state-sync-envfrom.env"
WORKSPACE_LABEL = "workspace"
INVALID_TEMPLATE = "InvalidCloudInitTemplate"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""Names systemd's EnvironmentFile= and a POSIX shell both accept."""

SECRET_ENV_SCRIPT = r"""#!/bin/sh
# Turns the Secrets shared into this guest (virtiofs, one directory per Secret under
# $AMBIENT_SECRETS_ROOT) into environment files for the runner, as a Pod's envFrom and
# secretKeyRef would. List lines: "NAME volume/key [optional]" or "* volume" (every key).
set -eu
list=${AMBIENT_SECRET_ENV_LIST:-/etc/ambient/secret-env.list}
root=${AMBIENT_SECRETS_ROOT:-/run/ambient/secrets}
envfrom=${AMBIENT_ENVFROM_ENV:-/run/ambient/envfrom.env}
refs=${AMBIENT_SECRET_REFS_ENV:-/run/ambient/secret-refs.env}
umask 077
mkdir -p "$(dirname "$envfrom")" "$(dirname "$refs")"
: > "$envfrom.tmp"
: > "$refs.tmp"
emit() { # NAME FILE OUTPUT: NAME="value", escaped for systemd and sh
  value=$(cat "$2"; printf x)
  value=$(printf '%s' "${value%x}" | sed -e 's/[\\"$`]/\\&/g'; printf x)
  printf '%s="%s"\n' "$1" "${value%x}" >> "$3"
}
while read -r name source flag; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ "$name" = '*' ]; then
    [ -d "$root/$source" ] || continue
    for file in "$root/$source"/*; do
      key=${file##*/}
      case "$key" in ''|[0-9]*|*[!A-Za-z0-9_]*) continue ;; esac
      if [ -f "$file" ]; then emit "$key" "$file" "$envfrom.tmp"; fi
    done
  elif [ -f "$root/$source" ]; then
    emit "$name" "$root/$source" "$refs.tmp"
  elif [ "${flag:-}" != optional ]; then
    echo "ambient-secret-env: $root/$source is missing" >&2
    exit 1
  fi
done < "$list"
mv "$envfrom.tmp" "$envfrom"
mv "$refs.tmp" "$refs"
"""
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV_ESCAPE = re.compile(r'([\\"$`])')


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A variable read from one key of a Secret shared as ``volume``."""

    name: str
    volume: str
    key: str
    optional: bool = False


@dataclass(frozen=True, slots=True)
class GuestSetup:
    """What the default user data sets up, derived from the Pod's view of the run."""

    env: Mapping[str, str]
    """The runner's plain variables."""
    secret_refs: Sequence[SecretRef]
    env_from: Sequence[str]
    """Volumes whose every key becomes a variable (in this order)."""
    volumes: Sequence[str]
    """Every Secret or ConfigMap volume shared into the guest with virtiofs."""
    links: Sequence[tuple[str, str]]
    """Files and directories a Pod would mount, as (path, target in a share) symlinks."""
    state_sync_env: Mapping[str, str]
    workspace: bool
    hydrate: bool
    state_sync: bool
    state_sync_refs: Sequence[SecretRef] = ()
    """Variables the init-hydrate and state-sync containers read from Secrets."""


def user_data(setup: GuestSetup, *, template_name: str,
              templates: Mapping[str, str]) -> str:
    """The NoCloud user data: the named template filled in (see the module docstring)."""
    name = template_name or DEFAULT_TEMPLATE
    template = templates.get(name)
    if template is None:
        if name != DEFAULT_TEMPLATE:
            known = ", ".join(sorted({DEFAULT_TEMPLATE, *templates}))
            raise RenderError(INVALID_TEMPLATE, f"vmConfig.cloudInitTemplate {name!r} is not a "
                              f"known template (known: {known}; add it to the ConfigMap "
                              "ambient-cloud-init-templates)")
        return default_user_data(setup)
    values = {**setup.env, "AMBIENT_RUNNER_ENV": env_file(setup.env),
              "AMBIENT_STATE_SYNC_ENV": env_file(setup.state_sync_env),
              "AMBIENT_SECRET_ENV_LIST": secret_env_list(setup),
              "AMBIENT_STATE_SYNC_SECRET_ENV_LIST": _ref_lines(setup.state_sync_refs),
              "AMBIENT_SECRET_ENV_SCRIPT": SECRET_ENV_SCRIPT}
    return render_template(template, values, name=name)


def default_user_data(setup: GuestSetup) -> str:
    """The built-in template: env files, Secret mounts, the runner's units, then start them."""
    files = [
        _file(RUNNER_ENV_PATH, env_file(setup.env), "0600"),
        _file(STATE_SYNC_ENV_PATH, env_file(setup.state_sync_env), "0600"),
        _file(SECRET_ENV_LIST_PATH, secret_env_list(setup), "0644"),
        _file(SECRET_ENV_SCRIPT_PATH, SECRET_ENV_SCRIPT, "0755"),
        _file(f"/etc/systemd/system/{SECRET_ENV_UNIT}", _secret_env_unit(), "0644"),
        _file(f"/etc/systemd/system/{RUNNER_UNIT}.d/10-ambient-session.conf",
              _runner_dropin(), "0644"),
    ]
    state_sync_units = [*([HYDRATE_UNIT] if setup.hydrate else []),
                        *([STATE_SYNC_SERVICE] if setup.state_sync else [])]
    state_sync_secrets = bool(setup.state_sync_refs and state_sync_units)
    if state_sync_secrets:
        files += [
            _file(STATE_SYNC_SECRET_LIST_PATH, _ref_lines(setup.state_sync_refs), "0644"),
            _file(f"/etc/systemd/system/{STATE_SYNC_SECRET_ENV_UNIT}",
                  _state_sync_secret_env_unit(state_sync_units), "0644"),
            *(_file(f"/etc/systemd/system/{unit}.d/10-ambient-session.conf",
                    _state_sync_dropin(), "0644") for unit in state_sync_units)]
    mounts: list[list[str]] = [[volume, f"{SECRETS_ROOT}/{volume}", "virtiofs", "ro,nofail",
                                "0", "0"] for volume in setup.volumes]
    config: dict[str, Any] = {
        # Every boot: /run (and /var/run) is a tmpfs; the links may dangle until the shares
        # are mounted a moment later.
        "bootcmd": [cmd for path, target in setup.links for cmd in (
            ["mkdir", "-p", path.rsplit("/", 1)[0]], ["ln", "-sfn", target, path])],
        "write_files": files,
    }
    if setup.workspace:
        config["fs_setup"] = [{"label": WORKSPACE_LABEL, "filesystem": "ext4",
                               "device": f"/dev/disk/by-id/virtio-{WORKSPACE_LABEL}"}]
        mounts.append([f"LABEL={WORKSPACE_LABEL}", "/workspace", "ext4", "defaults,nofail",
                       "0", "2"])
    config["mounts"] = mounts
    units = [*([STATE_SYNC_SECRET_ENV_UNIT] if state_sync_secrets else []),
             *([HYDRATE_UNIT] if setup.hydrate else []), SECRET_ENV_UNIT,
             *([STATE_SYNC_UNIT] if setup.state_sync else []), RUNNER_UNIT]
    config["runcmd"] = [["systemctl", "daemon-reload"],
                        *(["systemctl", "enable", "--now", unit] for unit in units)]
    return _dump(config)


def secret_env_list(setup: GuestSetup) -> str:
    """The runner's list: its whole Secrets (``* volume``), then its single keys."""
    return "".join(f"* {volume}\n" for volume in setup.env_from) + \
        _ref_lines(setup.secret_refs)


def _ref_lines(refs: Iterable[SecretRef]) -> str:
    return "".join(f"{ref.name} {ref.volume}/{ref.key}" + (" optional" if ref.optional else "")
                   + "\n" for ref in refs)


def _secret_env_unit() -> str:
    return ("[Unit]\nDescription=Environment of the ambient-code runner from its Secrets\n"
            f"Before={RUNNER_UNIT}\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart={SECRET_ENV_SCRIPT_PATH}\n")


def _runner_dropin() -> str:
    return (f"[Unit]\nRequires={SECRET_ENV_UNIT}\nAfter={SECRET_ENV_UNIT}\n\n[Service]\n"
            f"EnvironmentFile=-{ENVFROM_ENV_PATH}\nEnvironmentFile={RUNNER_ENV_PATH}\n"
            f"EnvironmentFile=-{SECRET_ENV_PATH}\n")


def _state_sync_secret_env_unit(before: Sequence[str]) -> str:
    return ("[Unit]\nDescription=Environment of the ambient-code state sync from its Secrets\n"
            f"Before={' '.join(before)}\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"Environment=AMBIENT_SECRET_ENV_LIST={STATE_SYNC_SECRET_LIST_PATH}\n"
            f"Environment=AMBIENT_SECRET_REFS_ENV={STATE_SYNC_SECRET_ENV_PATH}\n"
            f"Environment=AMBIENT_ENVFROM_ENV={STATE_SYNC_ENVFROM_ENV_PATH}\n"
            f"ExecStart={SECRET_ENV_SCRIPT_PATH}\n")


def _state_sync_dropin() -> str:
    return (f"[Unit]\nRequires={STATE_SYNC_SECRET_ENV_UNIT}\nAfter={STATE_SYNC_SECRET_ENV_UNIT}"
            f"\n\n[Service]\nEnvironmentFile=-{STATE_SYNC_SECRET_ENV_PATH}\n")


def _file(path: str, content: str, permissions: str) -> dict[str, str]:
    return {"path": path, "owner": "root:root", "permissions": permissions,
            "content": content}


def env_file(env: Mapping[str, str]) -> str:
    """``NAME="value"`` lines in the given order. Inside the quotes ``\\``, ``"``, ``$`` and
    backquote are escaped and newlines kept: systemd's EnvironmentFile= and a POSIX shell's
    ``.`` both read that back as the original value."""
    return "".join(f'{name}="{_escape(value)}"\n' for name, value in env.items())


def _escape(value: str) -> str:
    return _ENV_ESCAPE.sub(r"\\\1", value)


def check_env_names(names: Iterable[str]) -> None:
    for name in names:
        if not ENV_NAME.fullmatch(name):
            raise RenderError("InvalidEnvName", f"environment variable {name!r} cannot be "
                              "passed into a VM: names there must be letters, digits and '_', "
                              "not starting with a digit")


def render_template(template: str, values: Mapping[str, str], *, name: str) -> str:
    first_line = template.lstrip().partition("\n")[0].strip()
    if first_line != CLOUD_CONFIG_HEADER:
        raise RenderError(INVALID_TEMPLATE, f"cloud-init template {name!r} must start with a "
                          f"{CLOUD_CONFIG_HEADER!r} line")
    try:
        config = yaml.safe_load(template)
    except yaml.YAMLError as err:
        raise RenderError(INVALID_TEMPLATE,
                          f"cloud-init template {name!r} is not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise RenderError(INVALID_TEMPLATE,
                          f"cloud-init template {name!r} must be a YAML mapping (a cloud-config)")
    return _dump(_fill(config, values, name))


def _fill(node: Any, values: Mapping[str, str], name: str) -> Any:
    if isinstance(node, str):
        return substitute(node, values, name=name)
    if isinstance(node, list):
        return [_fill(item, values, name) for item in node]
    if isinstance(node, dict):
        return {_fill(key, values, name): _fill(value, values, name)
                for key, value in node.items()}
    return node


def substitute(text: str, values: Mapping[str, str], *, name: str = DEFAULT_TEMPLATE) -> str:
    """``text`` with ``${NAME}`` replaced from ``values`` and ``$${`` unescaped to ``${``."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        key = match.group(1)
        if key is None or not ENV_NAME.fullmatch(key):
            shown = match.group(0) if key is not None else "${"
            raise RenderError(INVALID_TEMPLATE, f"cloud-init template {name!r} has a malformed "
                              f"placeholder {shown!r}; use ${{NAME}}, or $${{ for a literal ${{")
        if key not in values:
            raise RenderError(INVALID_TEMPLATE, f"cloud-init template {name!r} uses unknown "
                              f"placeholder ${{{key}}}")
        return values[key]

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
