"""bench/apiserver_profile.py: the server's samples by concept and origin (unit), and one small
profiled burst against the real server and our operator."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # the benchmark's modules import each other as scripts do

import _server_profile  # noqa: E402
import apiserver_profile  # noqa: E402

LOOP = "serve (envtest/server.py:346);Runner.run (asyncio/runners.py:118)"
REQUEST = (f"{LOOP};HTTPProtocol.data_received (envtest/http/protocol.py:328);"
           "HTTPProtocol._dispatch (envtest/http/protocol.py:383);"
           "patch (envtest/verbs/writes.py:128);admit (envtest/schema/structural.py:83);"
           "validate_value (envtest/schema/keywords.py:40)")
ANSWER = (f"{LOOP};HTTPProtocol.data_received (envtest/http/protocol.py:328);"
          "HTTPProtocol._respond (envtest/http/protocol.py:422)")
KUBELET = (f"{LOOP};Timers.later.<locals>.fire (envtest/simulators/loop.py:43);"
           "KubeletSimulator._publish (envtest/simulators/kubelet.py:399);"
           "get (envtest/simulators/client.py:36);Stored.load (envtest/storage/store.py:60)")
WATCH = f"{LOOP};ChunkedStream._flush (envtest/http/protocol.py:181)"


def test_samples_group_by_innermost_concept_and_by_who_asked(tmp_path: Path) -> None:
    samples = tmp_path / "raw.txt"
    samples.write_text(f"{REQUEST} 4\n{ANSWER} 3\n{KUBELET} 2\n{WATCH} 1\n")
    profile = _server_profile.summarise(samples, ms_per_session=10.0)
    assert profile["samples"] == 10
    assert [(c["name"].split(" (")[0], c["ms_per_session"]) for c in profile["concepts"]] == [
        ("CRD schema: defaulting, pruning, validation", 4.0),
        ("socket writes", 4.0),
        ("JSON decode of stored objects", 2.0)]
    assert [(o["name"].split(" (")[0], o["percent"]) for o in profile["origins"]] == [
        ("HTTP requests", 70.0), ("simulators", 20.0), ("watch streams", 10.0)]
    table = _server_profile.table(profile, "origins")
    assert table[0] == "| origin | % of samples | ms/session |"
    assert table[2].startswith("| HTTP requests (parse, handle, answer) | 70.0 | 7.00 |")


@pytest.mark.skipif(shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None,
                    reason="py-spy is not installed in the venv")
def test_a_small_profiled_burst_reports_cpu_and_samples(tmp_path: Path) -> None:
    result = apiserver_profile.run(20, 2, tmp_path, keep=tmp_path / "kept.txt")
    assert result["running"] == result["sessions"] == 20
    assert 0 < result["server_system_seconds"] <= result["server_cpu_seconds"]
    assert result["writes_per_session"] >= 11
    assert result["profile"]["samples"] > 0 and (tmp_path / "kept.txt").stat().st_size > 0
    text = apiserver_profile.markdown(result, ["bench/apiserver_profile.py"])
    assert "API server CPU: **" in text and "| create pods | 20 |" in text
