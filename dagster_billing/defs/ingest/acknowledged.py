"""Every event the API acknowledged (202) is landed: the API's id ledger against raw.*.

The API writes each accepted event to exactly one landing file and records the file with its
event count (`files.events`, the ids it claimed for it). An event is landed when its file's rows
are in raw.usage_events: raw.landed_files has the file under the same name with as many rows,
none of them quarantined. Files the API confirmed after landing last looked
(`ledger.api_seq_scanned`) are not due yet; every file up to it must be landed, or be reported
here with its ids. Comparing per file keeps the check proportional to the number of files, not
of events; ids are looked up only for a file that fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_billing.api.settings import API_LANDING_SUBDIR, api_state_path
from dagster_billing.api.state import read_confirmed_files, read_file_ids, read_max_seq
from dagster_billing.defs.ingest.ledger import api_seq_scanned

SAMPLE_IDS = 20
LISTED_FILES = 50


@dataclass
class AcknowledgementReport:
    files_checked: int = 0
    events_acknowledged: int = 0
    not_landed: list[dict] = field(default_factory=list)
    files_awaiting_landing: int = 0  # confirmed after landing last looked: not due yet

    @property
    def passed(self) -> bool:
        return not self.not_landed

    @property
    def events_not_landed(self) -> int:
        return sum(item["events_not_landed"] for item in self.not_landed)

    def metadata(self) -> dict:
        return {
            "files_checked": self.files_checked,
            "events_acknowledged": self.events_acknowledged,
            "events_not_landed": self.events_not_landed,
            "files_not_landed": len(self.not_landed),
            "files_awaiting_landing": self.files_awaiting_landing,
            "not_landed": self.not_landed[:LISTED_FILES],
        }


def acknowledged_not_landed(
    connection: duckdb.DuckDBPyConnection, root: Path
) -> AcknowledgementReport:
    """Files (and ids) the API acknowledged that are not landed in the raw layer (`connection`:
    RawStore.connect(), the committed raw tables)."""
    state = api_state_path(root)
    through = api_seq_scanned(root)
    report = AcknowledgementReport(files_awaiting_landing=read_max_seq(state) - through)
    files = read_confirmed_files(state, through)
    if not files:
        return report
    prefix = f"{API_LANDING_SUBDIR}/%"
    landed_rows = dict(
        connection.execute(
            "select file_name, row_count from raw.landed_files where file_name like ?", [prefix]
        ).fetchall()
    )
    quarantined_rows = dict(
        connection.execute(
            "select source_file, count(*) from raw.usage_quarantine where source_file like ? "
            "group by source_file",
            [prefix],
        ).fetchall()
    )
    landing_dir = Path(root) / "landing"
    for item in files:
        report.files_checked += 1
        report.events_acknowledged += item.events
        rows = landed_rows.get(item.path)
        accepted = 0 if rows is None else rows - quarantined_rows.get(item.path, 0)
        if accepted >= item.events:
            continue
        if rows is None:
            why = "not landed" if (landing_dir / item.path).exists() else "deleted before landing"
        else:
            why = f"{quarantined_rows.get(item.path, 0)} of its rows quarantined"
        report.not_landed.append(
            {
                "file": item.path,
                "why": why,
                "events_acknowledged": item.events,
                "events_not_landed": item.events - accepted,
                "ids": _missing_ids(connection, state, item.file_id, item.path),
            }
        )
    return report


def _missing_ids(
    connection: duckdb.DuckDBPyConnection, state: Path, file_id: int, path: str
) -> list[str]:
    ids = read_file_ids(state, file_id, limit=10_000)
    found = {
        unique_id
        for (unique_id,) in connection.execute(
            "select unique_id from raw.usage_events where source_file = ? "
            "and unique_id in (select unnest(?))",
            [path, ids],
        ).fetchall()
    }
    return [unique_id for unique_id in ids if unique_id not in found][:SAMPLE_IDS]
