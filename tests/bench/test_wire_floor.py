"""bench/wire_floor.py on a handful of sessions: the replay sends the writes our operator sent,
by verb and resource, and the server takes every one; the plan's rewrites (unit)."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # the benchmark's modules import each other as scripts do

import _profile  # noqa: E402
import _wire_plan  # noqa: E402
import wire_floor  # noqa: E402

SESSIONS = 4
OLD_UID = "11111111-2222-3333-4444-555555555555"
NEW_UID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def _request(verb: str, resource: str, method: str, target: str, body: object = "") -> dict:
    return {"verb": verb, "resource": resource, "method": method, "target": target,
            "headers": {"content-type": "application/merge-patch+json",
                        "user-agent": "ambient-ctrl/0.1"},
            "body": body if isinstance(body, str) else orjson.dumps(body).decode()}


def test_plan_groups_by_session_and_rewrites_what_a_fresh_server_changes() -> None:
    sessions = "/apis/vteam.ambient-code/v1alpha1/namespaces/ns/agenticsessions"
    requests = [
        _request("list", "pods", "GET", "/api/v1/pods?limit=500"),
        _request("watch", "pods", "GET", "/api/v1/pods?watch=1&resourceVersion=20&"
                 "timeoutSeconds=300&labelSelector=app%3Drunner"),
        _request("create", "limitranges", "POST", "/api/v1/namespaces/ns/limitranges", {}),
        # the mark: the burst
        _request("create", "serviceaccounts", "POST", "/api/v1/namespaces/ns/serviceaccounts",
                 {"metadata": {"name": "ambient-session-floor-00001", "ownerReferences": [
                     {"name": "floor-00001", "uid": OLD_UID}]}}),
        _request("watch", "pods", "GET", "/api/v1/pods?watch=1&resourceVersion=90&"
                 "timeoutSeconds=412&labelSelector=app%3Drunner"),  # the same watch, re-opened
        _request("create", "serviceaccounts/token", "POST",
                 "/api/v1/namespaces/ns/serviceaccounts/ambient-session-floor-00000/token", {}),
        _request("patch", "agenticsessions/status", "PATCH", f"{sessions}/floor-00001/status",
                 {"metadata": {"resourceVersion": "28"}, "status": {"phase": "Creating"}}),
        _request("patch", "agenticsessions", "PATCH", f"{sessions}/floor-00001",
                 {"metadata": {"resourceVersion": "47", "annotations": {"a": "b"}}}),
        _request("create", "networkpolicies", "POST", "/apis/networking.k8s.io/v1/"
                 "namespaces/ns/networkpolicies", {"metadata": {"name": "np"}}),
    ]
    requests.append(requests[-1])  # two workers raced to make the namespace's policy
    plan = _wire_plan.build(requests, 3, wire_floor.SESSION, {OLD_UID: NEW_UID})
    assert plan.watches == [requests[1]["target"]]
    assert _wire_plan.at_version(plan.watches[0], "7") == (
        "/api/v1/pods?watch=1&resourceVersion=7&timeoutSeconds=300&labelSelector=app%3Drunner")
    assert [w[1] for w in plan.setup] == ["limitranges"]
    assert [(key, [w[1] for w in writes]) for key, writes in plan.sessions] == [
        ("", ["networkpolicies", "networkpolicies"]),  # the operator's own writes go first
        ("floor-00001", ["serviceaccounts", "agenticsessions/status", "agenticsessions"]),
        ("floor-00000", ["serviceaccounts/token"])]
    account, status, annotations = plan.sessions[1][1]
    assert NEW_UID in account[5] and OLD_UID not in account[5]
    assert orjson.loads(status[5]) == {"status": {"phase": "Creating"}}
    assert orjson.loads(annotations[5]) == {"metadata": {"annotations": {"a": "b"}}}
    assert status[4] == {"content-type": "application/merge-patch+json"}, "our agent is dropped"
    assert plan.writes_by_resource()["patch agenticsessions/status"] == 1
    assert plan.repeated_creates() == 1
    with pytest.raises(ValueError, match="binary"):
        _wire_plan.rewrite({**requests[3], "bodyHex": "00"}, {})


def test_profile_concepts_take_the_innermost_frame_that_names_one(tmp_path: Path) -> None:
    base = "Thread.run (threading.py:982);Controller._work (ambient_ctrl/controller.py:175)"
    request = (f"{base};SessionReconciler.reconcile (reconcilers/reconciler.py:206);"
               "Transport._send (informers/rest.py:181);"
               "HTTPConnectionPool.urlopen (urllib3/connectionpool.py:793)")
    watch = ("Thread.run (threading.py:982);Reflector._read (informers/reflector.py:354);"
             "WatchEvents._event (informers/rest.py:356)")
    samples = tmp_path / "raw.txt"
    transport = f"{base};Transport._attempt (informers/transport.py:300)"
    samples.write_text(f"{request} 10\n{watch} 5\n{transport} 3\n"
                       f"{base};render (reconcilers/pod.py:1) 2\n")
    summary = _profile.summarise(samples, ms_per_session=10.0)
    assert summary["samples"] == 20
    assert [(c["name"], c["percent"], c["ms_per_session"]) for c in summary["concepts"]] == [
        ("HTTP client (informers.http1, urllib3, http.client, socket): requests", 50.0, 5.0),
        ("watch stream decode (split, managedFields cut, orjson.loads)", 25.0, 2.5),
        ("REST transport (informers.rest, .transport: request, headers, JSON encode/decode)",
         15.0, 1.5),
        ("reconcile logic and rendering (reconcilers)", 10.0, 1.0)]


def test_replay_sends_the_recorded_writes_and_the_server_takes_them(tmp_path: Path) -> None:
    ours, recording = wire_floor.run_ours(SESSIONS, 2, tmp_path, quiet=0.5)
    assert recording is not None and ours["complete"]
    assert sorted(recording.uids) == wire_floor.session_names(SESSIONS)
    floor = wire_floor.run_floor(recording, 2, tmp_path, quiet=0.5)
    assert floor["rejected"] == 0, floor["statuses"]  # a repeated create's 409 is the operator's
    assert floor["statuses"].get("create networkpolicies 409", 0) == floor["repeated_creates"]
    assert floor["writes_served"] == floor["writes_recorded"] == ours["writes"]
    assert sum(ours["writes"].values()) >= 11 * SESSIONS
    assert floor["watch"]["errors"] == [] and floor["watch"]["events"] >= SESSIONS
    assert floor["cpu_ms_per_session"] > 0 and ours["cpu_ms_per_session"] > 0
    assert floor["watch"]["streams"] >= 2, "at least the sessions' and the pods' watches"
    raw = wire_floor.run_floor(recording, 2, tmp_path, quiet=0.5, http="raw")
    assert raw["rejected"] == 0, raw["statuses"]
    assert raw["writes_served"] == ours["writes"] and raw["cpu_ms_per_session"] > 0


def test_the_managed_fields_cut_counts_where_its_caller_does(tmp_path: Path) -> None:
    cut = "_cut (informers/rawjson.py:174)"
    event = ("Thread.run (threading.py:982);Reflector._read (informers/reflector.py:354);"
             f"parse_without_managed_fields (informers/rawjson.py:150);{cut}")
    answer = ("Thread.run (threading.py:982);Transport.json (informers/transport.py:390);"
              f"parse_object_without_managed_fields (informers/rawjson.py:160);{cut}")
    samples = tmp_path / "raw.txt"
    samples.write_text(f"{event} 3\n{answer} 1\n")
    summary = _profile.summarise(samples, ms_per_session=4.0)
    assert [(c["name"], c["percent"]) for c in summary["concepts"]] == [
        ("watch stream decode (split, managedFields cut, orjson.loads)", 75.0),
        ("REST transport (informers.rest, .transport: request, headers, JSON encode/decode)",
         25.0)]
