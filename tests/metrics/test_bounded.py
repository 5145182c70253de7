"""Bounded-cardinality families: label values outside the allowed sets become "other"."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics import OTHER, Recorder, new_registry
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
