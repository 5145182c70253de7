"""The AgenticSession operator's vocabulary: resources, names, labels, annotations, phases.

Every name here is part of the contract upstream's backend, runner and frontend rely on
(``shared/UPSTREAM-CONTRACT.md`` §2 and §4): the children's names and labels, the annotations
that carry the user's intent, the Secret keys the backend reads.
"""

from __future__ import annotations

import enum

from informers.resource import Resource

GROUP = "vteam.ambient-code"
VERSION = "v1alpha1"
AGENTIC_SESSIONS = Resource(GROUP, VERSION, "agenticsessions", "AgenticSession")
PROJECT_SETTINGS = Resource(GROUP, VERSION, "projectsettings", "ProjectSettings")
VIRTUAL_MACHINES = Resource("kubevirt.io", "v1", "virtualmachines", "VirtualMachine")
VIRTUAL_MACHINE_INSTANCES = Resource("kubevirt.io", "v1", "virtualmachineinstances",
                                     "VirtualMachineInstance")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
NETWORK_POLICIES = Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy")

# Annotations on the session ---------------------------------------------------------------------
DESIRED_PHASE = "ambient-code.io/desired-phase"
"""The user's intent: ``Running`` (start or restart) or ``Stopped``."""
STOP_REASON = "ambient-code.io/stop-reason"
"""Why a stop was asked: ``inactivity`` (the operator) or anything else (``run-finished``)."""
STOP_REQUESTED_AT = "ambient-code.io/stop-requested-at"
START_REQUESTED_AT = "ambient-code.io/start-requested-at"
FORCE_EXECUTE_PROMPT = "ambient-code.io/force-execute-prompt"
"""``"true"``: the next runner runs the initial prompt even on a resume (no IS_RESUME)."""
PARENT_SESSION_ID = "vteam.ambient-code/parent-session-id"
RUNNER_TOKEN_SECRET = "ambient-code.io/runner-token-secret"
RUNNER_SA = "ambient-code.io/runner-sa"
"""The runner's ServiceAccount; the backend refuses to mint GitHub tokens without it."""

# Labels and annotations on other objects --------------------------------------------------------
MANAGED_NAMESPACE_LABEL = "ambient-code.io/managed"
"""Only sessions in namespaces labelled ``ambient-code.io/managed=true`` are reconciled."""
SESSION_LABEL = "agentic-session"
APP_LABEL = "app"
RUNNER_APP = "ambient-code-runner"
"""``app`` of runner Pods and VM templates: what the Service and the NetworkPolicy select."""
SERVICE_APP = "ambient-code"
RUNNER_SA_APP = "ambient-runner"
TOKEN_SECRET_APP = "ambient-runner-token"
CLOUDINIT_SECRET_APP = "ambient-runner-cloudinit"
CREATED_BY_USER_ID = "ambient-code.io/created-by-user-id"
TOKEN_REFRESHED_AT = "ambient-code.io/token-refreshed-at"
COPIED_FROM = "vteam.ambient-code/copied-from"
RUN_ANNOTATION = "ambient-code.io/run-started-at"
"""On a workload: the ``status.startTime`` of the run it was made for, so a workload left
over from an earlier run is never taken for the new run's."""
RESUME_ANNOTATION = "ambient-code.io/resumed-run"
"""On a workload: ``"true"`` when its runner was started as a resume (``IS_RESUME``), so the
run's children are rendered again as they were made while it lasts."""
MANAGED_BY = "ambient-code.io/managed-by"

# Fixed names --------------------------------------------------------------------------------------
REGISTRY_CONFIGMAP = "ambient-agent-registry"
REGISTRY_KEY = "agent-registry.json"
MODELS_CONFIGMAP = "ambient-models"
MODELS_KEY = "models.json"
CLOUD_INIT_CONFIGMAP = "ambient-cloud-init-templates"
"""Named cloud-init templates for VM runtimes (``vmConfig.cloudInitTemplate``), one per key."""
PROJECT_SETTINGS_NAME = "projectsettings"
RUNNER_SECRETS = "ambient-runner-secrets"
"""The project's API keys, ``envFrom`` of the runner (when Vertex AI is off)."""
INTEGRATION_SECRETS = "ambient-non-vertex-integrations"
MINIO_CREDENTIALS = "minio-credentials"
TRUSTED_CA_BUNDLE = "trusted-ca-bundle"
TRUSTED_CA_KEY = "ca-bundle.crt"
NETWORK_POLICY_NAME = "runner-allow-backend-only"
VERTEX_SECRET = "ambient-vertex"
LANGFUSE_SECRET = "ambient-admin-langfuse-secret"
MLFLOW_SECRET = "ambient-admin-mlflow-observability-secret"

DEFAULT_RUNTIME = "claude-agent-sdk"
DEFAULT_PORT = 8001
AGUI_PORT_NAME = "agui"
K8S_TOKEN_KEY = "k8s-token"
AGUI_TOKEN_KEY = "agui-token"
CLOUDINIT_KEY = "userdata"
RUNNER_CONTAINER = "ambient-code-runner"


class Phase(enum.StrEnum):
    """``status.phase``: Pending → Creating → Running → Stopping → Stopped; Completed and
    Failed end a run. Stopped, Completed and Failed are terminal until the user asks for
    ``Running`` again."""

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
    """The session's workload: the runner Pod or VirtualMachine."""
    return f"{session}-runner"


def service_name(session: str) -> str:
    return f"session-{session}"


def token_secret_name(session: str) -> str:
    """The Secret with the runner's ``k8s-token`` and ``agui-token`` (the backend reads it)."""
    return f"ambient-runner-token-{session}"


def service_account_name(session: str) -> str:
    return f"ambient-session-{session}"


def role_name(session: str) -> str:
    return f"ambient-session-{session}-role"


def role_binding_name(session: str) -> str:
    return f"ambient-session-{session}-rb"


def cloudinit_secret_name(session: str) -> str:
    return f"{session}-cloudinit"


def selector_labels(session: str) -> dict[str, str]:
    """Labels the Service selects: on the runner Pod and on the VM's template."""
    return {SESSION_LABEL: session, APP_LABEL: RUNNER_APP}
