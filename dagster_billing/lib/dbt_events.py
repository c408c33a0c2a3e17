"""dbt's debug events, not formatted when no logger would write them (decision 112).

dbt fires an event for every step of every node (the SQL it sends, each statement's status,
connection hand-offs, timing): about twenty per node, most at debug level. Firing one builds its
log message (a protobuf `ParseDict` of the event's metadata, the event copied into it: about
150 µs) and then, for each logger, the whole line (`_JsonLogger.create_line`: the message as a
dict, then JSON, about 80 µs), which the logger's Python logger then drops when its level is
above debug. The pipeline's loggers are at info (decision 90; the tests write no log file), so
that work was done for nothing, some 4,000 times per build.

`skip_unlogged_debug_events()` (installed in every dbt process by `billing-dbt`,
lib/dbt_cli.py) returns from `EventManager.fire_event` before any of it when nothing would
use the message:
- the event is at debug or test level and is not one of the events dbt prints whatever the
  level (`PrintEvent`, `ShowNode`, `CompiledNode`: sent to the logger as errors);
- no logger would write it: each one's Python logger is missing (it writes nowhere) or not
  enabled for debug, which is exactly what `send_to_logger` asks of it;
- no callback would see it: the only callback is dbt's `track_behavior_change_warn`, which reads
  `BehaviorChangeEvent` alone (a warning); any other callback (dbtRunner's) gets every event;
- the event is not forced through warn-or-error handling, and dbt's serialization self-test
  (DBT_TEST_BINARY_SERIALIZATION) is off.
`--log-level debug` or `--debug` makes the loggers show debug, and then every event is built and
written as before.
"""

from __future__ import annotations

import logging
import os

_INSTALLED = "_billing_skips_unlogged_debug_events"


def skip_unlogged_debug_events() -> None:
    """Make dbt's EventManager skip debug events that nothing would log or see (idempotent)."""
    from dbt.tracking import track_behavior_change_warn
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager import EventManager
    from dbt_common.events.logger import PRINT_EVENT_NAMES

    if getattr(EventManager.fire_event, _INSTALLED, False):
        return
    fire_event = EventManager.fire_event
    quiet_levels = (EventLevel.DEBUG, EventLevel.TEST)

    def unused(manager: EventManager, event, level) -> bool:
        return (
            (level or event.level_tag()) in quiet_levels
            and type(event).__name__ not in PRINT_EVENT_NAMES
            and all(callback is track_behavior_change_warn for callback in manager.callbacks)
            and not any(
                logger._python_logger is not None
                and logger._python_logger.isEnabledFor(logging.DEBUG)
                for logger in manager.loggers
            )
            and not os.environ.get("DBT_TEST_BINARY_SERIALIZATION")
        )

    def fire_event_if_used(
        self, e, level=None, node=None, force_warn_or_error_handling: bool = False
    ) -> None:
        if not force_warn_or_error_handling and unused(self, e, level):
            return
        fire_event(
            self,
            e,
            level=level,
            node=node,
            force_warn_or_error_handling=force_warn_or_error_handling,
        )

    setattr(fire_event_if_used, _INSTALLED, True)
    EventManager.fire_event = fire_event_if_used
