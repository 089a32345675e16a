"""Helpers for the API tests: a Flask test client that calls as a user (through a real API token),
and the model packages the tests deploy."""
from __future__ import annotations

from pathlib import Path

from engine.bootstrap import Phasegate
from engine.services import auth, users
from web.app import create_app

MODELS = Path(__file__).parent / "models"

# tests/models/gated.bpmn with its gate configuration and forms, as an upload {name: text}.
GATED_FILES = {
    "gated.bpmn": (MODELS / "gated.bpmn").read_text(),
    "gated.gates.yaml": (MODELS / "gated.gates.yaml").read_text(),
    **{f"forms/{p.name}": p.read_text() for p in sorted((MODELS / "forms").glob("gated_*.json"))},
}
LOOPS_FILES = {"loops.bpmn": (MODELS / "loops.bpmn").read_text()}
RISKS_FILES = {"event_subprocess.bpmn": (MODELS / "event_subprocess.bpmn").read_text()}

# A process whose start event lies in the lane "builder": builders (and admins) may start it.
LANE_START_FILES = {"lane_start.bpmn": """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="ls" targetNamespace="http://phasegate.test/ls">
  <bpmn:collaboration id="ls_collab"><bpmn:participant id="ls_pool" name="Build" processRef="lane_start"/></bpmn:collaboration>
  <bpmn:process id="lane_start" name="Started by builders" isExecutable="true">
    <bpmn:laneSet id="ls_lanes">
      <bpmn:lane id="lane_builder" name="builder"><bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>work</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="work" name="Work"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""}

# Valid data for gated's `prepare` form that meets the review gate's entry criteria and checklist.
PREPARED = {"summary": "Release 1.2", "quality": {"pass_rate": 0.97, "open_blockers": 0},
            "checklist": {"tests_run": True}}
PASSWORD = "correct horse"


class Api:
    """`api.get("/tasks", as_="bob")` calls /api/v1/tasks with bob's token (as_=None: anonymous)."""

    def __init__(self, engine_app: Phasegate):
        self.engine = engine_app
        self.flask = create_app(phasegate=engine_app, config={"TESTING": True, "SECRET_KEY": "test"})
        self.client = self.flask.test_client()
        self.tokens: dict[str, str] = {}

    def add_user(self, name: str, roles=(), password: str | None = None) -> str:
        users.add_user(self.engine, name, list(roles), password=password, exist_ok=True)
        self.tokens[name], _record = auth.create_token(self.engine, name, "tests")
        return name

    def headers(self, as_: str | None) -> dict:
        return {"Authorization": f"Bearer {self.tokens[as_]}"} if as_ else {}

    def call(self, method: str, path: str, as_: str | None = None, **kwargs):
        url = path if path.startswith("/api/") else "/api/v1" + path
        headers = {**self.headers(as_), **kwargs.pop("headers", {})}
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, path, as_=None, **kw):
        return self.call("GET", path, as_, **kw)

    def post(self, path, as_=None, **kw):
        return self.call("POST", path, as_, **kw)

    def delete(self, path, as_=None, **kw):
        return self.call("DELETE", path, as_, **kw)
