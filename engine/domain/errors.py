"""The errors every surface (CLI, API, pages) translates for its users.

Each carries a stable machine `code` and enough structure (field errors, element ids,
file/line issues) for the surface to show a precise message instead of a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class PhasegateError(Exception):
    """Base of all errors that are the user's to fix (bad input, unknown ids, no permission)."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "details": self.details}


class Unauthenticated(PhasegateError):
    """No valid credentials: a missing, unknown or revoked API token (or no signed-in user)."""

    code = "unauthenticated"
    http_status = 401


class NotFound(PhasegateError):
    code = "not_found"
    http_status = 404


class Forbidden(PhasegateError):
    code = "forbidden"
    http_status = 403


class Conflict(PhasegateError):
    """The state changed under the caller (task no longer ready, concurrent update)."""

    code = "conflict"
    http_status = 409


class InvalidInput(PhasegateError):
    """Input that fails validation; `details["fields"]` maps a field path to its messages."""

    code = "invalid_input"
    http_status = 422

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None):
        super().__init__(message, details={"fields": fields or {}})
        self.fields = fields or {}


@dataclass(frozen=True)
class Issue:
    """One problem found in a model file, printed as `PATH:LINE: ELEMENT_ID: message`."""

    path: str
    line: int | None
    element_id: str | None
    message: str
    severity: str = "error"  # "error" rejects the model, "warning" is reported only

    def __str__(self) -> str:
        line = self.line if self.line is not None else 0
        element = self.element_id or "-"
        return f"{self.path}:{line}: {element}: {self.message}"

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "line": self.line,
            "element": self.element_id,
            "message": self.message,
            "severity": self.severity,
        }


class ModelRejected(PhasegateError):
    """A BPMN/DMN/form package Phasegate will not run; `issues` name file, line and element."""

    code = "model_rejected"
    http_status = 422

    def __init__(self, issues: list[Issue]):
        self.issues = [i for i in issues if i.severity == "error"] or issues
        message = "\n".join(str(i) for i in self.issues)
        super().__init__(message, details={"issues": [i.to_dict() for i in self.issues]})


@dataclass
class ExecutionFailure:
    """What an instance in the `error` state shows: which element failed and why."""

    element_id: str | None
    element_name: str | None
    message: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"element": self.element_id, "name": self.element_name, "message": self.message, **self.extra}
