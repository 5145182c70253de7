"""The operator's command, ``ambient-ctrl run``: its flags (each also read from the
environment) and what it runs — a manager with the operator set up on it (:mod:`.wiring`).

``register`` adds the subcommand through the ``ambient_ctrl.commands`` entry point (setup.cfg),
so the framework never imports this package.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from ambient_ctrl import logcontext
from ambient_ctrl.controller import ControllerOptions
from ambient_ctrl.manager import Manager, ManagerOptions
from informers.rest import USER_AGENT
from metrics.server import DEFAULT_METRICS_ADDRESS, DEFAULT_SECURE_METRICS_ADDRESS

from .config import OperatorConfig
from .namespaced import watched_namespaces
from .reconciler import OperatorOptions
from .wiring import setup

log = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    logcontext.configure(level=args.log_level, json=args.log_format == "json")
    if args.leader_election_renew_deadline >= args.leader_election_lease_duration:
        log.error("--leader-election-renew-deadline must be shorter than "
                  "--leader-election-lease-duration")
        return 2
    if args.metrics_bind_address is None:  # kubebuilder's ports: 8443 secure, 8080 plain
        args.metrics_bind_address = (DEFAULT_SECURE_METRICS_ADDRESS if args.metrics_secure
                                     else DEFAULT_METRICS_ADDRESS)
    config = OperatorConfig.from_env(os.environ)
    for problem in config.problems():
        log.error("cannot start: %s", problem)
    if config.problems():
        return 2
    manager = Manager(kubeconfig=args.kubeconfig, options=ManagerOptions(
        leader_election=args.leader_elect, leader_election_id=args.leader_election_id,
        leader_election_namespace=args.leader_election_namespace,
        identity=args.leader_election_identity,
        lease_duration=args.leader_election_lease_duration,
        renew_deadline=args.leader_election_renew_deadline,
        metrics_secure=args.metrics_secure, metrics_cert_dir=args.metrics_cert_path,
        metrics_cert_name=args.metrics_cert_name, metrics_key_name=args.metrics_cert_key,
        retry_period=args.leader_election_retry_period, user_agent=args.user_agent,
        metrics_address=args.metrics_bind_address,
        probe_address=args.health_probe_bind_address, cache_namespaces=args.namespace,
        webhook_address=args.webhook_bind_address, webhook_cert_dir=args.webhook_cert_path))
    setup(manager, config=config, options=OperatorOptions(
        registry_namespace=args.registry_namespace,
        require_managed_label=not args.all_namespaces, runner_address=args.runner_address),
        controller=ControllerOptions(max_concurrent_reconciles=args.max_concurrent_reconciles,
                                     use_priority_queue=args.priority_queue),
        upstream_metrics=args.upstream_metrics)
    manager.install_signal_handlers()
    return manager.run()


def _namespaces(value: str) -> tuple[str, ...]:
    """``--namespace``'s comma-separated list (empty: every namespace)."""
    try:
        return watched_namespaces([value])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _flag(value: str) -> bool:
    """``--flag``, ``--flag=true`` or ``--flag=false`` (upstream's Deployment passes
    ``--leader-elect=false``)."""
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _positive_int(value: str) -> int:
    """A count (``--max-concurrent-reconciles``): an integer of at least 1."""
    try:
        number = int(value.strip())
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _env(name: str, default: str, *, upstream: str | None = None) -> str:
    """The default of an option: ``AMBIENT_CTRL_<name>``, else upstream's variable of that
    setting, else ``default`` — so with the flag first, one precedence for every option: flag
    > ``AMBIENT_CTRL_<name>`` > upstream's variable > default. An empty variable counts as
    unset (upstream's operator reads ``os.Getenv(...) != ""``). Options with a ``type`` take
    this string and convert it when ``run`` parses its arguments: a value that cannot be used
    is a usage error of ``run`` then, never a failure of every subcommand."""
    value = os.environ.get(f"AMBIENT_CTRL_{name}") or None
    if value is None and upstream:
        value = os.environ.get(upstream) or None
    return value if value is not None else default


def register(commands: Any) -> None:
    """Add ``ambient-ctrl run`` (entry point ``ambient_ctrl.commands``)."""
    parser = commands.add_parser(
        "run", help="run the AgenticSession operator",
        description="Run the AgenticSession operator. Every option also reads an environment "
                    "variable AMBIENT_CTRL_<OPTION> (upper case, dashes as underscores), e.g. "
                    "AMBIENT_CTRL_METRICS_BIND_ADDRESS; a flag wins over the variable. Where "
                    "upstream's operator reads a variable for the same setting "
                    "(MAX_CONCURRENT_RECONCILES; NAMESPACE, its own namespace, for "
                    "--registry-namespace and --leader-election-namespace), that variable "
                    "comes next: flag > AMBIENT_CTRL_<OPTION> > upstream's variable > "
                    "default. An empty variable counts as unset.")
    _scope_flags(parser)
    _leader_flags(parser)
    _servers_flags(parser)
    _work_flags(parser)
    parser.set_defaults(run=_run)


def _scope_flags(parser: argparse.ArgumentParser) -> None:
    """Where the operator works: the cluster, the namespaces, how it reaches runners."""
    parser.add_argument("--kubeconfig", default=_env("KUBECONFIG", "") or None,
                        help="kubeconfig (default: $KUBECONFIG, then the in-cluster service "
                             "account, then ~/.kube/config)")
    parser.add_argument("--namespace", "--namespaces", type=_namespaces,
                        default=_env("NAMESPACE", ""), metavar="NS[,NS...]",
                        help="work only in these namespaces (comma-separated), each watched "
                             "on its own: what an operator granted Roles there and nothing "
                             "cluster-wide may do (config/namespaced; Namespaces themselves "
                             "are still watched cluster-wide, for their ambient-code.io/managed "
                             "label). Fixed at start. Default: every namespace")
    parser.add_argument("--registry-namespace",
                        default=_env("REGISTRY_NAMESPACE", "ambient-code", upstream="NAMESPACE"),
                        help="the operator's namespace, where the ambient-agent-registry, "
                             "ambient-models and ambient-cloud-init-templates ConfigMaps are "
                             "(default: $NAMESPACE, as upstream's operator, else ambient-code)")
    parser.add_argument("--runner-address", choices=["dns", "apiserver"],
                        default=_env("RUNNER_ADDRESS", "dns"),
                        help="how the operator reaches a session's runner for live changes: "
                             "the Service's cluster DNS name, as upstream (dns, the default), "
                             "or through the API server's Service proxy (apiserver: for an "
                             "operator outside the cluster network)")
    parser.add_argument("--all-namespaces", action="store_true",
                        default=_env("ALL_NAMESPACES", "") == "true",
                        help="reconcile sessions in every namespace, not only those labelled "
                             "ambient-code.io/managed=true")


def _leader_flags(parser: argparse.ArgumentParser) -> None:
    """Leader election (controller-runtime's flags and defaults)."""
    parser.add_argument("--leader-elect", nargs="?", const=True, type=_flag,
                        default=_env("LEADER_ELECT", "false"),
                        help="run only while holding the leader lease (--leader-elect, or "
                             "--leader-elect=true|false)")
    parser.add_argument("--leader-election-namespace",
                        default=_env("LEADER_ELECTION_NAMESPACE", "ambient-code",
                                     upstream="NAMESPACE"),
                        help="namespace of the leader Lease (default: $NAMESPACE, the "
                             "operator's own, else ambient-code)")
    parser.add_argument("--leader-election-id",
                        default=_env("LEADER_ELECTION_ID", "agenticsession-operator"),
                        help="name of the leader Lease")
    parser.add_argument("--leader-election-identity",
                        default=_env("LEADER_ELECTION_IDENTITY", ""),
                        help="this replica's holder identity in the Lease (default: "
                             "<hostname>_<random uuid>)")
    parser.add_argument("--leader-election-lease-duration", type=float,
                        default=_env("LEADER_ELECTION_LEASE_DURATION", "15"),
                        help="seconds a standby waits after the last renewal before taking "
                             "over (default 15)")
    parser.add_argument("--leader-election-renew-deadline", type=float,
                        default=_env("LEADER_ELECTION_RENEW_DEADLINE", "10"),
                        help="seconds the leader keeps failing to renew before it stops "
                             "(default 10; shorter than the lease duration)")
    parser.add_argument("--leader-election-retry-period", type=float,
                        default=_env("LEADER_ELECTION_RETRY_PERIOD", "2"),
                        help="seconds between attempts to acquire or renew (default 2)")


def _servers_flags(parser: argparse.ArgumentParser) -> None:
    """What the operator serves and how it presents itself: metrics, webhooks, probes."""
    parser.add_argument("--user-agent", default=_env("USER_AGENT", USER_AGENT),
                        help=f"User-Agent of every API request (default {USER_AGENT})")
    parser.add_argument("--metrics-bind-address",
                        default=_env("METRICS_BIND_ADDRESS", "") or None,
                        help='"host:port" for /metrics ("0" = off; default 127.0.0.1:8080, '
                             'or 127.0.0.1:8443 with --metrics-secure; config/manager: :8443)')
    parser.add_argument("--metrics-secure", nargs="?", const=True, type=_flag,
                        default=_env("METRICS_SECURE", "false"),
                        help="serve /metrics over HTTPS to clients whose bearer token the API "
                             "server authenticates (TokenReview) and allows get on /metrics "
                             "(SubjectAccessReview), as controller-runtime's "
                             "WithAuthenticationAndAuthorization; needs create on tokenreviews "
                             "and subjectaccessreviews (default false; config/manager sets it)")
    parser.add_argument("--metrics-cert-path", default=_env("METRICS_CERT_PATH", ""),
                        help="directory of the secure metrics certificate and key, reloaded "
                             "when they change (default: a self-signed certificate made at "
                             "start)")
    parser.add_argument("--metrics-cert-name", default=_env("METRICS_CERT_NAME", "tls.crt"),
                        help="the certificate's file name in --metrics-cert-path (tls.crt)")
    parser.add_argument("--metrics-cert-key", default=_env("METRICS_CERT_KEY", "tls.key"),
                        help="the key's file name in --metrics-cert-path (tls.key)")
    parser.add_argument("--webhook-bind-address",
                        default=_env("WEBHOOK_BIND_ADDRESS", "127.0.0.1:9443"),
                        help='"host:port" of the admission and conversion webhook server, '
                             'served only when webhooks are registered (config/webhook: :9443)')
    parser.add_argument("--webhook-cert-path", default=_env("WEBHOOK_CERT_PATH", ""),
                        help="directory of the webhook server's tls.crt and tls.key, reloaded "
                             "when they change (config/webhook: cert-manager's Secret; "
                             "default: a development CA and certificate made at start)")
    parser.add_argument("--health-probe-bind-address",
                        default=_env("HEALTH_PROBE_BIND_ADDRESS", "127.0.0.1:8081"),
                        help='"host:port" for /healthz and /readyz (":8081" in a cluster)')


def _work_flags(parser: argparse.ArgumentParser) -> None:
    """How much it does at once, and what it tells: concurrency, queue, metrics, logs."""
    parser.add_argument("--max-concurrent-reconciles", type=_positive_int,
                        default=_env("MAX_CONCURRENT_RECONCILES", "8",
                                     upstream="MAX_CONCURRENT_RECONCILES"),
                        help="sessions reconciled at once (default: "
                             "$AMBIENT_CTRL_MAX_CONCURRENT_RECONCILES, then upstream's "
                             "$MAX_CONCURRENT_RECONCILES, then 8)")
    parser.add_argument("--priority-queue", nargs="?", const=True, type=_flag,
                        default=_env("PRIORITY_QUEUE", "true"),
                        help="reconcile sessions created or changed while the operator works "
                             "through its initial list (after a start or a failover) before "
                             "that list (default true; false: one first-in, first-out queue)")
    parser.add_argument("--upstream-metrics", nargs="?", const=True, type=_flag,
                        default=_env("UPSTREAM_METRICS", "false"),
                        help="also export upstream's ambient_* series under upstream's names, "
                             "for dashboards built on upstream's OpenTelemetry metrics "
                             "(default false)")
    parser.add_argument("--log-format", choices=["text", "json"],
                        default=_env("LOG_FORMAT", "text"),
                        help="text lines, or one JSON object a line (for log collectors)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        default=_env("LOG_LEVEL", "INFO"), help="the least severe level logged")
