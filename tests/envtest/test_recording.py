"""Request recording over the admin endpoint: one client's requests, in order, bodies as sent,
no Authorization; others ignored; bounded; disarmed on DELETE."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from envtest import LocalAPIServer
from tests.conftest import RawClient

CM = "/api/v1/namespaces/default/configmaps"
RECORDED = {"User-Agent": "recorded-op/1.0", "Authorization": "Bearer secret"}


@pytest.fixture()
def server() -> Iterator[LocalAPIServer]:
    with LocalAPIServer(admin_port=0) as api:
        yield api


def test_records_one_clients_requests_in_order(server: LocalAPIServer) -> None:
    with RawClient(server.url) as raw, RawClient(server.admin_url) as admin:
        assert admin.get("/record")[1] == {"agent": "", "limit": 200000, "kept": 0,
                                           "dropped": 0, "requests": []}
        raw.post(CM, {"metadata": {"name": "before"}}, headers=RECORDED)  # not armed yet
        status, armed = admin.post("/record", {"agent": "recorded-op"})
        assert status == 200 and armed["result"]["agent"] == "recorded-op"
        assert raw.post(CM, {"metadata": {"name": "a"}}, headers=RECORDED)[0] == 201
        raw.post(CM, {"metadata": {"name": "other"}}, headers={"User-Agent": "someone/2"})
        assert raw.patch(f"{CM}/a", {"data": {"k": "v"}}, headers=RECORDED)[0] == 200
        assert raw.get(f"{CM}?labelSelector=x%3Dy&limit=5", headers=RECORDED)[0] == 200

        recording = admin.get("/record")[1]
        assert (recording["kept"], recording["dropped"]) == (3, 0)
        create, patch, read = recording["requests"]
        assert (create["verb"], create["resource"], create["method"], create["target"]) == (
            "create", "configmaps", "POST", CM)
        assert orjson.loads(create["body"]) == {"metadata": {"name": "a"}}
        assert create["headers"] == {"content-type": "application/json",
                                     "user-agent": "recorded-op/1.0"}
        assert (patch["verb"], patch["target"]) == ("patch", f"{CM}/a")
        assert patch["headers"]["content-type"] == "application/merge-patch+json"
        assert (read["verb"], read["target"], read["body"]) == (
            "list", f"{CM}?labelSelector=x%3Dy&limit=5", "")
        assert all("authorization" not in r["headers"] for r in recording["requests"])

        assert admin.request("DELETE", "/record")[1]["agent"] == ""
        raw.post(CM, {"metadata": {"name": "after"}}, headers=RECORDED)
        assert admin.get("/record")[1]["kept"] == 0


def test_recording_is_bounded_and_arming_needs_a_client(server: LocalAPIServer) -> None:
    with RawClient(server.url) as raw, RawClient(server.admin_url) as admin:
        assert admin.post("/record", {})[0] == 400
        assert admin.post("/record", {"agent": "recorded-op", "limit": 0})[0] == 400
        admin.post("/record", {"agent": "recorded-op", "limit": 2})
        for name in "abc":
            raw.post(CM, {"metadata": {"name": name}}, headers=RECORDED)
        recording = admin.get("/record")[1]
        assert (recording["kept"], recording["dropped"]) == (2, 1)
        assert [orjson.loads(r["body"])["metadata"]["name"]
                for r in recording["requests"]] == ["a", "b"]
