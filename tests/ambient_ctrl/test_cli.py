"""``ambient-ctrl``'s own surface: ``--version``, a description a person can read, and every
option's default in its command's ``--help`` (the operator's commands too: they come through the
``ambient_ctrl.commands`` entry points)."""

from __future__ import annotations

import argparse
import re
from importlib.metadata import version

import pytest

from ambient_ctrl import cli


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **sub.choices}


def _help(command: str) -> str:
    return _commands()[command].format_help()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"ambient-ctrl {version('ambient-ctrl')}\n"


def test_the_description_reads_as_prose_and_lists_the_commands() -> None:
    text = _help("")
    assert "``" not in text and ":mod:" not in text
    assert cli.DESCRIPTION.split()[0] in text
    for command in ("apiserver", "demo", "run", "session-trigger", "rbac"):
        assert re.search(rf"^ +{command} +\w", text, re.MULTILINE), (command, text)


@pytest.mark.parametrize("command", sorted(_commands()), ids=lambda c: c or "ambient-ctrl")
def test_every_option_shows_its_default(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100000")  # no wrapping (argparse breaks at hyphens too)
    parser = _commands()[command]
    text = _help(command)
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.option_strings or action.default == argparse.SUPPRESS:
            continue  # --help, --version
        shown = formatter._expand_help(action) if action.help else ""
        assert shown and shown in text, (action.option_strings, text)
        assert "default" in shown.lower(), (command, action.option_strings, shown)
        # "(default: None)" says nothing: such an option says what unset means.
        assert "default: None" not in shown, (command, action.option_strings, shown)
