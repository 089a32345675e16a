"""Task drafts: a half-filled form kept for the person filling it in.

A draft is deliberately *not* validated against the form's JSON Schema — it may be unfinished or
wrong, that is the point of it. What it must be: a JSON object whose keys are the form's fields
(plus `checklist`, the gate checklist confirmations submitted with a task, docs/gates.md §5), of
at most MAX_DRAFT_BYTES once encoded, so a client cannot park arbitrary data on the server.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.domain.errors import InvalidInput
from engine.domain.forms import form_schema, read_only_fields

MAX_DRAFT_BYTES = 256 * 1024
CHECKLIST = "checklist"


@dataclass(frozen=True)
class Draft:
    task_id: int
    user: str
    data: dict[str, Any]
    saved_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task_id, "user": self.user, "data": self.data, "saved_at": self.saved_at.isoformat()}


def encoded_size(data: Any) -> int:
    """Bytes of `data` as compact UTF-8 JSON (what the size limit counts)."""
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode())


def check_draft(form: dict | None, data: Any) -> dict:
    """The draft to store, or InvalidInput naming what is wrong with it.

    Read-only fields are dropped (a submission never writes them either).
    """
    if not isinstance(data, dict):
        raise InvalidInput("a draft must be a JSON object of the form's fields",
                           fields={"(form)": ["expected an object"]})
    size = encoded_size(data)
    if size > MAX_DRAFT_BYTES:
        message = (f"the draft is too large: {size / 1024:.0f} KiB, a draft may hold at most "
                   f"{MAX_DRAFT_BYTES // 1024} KiB")
        raise InvalidInput(message, fields={"(form)": [message]})
    if form is None:
        return data
    properties = form_schema(form).get("properties")
    if isinstance(properties, dict) and properties:
        unknown = [name for name in data if name not in properties and name != CHECKLIST]
        if unknown:
            raise InvalidInput("the draft names fields the form does not have: " + ", ".join(sorted(unknown)),
                               fields={name: ["not a field of the form"] for name in unknown})
    hidden = set(read_only_fields(form))
    return {name: value for name, value in data.items() if name not in hidden}
