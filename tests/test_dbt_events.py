"""billing-dbt skips dbt's debug events that no logger would write (lib/dbt_events.py), and only
those: what a logger writes and what a callback sees stay as dbt makes them."""

from __future__ import annotations

import io
import json

import pytest
from dbt.adapters.events.types import SQLQuery
from dbt.tracking import track_behavior_change_warn
from dbt_common.events import event_manager as event_manager_module
from dbt_common.events.base_types import EventLevel
from dbt_common.events.event_manager import EventManager
from dbt_common.events.logger import LineFormat, LoggerConfig
from dbt_common.events.types import Note, PrintEvent

from dagster_billing.lib.dbt_events import skip_unlogged_debug_events


@pytest.fixture
def built_messages(monkeypatch) -> list[str]:
    """Install the skip; record the name of every event dbt builds a log message for."""
    skip_unlogged_debug_events()
    skip_unlogged_debug_events()  # idempotent
    built: list[str] = []
    upstream = event_manager_module.msg_from_base_event

    def recording(event, level=None):
        built.append(type(event).__name__)
        return upstream(event, level=level)

    monkeypatch.setattr(event_manager_module, "msg_from_base_event", recording)
    return built


def _manager(level: EventLevel, *callbacks) -> tuple[EventManager, io.StringIO]:
    manager = EventManager()
    stream = io.StringIO()
    manager.add_logger(
        LoggerConfig(
            name=f"billing-test-{level.value}-{id(stream)}",
            line_format=LineFormat.Json,
            level=level,
            output_stream=stream,
        )
    )
    manager.callbacks = [track_behavior_change_warn, *callbacks]
    return manager, stream


def _written(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["info"]["name"] for line in stream.getvalue().splitlines()]


def _sql_query() -> SQLQuery:
    return SQLQuery(conn_name="model.billing.m", sql="select 1", node_info={})


def test_a_debug_event_no_logger_writes_is_not_built(built_messages):
    manager, stream = _manager(EventLevel.INFO)

    manager.fire_event(_sql_query())
    manager.fire_event(Note(msg="at info"), level=EventLevel.INFO)

    assert built_messages == ["Note"]
    assert _written(stream) == ["Note"]


def test_a_logger_at_debug_writes_every_debug_event(built_messages):
    manager, stream = _manager(EventLevel.DEBUG)

    manager.fire_event(_sql_query())
    manager.fire_event(Note(msg="quiet"), level=EventLevel.DEBUG)

    assert _written(stream) == ["SQLQuery", "Note"]


def test_a_callback_sees_every_event(built_messages):
    seen = []
    manager, stream = _manager(EventLevel.INFO, lambda msg: seen.append(msg.info.name))

    manager.fire_event(_sql_query())

    assert seen == ["SQLQuery"]
    assert _written(stream) == []


def test_events_dbt_prints_whatever_the_level_are_still_written(built_messages):
    manager, stream = _manager(EventLevel.INFO)

    manager.fire_event(PrintEvent(msg="shown"), level=EventLevel.DEBUG)

    assert _written(stream) == ["PrintEvent"]
