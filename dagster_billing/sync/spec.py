"""Sync objects, declared by the dbt models in models/marts/sync through `meta.sync`.

A new payload model with `meta.sync` (see models/marts/sync/_sync__models.yml) is all it takes to
get a push asset: the Dagster definitions are generated from this list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DESTINATIONS = ("netsuite", "salesforce", "stripe")
RECONCILE_KINDS = ("invoices", "credit_notes", "payments", "fields")
_COMMON_KEYS = {"destination", "object", "after", "references", "reconcile"}


class SyncSpecError(ValueError):
    """A sync model's meta is incomplete or inconsistent."""


@dataclass(frozen=True)
class SyncObject:
    """One kind of record pushed to one destination, from one dbt model."""

    destination: str
    object: str
    model: str
    schema: str = "sync"
    after: tuple[str, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict)
    reconcile: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.model}"

    @property
    def name(self) -> str:
        return f"{self.destination}/{self.object}"

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


def sync_objects_from_manifest(manifest: Mapping[str, Any]) -> list[SyncObject]:
    """Every model with `meta.sync`, ordered so that an object comes after those it names in
    `after` (customers before invoices)."""
    objects = []
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        meta = (node.get("config", {}).get("meta") or node.get("meta") or {}).get("sync")
        if not meta:
            continue
        objects.append(_sync_object(node, meta))
    return _ordered(objects)


def load_sync_objects(manifest_path: Path) -> list[SyncObject]:
    return sync_objects_from_manifest(json.loads(Path(manifest_path).read_text()))


def _sync_object(node: Mapping[str, Any], meta: Mapping[str, Any]) -> SyncObject:
    name = node["name"]
    destination = meta.get("destination")
    if destination not in DESTINATIONS:
        raise SyncSpecError(f"{name}: meta.sync.destination must be one of {DESTINATIONS}")
    if not meta.get("object"):
        raise SyncSpecError(f"{name}: meta.sync.object is required")
    required = {
        "netsuite": ("record_type",),
        "salesforce": ("sobject", "external_id_field"),
        "stripe": ("resource",),
    }[destination]
    missing = [key for key in required if not meta.get(key)]
    if missing:
        raise SyncSpecError(f"{name}: meta.sync needs {', '.join(missing)} for {destination}")
    if meta.get("reconcile") not in (None, *RECONCILE_KINDS):
        raise SyncSpecError(f"{name}: meta.sync.reconcile must be one of {RECONCILE_KINDS}")
    if meta.get("reconcile") == "payments" and destination != "netsuite":
        raise SyncSpecError(
            f"{name}: meta.sync.reconcile payments reads NetSuite customer payments only"
        )
    if (
        meta.get("reconcile") == "fields"
        and destination == "stripe"
        and not meta.get("metadata_id")
    ):
        raise SyncSpecError(
            f"{name}: meta.sync.reconcile fields on Stripe needs metadata_id, the metadata key "
            "that holds our id (Stripe has no external ids)"
        )
    if destination == "salesforce" and meta.get("references"):
        raise SyncSpecError(
            f"{name}: Salesforce payloads reference parents through relationship fields "
            "(Account__r: {External_Id__c: ...}), not meta.sync.references"
        )
    return SyncObject(
        destination=destination,
        object=meta["object"],
        model=name,
        schema=node.get("config", {}).get("schema") or node.get("schema") or "sync",
        after=tuple(meta.get("after") or ()),
        references=dict(meta.get("references") or {}),
        reconcile=meta.get("reconcile"),
        options={key: value for key, value in meta.items() if key not in _COMMON_KEYS},
    )


def _ordered(objects: list[SyncObject]) -> list[SyncObject]:
    by_name = {obj.name: obj for obj in objects}
    if len(by_name) != len(objects):
        raise SyncSpecError("two sync models declare the same destination/object")
    ordered: list[SyncObject] = []
    visiting: set[str] = set()

    def visit(obj: SyncObject) -> None:
        if obj in ordered:
            return
        if obj.name in visiting:
            raise SyncSpecError(f"{obj.name}: meta.sync.after forms a cycle")
        visiting.add(obj.name)
        for upstream in (*obj.after, *obj.references.values()):
            upstream_name = f"{obj.destination}/{upstream}"
            if upstream_name not in by_name:
                raise SyncSpecError(f"{obj.name}: depends on unknown sync object {upstream_name}")
            visit(by_name[upstream_name])
        ordered.append(obj)

    for obj in sorted(objects, key=lambda o: o.name):
        visit(obj)
    return ordered
