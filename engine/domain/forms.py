"""Task forms: JSON Schema 2020-12 documents (plus an optional rjsf-style uiSchema).

Submitted data is validated before it reaches the workflow; every error names its field
(a JSON-pointer-like path such as `requirements/2/priority`) so each surface can show it
next to the input.
"""
from __future__ import annotations

import ast
import re

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.domain.errors import InvalidInput


def form_schema(form: dict) -> dict:
    """The JSON Schema part of a stored form (forms may carry their uiSchema under "uiSchema")."""
    return {k: v for k, v in form.items() if k != "uiSchema"}


def check_schema(form: dict) -> str | None:
    """None if the form is a valid JSON Schema 2020-12 document, else the reason."""
    try:
        Draft202012Validator.check_schema(form_schema(form))
    except SchemaError as exc:
        return exc.message
    return None


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _field_paths(error) -> list[str]:
    path = "/".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        # jsonschema reports a missing property at its parent; name the property itself.
        suffix = " is a required property"
        if error.message.endswith(suffix):
            try:
                return [_join(path, str(ast.literal_eval(error.message[: -len(suffix)])))]
            except (ValueError, SyntaxError):
                pass
    if error.validator == "additionalProperties" and isinstance(error.instance, dict) \
            and isinstance(error.schema, dict):
        # Reported at the object too; name each property that is not allowed.
        known = set(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        extra = [name for name in error.instance
                 if name not in known and not any(re.search(pattern, name) for pattern in patterns)]
        if extra:
            return [_join(path, name) for name in extra]
    return [path or "(form)"]


def read_only_fields(form: dict) -> list[str]:
    """Top-level properties the form only displays (`"readOnly": true`), e.g. a loop counter."""
    properties = form_schema(form).get("properties") or {}
    return [name for name, spec in properties.items() if isinstance(spec, dict) and spec.get("readOnly") is True]


def validate_submission(form: dict | None, data, form_name: str | None = None) -> dict:
    """Return the data to store if the form accepts it, else raise InvalidInput naming every bad field.

    Read-only fields are display values the process owns (an iteration number, a round): a
    submission can never overwrite them, so they are dropped before validation (JSON Schema
    itself does not enforce `readOnly`).
    """
    if not isinstance(data, dict):
        raise InvalidInput("submitted data must be a JSON object", fields={"(form)": ["expected an object"]})
    if form is None:
        return data
    data = {k: v for k, v in data.items() if k not in read_only_fields(form)}
    validator = Draft202012Validator(form_schema(form))
    fields: dict[str, list[str]] = {}
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        for name in _field_paths(error):
            fields.setdefault(name, []).append(error.message)
    if fields:
        label = f"form '{form_name}'" if form_name else "the form"
        summary = "; ".join(f"{name}: {msgs[0]}" for name, msgs in fields.items())
        raise InvalidInput(f"data does not match {label}: {summary}", fields=fields)
    return data
