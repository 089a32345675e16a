"""HTML forms from a task's JSON Schema, and posted form fields back to JSON data.

Each input is named by its field path (`quality/pass_rate`), the same path the engine's
validation errors name (engine.domain.forms), so an error is shown next to its input.

Rendered: string (text; `format: date` a date input; a `ui:widget: textarea` in the uiSchema,
`format: textarea` or maxLength > 200 a textarea), number, integer, boolean (checkbox), enum
(a select; `ui:widget: radio` radio buttons), nested objects (a fieldset). Arrays (and anything
else) are a JSON textarea for now. `readOnly` fields are shown, not submitted.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field as dc_field
from typing import Any

from engine.domain.forms import form_schema

_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass
class Field:
    path: str  # "quality/pass_rate"
    label: str
    widget: str  # text, textarea, date, number, integer, checkbox, select, radio, json, object, readonly
    required: bool = False
    description: str | None = None
    options: list = dc_field(default_factory=list)
    children: list["Field"] = dc_field(default_factory=list)
    schema: dict = dc_field(default_factory=dict)

    @property
    def dom_id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.path)


def _label(name: str, spec: dict) -> str:
    return spec.get("title") or name.replace("_", " ").capitalize()


def _widget(spec: dict, ui: dict) -> str:
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if spec.get("readOnly") is True:
        return "readonly"
    if "enum" in spec:
        return "radio" if ui.get("ui:widget") == "radio" else "select"
    if kind == "object" and isinstance(spec.get("properties"), dict):
        return "object"
    if kind == "boolean":
        return "checkbox"
    if kind in ("number", "integer"):
        return kind
    if kind == "string":
        if spec.get("format") == "date":
            return "date"
        if ui.get("ui:widget") == "textarea" or spec.get("format") == "textarea" or (spec.get("maxLength") or 0) > 200:
            return "textarea"
        return "text"
    return "json"


def fields_of(form: dict | None) -> list[Field]:
    if not form:
        return []
    schema = form_schema(form)
    return _fields(schema, form.get("uiSchema") or {}, "")


def _fields(schema: dict, ui: dict, prefix: str) -> list[Field]:
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    order = ui.get("ui:order") or []
    names = [n for n in order if n in properties] + [n for n in properties if n not in order]
    result = []
    for name in names:
        spec = properties[name] if isinstance(properties[name], dict) else {}
        sub_ui = ui.get(name) or {}
        path = f"{prefix}/{name}" if prefix else name
        widget = _widget(spec, sub_ui)
        item = Field(path, _label(name, spec), widget, name in required, spec.get("description"),
                     list(spec.get("enum") or []), schema=spec)
        if widget == "object":
            item.children = _fields(spec, sub_ui, path)
        result.append(item)
    return result


def value_at(data: Any, path: str) -> Any:
    for part in path.split("/"):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def display_value(field: Field, data: dict) -> str:
    """The text an input shows for `field` given the (submitted or stored) data."""
    value = value_at(data, field.path)
    if value is None:
        return ""
    if field.widget == "json":
        return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_submission(fields: list[Field], posted) -> tuple[dict, dict[str, list[str]]]:
    """(the data to submit, errors of values that could not even be read — bad JSON).

    Empty inputs are left out (so a required field is reported missing); a number that does not
    parse is passed on as text, and the schema names the field ("... is not of type 'number'").
    """
    data: dict = {}
    errors: dict[str, list[str]] = {}
    _parse(fields, posted, data, errors)
    return data, errors


def _parse(fields: list[Field], posted, data: dict, errors: dict) -> None:
    for item in fields:
        name = item.path.rsplit("/", 1)[-1]
        if item.widget == "readonly":
            continue
        if item.widget == "object":
            child: dict = {}
            _parse(item.children, posted, child, errors)
            if child or item.required:
                data[name] = child
            continue
        if item.widget == "checkbox":
            data[name] = posted.get(item.path) in ("on", "true", "1", "yes")
            continue
        raw = posted.get(item.path)
        if raw is None or raw.strip() == "":
            continue
        raw = raw.strip() if item.widget not in ("textarea", "json") else raw
        if item.widget == "integer" and _INTEGER.match(raw):
            data[name] = int(raw)
        elif item.widget == "number":
            try:
                number = float(raw)
                data[name] = int(number) if _INTEGER.match(raw) else number
            except ValueError:
                data[name] = raw
        elif item.widget in ("select", "radio"):
            data[name] = next((o for o in item.options if str(o) == raw), raw)
        elif item.widget == "json":
            try:
                data[name] = json.loads(raw)
            except ValueError as exc:
                errors[item.path] = [f"not valid JSON: {exc}"]
        else:
            data[name] = raw


def parse_conditions(text: str) -> tuple[list[dict], dict[str, list[str]]]:
    """Conditions of a Conditional Go, one per line: `text | owner | due` (due optional, YYYY-MM-DD)."""
    conditions, errors = [], {}
    lines = [line for line in (text or "").splitlines() if line.strip()]
    for index, line in enumerate(lines):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 2 or not parts[0] or not parts[1] or len(parts) > 3:
            errors.setdefault("conditions", []).append(
                f"line {index + 1}: write 'text | owner | due' (due optional)")
            continue
        conditions.append({"text": parts[0], "owner": parts[1], "due": parts[2] if len(parts) == 3 and parts[2] else None})
    return conditions, errors
