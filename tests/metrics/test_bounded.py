"""Bounded-cardinality families: label values outside the allowed sets become "other"."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from metrics import OTHER, FirstSeen, Recorder, new_registry
from metrics.bounded import BoundedHistogram

BACKENDS = ("pod", "kubevirt-vm")


def samples(recorder: Recorder, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client import generate_latest

    out = {}
    for family in text_string_to_metric_families(generate_latest(recorder.registry).decode()):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder(new_registry(runtime_collectors=False), monotonic=time.monotonic)


@pytest.mark.parametrize(("given", "recorded"), [
    ("pod", "pod"), ("kubevirt-vm", "kubevirt-vm"), ("firecracker", OTHER), ("", OTHER),
    ("Pod", OTHER),
], ids=["pod", "vm", "unknown", "empty", "case-sensitive"])
def test_histogram_maps_unknown_values_to_other(recorder: Recorder, given: str,
                                                recorded: str) -> None:
    latency = recorder.bounded_histogram(
        "session_time_to_running_seconds", "Session creation to Running, by backend",
        labels={"backend": BACKENDS}, buckets=(1, 10, 60))
    latency.observe(4.0, backend=given)
    assert samples(recorder, "session_time_to_running_seconds_count") == {
        (("backend", recorded),): 1.0}


def test_several_bounded_labels(recorder: Recorder) -> None:
    requests = recorder.bounded_histogram(
        "backend_api_request_duration_seconds", "API latency by backend, verb and resource",
        labels={"backend": BACKENDS, "verb": ("create", "patch"), "resource": ("pods",)},
        buckets=(0.1, 1))
    requests.observe(0.05, backend="pod", verb="create", resource="pods")
    requests.observe(0.05, backend="pod", verb="watch", resource="secrets")
    assert samples(recorder, "backend_api_request_duration_seconds_count") == {
        (("backend", "pod"), ("resource", "pods"), ("verb", "create")): 1.0,
        (("backend", "pod"), ("resource", OTHER), ("verb", OTHER)): 1.0,
    }


def test_counter(recorder: Recorder) -> None:
    errors = recorder.bounded_counter("backend_errors_total", "Backend errors",
                                      labels={"backend": BACKENDS})
    errors.inc(backend="kubevirt-vm")
    errors.inc(2, backend="lxc")
    assert samples(recorder, "backend_errors_total") == {
        (("backend", "kubevirt-vm"),): 1.0, (("backend", OTHER),): 2.0}


def test_labels_must_match_the_declaration(recorder: Recorder) -> None:
    latency = recorder.bounded_histogram("x_seconds", "x", labels={"backend": BACKENDS},
                                         buckets=(1,))
    with pytest.raises(ValueError, match="expected the labels"):
        latency.observe(1.0)
    with pytest.raises(ValueError, match="expected the labels"):
        latency.observe(1.0, backend="pod", phase="Running")


def test_every_label_needs_allowed_values(recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="at least one"):
        BoundedHistogram(recorder.registry, name="y_seconds", documentation="y",
                         labels={"backend": ()}, buckets=(1,))


def test_a_name_registers_once_per_registry(recorder: Recorder) -> None:
    recorder.bounded_counter("z_total", "z", labels={"backend": BACKENDS})
    with pytest.raises(ValueError, match="Duplicated"):
        recorder.bounded_counter("z_total", "z", labels={"backend": BACKENDS})


def test_first_seen_keeps_the_first_values(recorder: Recorder) -> None:
    namespaces = FirstSeen(2)
    runs = recorder.bounded_counter("runs_total", "Runs", labels={"namespace": namespaces,
                                                                  "backend": BACKENDS})
    for namespace in ("a", "b", "c", "a", "d", "b"):
        runs.inc(namespace=namespace, backend="pod")
    assert samples(recorder, "runs_total") == {
        (("backend", "pod"), ("namespace", "a")): 2.0,
        (("backend", "pod"), ("namespace", "b")): 2.0,
        (("backend", "pod"), ("namespace", OTHER)): 2.0}
    with pytest.raises(ValueError, match="at least 1"):
        FirstSeen(0)


def test_first_seen_is_shared_and_thread_safe() -> None:
    seen = FirstSeen(50)
    values = [f"ns-{i}" for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        kept = set(pool.map(seen, values * 4))
    assert len(kept - {OTHER}) == 50 and OTHER in kept
    assert {seen(v) for v in values} == kept  # the same 50, whatever the caller


def test_unsuffixed_counter_keeps_its_name(recorder: Recorder) -> None:
    transitions = recorder.unsuffixed_counter(
        "ambient_session_phase_transitions", "Transitions",
        labels={"namespace": FirstSeen(1), "to_phase": ("Running",)})
    transitions.inc(namespace="p", to_phase="Running")
    transitions.inc(2, namespace="q", to_phase="Exploded")
    text = generate_latest(recorder.registry).decode()
    assert "# TYPE ambient_session_phase_transitions untyped" in text
    assert 'ambient_session_phase_transitions{namespace="p",to_phase="Running"} 1.0' in text
    assert 'ambient_session_phase_transitions{namespace="other",to_phase="other"} 2.0' in text
    assert "ambient_session_phase_transitions_total" not in text
    assert "ambient_session_phase_transitions_created" not in text
    # OpenMetrics, as Prometheus asks for it: an unknown-typed family, parsed strictly.
    open_text = openmetrics.generate_latest(recorder.registry).decode()
    family, = [f for f in openmetrics_parser.text_string_to_metric_families(open_text)
               if f.name == "ambient_session_phase_transitions"]
    assert family.type == "unknown"
    assert {s.name for s in family.samples} == {"ambient_session_phase_transitions"}
    with pytest.raises(ValueError, match="only goes up"):
        transitions.inc(-1, namespace="p", to_phase="Running")
