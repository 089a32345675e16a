"""What the strict loader hands to the rest of the engine.

`engine.bpmn.loader.load_package(...)` turns BPMN/DMN/form files into a `LoadedPackage`
or raises `ModelRejected` naming file, line and element. Everything downstream (deploy,
runtime, routing) works from these plain objects; only `spec`/`subprocess_specs` are
SpiffWorkflow objects, and only `engine.bpmn` touches them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.domain.errors import Issue


@dataclass
class ElementInfo:
    """Routing facts about one flow node, extracted from the XML at load time.

    Stored as JSON with the definition (`to_dict`/`from_dict`), so reading them never
    needs the XML again.
    """

    element_id: str
    tag: str  # BPMN local tag name: userTask, manualTask, scriptTask, exclusiveGateway, ...
    name: str | None = None
    # Human tasks only: candidate roles in priority order (camunda:candidateGroups, role property, lane).
    roles: list[str] = field(default_factory=list)
    # A literal user name or an expression such as "${initiator}" / "initiator" resolved at run time.
    assignee: str | None = None
    form: str | None = None  # form name, resolved to forms/<form>.json
    phase: str | None = None  # from the `phase` property of the element or its innermost enclosing subprocess
    gate: str | None = None  # gate id (phase gates issue)
    due: str | None = None  # ISO 8601 duration after the task becomes ready, or an ISO date/time
    documentation: str | None = None
    lane: str | None = None
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def is_human(self) -> bool:
        return self.tag in ("userTask", "manualTask")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], {})}

    @classmethod
    def from_dict(cls, dct: dict[str, Any]) -> "ElementInfo":
        return cls(**dct)


@dataclass
class LoadedProcess:
    key: str  # the BPMN process id
    name: str | None
    spec: Any  # SpiffWorkflow BpmnProcessSpec
    subprocess_specs: dict[str, Any]
    # Every flow node of the process and of the processes it calls, by element id.
    elements: dict[str, ElementInfo]
    # Relative names of the files this process needs (its BPMN, called BPMN, DMN, forms).
    files: list[str]


@dataclass
class LoadedPackage:
    processes: list[LoadedProcess]
    # Every file read, by relative name -> text (what a deployment stores).
    files: dict[str, str]
    # Forms found (name -> JSON Schema document, with "uiSchema" merged in when present).
    forms: dict[str, dict]
    warnings: list[Issue] = field(default_factory=list)
