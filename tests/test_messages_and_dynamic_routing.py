"""Messages delivered to running instances, and candidate groups computed from data."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.bootstrap import Phasegate
from engine.domain.errors import Conflict
from engine.services import definitions, instances, tasks, users

MODELS = Path(__file__).parent / "models"


@pytest.fixture
def app(db_url):
    application = Phasegate(db_url)
    users.add_user(application, "admin", ["admin"], exist_ok=True)
    users.add_user(application, "mia", ["manager"])
    users.add_user(application, "wes", ["worker"])
    users.add_user(application, "fin", ["finance"])
    definitions.deploy(application, MODELS / "event_subprocess.bpmn", "admin")
    definitions.deploy(application, MODELS / "group_expression.bpmn", "admin")
    yield application
    application.dispose()


def test_a_message_starts_a_non_interrupting_event_subprocess_with_its_payload(app):
    inst = instances.start(app, "with_risks", business_key="R-1")
    assert [t.element_id for t in inst.tasks] == ["work"]

    inst = instances.send_message(app, inst.id, "raise_risk", {"title": "vendor late", "response": "reduce"},
                                  user="wes")
    assert sorted(t.element_id for t in inst.tasks) == ["assess_risk", "work"]  # work goes on
    assess = next(t for t in inst.tasks if t.element_id == "assess_risk")
    assert assess.role == "manager"
    tasks.complete(app, assess.id, "mia", {})
    inst = instances.show(app, inst.id)
    assert inst.data["risks"] == [{"title": "vendor late", "response": "reduce"}]
    assert [t.element_id for t in inst.tasks] == ["work"]

    events = instances.history(app, inst.id)
    assert events[1].type == "message" and events[1].payload["message"] == "raise_risk"


def test_a_message_nobody_waits_for_is_refused_and_changes_nothing(app):
    inst = instances.start(app, "with_risks")
    with pytest.raises(Conflict, match="can receive: raise_risk"):
        instances.send_message(app, inst.id, "no_such_message", {})
    assert len(instances.history(app, inst.id)) == 1


@pytest.mark.parametrize("groups, member, outsider", [
    ("finance", "fin", "mia"),
    (["manager", "finance"], "mia", "wes"),
    ("manager, finance", "fin", "wes"),
])
def test_candidate_groups_from_an_expression_route_by_data(app, groups, member, outsider):
    inst = instances.start(app, "group_expression", data={"approverGroups": groups})
    task = inst.tasks[0]
    assert [t.id for t in tasks.list_tasks(app, user=member)] == [task.id]
    assert tasks.list_tasks(app, user=outsider) == []
    tasks.complete(app, task.id, member, {"ok": True})
    assert instances.show(app, inst.id).state == "completed"
