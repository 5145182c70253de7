"""The Service proxy subresource (``services/NAME:PORT/proxy/PATH``) in front of runner stand-ins.

The errors and their messages are kube-apiserver's (``ResourceLocation`` of the service registry
and apimachinery's proxy transport); the answers reach kubectl (``get --raw``) and the
``kubernetes`` client's ``connect_*_namespaced_service_proxy*`` calls unchanged.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from envtest.http.proxy import proxy_path
from envtest.simulators import SCENARIO_ANNOTATION
from tests.conftest import KUBECTL, RawClient
from tests.envtest import runner_pods
from tests.envtest.runner_pods import (
    PORT,
    TOKEN,
    create,
    ready_ip,
    requests_seen,
    runner_pod,
    runner_service,
    start_runner,
    token_secret,
)

api = runner_pods.api  # the fixtures, shared with the other stand-in tests
session = runner_pods.session



@pytest.fixture()
def runner(client: RawClient, namespace: str, session: str) -> str:
    """A session's runner with its stand-in; the proxy path of its Service (port 8001)."""
    return start_runner(client, namespace, session)


def status_of(answer: tuple[int, Any]) -> tuple[int, str]:
    code, body = answer
    return code, body.get("message", "") if isinstance(body, dict) else body


# discovery -------------------------------------------------------------------------------------
def test_discovery_lists_services_proxy_as_kube_does(client: RawClient) -> None:
    _, listed = client.get("/api/v1")
    entry = next(r for r in listed["resources"] if r["name"] == "services/proxy")
    assert entry == {"name": "services/proxy", "singularName": "", "namespaced": True,
                     "kind": "ServiceProxyOptions",
                     "verbs": ["create", "delete", "get", "patch", "update"]}
    token = next(r for r in listed["resources"] if r["name"] == "serviceaccounts/token")
    assert (token["group"], token["version"]) == ("authentication.k8s.io", "v1")


# which pod, which port -------------------------------------------------------------------------
@pytest.mark.parametrize("service_id", ["{svc}:agui", "{svc}:8001", "http:{svc}:8001",
                                        "http:{svc}:agui"],
                         ids=["port-name", "port-number", "scheme-number", "scheme-name"])
def test_the_port_by_name_or_number(client: RawClient, namespace: str, session: str,
                                    runner: str, service_id: str) -> None:
    service = service_id.format(svc=f"session-{session}")
    code, body = client.get(f"/api/v1/namespaces/{namespace}/services/{service}/proxy/health")
    assert (code, body) == (200, {"status": "healthy", "session_id": session})


def test_no_port_is_the_unnamed_port_as_in_kube(client: RawClient, namespace: str,
                                                session: str, runner: str) -> None:
    # kube matches the endpoints' port named "": a Service whose only port is named "agui"
    # cannot be reached without naming it.
    named = proxy_path(namespace, f"session-{session}", "", "health")
    assert status_of(client.get(named)) == (
        503, f'no endpoints available for service "session-{session}"')
    create(client, namespace, "services", dict(runner_service(session, port_name=""),
                                               metadata={"name": "unnamed"}))
    assert client.get(proxy_path(namespace, "unnamed", "", "health"))[0] == 200


def test_a_target_port_by_container_port_name(client: RawClient, namespace: str,
                                              session: str, runner: str) -> None:
    create(client, namespace, "services", dict(runner_service(session, target="agui"),
                                               metadata={"name": "by-name"}))
    assert client.get(proxy_path(namespace, "by-name", "agui", "health"))[0] == 200


@pytest.mark.parametrize(("service_id", "message"), [
    ("nope:8001", 'services "nope" not found'),
    ("nope:agui", 'endpoints "nope" not found'),
    ("nope", 'endpoints "nope" not found'),
], ids=["number-reads-the-service", "name-reads-the-endpoints", "no-port"])
def test_a_missing_service_is_404(client: RawClient, namespace: str, service_id: str,
                                  message: str) -> None:
    code, body = client.get(f"/api/v1/namespaces/{namespace}/services/{service_id}/proxy/x")
    assert (code, body["reason"], body["message"]) == (404, "NotFound", message)


def test_unknown_ports_and_bad_ids(client: RawClient, namespace: str, session: str,
                                   runner: str) -> None:
    svc = f"session-{session}"
    assert status_of(client.get(proxy_path(namespace, svc, 9999, "health"))) == (
        503, f'no service port 9999 found for service "{svc}"')
    assert status_of(client.get(proxy_path(namespace, svc, "other", "health"))) == (
        503, f'no endpoints available for service "{svc}:other"')
    for bad in ("ftp:x:80", "a:b:c:d", ":80"):
        assert status_of(client.get(f"/api/v1/namespaces/{namespace}/services/{bad}/proxy/")
                         ) == (400, f'invalid service request "{bad}"'), bad


def test_no_ready_pod_or_nothing_listening_is_503(client: RawClient, namespace: str,
                                                  session: str) -> None:
    create(client, namespace, "services", runner_service(session))
    create(client, namespace, "secrets", token_secret(session))
    url = proxy_path(namespace, f"session-{session}", PORT, "health")
    message = f'no endpoints available for service "session-{session}"'
    assert status_of(client.get(url)) == (503, message)  # it selects nothing

    never = runner_pod(session, annotations={SCENARIO_ANNOTATION: "never-ready"})
    create(client, namespace, "pods", never)
    pod_path = f"/api/v1/namespaces/{namespace}/pods/{session}-runner"
    eventually(lambda: client.get(pod_path)[1]["status"].get("phase") == "Running")
    assert status_of(client.get(url)) == (503, message)  # Running, not Ready
    assert client.delete(pod_path)[0] == 200

    create(client, namespace, "pods", runner_pod(session, standin=False))
    ip = eventually(lambda: ready_ip(client, namespace, f"{session}-runner"))
    assert status_of(client.get(url)) == (
        503, f"error trying to reach service: dial tcp {ip}:{PORT}: connect: connection refused")


# what goes through -----------------------------------------------------------------------------
def test_the_request_goes_through_as_sent(client: RawClient, runner: str) -> None:
    code, body = client.post(f"{runner}/repos/add?trace=1&x=a%20b",
                             {"url": "https://github.com/org/repo.git", "branch": "dev"},
                             headers={"X-Ambient-Session-Token": TOKEN, "X-Trace": "t-1",
                                      "Authorization": "Bearer for-the-apiserver"})
    assert (code, body["name"], body["newly_cloned"]) == (200, "repo", True)
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
        client.request(method, f"{runner}/repos/add", {"n": method},
                       headers={"X-Ambient-Session-Token": TOKEN})
    client.get(f"{runner}/a%20b/c/", headers={"X-Ambient-Session-Token": TOKEN})
    seen = requests_seen(client, runner)
    post = seen[-6]
    assert (post["method"], post["path"], post["query"]) == ("POST", "/repos/add",
                                                             "trace=1&x=a%20b")
    assert post["body"] == {"url": "https://github.com/org/repo.git", "branch": "dev"}
    headers = post["headers"]
    assert headers["x-ambient-session-token"] == TOKEN and headers["x-trace"] == "t-1"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers  # the API server consumed it
    assert [(r["method"], r["body"], r["status"]) for r in seen[-5:-1]] == [
        ("PUT", {"n": "PUT"}, 405), ("PATCH", {"n": "PATCH"}, 405),
        ("DELETE", {"n": "DELETE"}, 405), ("OPTIONS", {"n": "OPTIONS"}, 405)]
    assert (seen[-1]["path"], seen[-1]["status"]) == ("/a b/c/", 404)


def test_the_answer_comes_back_as_is(client: RawClient, runner: str) -> None:
    response = client.http.request("PUT", client.url + f"{runner}/workflow",
                                   headers={"X-Ambient-Session-Token": TOKEN})
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert response.headers["Content-Type"] == "application/json"
    assert orjson.loads(response.data) == {"detail": "Method Not Allowed"}
    assert client.post(f"{runner}/workflow", {"gitUrl": "x"}) == (
        401, {"detail": "Unauthorized"})
    code, text = client.post(f"{runner}/workflow", None, raw=b"[1]",
                             headers={"X-Ambient-Session-Token": TOKEN})
    assert (code, text) == (500, "Internal Server Error")


def test_no_path_redirects_and_the_path_parameter(client: RawClient, runner: str) -> None:
    response = client.http.request("GET", client.url + runner + "?a=1", redirect=False)
    assert response.status == 301
    assert response.headers["Location"] == runner + "/?a=1"
    assert client.get(f"{runner}?path=/health")[0] == 200
    assert client.get(f"{runner}/", headers={"X-Ambient-Session-Token": TOKEN})[0] == 404


def test_counted_and_faults_can_target_it(api: LocalAPIServer, client: RawClient,
                                          runner: str) -> None:
    before = api.call(lambda c: dict(c.requests))
    client.get(f"{runner}/health")
    client.post(f"{runner}/workflow", {}, headers={"X-Ambient-Session-Token": TOKEN})
    after = api.call(lambda c: dict(c.requests))
    for verb in ("get", "create"):
        key = (verb, "", "services/proxy")
        assert after.get(key, 0) - before.get(key, 0) == 1, verb

    api.faults.fail(code=503, count=1, resources=["services/proxy"])
    code, body = client.get(f"{runner}/health")
    assert (code, body["message"]) == (503, "injected fault: the server is currently unable "
                                            "to handle the request")
    api.faults.add_latency(0.2, resources=["services/proxy"])
    try:
        assert client.get(f"{runner}/health")[0] == 200
        api.faults.pause()  # held, then answered by the pod once resumed
        held: list[tuple[int, Any]] = []
        waiting = threading.Thread(target=lambda: held.append(client.get(f"{runner}/health")))
        waiting.start()
        eventually(lambda: api.faults.state()["held"] == 1,
                   message="the proxied call was not held")  # past its latency, held
        assert not held
        api.faults.resume()
        waiting.join(5)
        assert held[0][0] == 200
    finally:
        api.faults.clear()


# real clients ----------------------------------------------------------------------------------
def test_kubectl_get_raw(api: LocalAPIServer, client: RawClient, namespace: str,
                         session: str, runner: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBECACHEDIR"] = str(tmp_path)

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KUBECTL), "--kubeconfig", api.kubeconfig, *args],
                              capture_output=True, text=True, env=env, timeout=60, check=False)

    svc = f"session-{session}"
    done = kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/services/{svc}:8001/proxy/"
                   "health")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {"status": "healthy", "session_id": session}
    done = kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/services/{svc}:agui/proxy/"
                   "_standin/requests")
    assert orjson.loads(done.stdout)["requests"][-1]["headers"]["user-agent"].startswith(
        "kubectl")
    done = kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/services/nope:8001/proxy/")
    assert done.returncode == 1
    assert 'Error from server (NotFound): services "nope" not found' in done.stderr


def test_python_client_connect_calls(api: LocalAPIServer, client: RawClient, namespace: str,
                                     session: str, runner: str) -> None:
    api_client = k8s_config.new_client_from_config(config_file=api.kubeconfig)
    try:
        core = k8s.CoreV1Api(api_client)
        svc = f"session-{session}"
        raw = core.connect_get_namespaced_service_proxy_with_path(
            f"{svc}:{PORT}", namespace, "health", _preload_content=False)
        assert orjson.loads(raw.data) == {"status": "healthy", "session_id": session}
        raw = core.connect_get_namespaced_service_proxy(f"{svc}:agui", namespace, path="health",
                                                        _preload_content=False)
        # Read to the end: an unread response keeps its connection out of the pool, where
        # pool_manager.clear() cannot close it.
        assert (raw.status, orjson.loads(raw.data)["status"]) == (200, "healthy")
        with pytest.raises(ApiException) as refused:
            core.connect_post_namespaced_service_proxy_with_path(f"{svc}:agui", namespace,
                                                                 "repos/add")
        assert (refused.value.status, refused.value.body) == (401, '{"detail":"Unauthorized"}')
        # connect_* calls send no body; upstream's runner fails to parse none (500).
        with pytest.raises(ApiException) as no_body:
            core.connect_post_namespaced_service_proxy_with_path(
                f"{svc}:agui", namespace, "workflow", _headers={"X-Ambient-Session-Token": TOKEN})
        assert no_body.value.status == 500

        # A POST with a body, as an operator sends one through the client's transport.
        request = api_client.param_serialize(
            method="POST", resource_path="/api/v1/namespaces/{namespace}/services/{name}/proxy/"
            "{path}", path_params={"namespace": namespace, "name": f"{svc}:{PORT}",
                                   "path": "workflow"},
            header_params={"X-Ambient-Session-Token": TOKEN, "Content-Type": "application/json"},
            body={"gitUrl": "https://github.com/org/wf.git", "branch": "main", "path": "wf"},
            auth_settings=["BearerToken"])
        answer = api_client.call_api(*request, _request_timeout=10)
        answer.read()
        assert (answer.status, orjson.loads(answer.data)["message"]) == (200, "Workflow updated")
        last = requests_seen(client, runner)[-1]
        assert (last["path"], last["headers"]["x-ambient-session-token"]) == ("/workflow", TOKEN)
        assert last["body"]["gitUrl"] == "https://github.com/org/wf.git"
    finally:
        api_client.close()  # its thread pool; the connections are its pool manager's:
        api_client.rest_client.pool_manager.clear()  # left open, a later GC warns


def test_a_service_without_selector_leads_where_its_endpoints_say(client: RawClient,
                                                                  namespace: str) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"outside {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    with ThreadingHTTPServer(("127.0.0.1", 0), Hello) as outside:
        thread = threading.Thread(target=outside.serve_forever, name="test-outside")
        thread.start()
        try:
            create(client, namespace, "services", {"metadata": {"name": "outside"}, "spec": {
                "ports": [{"name": "web", "port": 80}]}})
            assert status_of(client.get(proxy_path(namespace, "outside", "web", "x"))) == (
                404, 'endpoints "outside" not found')
            create(client, namespace, "endpoints", {"metadata": {"name": "outside"}, "subsets": [{
                "addresses": [{"ip": "127.0.0.1"}],
                "ports": [{"name": "web", "port": outside.server_address[1]}]}]})
            assert client.get(proxy_path(namespace, "outside", 80, "hello")) == (
                200, "outside /hello")
        finally:
            outside.shutdown()
            thread.join(10)
