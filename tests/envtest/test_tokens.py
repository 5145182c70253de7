"""The TokenRequest subresource, ``POST .../serviceaccounts/{name}/token``, as kube-apiserver.

kubectl's protobuf bodies (fixtures/protobuf/tokenrequest*.bin, captured from kubectl 1.37.1;
their decoding is checked in test_protobuf.py) are POSTed here as kubectl sends them; kubectl
itself and the python client run against the server in e2e/.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from envtest import LocalAPIServer, ServerOptions
from envtest.auth.tokens import ISSUER, sign, verify
from tests.conftest import RawClient

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
PROTOBUF = "application/vnd.kubernetes.protobuf"


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    """Overrides conftest's: fault injection and a known signing key are needed here."""
    with LocalAPIServer(admin_port=0) as server:
        yield server


@pytest.fixture()
def account(client: RawClient, namespace: str) -> dict[str, Any]:
    status, created = client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                                  {"metadata": {"name": "bot"}})
    assert status == 201, created
    return dict(created)


def token_path(namespace: str, name: str = "bot") -> str:
    return f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"


def request(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}
    if spec is not None:
        body["spec"] = spec
    return body


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    decode = lambda part: orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(payload)


def when(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def test_discovery_lists_the_subresource_as_kube_does(client: RawClient) -> None:
    _, resources = client.get("/api/v1")
    [entry] = [r for r in resources["resources"] if r["name"] == "serviceaccounts/token"]
    assert entry == {"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
                     "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                     "verbs": ["create"]}


def test_mints_a_signed_token_with_kube_claims(api: LocalAPIServer, client: RawClient,
                                               namespace: str, account: dict[str, Any]) -> None:
    status, answer = client.post(token_path(namespace), request())
    assert status == 201, answer
    assert (answer["kind"], answer["apiVersion"]) == ("TokenRequest", "authentication.k8s.io/v1")
    meta = answer["metadata"]
    assert (meta["name"], meta["namespace"]) == ("bot", namespace)
    assert answer["spec"] == {"audiences": [ISSUER], "expirationSeconds": 3600,
                              "boundObjectRef": None}
    token = answer["status"]["token"]
    header, claims = segments(token)
    assert header == {"alg": "HS256", "kid": header["kid"]} and header["kid"]
    assert verify(token, api.cluster.signing_key) == claims
    assert verify(token, b"another key") is None
    uid = account["metadata"]["uid"]
    assert claims == {
        "aud": [ISSUER], "exp": claims["iat"] + 3600, "iat": claims["iat"], "iss": ISSUER,
        "jti": claims["jti"], "nbf": claims["iat"], "sub": f"system:serviceaccount:{namespace}:bot",
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": "bot", "uid": uid}}}
    created = when(meta["creationTimestamp"])
    expires = when(answer["status"]["expirationTimestamp"])
    assert expires - created == dt.timedelta(hours=1)
    assert int(created.timestamp()) == claims["iat"]
    assert abs((created - dt.datetime.now(dt.UTC)).total_seconds()) < 5


def test_every_call_mints_a_different_token(client: RawClient, namespace: str,
                                            account: dict[str, Any]) -> None:
    tokens = {client.post(token_path(namespace), request())[1]["status"]["token"]
              for _ in range(5)}
    assert len(tokens) == 5


def test_audiences_duration_and_bound_pod(api: LocalAPIServer, client: RawClient,
                                          namespace: str, account: dict[str, Any]) -> None:
    status, pod = client.post(f"/api/v1/namespaces/{namespace}/pods", {
        "metadata": {"name": "runner"}, "spec": {"serviceAccountName": "bot", "containers": [
            {"name": "c", "image": "busybox"}]}})
    assert status == 201, pod
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "runner", "uid": pod["metadata"]["uid"]}
    status, answer = client.post(token_path(namespace), request({
        "audiences": ["vault", "https://a.example.com"], "expirationSeconds": 1200,
        "boundObjectRef": ref}))
    assert status == 201, answer
    assert answer["spec"] == {"audiences": ["vault", "https://a.example.com"],
                              "expirationSeconds": 1200, "boundObjectRef": ref}
    claims = verify(answer["status"]["token"], api.cluster.signing_key)
    assert claims is not None
    assert claims["aud"] == ["vault", "https://a.example.com"]
    assert claims["exp"] - claims["iat"] == 1200
    assert claims["kubernetes.io"]["pod"] == {"name": "runner", "uid": pod["metadata"]["uid"]}


@pytest.mark.parametrize(("ref", "code", "message"), [
    ({"kind": "Pod", "apiVersion": "v1", "name": "absent"}, 404, 'pods "absent" not found'),
    ({"kind": "Secret", "apiVersion": "v1", "name": "s", "uid": "not-its-uid"}, 409,
     'Operation cannot be fulfilled on Secret "s": the UID in the bound object reference '
     "(not-its-uid) does not match the UID in record. The object might have been deleted and "
     "then recreated"),
    ({"kind": "Pod", "apiVersion": "v1", "name": "other-sa"}, 400,
     'cannot bind token for serviceaccount "bot" to pod running with different serviceaccount '
     "name."),
    ({"kind": "ConfigMap", "apiVersion": "v1", "name": "c"}, 400,
     'cannot bind token for serviceaccount "bot" to object of kind "/v1, Kind=ConfigMap"'),
    ({"kind": "Deployment", "apiVersion": "apps/v1", "name": "d"}, 400,
     'cannot bind token for serviceaccount "bot" to object of kind "apps/v1, '
     'Kind=Deployment"'),
], ids=["absent-pod", "uid-mismatch", "other-service-account", "unbindable-kind",
        "other-group"])
def test_bound_object_refusals(client: RawClient, namespace: str, account: dict[str, Any],
                               ref: dict[str, str], code: int, message: str) -> None:
    client.post(f"/api/v1/namespaces/{namespace}/secrets", {"metadata": {"name": "s"}})
    client.post(f"/api/v1/namespaces/{namespace}/pods", {"metadata": {"name": "other-sa"},
                                                         "spec": {"containers": [
                                                             {"name": "c", "image": "i"}]}})
    status, answer = client.post(token_path(namespace), request({"boundObjectRef": ref}))
    assert (status, answer["message"]) == (code, message)


def test_bound_secret_claim(api: LocalAPIServer, client: RawClient, namespace: str,
                            account: dict[str, Any]) -> None:
    _, secret = client.post(f"/api/v1/namespaces/{namespace}/secrets",
                            {"metadata": {"name": "s"}})
    status, answer = client.post(token_path(namespace), request({"boundObjectRef": {
        "kind": "Secret", "apiVersion": "v1", "name": "s"}}))
    assert status == 201, answer
    claims = verify(answer["status"]["token"], api.cluster.signing_key) or {}
    assert claims["kubernetes.io"]["secret"] == {"name": "s", "uid": secret["metadata"]["uid"]}


def test_missing_service_account_is_404(client: RawClient, namespace: str) -> None:
    status, answer = client.post(token_path(namespace, "ghost"), request())
    assert status == 404
    assert answer == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Failure", "message": 'serviceaccounts "ghost" not found',
                      "reason": "NotFound", "code": 404,
                      "details": {"name": "ghost", "kind": "serviceaccounts"}}
    assert client.post(token_path("no-such-namespace"), request())[0] == 404


@pytest.mark.parametrize(("seconds", "message"), [
    (599, "may not specify a duration less than 10 minutes"),
    (-1, "may not specify a duration less than 10 minutes"),
    ((1 << 32) + 1, "may not specify a duration larger than 2^32 seconds"),
    ((1 << 63) - 1, "may not specify a duration larger than 2^32 seconds"),
], ids=["below-ten-minutes", "negative", "above-2^32", "int64-max"])
def test_bad_durations_are_422(client: RawClient, namespace: str, account: dict[str, Any],
                               seconds: int, message: str) -> None:
    status, answer = client.post(token_path(namespace), request({"expirationSeconds": seconds}))
    assert status == 422, answer
    assert answer["message"] == (f'TokenRequest.authentication.k8s.io "" is invalid: '
                                 f"spec.expirationSeconds: Invalid value: {seconds}: {message}")
    assert answer["details"] == {"group": "authentication.k8s.io", "kind": "TokenRequest",
                                 "causes": [{"reason": "FieldValueInvalid",
                                             "message": f"Invalid value: {seconds}: {message}",
                                             "field": "spec.expirationSeconds"}]}


def test_the_longest_duration_is_accepted(client: RawClient, namespace: str,
                                          account: dict[str, Any]) -> None:
    status, answer = client.post(token_path(namespace), request({"expirationSeconds": 1 << 32}))
    assert status == 201, answer
    expires = when(answer["status"]["expirationTimestamp"])
    assert expires - when(answer["metadata"]["creationTimestamp"]) == dt.timedelta(
        seconds=1 << 32)


@pytest.mark.parametrize("raw", [
    b'{"spec": {"expirationSeconds": 1e300}}',
    b'{"spec": {"expirationSeconds": 18446744073709551615}}',
    b'{"spec": {"expirationSeconds": "3600"}}',
    b'{"spec": {"audiences": "vault"}}',
    b'{"spec": {"boundObjectRef": "pod/x"}}',
    b'{"spec": []}',
    b'{"kind": "ConfigMap"}',
    b'{"apiVersion": "v1", "kind": "TokenRequest"}',
    b'[1]',
], ids=["float", "uint64", "string-seconds", "audiences-string", "ref-string", "spec-list",
        "wrong-kind", "wrong-version", "not-an-object"])
def test_undecodable_requests_are_400(client: RawClient, namespace: str,
                                      account: dict[str, Any], raw: bytes) -> None:
    status, answer = client.post(token_path(namespace), None, raw=raw)
    assert status == 400, answer
    assert answer["reason"] == "BadRequest"
    assert client.get("/healthz")[0] == 200


def test_name_in_the_body_must_match_the_url(client: RawClient, namespace: str,
                                             account: dict[str, Any]) -> None:
    body = {**request(), "metadata": {"name": "other"}}
    status, answer = client.post(token_path(namespace), body)
    assert status == 422
    assert answer["message"] == ('TokenRequest.authentication.k8s.io "bot" is invalid: '
                                 'metadata.name: Invalid value: "other": must match the service '
                                 "account name if specified")
    body = {**request(), "metadata": {"name": "bot", "namespace": namespace}}
    assert client.post(token_path(namespace), body)[0] == 201


def test_strict_field_validation(client: RawClient, namespace: str,
                                 account: dict[str, Any]) -> None:
    body = request({"expirationSecs": 600})
    status, answer = client.post(token_path(namespace) + "?fieldValidation=Strict", body)
    assert status == 400
    assert answer["message"] == ('TokenRequest in version "v1" cannot be handled as a '
                                 'TokenRequest: strict decoding error: unknown field '
                                 '"spec.expirationSecs"')
    resp = client.http.request("POST", client.url + token_path(namespace),
                               body=orjson.dumps(body))
    assert resp.status == 201
    assert resp.headers["Warning"] == '299 - "unknown field \\"spec.expirationSecs\\""'


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_only_post_is_served(client: RawClient, namespace: str, account: dict[str, Any],
                             method: str) -> None:
    status, answer = client.request(method, token_path(namespace), request(),
                                    content_type="application/merge-patch+json"
                                    if method == "PATCH" else "application/json")
    assert status == 405 and answer["reason"] == "MethodNotAllowed", answer


def test_other_subresources_still_refuse_post(client: RawClient, namespace: str) -> None:
    client.post(f"/api/v1/namespaces/{namespace}/pods", {
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    status, answer = client.post(f"/api/v1/namespaces/{namespace}/pods/p/status", {})
    assert status == 405, answer
    status, answer = client.post(f"/api/v1/namespaces/{namespace}/configmaps/x/token", {})
    assert status == 404, answer


# kubectl's protobuf bodies -------------------------------------------------------------------
def test_kubectl_protobuf_bodies_are_served(api: LocalAPIServer, client: RawClient,
                                            namespace: str, account: dict[str, Any]) -> None:
    body = (FIXTURES / "tokenrequest-duration.bin").read_bytes()
    status, answer = client.post(token_path(namespace), None, raw=body, content_type=PROTOBUF)
    assert status == 201, answer
    assert answer["spec"] == {"audiences": [ISSUER], "expirationSeconds": 1200,
                              "boundObjectRef": None}
    assert verify(answer["status"]["token"], api.cluster.signing_key) is not None
    # The bound body names a pod of another namespace's test: absent here.
    status, answer = client.post(token_path(namespace), None, content_type=PROTOBUF,
                                 raw=(FIXTURES / "tokenrequest-bound.bin").read_bytes())
    assert (status, answer["message"]) == (404, 'pods "runner-0" not found')


# requests, faults, options -------------------------------------------------------------------
def test_requests_are_counted_as_create_serviceaccounts_token(
        api: LocalAPIServer, client: RawClient, namespace: str,
        account: dict[str, Any]) -> None:
    key = ("create", "", "serviceaccounts/token")
    before = api.call(lambda cluster: cluster.requests[key])
    client.post(token_path(namespace), request())
    client.post(token_path(namespace, "ghost"), request())
    assert api.call(lambda cluster: cluster.requests[key]) == before + 2


@pytest.mark.parametrize(("code", "reason"), [(403, "Forbidden"), (500, "InternalError")])
def test_faults_target_the_subresource(api: LocalAPIServer, client: RawClient, namespace: str,
                                       account: dict[str, Any], code: int, reason: str) -> None:
    api.faults.fail(code=code, count=1, verbs=["create"], resources=["serviceaccounts/token"])
    try:
        created = client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                              {"metadata": {"name": "unaffected"}})
        assert created[0] == 201, "creating the service account itself is not affected"
        status, answer = client.post(token_path(namespace), request())
        assert (status, answer["reason"], answer["code"]) == (code, reason, code)
        assert client.post(token_path(namespace), request())[0] == 201, "the fault is spent"
    finally:
        api.faults.clear()


def test_the_admin_endpoint_fails_it_with_403(api: LocalAPIServer, client: RawClient,
                                              namespace: str, account: dict[str, Any]) -> None:
    with RawClient(api.admin_url) as admin:
        status, body = admin.post("/faults/fail", {"code": 403, "count": 1,
                                                   "resources": ["serviceaccounts/token"]})
        assert status == 200, body
    status, answer = client.post(token_path(namespace), request())
    assert (status, answer["reason"]) == (403, "Forbidden")


def test_max_token_expiration_shortens_with_a_warning() -> None:
    with LocalAPIServer(options=ServerOptions(max_token_expiration=7200)) as server, \
            RawClient(server.url) as raw:
        raw.post("/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "bot"}})
        resp = raw.http.request("POST", server.url + token_path("default"), body=orjson.dumps(
            request({"expirationSeconds": 86400})), headers={"Content-Type": "application/json"})
        answer = orjson.loads(resp.data)
        assert resp.status == 201, answer
        assert answer["spec"]["expirationSeconds"] == 7200
        assert resp.headers["Warning"] == ('299 - "requested expiration of 86400 seconds '
                                           'shortened to 7200 seconds"')
        claims = verify(answer["status"]["token"], server.cluster.signing_key) or {}
        assert claims["exp"] - claims["iat"] == 7200


def test_each_server_signs_with_its_own_key() -> None:
    with LocalAPIServer() as one, LocalAPIServer() as two:
        assert one.cluster.signing_key != two.cluster.signing_key
    token = sign({"sub": "x"}, b"k" * 32)
    assert verify(token, b"k" * 32) == {"sub": "x"}
    assert verify(token[:-2] + "AA", b"k" * 32) is None
    assert verify("not.a-token", b"k" * 32) is None
