"""The AgenticSession operator's vocabulary: resources, names, labels, annotations, phases."""

from __future__ import annotations

import enum

from informers.resource import Resource

GROUP = "vteam.ambient-code"
VERSION = "v1alpha1"
AGENTIC_SESSIONS = Resource(GROUP, VERSION, "agenticsessions", "AgenticSession")
VIRTUAL_MACHINES = Resource("kubevirt.io", "v1", "virtualmachines", "VirtualMachine")
VIRTUAL_MACHINE_INSTANCES = Resource("kubevirt.io", "v1", "virtualmachineinstances",
                                     "VirtualMachineInstance")

DESIRED_PHASE_ANNOTATION = "ambient-code.io/desired-phase"
"""User intent: ``Running`` restarts a stopped or finished session, ``Stopped`` stops one."""
MANAGED_NAMESPACE_LABEL = "ambient-code.io/managed"
"""Only namespaces labelled ``ambient-code.io/managed=true`` are reconciled."""
SESSION_LABEL = "agentic-session"
APP_LABEL = "app"
APP_VALUE = "ambient-code-runner"

REGISTRY_CONFIGMAP = "ambient-agent-registry"
REGISTRY_KEY = "agent-registry.json"
DEFAULT_RUNTIME = "claude-agent-sdk"
DEFAULT_PORT = 8001
AGUI_PORT_NAME = "agui"
TOKEN_KEY = "token"
CLOUDINIT_KEY = "userdata"


class Phase(enum.StrEnum):
    """Session phases: Pending → Creating → Running → Stopping → Stopped; Completed and
    Failed are terminal until the user asks for ``Running`` again."""

    PENDING = "Pending"
    CREATING = "Creating"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    COMPLETED = "Completed"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self in (Phase.COMPLETED, Phase.FAILED, Phase.STOPPED)


class ExecutionKind(enum.StrEnum):
    POD = "pod"
    KUBEVIRT_VM = "kubevirt-vm"


def runner_name(session: str) -> str:
    """The Pod or VirtualMachine of a session."""
    return f"{session}-runner"


def service_name(session: str) -> str:
    return f"session-{session}"


def token_secret_name(session: str) -> str:
    """The per-session Secret holding the random AG-UI token."""
    return f"{session}-agui-token"


def cloudinit_secret_name(session: str) -> str:
    return f"{session}-cloudinit"


def selector_labels(session: str) -> dict[str, str]:
    """Labels the Service selects: set on the runner Pod and on the VM template."""
    return {SESSION_LABEL: session, APP_LABEL: APP_VALUE}
