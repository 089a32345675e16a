"""Gate configuration files: `*.gates.yaml` read, validated and turned into records.

A gate configuration file sits beside the BPMN it configures (`order.bpmn` ->
`order.gates.yaml`) or anywhere in a deployed folder. It is YAML, validated against the
published JSON Schema (`engine/domain/schemas/gates.schema.json`, the same file as
`docs/schemas/gates.schema.json`). Every problem is reported with the line it is on and the
key it concerns, as an `Issue` printed `PATH:LINE: gates.<gate>.<key>: message`; a file with
problems raises `ModelRejected` listing all of them.

This module checks the file on its own. Whether it fits the process it configures (gate ids,
roles, flows, data names) is `engine.bpmn.gate_binding.check_gate_config`.

Public API: `parse_gate_document`, `parse_gate_document_with_lines`, `validate_gate_document`,
`find_gate_files`, `load_gate_config`, `gate_config_from_text`, `gate_schema`, `key_path`,
`line_of`.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml
from jsonschema import Draft202012Validator

from engine.domain.errors import Issue, ModelRejected
from engine.domain.gate_config import key_path, line_of  # noqa: F401  (re-exported)
from engine.domain.gate_config import GateConfigSet, from_document

__all__ = [
    "GATE_FILE_SUFFIXES",
    "parse_gate_document",
    "parse_gate_document_with_lines",
    "validate_gate_document",
    "find_gate_files",
    "load_gate_config",
    "gate_config_from_text",
    "gate_schema",
    "key_path",
    "line_of",
]

GATE_FILE_SUFFIXES = (".gates.yaml", ".gates.yml")
_BPMN_SUFFIXES = (".bpmn20.xml", ".bpmn")
_SKIPPED_DIRECTORIES = {".git", "node_modules", "__pycache__", ".venv", "target", "build"}
# YAML aliases can make a small file a huge tree ("billion laughs"); a gate file never needs this many nodes.
_MAX_NODES = 50_000
_MAX_DEPTH = 64


# --------------------------------------------------------------------------- keys and lines


# --------------------------------------------------------------------------- the schema


@lru_cache(maxsize=1)
def gate_schema() -> dict[str, Any]:
    """The published JSON Schema of gate configuration files (shipped with the package)."""
    text = resources.files("engine.domain").joinpath("schemas/gates.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(gate_schema())


# --------------------------------------------------------------------------- YAML with lines


class _TooLarge(Exception):
    pass


class _Reader:
    """Builds plain Python data from a composed YAML node tree, recording the line of every key."""

    def __init__(self, loader: yaml.SafeLoader, path: str):
        self.loader = loader
        self.path = path
        self.lines: dict[str, int] = {"": 1}
        self.issues: list[Issue] = []
        self.nodes = 0

    def issue(self, parts: list, line: int | None, message: str) -> None:
        self.issues.append(Issue(self.path, line, key_path(parts) or None, message))

    def build(self, node, parts: list, depth: int = 0):
        self.nodes += 1
        if self.nodes > _MAX_NODES or depth > _MAX_DEPTH:
            raise _TooLarge
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.loader.construct_object(node, deep=True)
            except yaml.YAMLError as error:
                self.issue(parts, line, f"cannot read this value: {_yaml_problem(error)}")
                return None
        if isinstance(node, yaml.SequenceNode):
            result = []
            for index, child in enumerate(node.value):
                child_parts = parts + [index]
                self.lines.setdefault(key_path(child_parts), child.start_mark.line + 1)
                result.append(self.build(child, child_parts, depth + 1))
            return result
        if isinstance(node, yaml.MappingNode):
            try:
                self.loader.flatten_mapping(node)  # `<<: *anchor` merge keys
            except yaml.YAMLError as error:
                self.issue(parts, line, f"cannot read this mapping: {_yaml_problem(error)}")
                return {}
            result: dict[str, Any] = {}
            first_seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self.issue(parts, key_line, "a key must be a plain name, not a list or a mapping")
                    continue
                # Keys are names: read as written, so `on:`/`no:`/`1:` are not YAML 1.1 booleans or numbers.
                key = str(key_node.value)
                child_parts = parts + [key]
                if key in first_seen:
                    self.issue(child_parts, key_line, f"key '{key}' appears twice (first on line {first_seen[key]})")
                    continue
                first_seen[key] = key_line
                self.lines[key_path(child_parts)] = key_line
                result[key] = self.build(value_node, child_parts, depth + 1)
            return result
        self.issue(parts, line, "unsupported YAML node")  # pragma: no cover - the composer makes only the three kinds
        return None


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        parts = [p for p in (error.context, error.problem) if p]
        return ", ".join(parts) or str(error)
    return str(error)


def _read_yaml(text: str, path: str) -> tuple[Any, dict[str, int], list[Issue]]:
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = mark.line + 1 if mark is not None else None
            return None, {}, [Issue(path, line, None, f"not valid YAML: {_yaml_problem(error)}")]
        except yaml.YAMLError as error:
            return None, {}, [Issue(path, None, None, f"not valid YAML: {error}")]
        if node is None:
            return None, {}, [Issue(path, 1, None, "the file is empty: expected `process:` and `gates:`")]
        reader = _Reader(loader, path)
        try:
            data = reader.build(node, [])
        except _TooLarge:
            return None, {}, [Issue(path, None, None, f"the document is too large or too deeply nested "
                                                     f"(more than {_MAX_NODES} values after expanding aliases, "
                                                     f"or a recursive alias)")]
        return data, reader.lines, reader.issues
    finally:
        loader.dispose()


# --------------------------------------------------------------------------- schema errors as issues

_JSON_TYPES = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
    "object": "a mapping (key: value)", "array": "a list", "null": "empty",
}


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"  # dates and timestamps YAML reads from unquoted values


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def _schema_at(path: Iterable) -> Any:
    node: Any = gate_schema()
    for part in path:
        node = node[part]
    return node


def _error_issues(error, path: str, lines: dict[str, int] | None) -> list[Issue]:
    parts = list(error.absolute_path)
    key = key_path(parts)
    validator = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("errorMessage")

    def at(key_text: str, message: str) -> Issue:
        return Issue(path, line_of(lines, key_text) if lines is not None else None, key_text or None, message)

    if validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        issues = []
        for extra in (k for k in error.instance if k not in schema.get("properties", {})):
            close = difflib.get_close_matches(str(extra), allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            issues.append(at(key_path(parts + [extra]),
                             f"unknown key '{extra}' (allowed here: {', '.join(allowed)}){hint}"))
        return issues
    if "propertyNames" in error.relative_schema_path:
        name = error.instance
        return [at(key_path(parts + [str(name)]), f"'{name}': {custom or error.message}")]
    if validator == "required":
        missing = next((name for name in error.validator_value
                        if isinstance(error.instance, dict) and name not in error.instance), None)
        missing_key = key_path(parts + [missing]) if missing else key
        message = f"missing required key '{missing}'" if missing else error.message
        if custom:
            message = f"{message}: {custom}"
        # The line of the mapping that lacks the key (the key itself is not in the file).
        return [Issue(path, line_of(lines, key) if lines is not None else None, missing_key or None, message)]
    if validator == "dependentRequired":
        match = re.match(r"'(.+)' is a dependency of '(.+)'", error.message)
        if match:
            needed, present = match.groups()
            return [at(key_path(parts + [present]), f"'{present}' needs '{needed}' as well")]
        return [at(key, error.message)]
    if custom and validator == "pattern":
        return [at(key, f"{custom} (not {_show(error.instance)})")]
    if custom and validator in ("anyOf", "oneOf"):
        return [at(key, custom)]
    if validator == "type":
        expected = error.validator_value
        expected_list = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(_JSON_TYPES.get(t, t) for t in expected_list)
        if parts == []:
            return [at(key, f"the document must be a mapping with `process:` and `gates:`, not {_kind(error.instance)}")]
        return [at(key, f"must be {wanted}, not {_kind(error.instance)} ({_show(error.instance)})")]
    if validator == "enum":
        return [at(key, f"must be one of: {', '.join(map(str, error.validator_value))} (not {_show(error.instance)})")]
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {"minimum": "at least", "exclusiveMinimum": "more than", "maximum": "at most",
                 "exclusiveMaximum": "less than"}[validator]
        return [at(key, f"must be {words} {error.validator_value:g} (not {_show(error.instance)})")]
    if validator == "minItems":
        return [at(key, f"must list at least {error.validator_value} item(s)")]
    if validator == "minLength":
        return [at(key, "must not be empty")]
    if validator == "uniqueItems":
        return [at(key, "lists an item more than once")]
    if validator == "minProperties":
        return [at(key, f"needs at least {error.validator_value} key(s)")]
    return [at(key, error.message)]


def validate_gate_document(doc: Any, path: str, lines: dict[str, int] | None = None) -> list[Issue]:
    """Schema problems of a gates document (e.g. after overrides were applied), one Issue each.

    With `lines` (from `parse_gate_document_with_lines`) each issue names its line.
    """
    issues: list[Issue] = []
    for error in _validator().iter_errors(doc):
        issues.extend(_error_issues(error, path, lines))
    return sorted(issues, key=lambda i: (i.line or 0, i.element_id or "", i.message))


# --------------------------------------------------------------------------- public API


def parse_gate_document_with_lines(text: str, path: str) -> tuple[dict[str, Any], dict[str, int]]:
    """(document, {key path: line}) of a gates file, or ModelRejected with every problem."""
    if text.startswith("\ufeff"):
        text = text[1:]
    doc, lines, issues = _read_yaml(text, path)
    if doc is None and not issues:
        issues = [Issue(path, 1, None, "the file is empty: expected `process:` and `gates:`")]
    if issues:
        raise ModelRejected(issues)
    issues = validate_gate_document(doc, path, lines)
    if issues:
        raise ModelRejected(issues)
    return doc, lines


def parse_gate_document(text: str, path: str) -> dict[str, Any]:
    """The validated document of a gates file; ModelRejected (file, line, key) otherwise."""
    return parse_gate_document_with_lines(text, path)[0]


def gate_config_from_text(text: str, path: str) -> GateConfigSet:
    """Records, raw document, path, lines and sha256 of a gates file's text."""
    doc, lines = parse_gate_document_with_lines(text, path)
    return GateConfigSet(
        process=doc["process"],
        gates=from_document(doc),
        raw=doc,
        path=path,
        hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        lines=lines,
    )


def load_gate_config(path: str | Path, name: str | None = None) -> GateConfigSet:
    """Read and validate a gates file. `name` is how issues name the file (default: the path)."""
    file = Path(path)
    shown = name or str(path)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise ModelRejected([Issue(shown, None, None, f"cannot read the file: {error.strerror or error}")]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ModelRejected([Issue(shown, None, None, f"the file is not valid UTF-8 text ({error.reason})")]) from None
    return gate_config_from_text(text, shown)


def _is_gate_file(path: Path) -> bool:
    return path.name.lower().endswith(GATE_FILE_SUFFIXES)


def find_gate_files(path: str | Path) -> list[Path]:
    """The gate configuration files that go with a deployment path.

    A folder: every `*.gates.yaml` / `*.gates.yml` in it, recursively (skipping .git,
    node_modules, ...), sorted. A BPMN file: `<stem>.gates.yaml` (or `.yml`) beside it, where the
    stem drops `.bpmn` / `.bpmn20.xml`. A gates file: itself. Anything else: nothing.
    """
    base = Path(path)
    if base.is_dir():
        return sorted(file for file in base.rglob("*")
                      if file.is_file() and _is_gate_file(file)
                      and not _SKIPPED_DIRECTORIES.intersection(file.relative_to(base).parts))
    if not base.is_file():
        return []
    if _is_gate_file(base):
        return [base]
    lower = base.name.lower()
    for suffix in _BPMN_SUFFIXES:
        if lower.endswith(suffix):
            stem = base.name[: -len(suffix)]
            return [candidate for candidate in (base.with_name(stem + s) for s in GATE_FILE_SUFFIXES)
                    if candidate.is_file()]
    return []
