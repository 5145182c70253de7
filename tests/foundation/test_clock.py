"""Kubernetes' timestamp formats (``foundation.clock``): the remembered last second is only
ever the text a fresh format gives."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from foundation.clock import rfc3339, rfc3339_micro

_ZONES = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=2)),
                          dt.timezone(dt.timedelta(hours=-9, minutes=-30))])
_MOMENTS = st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(9999, 12, 30),
                        timezones=_ZONES)


@given(st.lists(_MOMENTS, min_size=1, max_size=6))
def test_rfc3339_is_the_second_in_utc_whatever_came_before(moments: list[dt.datetime]) -> None:
    for moment in moments:  # in any order, with repeats: the memo never answers for another
        for same in (moment, moment.replace(microsecond=0), moment.astimezone(dt.UTC)):
            assert rfc3339(same) == moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_formats() -> None:
    moment = dt.datetime(2026, 3, 1, 12, 0, 0, 999999, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert rfc3339(moment) == "2026-03-01T11:00:00Z"
    assert rfc3339(moment + dt.timedelta(microseconds=1)) == "2026-03-01T11:00:01Z"
    assert rfc3339_micro(moment) == "2026-03-01T11:00:00.999999Z"
