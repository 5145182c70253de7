"""Health check aggregation and its text format (controller-runtime's pkg/healthz)."""

from __future__ import annotations

import pytest

from metrics.health import Answer, HealthChecks


def failing() -> None:
    raise RuntimeError("caches not synced")


def passing() -> None:
    pass


def test_no_checks_is_a_passing_ping() -> None:
    checks = HealthChecks("healthz")
    assert checks.aggregate() == Answer(200, "ok")
    assert checks.aggregate(verbose=True) == Answer(200, "[+]ping ok\nhealthz check passed\n")
    assert checks.single("ping") == Answer(200, "ok")


def test_failure_lists_every_check_sorted_without_reasons() -> None:
    checks = HealthChecks("readyz")
    checks.add("informers", failing)
    checks.add("ping", passing)
    assert checks.aggregate() == Answer(
        500, "[-]informers failed: reason withheld\n[+]ping ok\nreadyz check failed\n")
    assert checks.single("informers") == Answer(500,
                                                "internal server error: caches not synced\n")
    assert checks.single("ping") == Answer(200, "ok")
    assert checks.single("nope") is None


def test_exclude() -> None:
    checks = HealthChecks("readyz")
    checks.add("informers", failing)
    assert checks.aggregate(exclude=["informers", "ghost"], verbose=True) == Answer(
        200, '[+]informers excluded: ok\nwarn: some health checks cannot be excluded: '
             'no matches for "ghost"\nreadyz check passed\n')


@pytest.mark.parametrize("name", ["", "a/b", ".", ".."], ids=["empty", "slash", "dot", "dotdot"])
def test_names_are_path_segments(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid"):
        HealthChecks("readyz").add(name, passing)


def test_names_are_unique() -> None:
    checks = HealthChecks("readyz")
    checks.add("informers", passing)
    with pytest.raises(ValueError, match="already"):
        checks.add("informers", passing)
    assert checks.names() == ["informers"]
