"""Build minimal BPMN documents in tests without repeating the boilerplate."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

DEFINITIONS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"\n'
    '  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"\n'
    '  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"\n'
    '  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"\n'
    '  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"\n'
    '  id="Definitions_test" targetNamespace="http://phasegate.test">\n'
    '{extra}'
    '  <bpmn:process id="{process_id}" name="{name}"{executable}>\n'
    '{body}\n'
    '  </bpmn:process>\n'
    '{after}'
    '</bpmn:definitions>\n'
)


def process_xml(body: str, *, process_id: str = "p", name: str = "Test process", executable: str | None = "true",
                extra: str = "", after: str = "") -> str:
    """A BPMN document with one process around `body` (flow nodes and sequence flows)."""
    attribute = "" if executable is None else f' isExecutable="{executable}"'
    return DEFINITIONS.format(process_id=process_id, name=name, executable=attribute, body=body,
                              extra=extra, after=after)


def linear(*nodes: str, start: str = '<bpmn:startEvent id="start"/>', end: str = '<bpmn:endEvent id="end"/>') -> str:
    """start -> nodes... -> end, wired in order; each node is an XML element with an id."""
    import re

    elements = [start, *nodes, end]
    ids = [re.search(r'id="([^"]+)"', element).group(1) for element in elements]
    flows = [f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
             for i, (a, b) in enumerate(zip(ids, ids[1:]), start=1)]
    return "\n".join("    " + line for line in elements + flows)


def model_text(name: str) -> str:
    return (HERE / name).read_text()
