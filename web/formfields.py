"""HTML forms from a task's JSON Schema, and posted form fields back to JSON data.

Each input is named by its field path (`quality/pass_rate`, `goals/2/target`), the same path the
engine's validation errors name (engine.domain.forms), so an error is shown next to its input.

Rendered: string (text; `format: date` a date input; a `ui:widget: textarea` in the uiSchema,
`format: textarea` or maxLength > 200 a textarea), number, integer, boolean (checkbox), enum
(a select; `ui:widget: radio` radio buttons), nested objects (a fieldset), and arrays:

- of objects or of single values: a table with a row per item (`goals/0/goal`, or `tags/0`).
  "Add row" and "Remove" are submit buttons (`_array_action` = `add:goals`, `remove:goals:0`), so
  they work without JavaScript: the page comes back with one row more or fewer and everything
  entered kept (`apply_array_action`); web/static/forms.js does the same in the page. Each row
  posts a marker (`_row` = `goals/0`) so that a row of empty inputs or unticked boxes still
  counts as a row. minItems rows are shown from the start; maxItems limits "Add row".
- of enum values: a checkbox per value.
- anything else (tuples, arrays of arrays, objects without properties): a JSON textarea.

A top-level `checklist` object of booleans, and the checklist of the gates a task leads to
(`with_checklist`, docs/gates.md §5), are a "Checklist" fieldset of checkboxes named
`checklist/<item id>`. `readOnly` fields are shown, not submitted.

A post is read two ways: `parse_submission` to complete the task (empty inputs and empty rows
are left out, so the schema reports what is missing) and `parse_draft` to keep it as a draft or
to show it again after an array button (everything as entered: empty inputs as null, empty rows
kept, text that is not a number or not JSON kept as text).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field as dc_field, replace
from typing import Any

from engine.domain.forms import form_schema

_INTEGER = re.compile(r"^[+-]?\d+$")
_TRUE = ("on", "true", "1", "yes")
# In an array's item template, stands for the row number (`goals/*/goal`).
ITEM = "*"
# The row number of the row template forms.js copies (`goals/__row__/goal`).
ROW_TOKEN = "__row__"
ROW_MARKER = "_row"
ARRAY_ACTION = "_array_action"
CHECKLIST = "checklist"
_SCALARS = ("text", "textarea", "date", "number", "integer", "checkbox", "select", "radio")
_GROUPS = ("object", "checklist")


@dataclass
class Field:
    path: str  # "quality/pass_rate"; in an array's item template "goals/*/goal"
    label: str
    widget: str  # text, textarea, date, number, integer, checkbox, select, radio, json, object, readonly,
    #              array, multiselect, checklist
    required: bool = False
    description: str | None = None
    options: list = dc_field(default_factory=list)
    children: list["Field"] = dc_field(default_factory=list)
    schema: dict = dc_field(default_factory=dict)
    item: "Field | None" = None  # arrays: one row (children: its columns)
    min_items: int = 0
    max_items: int | None = None

    @property
    def dom_id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.path)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def in_row(self) -> bool:
        """A field of an array row (its path has a row number)."""
        return any(part.isdigit() or part == ROW_TOKEN for part in self.path.split("/"))

    @property
    def columns(self) -> list["Field"]:
        """An array's columns: the item's fields, or the item itself for an array of single values."""
        if self.item is None:
            return []
        return self.item.children if self.item.widget == "object" else [self.item]


def _label(name: str, spec: dict) -> str:
    return spec.get("title") or name.replace("_", " ").capitalize()


def _kind(spec: dict):
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind


def _widget(spec: dict, ui: dict) -> str:
    kind = _kind(spec)
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
        if spec.get("format") == "date" or ui.get("ui:widget") == "date":
            return "date"
        if ui.get("ui:widget") == "textarea" or spec.get("format") == "textarea" or (spec.get("maxLength") or 0) > 200:
            return "textarea"
        return "text"
    if kind == "array":
        items = spec.get("items")
        if isinstance(items, dict) and "prefixItems" not in spec:
            if isinstance(items.get("enum"), list) and items["enum"]:
                return "multiselect"
            if _widget(items, ui.get("items") or {}) in (*_SCALARS, "object"):
                return "array"
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
        path = f"{prefix}/{name}" if prefix else name
        result.append(_field(path, _label(name, spec), spec, ui.get(name) or {}, name in required))
    return result


def _field(path: str, label: str, spec: dict, ui: dict, required: bool) -> Field:
    widget = _widget(spec, ui)
    item = Field(path, label, widget, required, spec.get("description"), list(spec.get("enum") or []), schema=spec)
    if widget == "object":
        item.children = _fields(spec, ui, path)
        if path == CHECKLIST and item.children and all(c.widget == "checkbox" for c in item.children):
            item.widget = "checklist"
    elif widget == "multiselect":
        item.options = list(spec["items"]["enum"])
    elif widget == "array":
        items = spec["items"]
        row = _field(f"{path}/{ITEM}", items.get("title") or label, items, ui.get("items") or {}, True)
        if row.widget == "radio":
            row.widget = "select"  # radio buttons in a table cell would be a fieldset per cell
        item.item = row
        item.min_items = int(spec.get("minItems") or 0)
        item.max_items = spec.get("maxItems")
    return item


def with_checklist(fields: list[Field], items: list[dict]) -> list[Field]:
    """The fields plus the checklist of the gates ahead (`items`: [{id, text, gate}]) as checkboxes
    `checklist/<id>`, each to be ticked. A form with its own `checklist` of booleans gets the missing
    items added; a form that defines `checklist` some other way is left alone."""
    if not items:
        return fields
    group = next((f for f in fields if f.path == CHECKLIST), None)
    if group is None:
        gates = list(dict.fromkeys(item["gate"] for item in items if item.get("gate")))
        names = " and ".join(f"“{g}”" for g in gates) or "the next gate"
        group = Field(CHECKLIST, "Checklist", "checklist", True,
                      f"Confirm each statement: {names} does not open until every item is ticked.")
        fields = [*fields, group]
    elif group.widget != "checklist":
        return fields
    known = {child.name: child for child in group.children}
    for item in items:
        if item["id"] in known:
            known[item["id"]].required = True
        else:
            group.children.append(Field(f"{CHECKLIST}/{item['id']}", item["text"], "checkbox", True))
    return fields


# -- arrays -----------------------------------------------------------------------------------

def _moved(item: Field, old: str, new: str) -> Field:
    path = new + item.path[len(old):] if item.path == old or item.path.startswith(old + "/") else item.path
    return replace(item, path=path, children=[_moved(c, old, new) for c in item.children],
                   item=_moved(item.item, old, new) if item.item else None)


def row_field(array: Field, index) -> Field:
    """Row `index` of an array field (an int, or ROW_TOKEN for the row template), paths made concrete."""
    return _moved(array.item, f"{array.path}/{ITEM}", f"{array.path}/{index}")


def row_count(array: Field, data: Any) -> int:
    """Rows shown: one per item; a required array shows at least minItems rows (at least one)."""
    value = value_at(data, array.path)
    count = len(value) if isinstance(value, list) else 0
    if array.required:
        count = max(count, array.min_items, 0 if isinstance(value, list) else 1)
    return count


def array_rows(array: Field, data: Any) -> list[tuple[int, Field]]:
    return [(index, row_field(array, index)) for index in range(row_count(array, data))]


def min_rows(array: Field) -> int:
    """Rows that may not be removed (forms.js reads it from data-min)."""
    return array.min_items if array.required else 0


def find_field(fields: list[Field], path: str) -> Field | None:
    """The field at a concrete path (`goals/1/target`), rows resolved."""
    for item in fields:
        if item.path == path:
            return item
        if not path.startswith(item.path + "/"):
            continue
        if item.widget in _GROUPS:
            return find_field(item.children, path)
        if item.widget == "array":
            index = path[len(item.path) + 1:].split("/", 1)[0]
            if index.isdigit():
                row = row_field(item, int(index))
                return row if row.path == path else find_field(row.children, path)
    return None


def _first_input(item: Field) -> str:
    if item.widget in _GROUPS and item.children:
        return _first_input(next((c for c in item.children if c.widget != "readonly"), item.children[0]))
    return item.path


def apply_array_action(fields: list[Field], data: dict, action: str) -> tuple[dict, str | None]:
    """Apply an array button to data read with `parse_draft`: `add:PATH` appends an empty row (up
    to maxItems), `remove:PATH:INDEX` removes one (down to minItems). Returns the data and what
    to focus when the page is shown again: the new row's first input, or the array's Add button
    (`add:PATH`)."""
    kind, _, rest = (action or "").partition(":")
    if kind == "remove":
        path, _, index_text = rest.rpartition(":")
        index = int(index_text) if index_text.isdigit() else None
    else:
        path, index = rest, None
    array = find_field(fields, path)
    if array is None or array.widget != "array" or kind not in ("add", "remove"):
        return data, None
    rows = _list_at(data, path)
    if rows is None:
        return data, None
    while len(rows) < row_count(array, data):  # rows shown but not posted (none were)
        rows.append({} if array.item.widget == "object" else None)
    if kind == "add":
        if array.max_items is not None and len(rows) >= array.max_items:
            return data, f"add:{path}"
        rows.append({} if array.item.widget == "object" else None)
        return data, _first_input(row_field(array, len(rows) - 1))
    if index is not None and index < len(rows) and len(rows) > min_rows(array):
        del rows[index]
    return data, f"add:{path}"


def _list_at(data: dict, path: str) -> list | None:
    """The list at `path` in `data`, made an empty list if missing (None if a parent is not there)."""
    parts = path.split("/")
    node: Any = data
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            return None
    if not isinstance(node, dict):
        return None
    if not isinstance(node.get(parts[-1]), list):
        node[parts[-1]] = []
    return node[parts[-1]]


# -- showing values and errors ----------------------------------------------------------------

def value_at(data: Any, path: str) -> Any:
    for part in path.split("/"):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
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


def is_chosen(field: Field, data: dict, option) -> bool:
    """Whether a multiselect's `option` is among the chosen values."""
    value = value_at(data, field.path)
    return isinstance(value, list) and any(str(v) == str(option) for v in value)


def place_errors(fields: list[Field], data: dict, errors: dict[str, list[str]],
                 extra_paths=()) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(errors by the path of the input or group that shows them, errors with no place on the form).

    An error below a shown field but without an input of its own (`tags/4` when two rows are
    shown, `affected_phases/0`) goes to the nearest shown field above it. Array size errors are
    reworded in rows ("add at least 2 rows").
    """
    shown = _shown(fields, data) | set(extra_paths)
    placed: dict[str, list[str]] = {}
    others: dict[str, list[str]] = {}
    for path, messages in errors.items():
        target = path
        while target not in shown and "/" in target:
            target = target.rsplit("/", 1)[0]
        if target not in shown:
            others[path] = list(messages)
            continue
        item = find_field(fields, target) if target == path else None
        placed.setdefault(target, []).extend(_friendly(item, m) for m in messages)
    return placed, others


def _shown(fields: list[Field], data: dict) -> set[str]:
    paths: set[str] = set()
    for item in fields:
        paths.add(item.path)
        if item.widget in _GROUPS:
            paths |= _shown(item.children, data)
        elif item.widget == "array":
            for _index, row in array_rows(item, data):
                paths.add(row.path)
                paths |= _shown(row.children, data)
                if row.widget == "array":
                    paths |= _shown([row], data)
    return paths


def _friendly(item: Field | None, message: str) -> str:
    if item is None or item.widget not in ("array", "multiselect"):
        return message
    noun = "row" if item.widget == "array" else "choice"
    if message.endswith(" is too short") or message.endswith(" should be non-empty"):
        count = max(item.min_items, 1)
        verb = "add" if item.widget == "array" else "choose"
        return f"{verb} at least {count} {noun}{'s' if count != 1 else ''}"
    if message.endswith(" is too long") and item.max_items is not None:
        return f"at most {item.max_items} {noun}{'s' if item.max_items != 1 else ''}"
    if message.endswith(" has non-unique elements"):
        return f"every {noun} must be different"
    return message


def template_context() -> dict:
    """What web/templates/_fields.html needs besides fields, values, errors and focus."""
    return {"display_value": display_value, "is_chosen": is_chosen, "array_rows": array_rows,
            "row_field": row_field, "min_rows": min_rows, "row_token": ROW_TOKEN}


# -- reading a post ---------------------------------------------------------------------------

def parse_submission(fields: list[Field], posted) -> tuple[dict, dict[str, list[str]]]:
    """(the data to submit, errors of values that could not even be read — bad JSON).

    Empty inputs are left out (so a required field is reported missing), and so are rows with
    nothing entered; a number that does not parse is passed on as text, and the schema names the
    field ("... is not of type 'number'"). The schema's errors then number rows as in this data
    (empty rows gone), so show the form again with it; the errors returned here (bad JSON) number
    them as posted, like `parse_draft`.
    """
    data: dict = {}
    errors: dict[str, list[str]] = {}
    _parse(fields, posted, data, errors, lenient=False, markers=_getlist(posted, ROW_MARKER))
    return data, errors


def parse_draft(fields: list[Field], posted) -> dict:
    """Everything entered, as entered: for a draft, or to show the form again unchanged."""
    data: dict = {}
    _parse(fields, posted, data, {}, lenient=True, markers=_getlist(posted, ROW_MARKER))
    return data


def _getlist(posted, key: str) -> list[str]:
    if hasattr(posted, "getlist"):
        return posted.getlist(key)
    value = posted.get(key)
    return [] if value is None else value if isinstance(value, list) else [value]


def _parse(fields: list[Field], posted, data: dict, errors: dict, *, lenient: bool, markers: list[str]) -> None:
    for item in fields:
        if item.widget == "readonly":
            continue
        found, value = _read(item, posted, errors, lenient=lenient, markers=markers)
        if found:
            data[item.name] = value


def _read(item: Field, posted, errors: dict, *, lenient: bool, markers: list[str]) -> tuple[bool, Any]:
    """(whether the field has a value to submit, the value)."""
    if item.widget in _GROUPS:
        child: dict = {}
        _parse(item.children, posted, child, errors, lenient=lenient, markers=markers)
        return bool(child) or item.required, child
    if item.widget == "checkbox":
        return True, posted.get(item.path) in _TRUE
    if item.widget == "multiselect":
        chosen = set(_getlist(posted, item.path))
        return True, [option for option in item.options if str(option) in chosen]
    if item.widget == "array":
        rows = []
        for index in _row_indices(item.path, posted, markers):
            found, value = _read(row_field(item, index), posted, errors, lenient=lenient, markers=markers)
            if lenient:
                rows.append(value if found else None)
            elif found and not _blank(value):
                rows.append(value)
        if not lenient and not rows and not item.required and item.min_items:
            return False, None  # an optional list left empty: leave it out rather than refuse []
        return True, rows
    raw = posted.get(item.path)
    if raw is None or raw.strip() == "":
        return lenient, None
    raw = raw.strip() if item.widget not in ("textarea", "json") else raw
    if item.widget == "integer" and _INTEGER.match(raw):
        return True, int(raw)
    if item.widget == "number":
        try:
            number = float(raw)
            return True, int(number) if _INTEGER.match(raw) else number
        except ValueError:
            return True, raw
    if item.widget in ("select", "radio"):
        return True, next((o for o in item.options if str(o) == raw), raw)
    if item.widget == "json":
        try:
            return True, json.loads(raw)
        except ValueError as exc:
            if lenient:
                return True, raw
            errors[item.path] = [f"not valid JSON: {exc}"]
            return False, None
    return True, raw


def _row_indices(path: str, posted, markers: list[str]) -> list[int]:
    """Row numbers of an array in a post: from the row markers, and from any input named `path/N/...`."""
    prefix = path + "/"
    found: set[int] = set()
    for name in [*markers, *(posted.keys() if hasattr(posted, "keys") else ())]:
        if name.startswith(prefix):
            head = name[len(prefix):].split("/", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _blank(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_blank(v) for v in value.values())
    if isinstance(value, list):
        return all(_blank(v) for v in value)
    return value is None or value is False or value == ""


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
