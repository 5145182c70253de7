"""``ambient-ctrl session-trigger``: start one run of a scheduled session, as upstream's does.

Upstream's backend schedules a session as a CronJob ``schedule-<uuid>`` in the project's
namespace whose pod runs the *operator's* image with the command
``["./operator", "session-trigger"]`` (service account ``ambient-session-trigger``) and four
variables (be/handlers/scheduled_sessions.go:154-224; op/trig):

``SESSION_TEMPLATE``
    the session's spec as JSON (the backend's create request, ``displayName`` filled in);
``PROJECT_NAMESPACE``
    where the session goes;
``SCHEDULED_SESSION_NAME``
    the CronJob's name; every run it starts is labelled with it;
``REUSE_LAST_SESSION``
    ``true`` (any case): carry on in the newest run instead of starting a new one.

Without reuse, or when reuse finds nothing to reuse, one AgenticSession is created: name
``<sanitized displayName, else the schedule's name>-<unix seconds>``, ``displayName`` with the
run's UTC time appended, labels ``ambient-code.io/scheduled-session-name=<schedule>`` and
``ambient-code.io/scheduled-run=true``, spec = the template. With reuse, the newest session
labelled with the schedule decides (:func:`decide`): Running → the template's prompt goes to
the backend's ``POST /api/projects/<ns>/agentic-sessions/<session>/agui/run`` (as the user's
next message; nothing is sent when the prompt is empty); Stopped or Completed → it is started
again with ``desired-phase=Running``, ``start-requested-at`` and, when the template has a prompt,
that prompt as ``spec.initialPrompt`` with ``force-execute-prompt=true`` (so the new runner runs
it instead of resuming silently); any other phase → a new session.

Not upstream's: the cluster configuration may come from ``--kubeconfig``/``$KUBECONFIG`` (in a
pod it is the service account, as upstream's); ``BACKEND_API_URL`` (or ``--backend-api-url``)
replaces the backend's in-cluster URL and ``AMBIENT_CTRL_TOKEN_FILE`` (or ``--token-file``) the
service-account token file, for running it outside a cluster. Every failure exits 1 with one
line saying why.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import logging
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from informers.errors import Conflict, KubeError
from informers.rest import (
    SERVICE_ACCOUNT_TOKEN,
    ResourceClient,
    Transport,
    TransportOptions,
    load_configuration,
)

from .resources import (
    AGENTIC_SESSIONS,
    DESIRED_PHASE,
    FORCE_EXECUTE_PROMPT,
    START_REQUESTED_AT,
)
from .status import parse_time

log = logging.getLogger(__name__)

TEMPLATE_ENV = "SESSION_TEMPLATE"
NAMESPACE_ENV = "PROJECT_NAMESPACE"
SCHEDULE_ENV = "SCHEDULED_SESSION_NAME"
REUSE_ENV = "REUSE_LAST_SESSION"
REQUIRED_ENV = (TEMPLATE_ENV, NAMESPACE_ENV, SCHEDULE_ENV)
BACKEND_URL_ENV = "BACKEND_API_URL"
"""Ours: the backend's API base URL (ending in ``/api``), replacing upstream's in-cluster one."""
BACKEND_NAMESPACE_ENV = "BACKEND_NAMESPACE"
DEFAULT_BACKEND_NAMESPACE = "ambient-code"
TOKEN_FILE_ENV = "AMBIENT_CTRL_TOKEN_FILE"
"""Ours: the bearer token sent to the backend, instead of the pod's service-account token."""

SCHEDULED_SESSION_LABEL = "ambient-code.io/scheduled-session-name"
SCHEDULED_RUN_LABEL = "ambient-code.io/scheduled-run"

NAME_PREFIX_MAX = 40
"""``session-`` + prefix + ``-`` + 10 digits stays within a Service name's 63 characters."""
REQUEST_TIMEOUT = 30.0
"""Seconds for each request to the API server and for the POST to the backend (upstream's)."""
CONFLICT_ATTEMPTS = 5
"""Reads and writes of a resume before a conflict is final (client-go's ``DefaultRetry``)."""
CONFLICT_PAUSE = 0.01
USER_AGENT = "ambient-ctrl-session-trigger/0.1"
_JSON_TYPES = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class SettingsError(ValueError):
    """The environment does not describe a run (a missing variable, a template that is no
    JSON object)."""


class TriggerError(RuntimeError):
    """The run could not be started; the message says why."""


@dataclass(frozen=True, slots=True)
class Settings:
    template: dict[str, Any]
    namespace: str
    schedule: str
    reuse: bool

    @property
    def prompt(self) -> str:
        """The template's ``initialPrompt`` ("" when absent or not a string)."""
        value = self.template.get("initialPrompt")
        return value if isinstance(value, str) else ""


def settings_from_env(environ: Mapping[str, str]) -> Settings:
    """The run the environment asks for; :class:`SettingsError` when it asks for none."""
    missing = [name for name in REQUIRED_ENV if not environ.get(name)]
    if missing:
        raise SettingsError(f"missing environment variable{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)} (SESSION_TEMPLATE, PROJECT_NAMESPACE and "
                            f"SCHEDULED_SESSION_NAME must be set)")
    try:
        template = orjson.loads(environ[TEMPLATE_ENV])
    except orjson.JSONDecodeError as error:
        raise SettingsError(f"{TEMPLATE_ENV} is not valid JSON: {error}") from None
    if not isinstance(template, dict):
        raise SettingsError(f"{TEMPLATE_ENV} must be a JSON object (the session's spec), "
                            f"not {_JSON_TYPES.get(type(template), 'a number')}")
    return Settings(template=template, namespace=environ[NAMESPACE_ENV],
                    schedule=environ[SCHEDULE_ENV],
                    reuse=environ.get(REUSE_ENV, "").strip().lower() == "true")


# naming -------------------------------------------------------------------------------------------
def sanitize_name(text: str) -> str:
    """A name prefix from free text, as upstream's ``sanitizeName``: ASCII letters lowercased,
    digits kept, every run of other characters one ``-`` (none leading), at most 40
    characters, no trailing ``-``; ``run`` when nothing is left."""
    out: list[str] = []
    for char in text:
        if "a" <= char <= "z" or "0" <= char <= "9":
            out.append(char)
        elif "A" <= char <= "Z":
            out.append(char.lower())
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out[:NAME_PREFIX_MAX]).rstrip("-") or "run"


def display_time(moment: dt.datetime) -> str:
    """``Jan 2, 2006 - 15:04:05`` in UTC (Go's layout, English month names whatever the
    locale)."""
    utc = moment.astimezone(dt.UTC)
    return (f"{_MONTHS[utc.month - 1]} {utc.day}, {utc.year} - "
            f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}")


def go_rfc3339(moment: dt.datetime) -> str:
    """Go's ``time.RFC3339`` of ``moment`` in its own zone: ``Z`` for UTC, else ``±hh:mm``."""
    text = moment.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def new_session(settings: Settings, now: dt.datetime) -> dict[str, Any]:
    """The AgenticSession of a new run started at ``now`` (op/trig:245-285)."""
    spec = copy.deepcopy(settings.template)
    prefix = sanitize_name(settings.schedule)
    given = spec.get("displayName")
    if isinstance(given, str) and given:
        prefix = sanitize_name(given)
        spec["displayName"] = f"{given} ({display_time(now)})"
    return {
        "apiVersion": AGENTIC_SESSIONS.api_version, "kind": AGENTIC_SESSIONS.kind,
        "metadata": {"name": f"{prefix}-{int(now.timestamp())}", "namespace": settings.namespace,
                     "labels": {SCHEDULED_SESSION_LABEL: settings.schedule,
                                SCHEDULED_RUN_LABEL: "true"}},
        "spec": spec}


# reuse --------------------------------------------------------------------------------------------
Action = Literal["create", "send", "skip", "resume"]


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    """``create`` a new session, ``send`` the prompt to the running one, ``skip`` (running and
    no prompt), ``resume`` the stopped or completed one."""
    session: str = ""
    """The newest previous session ("" when there is none)."""
    phase: str = ""


_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def newest(sessions: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The session created last; of equal timestamps the first listed (upstream's loop)."""
    latest: Mapping[str, Any] | None = None
    latest_time = _EPOCH
    for session in sessions:
        created = parse_time((session.get("metadata") or {}).get("creationTimestamp")) or _EPOCH
        if latest is None or created > latest_time:
            latest, latest_time = session, created
    return latest


def decide(sessions: Sequence[Mapping[str, Any]], prompt: str) -> Decision:
    """What reuse does with the schedule's previous sessions (op/trig:71-138)."""
    latest = newest(sessions)
    if latest is None:
        return Decision("create")
    name = str((latest.get("metadata") or {}).get("name", ""))
    status = latest.get("status")
    phase = status.get("phase", "") if isinstance(status, Mapping) else ""
    phase = phase if isinstance(phase, str) else ""
    if phase == "Running":
        return Decision("send" if prompt else "skip", name, phase)
    if phase in ("Stopped", "Completed"):
        return Decision("resume", name, phase)
    return Decision("create", name, phase)


def resumed(session: Mapping[str, Any], prompt: str, now: dt.datetime) -> dict[str, Any]:
    """``session`` as the resume writes it back (op/trig:200-242): start intent, and the new
    prompt forced to run when there is one."""
    out = copy.deepcopy(dict(session))
    metadata = out.setdefault("metadata", {})
    annotations = metadata.get("annotations") or {}
    annotations[DESIRED_PHASE] = "Running"
    annotations[START_REQUESTED_AT] = go_rfc3339(now)
    if prompt:
        spec = out.get("spec")
        if not isinstance(spec, dict):
            spec = {}
        spec["initialPrompt"] = prompt
        out["spec"] = spec
        annotations[FORCE_EXECUTE_PROMPT] = "true"
    metadata["annotations"] = annotations
    return out


def run_input(session: str, prompt: str, now: dt.datetime) -> dict[str, Any]:
    """The AG-UI run the backend is asked to start in a running session (op/trig:146-158)."""
    nanos = int(now.timestamp()) * 1_000_000_000 + now.microsecond * 1000
    return {"threadId": session, "runId": f"scheduled-{int(now.timestamp())}",
            "messages": [{"id": f"scheduled-msg-{nanos}", "role": "user", "content": prompt}]}


def backend_api_url(environ: Mapping[str, str]) -> str:
    """``$BACKEND_API_URL``, else upstream's in-cluster URL of the backend's Service in
    ``$BACKEND_NAMESPACE`` (default ``ambient-code``)."""
    override = environ.get(BACKEND_URL_ENV, "").strip()
    if override:
        return override.rstrip("/")
    namespace = environ.get(BACKEND_NAMESPACE_ENV) or DEFAULT_BACKEND_NAMESPACE
    return f"http://backend-service.{namespace}.svc.cluster.local:8080/api"


def run_url(api: str, namespace: str, session: str) -> str:
    return f"{api.rstrip('/')}/projects/{namespace}/agentic-sessions/{session}/agui/run"


# effects ------------------------------------------------------------------------------------------
Now = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now().astimezone()


@dataclass
class Trigger:
    """One run of a schedule against a cluster (``sessions``) and a backend (``backend_api``)."""

    sessions: ResourceClient
    backend_api: str
    token_file: str
    now: Now = _now

    def run(self, settings: Settings) -> str:
        """Start the run; return what was done. Raises :class:`TriggerError` saying why
        it could not."""
        if settings.reuse and self._reuse(settings):
            return "reused"
        session = new_session(settings, self.now())
        name = session["metadata"]["name"]
        try:
            self.sessions.create(session, settings.namespace, timeout=REQUEST_TIMEOUT)
        except KubeError as error:
            raise TriggerError(f"failed to create AgenticSession {name} in namespace "
                               f"{settings.namespace}: {error}") from None
        log.info("created AgenticSession %s in namespace %s", name, settings.namespace)
        return f"created {name}"

    def _reuse(self, settings: Settings) -> bool:
        try:
            listed = self.sessions.list(
                settings.namespace, label_selector=f"{SCHEDULED_SESSION_LABEL}={settings.schedule}")
        except KubeError as error:
            raise TriggerError(f"failed to list sessions: {error}") from None
        decision = decide(listed.get("items") or [], settings.prompt)
        if not decision.session:
            log.info("no previous sessions of scheduled session %s: creating a new one",
                     settings.schedule)
            return False
        log.info("latest session of scheduled session %s: %s (phase %s)", settings.schedule,
                 decision.session, decision.phase or "none")
        if decision.action == "create":
            log.info("session %s is %s, not reusable: creating a new one", decision.session,
                     decision.phase or "not started yet (no phase)")
            return False
        if decision.action == "skip":
            log.info("session %s is running and the template has no prompt: nothing to send",
                     decision.session)
            return True
        if decision.action == "send":
            self._send(settings, decision.session)
            return True
        self._resume(settings, decision)
        return True

    def _send(self, settings: Settings, session: str) -> None:
        url = run_url(self.backend_api, settings.namespace, session)
        log.info("session %s is running: sending the prompt (%d chars) to %s", session,
                 len(settings.prompt), url)
        body = orjson.dumps(run_input(session, settings.prompt, self.now()),
                            option=orjson.OPT_SORT_KEYS)
        try:
            with open(self.token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as error:
            raise TriggerError(f"failed to send follow-up to running session {session}: "
                               f"failed to read service account token: {error}") from None
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            raise TriggerError(f"failed to send follow-up to running session {session}: "
                               f"backend returned status {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TriggerError(f"failed to send follow-up to running session {session}: "
                               f"failed to send request to backend: {reason}") from None
        log.info("sent the prompt to session %s via the backend (status %d)", session, status)

    def _resume(self, settings: Settings, decision: Decision) -> None:
        log.info("session %s is %s: resuming it%s", decision.session, decision.phase,
                 " with the template's prompt" if settings.prompt else "")
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                current = self.sessions.get(decision.session, settings.namespace,
                                            timeout=REQUEST_TIMEOUT)
                self.sessions.update(resumed(current, settings.prompt, self.now()),
                                     timeout=REQUEST_TIMEOUT)
            except Conflict:
                if attempt == CONFLICT_ATTEMPTS - 1:
                    raise TriggerError(f"failed to resume session {decision.session}: still "
                                       f"conflicting after {CONFLICT_ATTEMPTS} attempts") from None
                log.info("session %s changed while resuming it: reading it again",
                         decision.session)
                time.sleep(CONFLICT_PAUSE * (1 + 0.1 * random.random()))
                continue
            except KubeError as error:
                raise TriggerError(f"failed to resume session {decision.session}: "
                                   f"{error}") from None
            break
        log.info("set the resume annotations on session %s (%s=Running%s)", decision.session,
                 DESIRED_PHASE, f", {FORCE_EXECUTE_PROMPT}=true" if settings.prompt else "")


# the command --------------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_env(os.environ)
    except SettingsError as error:
        log.error("session-trigger: %s", error)
        return 1
    try:
        configuration = load_configuration(args.kubeconfig)
    except Exception as error:  # ConfigException and whatever a broken kubeconfig raises
        log.error("session-trigger: no cluster configuration: %s", error)
        return 1
    log.info("scheduled session %s in namespace %s: %s", settings.schedule, settings.namespace,
             "reusing the last session if possible" if settings.reuse else "a new session")
    transport = Transport(configuration, options=TransportOptions(
        pool_size=1, timeout=REQUEST_TIMEOUT, user_agent=USER_AGENT))
    trigger = Trigger(ResourceClient(transport, AGENTIC_SESSIONS),
                      backend_api=args.backend_api_url or backend_api_url(os.environ),
                      token_file=args.token_file or os.environ.get(TOKEN_FILE_ENV)
                      or SERVICE_ACCOUNT_TOKEN)
    try:
        trigger.run(settings)
    except TriggerError as error:
        log.error("session-trigger: %s", error)
        return 1
    finally:
        transport.close()
    return 0


def register(commands: Any) -> None:
    """Add ``ambient-ctrl session-trigger`` (entry point ``ambient_ctrl.commands``)."""
    parser = commands.add_parser(
        "session-trigger", help="start one run of a scheduled session (upstream's "
                                "./operator session-trigger)",
        description="Start one run of a scheduled session, as upstream's operator image does "
                    "for the backend's CronJobs: SESSION_TEMPLATE (the session spec as JSON), "
                    "PROJECT_NAMESPACE and SCHEDULED_SESSION_NAME are required; "
                    "REUSE_LAST_SESSION=true carries on in the schedule's newest session.")
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig (default: $KUBECONFIG, then the in-cluster service "
                             "account, then ~/.kube/config)")
    parser.add_argument("--backend-api-url", default=None,
                        help="the backend's API base URL, for a running session's prompt "
                             "(default: $BACKEND_API_URL, else upstream's "
                             "http://backend-service.$BACKEND_NAMESPACE.svc.cluster.local:8080"
                             "/api with BACKEND_NAMESPACE defaulting to ambient-code)")
    parser.add_argument("--token-file", default=None,
                        help="bearer token for the backend (default: $AMBIENT_CTRL_TOKEN_FILE, "
                             f"else {SERVICE_ACCOUNT_TOKEN})")
    parser.set_defaults(run=_run)
