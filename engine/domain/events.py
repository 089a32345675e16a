"""The instance history: an append-only, hash-chained list of events.

Each event's hash covers the previous event's hash and the event's own canonical JSON, so
changing, removing or reordering any stored event breaks every hash after it.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

GENESIS = "0" * 64


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, *, instance_id: int, seq: int, at: datetime, actor: str, type: str,
               task_id: int | None, element_id: str | None, payload: dict) -> str:
    body = canonical_json({
        "instance": instance_id,
        "seq": seq,
        "at": at.isoformat(),
        "actor": actor,
        "type": type,
        "task": task_id,
        "element": element_id,
        "payload": payload,
    })
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()
