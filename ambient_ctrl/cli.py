"""The ``ambient-ctrl`` command line.

Subcommands of the framework live here; the operator's subcommands are contributed by other
packages through the ``ambient_ctrl.commands`` entry-point group, so this module never imports
them (imports point down). Every command's ``--help`` shows each option's default.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any

from . import lifeline, logcontext

DESCRIPTION = ("A Kubernetes reconciler framework in the style of controller-runtime, the "
               "AgenticSession operator built on it, and a local Kubernetes API server for "
               "tests and the demo.")
EPILOG = "Run 'ambient-ctrl COMMAND --help' for a command's options and their defaults."


NO_LOCAL_API_SERVER = ("this installation has no local API server (the envtest package: the "
                       "operator image leaves it out); install ambient-ctrl from a source "
                       "checkout to run it")


def has_local_api_server() -> bool:
    """Whether the local API server (``envtest``) is installed beside the framework."""
    return importlib.util.find_spec("envtest") is not None


def _apiserver(args: argparse.Namespace) -> int:
    if not has_local_api_server():
        print(f"ambient-ctrl apiserver: {NO_LOCAL_API_SERVER}", file=sys.stderr, flush=True)
        return 1
    from envtest import ListenError, ServerOptions, event_loop_name, serve

    kubeconfig = Path(args.kubeconfig).resolve()
    # Prefer the kubectl installed beside this interpreter (the venv's): an older one on PATH
    # may shadow it.
    beside = Path(sys.executable).parent / "kubectl"
    kubectl = str(beside) if beside.exists() else "kubectl"

    def ready(url: str, admin_url: str) -> None:
        print(f"local API server listening on {url} ({event_loop_name()})", flush=True)
        if admin_url:
            print(f"fault-injection admin endpoint on {admin_url}", flush=True)
        print(f"kubeconfig written to {kubeconfig}", flush=True)
        print(f"try: {kubectl} --kubeconfig {kubeconfig} get namespaces", flush=True)

    from envtest.simulators import SIMULATORS

    options = ServerOptions(bookmark_interval=args.bookmark_interval,
                            history_limit=args.history_limit,
                            max_watch_backlog=args.max_watch_backlog,
                            max_watch_backlog_total=args.max_watch_backlog_total,
                            tls=args.tls or bool(args.tls_ca_dir), tls_ca_dir=args.tls_ca_dir,
                            request_header_timeout=args.request_header_timeout)
    try:
        serve(host=args.host, port=args.port, kubeconfig_path=kubeconfig, options=options,
              admin_port=args.admin_port, seed=args.seed, on_ready=ready,
              simulators=[SIMULATORS[name]() for name in args.simulate])
    except ListenError as exc:  # a taken port is a usage error: one line, no traceback
        print(f"ambient-ctrl apiserver: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def _simulator_names(value: str) -> list[str]:
    """``--simulate``'s comma-separated names, checked against the known simulators."""
    if not has_local_api_server():
        raise argparse.ArgumentTypeError(NO_LOCAL_API_SERVER)
    from envtest.simulators import SIMULATORS

    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SIMULATORS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown simulator {', '.join(unknown)} "
                                         f"(choose from {', '.join(sorted(SIMULATORS))})")
    return names


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's "(default: X)" after every option's help, unless the help already says
    what the default is in words (an option whose default comes from the environment, or
    whose unset value means something)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower():
            return text
        if action.nargs == 0 and isinstance(action.default, bool):  # a switch
            return f"{text} (default: {'on' if action.default else 'off'})"
        return super()._get_help_string(action)


def _version() -> str:
    try:
        return version("ambient-ctrl")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ambient-ctrl", description=DESCRIPTION,
                                     epilog=EPILOG, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="level of the log lines on stderr")
    # Each command's parser formats its help as this one does, unless it asks otherwise.
    subparser: Any = functools.partial(argparse.ArgumentParser, formatter_class=HelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     title="commands", parser_class=subparser)
    api = commands.add_parser("apiserver", help="run the local Kubernetes API server")
    api.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default: loopback only)")
    api.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    api.add_argument("--kubeconfig", default="kubeconfig",
                     help="where to write a kubeconfig for clients (default: ./kubeconfig)")
    api.add_argument("--bookmark-interval", type=float, default=60.0,
                     help="seconds between BOOKMARK events on watches that allow them")
    api.add_argument("--history-limit", type=int, default=20000,
                     help="watch events kept for resumption; older resourceVersions get 410 Gone")
    api.add_argument("--max-watch-backlog", type=int, default=32 * 1024 * 1024,
                     help="bytes a watcher may fall behind (a replayed history included) "
                          "before it is dropped")
    api.add_argument("--max-watch-backlog-total", type=int, default=128 * 1024 * 1024,
                     help="bytes all watchers that are behind may hold together; past it the "
                          "one furthest behind is dropped (0: no bound)")
    api.add_argument("--tls", action="store_true",
                     help="serve HTTPS with a CA made at start, which the kubeconfig carries")
    api.add_argument("--tls-ca-dir", default="", metavar="DIR",
                     help="with --tls (implied): sign with the CA kept in DIR (ca.crt, ca.key; "
                          "made there when absent), so a restarted server is still trusted "
                          "(default: a new CA each start)")
    api.add_argument("--request-header-timeout", type=float, default=32.0,
                     help="seconds a request's head may take to arrive before the connection "
                          "is closed (kube-apiserver's 32; 0: never)")
    api.add_argument("--admin-port", type=int, default=None,
                     help="serve the fault-injection admin endpoint on this port of "
                          "127.0.0.1 (loopback only, whatever --host is; 0: a free one; "
                          "default: off)")
    api.add_argument("--seed", type=int, default=0,
                     help="seed of the fault injector's random choices")
    api.add_argument("--simulate", type=_simulator_names, default=[], metavar="NAMES",
                     help="cluster simulators to run, comma-separated (kubelet, kubevirt; "
                          "default: none)")
    api.set_defaults(run=_apiserver)
    for plugin in entry_points(group="ambient_ctrl.commands"):
        plugin.load()(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if not lifeline.honour(os.environ):
        print("ambient-ctrl: the process that started this one has gone: not starting",
              file=sys.stderr, flush=True)
        return 1
    args = build_parser().parse_args(argv)
    logcontext.configure(level=args.log_level)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
