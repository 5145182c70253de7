"""The README's "less ceremony" controller, run exactly as written against a local API server:
discovery of a CRD's kind, create_or_update, apply_status, with_finalizer and apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ambient_ctrl.envtest import LocalAPIServer
from ambient_ctrl.testing import custom_resource_definition, eventually
from informers.errors import NotFound
from informers.resource import CONFIGMAPS, SECRETS, Resource
from informers.rest import ResourceClient, Transport, load_configuration
from tests.ambient_ctrl.test_readme_example import running_example, stops_cleanly

NS = "default"
EXPORTS = Resource("example.com", "v1", "exports", "Export")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                "CustomResourceDefinition", namespaced=False)


def read(client: ResourceClient, name: str) -> dict[str, Any]:
    try:
        return client.get(name, NS)
    except NotFound:
        return {}


def test_readme_exports_example(tmp_path: Path) -> None:
    with LocalAPIServer() as api:
        transport = Transport(load_configuration(api.kubeconfig))
        exports = ResourceClient(transport, EXPORTS)
        secrets = ResourceClient(transport, SECRETS)
        configmaps = ResourceClient(transport, CONFIGMAPS)
        try:
            ResourceClient(transport, CRDS).create(custom_resource_definition(
                "example.com", "Export"))
            with running_example("exports", tmp_path, api.kubeconfig) as process:
                for name in ("first", "second"):
                    exports.create({"apiVersion": "example.com/v1", "kind": "Export",
                                    "metadata": {"name": name, "namespace": NS},
                                    "spec": {"data": {"a": "1"}}})
                secret = eventually(lambda: read(secrets, "first").get("data") == {
                    "a": "MQ=="} and read(secrets, "first"), timeout=20)
                assert secret["metadata"]["ownerReferences"][0]["name"] == "first"
                first = eventually(lambda: read(exports, "first").get("status") == {
                    "phase": "Exported"} and read(exports, "first"), timeout=20)
                assert first["metadata"]["finalizers"] == ["example.com/ledger"]
                exports.patch("first", {"spec": {"data": {"a": "2"}}}, NS)
                eventually(lambda: read(secrets, "first").get("data") == {"a": "Mg=="},
                           timeout=20)
                for name in ("first", "second"):
                    eventually(lambda n=name: read(exports, n).get("metadata", {}).get(
                        "finalizers"), timeout=20)
                    exports.delete(name, NS)
                # Each cleanup applied its own entry; neither dropped the other's.
                eventually(lambda: read(configmaps, "ledger").get("data") == {
                    "first": "deleted", "second": "deleted"}, timeout=20)
                eventually(lambda: not read(exports, "first") and not read(exports, "second"),
                           timeout=20)
                assert stops_cleanly(process)
        finally:
            transport.close()


def test_readme_inventory_example(tmp_path: Path) -> None:
    """The narrower-caches example: Secrets counted from a metadata-only cache, ConfigMaps
    cached without their data."""
    with LocalAPIServer() as api:
        transport = Transport(load_configuration(api.kubeconfig))
        secrets = ResourceClient(transport, SECRETS)
        configmaps = ResourceClient(transport, CONFIGMAPS)
        try:
            with running_example("inventory", tmp_path, api.kubeconfig) as process:
                cm = configmaps.create({"metadata": {"name": "app", "namespace": NS},
                                        "data": {"k": "v"}})
                owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "app",
                         "uid": cm["metadata"]["uid"], "controller": True}

                def count() -> str:
                    annotations = read(configmaps, "app")["metadata"].get("annotations") or {}
                    return str(annotations.get("example.com/secrets", ""))

                eventually(lambda: count() == "0", timeout=20)
                for name in ("one", "two"):
                    secrets.create({"metadata": {"name": name, "namespace": NS,
                                                 "ownerReferences": [owner]},
                                    "stringData": {"password": "x"}})
                secrets.create({"metadata": {"name": "stranger", "namespace": NS}})
                eventually(lambda: count() == "2", timeout=20)
                assert read(configmaps, "app")["data"] == {"k": "v"}  # only the cache lacks it
                assert stops_cleanly(process)
        finally:
            transport.close()
