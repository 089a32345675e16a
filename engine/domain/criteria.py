"""Gate entry criteria: Python expressions over instance data, with the values they saw.

`quality.pass_rate >= 0.95` reads nested data as attributes, the way designers write it;
evaluation has no builtins beyond a few pure functions, and the names an expression reads are
reported with their values so an unmet criterion can say exactly what it found.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

SAFE_FUNCTIONS = {"len": len, "sum": sum, "min": min, "max": max, "any": any, "all": all, "abs": abs,
                  "round": round, "True": True, "False": False, "None": None}


class DataView(dict):
    """A dict whose keys also read as attributes (recursively), for `a.b.c` in expressions."""

    def __getattr__(self, name: str) -> Any:
        try:
            return wrap(self[name])
        except KeyError:
            raise AttributeError(f"no data field '{name}'") from None


def wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, DataView):
        return DataView(value)
    if isinstance(value, list):
        return [wrap(v) for v in value]
    return value


@dataclass(frozen=True)
class CriterionResult:
    id: str
    expression: str
    met: bool
    values: dict[str, Any]  # the data each dotted name in the expression read
    error: str | None = None

    def explain(self) -> str:
        seen = ", ".join(f"{name} = {value!r}" for name, value in self.values.items()) or "no data"
        if self.error:
            return f"{self.id}: `{self.expression}` could not be evaluated ({self.error}; {seen})"
        return f"{self.id}: `{self.expression}` is not met ({seen})"


def _dotted_names(expression: str) -> list[str]:
    """`quality.pass_rate >= x.y` -> ['quality.pass_rate', 'x.y'] (outermost attribute chains)."""
    names: list[str] = []

    def chain(node) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            head = chain(node.value)
            return f"{head}.{node.attr}" if head else None
        return None

    class Visitor(ast.NodeVisitor):
        def visit_Attribute(self, node):
            name = chain(node)
            if name:
                names.append(name)
            else:
                self.generic_visit(node)

        def visit_Name(self, node):
            if node.id not in SAFE_FUNCTIONS:
                names.append(node.id)

    Visitor().visit(ast.parse(expression, mode="eval"))
    return list(dict.fromkeys(names))


def _read(data: dict, dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return "(missing)"
        value = value[part]
    return value


def evaluate_criterion(criterion_id: str, expression: str, data: dict) -> CriterionResult:
    try:
        names = _dotted_names(expression)
    except SyntaxError as exc:
        return CriterionResult(criterion_id, expression, False, {}, f"does not parse: {exc.msg}")
    values = {name: _read(data, name) for name in names}
    namespace = {k: wrap(v) for k, v in data.items()}
    try:
        met = bool(eval(compile(expression, f"<criterion {criterion_id}>", "eval"),  # noqa: S307
                        {"__builtins__": {}, **SAFE_FUNCTIONS}, namespace))
    except Exception as exc:  # a missing field or a type mismatch: the criterion is not met
        return CriterionResult(criterion_id, expression, False, values, f"{type(exc).__name__}: {exc}")
    return CriterionResult(criterion_id, expression, met, values)
