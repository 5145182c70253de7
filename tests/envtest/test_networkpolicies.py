"""NetworkPolicy (networking.k8s.io/v1): discovery, defaulting, validation, patches, printing.

The kubectl and python-client round trips are in e2e/test_kubectl.py and
e2e/test_python_client.py; these pin the server's rules one by one.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from envtest.printing.tables import format_label_selector
from tests.conftest import RawClient

GV = "/apis/networking.k8s.io/v1"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def policy(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                            "metadata": {"name": name}}
    if spec is not None:
        body["spec"] = spec
    return body


def path(namespace: str, name: str = "") -> str:
    return f"{GV}/namespaces/{namespace}/networkpolicies" + (f"/{name}" if name else "")


def test_discovery_lists_networkpolicies(client: RawClient) -> None:
    status, groups = client.get("/apis")
    assert status == 200
    assert "networking.k8s.io" in [g["name"] for g in groups["groups"]]
    status, resources = client.get(GV)
    assert status == 200
    [entry] = [r for r in resources["resources"] if r["name"] == "networkpolicies"]
    assert entry == {"name": "networkpolicies", "singularName": "networkpolicy",
                     "namespaced": True, "kind": "NetworkPolicy",
                     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch",
                               "update", "watch"], "shortNames": ["netpol"]}


@pytest.mark.parametrize(("spec", "expected"), [
    (None, {"podSelector": {}, "policyTypes": ["Ingress"]}),
    ({"ingress": [{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]},
     {"podSelector": {}, "policyTypes": ["Ingress"],
      "ingress": [{"ports": [{"port": 80, "protocol": "TCP"},
                             {"port": 53, "protocol": "UDP"}]}]}),
    ({"podSelector": {"matchLabels": {"app": "x"}}, "egress": [{"ports": [{"port": 443}]}]},
     {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress", "Egress"],
      "egress": [{"ports": [{"port": 443, "protocol": "TCP"}]}]}),
    ({"egress": [{}], "policyTypes": ["Egress"]},
     {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}),
    ({"egress": [], "policyTypes": []}, {"podSelector": {}, "policyTypes": ["Ingress"],
                                         "egress": []}),
], ids=["empty", "port-protocol", "egress-adds-Egress", "explicit-types", "empty-egress"])
def test_create_defaults_as_kube(client: RawClient, namespace: str,
                                 spec: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    status, created = client.post(path(namespace), policy("np", spec))
    assert status == 201, created
    assert created["spec"] == expected
    assert created["metadata"]["generation"] == 1
    assert client.get(path(namespace, "np"))[1] == created


def test_updates_are_defaulted_and_move_the_generation(client: RawClient,
                                                       namespace: str) -> None:
    _, created = client.post(path(namespace), policy("np", {"podSelector": {}}))
    created["spec"] = {"egress": [{"ports": [{"port": 5432}]}]}
    status, updated = client.put(path(namespace, "np"), created)
    assert status == 200, updated
    assert updated["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                               "egress": [{"ports": [{"port": 5432, "protocol": "TCP"}]}]}
    assert updated["metadata"]["generation"] == 2
    labelled = client.patch(path(namespace, "np"), {"metadata": {"labels": {"a": "b"}}})[1]
    assert labelled["metadata"]["generation"] == 2, "metadata alone does not move it"


def test_strategic_merge_patch_replaces_rule_lists(client: RawClient, namespace: str) -> None:
    client.post(path(namespace), policy("np", {
        "podSelector": {"matchLabels": {"app": "x", "tier": "web"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "fe"}}}]},
                    {"ports": [{"port": 80}]}]}))
    status, patched = client.patch(path(namespace, "np"), {"spec": {
        "podSelector": {"matchLabels": {"tier": None, "env": "prod"}},
        "ingress": [{"ports": [{"port": 8080}]}]}}, kind="strategic")
    assert status == 200, patched
    # podSelector is a struct (merged); ingress is atomic (+listType=atomic): replaced whole.
    assert patched["spec"]["podSelector"] == {"matchLabels": {"app": "x", "env": "prod"}}
    assert patched["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    status, json_patched = client.patch(path(namespace, "np"), [
        {"op": "add", "path": "/spec/policyTypes/-", "value": "Egress"}], kind="json")
    assert status == 200 and json_patched["spec"]["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.parametrize(("spec", "causes"), [
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Is"}]}},
     [("spec.podSelector.matchExpressions[0].operator",
       'Invalid value: "Is": not a valid selector operator')]),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     [("spec.podSelector.matchExpressions[0].values",
       "Required value: must be specified when `operator` is 'In' or 'NotIn'")]),
    ({"podSelector": {"matchLabels": {"bad key": "v"}}},
     [("spec.podSelector.matchLabels", 'Invalid value: "bad key": name part must consist of '
       "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
       "character, and be no more than 63 characters")]),
    ({"podSelector": "app=x"}, [("spec.podSelector", "Invalid value: must be an object")]),
    ({"policyTypes": ["Ingress", "Sideways"]},
     [("spec.policyTypes[1]", 'Unsupported value: "Sideways": supported values: "Ingress", '
       '"Egress"')]),
    ({"policyTypes": ["Ingress", "Egress", "Ingress"]},
     [("spec.policyTypes", "Invalid value: may not specify more than two policyTypes")]),
    ({"ingress": [{"ports": [{"protocol": "ICMP", "port": 1}]}]},
     [("spec.ingress[0].ports[0].protocol",
       'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"')]),
    ({"egress": [{"ports": [{"port": 70000}]}]},
     [("spec.egress[0].ports[0].port", "Invalid value: 70000: must be between 1 and 65535, "
       "inclusive")]),
    ({"egress": [{"ports": [{"port": 8080, "endPort": 80}]}]},
     [("spec.egress[0].ports[0].endPort", "Invalid value: 8080: must be greater than or equal "
       "to `port`")]),
    ({"egress": [{"ports": [{"port": "http", "endPort": 90}]}]},
     [("spec.egress[0].ports[0].endPort", "Invalid value: 90: may not be specified when "
       "`port` is non-numeric")]),
    ({"egress": [{"ports": [{"endPort": 90}]}]},
     [("spec.egress[0].ports[0].endPort", "Invalid value: 90: may not be specified when "
       "`port` is not specified")]),
    ({"ingress": [{"from": [{}]}]},
     [("spec.ingress[0].from[0]", "Required value: must specify a peer")]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
     [("spec.ingress[0].from[0]", "Forbidden: may not specify both ipBlock and another "
       "peer")]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0"}}]}]},
     [("spec.egress[0].to[0].ipBlock.cidr", 'Invalid value: "10.0.0.0": must be a valid CIDR '
       "value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/8"]}}]}]},
     [("spec.egress[0].to[0].ipBlock.except[0]", 'Invalid value: "10.0.0.0/8": must be a '
       "strict subset of `cidr`")]),
], ids=["operator", "in-without-values", "label-key", "selector-type", "policy-type",
        "three-policy-types", "protocol", "port-range", "end-port-below", "end-port-named",
        "end-port-alone", "empty-peer", "ipblock-and-selector", "cidr", "except-outside"])
def test_invalid_policies_are_422_with_causes(client: RawClient, namespace: str,
                                               spec: dict[str, Any],
                                               causes: list[tuple[str, str]]) -> None:
    status, result = client.post(path(namespace), policy("bad", spec))
    assert status == 422, result
    assert result["reason"] == "Invalid" and result["kind"] == "Status"
    assert result["details"]["kind"] == "NetworkPolicy"
    assert [(c["field"], c["message"]) for c in result["details"]["causes"]] == causes
    assert client.get(path(namespace, "bad"))[0] == 404


def test_valid_peers_and_ports(client: RawClient, namespace: str) -> None:
    status, created = client.post(path(namespace), policy("ok", {
        "podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}},
                               "podSelector": {"matchLabels": {"role": "fe"}}},
                              {"ipBlock": {"cidr": "192.168.1.7/24", "except": [
                                  "192.168.1.128/25"]}}],
                     "ports": [{"port": "http"}, {"port": 8000, "endPort": 9000,
                                                  "protocol": "SCTP"}]}]}))
    assert status == 201, created


def test_unknown_fields_are_refused_under_strict(client: RawClient, namespace: str) -> None:
    body = policy("strict", {"podSelector": {}, "ingres": []})
    status, result = client.post(path(namespace) + "?fieldValidation=Strict", body)
    assert status == 400, result
    assert result["message"] == ('NetworkPolicy in version "v1" cannot be handled as a '
                                 'NetworkPolicy: strict decoding error: unknown field '
                                 '"spec.ingres"')
    resp = client.http.request("POST", client.url + path(namespace), body=orjson.dumps(body),
                               headers={"Content-Type": "application/json"})
    assert resp.status == 201
    assert resp.headers["Warning"] == '299 - "unknown field \\"spec.ingres\\""'


def test_table_prints_the_pod_selector(client: RawClient, namespace: str) -> None:
    client.post(path(namespace), policy("a-all"))
    client.post(path(namespace), policy("b-web", {"podSelector": {
        "matchLabels": {"tier": "web", "app": "shop"},
        "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev", "ci"]}]}}))
    status, table = client.get(path(namespace), headers={"Accept": TABLE})
    assert status == 200, table
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Pod-Selector", "Age"]
    assert [row["cells"][:2] for row in table["rows"]] == [
        ["a-all", "<none>"], ["b-web", "app=shop,env notin (ci,dev),tier=web"]]


@pytest.mark.parametrize(("selector", "text"), [
    ({}, "<none>"),
    ({"matchLabels": {"app": "x"}}, "app=x"),
    ({"matchExpressions": [{"key": "k", "operator": "In", "values": ["b", "a"]}]},
     "k in (a,b)"),
    ({"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"]}]}, "k in (a)"),
    ({"matchExpressions": [{"key": "b", "operator": "Exists"},
                           {"key": "a", "operator": "DoesNotExist"}]}, "!a,b"),
    ({"matchExpressions": [{"key": "k", "operator": "In"}]}, "<error>"),
    ({"matchExpressions": [{"key": "k", "operator": "Near", "values": ["x"]}]}, "<error>"),
], ids=["empty", "labels", "in-sorted", "in-one", "exists", "in-empty", "bad-operator"])
def test_format_label_selector(selector: dict[str, Any], text: str) -> None:
    assert format_label_selector(selector) == text


def test_namespace_deletion_takes_its_policies(client: RawClient, namespace: str) -> None:
    client.post(path(namespace), policy("np"))
    status, listed = client.get(f"{GV}/networkpolicies")
    assert status == 200 and listed["kind"] == "NetworkPolicyList"
    assert f"{namespace}/np" in [f"{i['metadata']['namespace']}/{i['metadata']['name']}"
                                 for i in listed["items"]]
    assert client.delete(f"/api/v1/namespaces/{namespace}")[0] == 200
    assert client.get(path(namespace, "np"))[0] == 404
