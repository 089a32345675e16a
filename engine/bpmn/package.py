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
    # Added by the loader:
    # Human tasks whose candidate groups are an expression (`${approverGroups}`): the Python
    # expression giving a role name or a list of role names at run time; `roles` is then empty.
    roles_expression: str | None = None
    # True when `assignee` is a Python expression (translated from `${initiator}`), False for a literal user.
    assignee_expression: bool = False
    # Id of the bpmn:process the element belongs to (elements of called processes keep theirs).
    process: str | None = None

    @property
    def is_human(self) -> bool:
        return self.tag in ("userTask", "manualTask")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], {}) and v is not False}

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

    # Spec name (process id, or the id of an embedded sub-process) -> id of its bpmn:process.
    spec_processes: dict[str, str] = field(default_factory=dict)

    def find_element(self, element_id: str, spec_name: str | None = None) -> ElementInfo | None:
        """The ElementInfo of a flow node, given its id and the name of the spec it runs in.

        Elements are keyed by their id; an element of a called process whose id is already used
        by the calling process is keyed "<called process id>:<element id>". With `spec_name`
        (a SpiffWorkflow task's `task.workflow.spec.name`) such reused ids resolve correctly.
        """
        if spec_name is not None:
            process_id = self.spec_processes.get(spec_name, spec_name)
            qualified = self.elements.get(f"{process_id}:{element_id}")
            if qualified is not None:
                return qualified
            info = self.elements.get(element_id)
            return info if info is None or info.process in (None, process_id) else None
        return self.elements.get(element_id)


@dataclass
class LoadedPackage:
    processes: list[LoadedProcess]
    # Every file read, by relative name -> text (what a deployment stores).
    files: dict[str, str]
    # Forms found (name -> JSON Schema document, with "uiSchema" merged in when present).
    forms: dict[str, dict]
    warnings: list[Issue] = field(default_factory=list)
