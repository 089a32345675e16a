"""The service layer end to end, on SQLite and PostgreSQL (`db_url`).

Models: tests/models/svc_*.bpmn and tests/models/forms/svc_order_form.json. `svc_order` routes
its tasks by candidate group (`enter`: sales), by lane (`approve`: lane "Sponsor"), by several
groups (`ship`: warehouse, logistics — inside the sub-process `fulfil`, phase "Fulfilment") and
to `${initiator}` (`confirm`); `enter` has a JSON Schema form; phases come from `phase` properties.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.adapters.database import StatementCounter
from engine.bootstrap import Phasegate
from engine.domain.errors import Conflict, Forbidden, InvalidInput, ModelRejected, NotFound
from engine.domain.events import GENESIS, event_hash
from engine.services import definitions, instances, tasks, users
from tests.clock_support import frozen_at

MODELS = Path(__file__).parent / "models"

PEOPLE = {
    "admin": ["admin"],
    "sally": ["sales"],
    "sam": ["sales"],
    "sponsor": ["Sponsor"],
    "wendy": ["warehouse"],
    "lou": ["logistics"],
    "lara": ["logistics"],
    "olga": ["ops"],
    "clerk": ["clerk"],
    "rita": ["reviewer"],
    "nobody": [],
}

VALID_ORDER = {"customer": "ACME", "quantity": 3, "lines": [{"sku": "A-1", "priority": "high"}]}


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture
def package(tmp_path) -> Path:
    """A deployable folder: the svc_* models, the order form and a file with two processes."""
    folder = tmp_path / "package"
    (folder / "forms").mkdir(parents=True)
    for name in ("svc_order.bpmn", "svc_script_error.bpmn", "svc_timer.bpmn", "svc_versioned.bpmn",
                 "svc_form_property.bpmn", "loops.bpmn"):
        shutil.copy(MODELS / name, folder / name)
    for form in ("svc_order_form.json", "svc_note_form.json"):
        shutil.copy(MODELS / "forms" / form, folder / "forms" / form)
    return folder


@pytest.fixture
def app(db_url):
    application = Phasegate(db_url)
    for name, roles in PEOPLE.items():
        users.add_user(application, name, roles)
    yield application
    application.dispose()


@pytest.fixture
def deployed(app, package):
    return definitions.deploy(app, package, "admin")


@pytest.fixture
def frozen_clock():
    yield from frozen_at(datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc))


def fresh(app: Phasegate) -> Phasegate:
    """A new application object on the same database: every in-memory cache is empty."""
    return Phasegate(app.engine.url.render_as_string(hide_password=False))


@contextmanager
def restarted(app: Phasegate):
    """`fresh(app)`, disposed afterwards."""
    other = fresh(app)
    try:
        yield other
    finally:
        other.dispose()


def instance_row(app: Phasegate, instance_id: int):
    with app.uow() as uow:
        return uow.instances.get_row(instance_id)


def ready(app: Phasegate, instance_id: int) -> dict[str, object]:
    """The instance's ready tasks by element id."""
    return {t.element_id: t for t in tasks.list_tasks(app, instance_id=instance_id)}


def inbox(app: Phasegate, user: str) -> set[tuple[int, str]]:
    return {(t.instance_id, t.element_id) for t in tasks.list_tasks(app, user=user)}


def only_task(app: Phasegate, instance_id: int, element_id: str):
    open_tasks = ready(app, instance_id)
    assert list(open_tasks) == [element_id], open_tasks
    return open_tasks[element_id]


def assert_valid_chain(events) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    previous = GENESIS
    for e in events:
        assert e.prev_hash == previous
        assert e.hash == event_hash(e.prev_hash, instance_id=e.instance_id, seq=e.seq, at=e.at, actor=e.actor,
                                    type=e.type, task_id=e.task_id, element_id=e.element_id, payload=e.payload)
        previous = e.hash


# ------------------------------------------------------------------------------------- deploy


def test_deploy_a_file(app):
    result = definitions.deploy(app, MODELS / "svc_versioned.bpmn", "admin")
    assert len(result) == 1
    entry = result[0]
    assert set(entry) == {"key", "version", "hash", "new"}
    assert (entry["key"], entry["version"], entry["new"]) == ("svc_versioned", 1, True)
    assert len(entry["hash"]) == 64
    listed = definitions.list_definitions(app)
    assert [(d.key, d.version, d.hash) for d in listed] == [("svc_versioned", 1, entry["hash"])]
    assert listed[0].name == "Versioned" and listed[0].deployed_by == "admin"


def test_deploy_a_folder_deploys_every_executable_process(app, package):
    result = definitions.deploy(app, package, "admin")
    assert sorted((d["key"], d["version"], d["new"]) for d in result) == [
        ("par_loop", 1, True), ("seq_loop", 1, True), ("svc_form_property", 1, True), ("svc_order", 1, True),
        ("svc_script_error", 1, True), ("svc_timer", 1, True), ("svc_versioned", 1, True),
    ]
    assert sorted(d.key for d in definitions.list_definitions(app)) == sorted(d["key"] for d in result)
    # The form travels with the process that uses it.
    with app.uow() as uow:
        files = uow.definitions.latest("svc_order").files
    assert set(files) == {"svc_order.bpmn", "forms/svc_order_form.json"}


def test_identical_content_makes_no_new_version(app, package):
    first = {d["key"]: d for d in definitions.deploy(app, package, "admin")}
    again = {d["key"]: d for d in definitions.deploy(app, package, "admin")}
    assert set(first) == set(again)
    for key, entry in again.items():
        assert entry["new"] is False
        assert (entry["version"], entry["hash"]) == (first[key]["version"], first[key]["hash"])
    # The same process deployed from a single file has the same content: still unchanged.
    single = definitions.deploy(app, package / "svc_versioned.bpmn", "admin")
    assert single == [{**first["svc_versioned"], "new": False}]
    assert len(definitions.list_definitions(app)) == len(first)


def test_deploy_rejects_a_broken_model_and_stores_nothing(app, tmp_path):
    shutil.copy(MODELS / "svc_broken.bpmn", tmp_path / "svc_broken.bpmn")
    with pytest.raises(ModelRejected) as info:
        definitions.deploy(app, tmp_path / "svc_broken.bpmn", "admin")
    assert any(i.element_id == "f2" and i.line for i in info.value.issues)
    assert definitions.list_definitions(app) == []
    with pytest.raises(ModelRejected):
        definitions.deploy(app, tmp_path / "missing.bpmn", "admin")


def test_deploy_needs_a_known_user(app, package):
    with pytest.raises(NotFound, match="ghost"):
        definitions.deploy(app, package, "ghost")
    assert definitions.list_definitions(app) == []


def test_changed_content_is_a_new_version_and_running_instances_stay_on_theirs(app, tmp_path):
    model = tmp_path / "svc_versioned.bpmn"
    original = (MODELS / "svc_versioned.bpmn").read_text()
    model.write_text(original)
    [v1] = definitions.deploy(app, model, "admin")
    old = instances.start(app, "svc_versioned", user="rita")
    assert old.version == 1

    model.write_text(original.replace("ran_version = 1", "ran_version = 2"))
    [v2] = definitions.deploy(app, model, "admin")
    assert (v2["version"], v2["new"]) == (2, True)
    assert v2["hash"] != v1["hash"]
    assert [(d.key, d.version) for d in definitions.list_definitions(app)] == [("svc_versioned", 1), ("svc_versioned", 2)]
    assert [d.version for d in definitions.list_definitions(app, latest_only=True)] == [2]

    new = instances.start(app, "svc_versioned", user="rita")
    assert new.version == 2
    pinned = instances.start(app, "svc_versioned", user="rita", version=1)
    assert pinned.version == 1
    with pytest.raises(NotFound, match="version 7"):
        instances.start(app, "svc_versioned", user="rita", version=7)

    # The old instance completes on v1, also when its definition must be rebuilt from the database.
    with restarted(app) as other:
        tasks.complete(other, only_task(other, old.id, "review").id, "rita", {})
        done = instances.show(other, old.id)
    assert (done.state, done.version, done.data["ran_version"]) == ("completed", 1, 1)

    tasks.complete(app, only_task(app, new.id, "review").id, "rita", {})
    done_new = instances.show(app, new.id)
    assert (done_new.state, done_new.version, done_new.data["ran_version"]) == ("completed", 2, 2)
    started = instances.history(app, old.id)[0]
    assert started.payload["definition"] == {"key": "svc_versioned", "version": 1, "hash": v1["hash"]}


# ------------------------------------------------------------------------------------ start/show


def test_start_by_key_with_data_and_business_key(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally", "note": "rush"}, business_key="BK-1",
                           user="sally")
    shape = inst.to_dict()
    assert {"id", "key", "version", "state", "phase", "data", "tasks"} <= set(shape)
    assert (shape["key"], shape["version"], shape["state"], shape["phase"]) == ("svc_order", 1, "running", "Intake")
    assert shape["business_key"] == "BK-1" and shape["started_by"] == "sally"
    assert shape["data"]["note"] == "rush" and shape["data"]["initiator"] == "sally"
    assert shape["error"] is None
    [task] = shape["tasks"]
    assert {"id", "instance", "element_id", "name", "role", "phase", "state"} <= set(task)
    assert (task["instance"], task["element_id"], task["name"], task["role"], task["phase"], task["state"]) == (
        inst.id, "enter", "Enter order", "sales", "Intake", "ready")
    assert task["form"] == "svc_order_form" and task["business_key"] == "BK-1"

    assert instances.show(app, inst.id).to_dict() == shape
    listed = instances.list_instances(app, business_key="BK-1")
    assert [i.id for i in listed] == [inst.id]
    assert instances.list_instances(app, business_key="other") == []
    assert [i.id for i in instances.list_instances(app, key="svc_order", state="running")] == [inst.id]


def test_start_refuses_bad_input_and_unknown_names(app, deployed):
    with pytest.raises(InvalidInput) as info:
        instances.start(app, "svc_order", data=["not", "an", "object"])
    assert "data" in info.value.fields
    with pytest.raises(NotFound, match="no_such_process"):
        instances.start(app, "no_such_process")
    with pytest.raises(NotFound, match="ghost"):
        instances.start(app, "svc_order", user="ghost")
    assert instances.list_instances(app) == []


def test_unknown_ids_are_not_found_with_the_id_in_the_message(app, deployed):
    with pytest.raises(NotFound, match=r"\b4242\b"):
        instances.show(app, 4242)
    with pytest.raises(NotFound, match=r"\b4242\b"):
        instances.history(app, 4242)
    with pytest.raises(NotFound, match=r"\b4242\b"):
        instances.cancel(app, 4242, reason="gone")
    with pytest.raises(NotFound, match=r"\b9191\b"):
        tasks.complete(app, 9191, "sally", {})
    with pytest.raises(NotFound, match=r"\b9191\b"):
        tasks.claim(app, 9191, "sally")
    with pytest.raises(NotFound, match=r"\b9191\b"):
        tasks.get_task(app, 9191)
    inst = instances.start(app, "svc_order", data={"initiator": "sally"})
    task = only_task(app, inst.id, "enter")
    with pytest.raises(NotFound, match="ghost"):
        tasks.complete(app, task.id, "ghost", VALID_ORDER)
    with pytest.raises(NotFound, match="ghost"):
        tasks.list_tasks(app, user="ghost")
    with pytest.raises(NotFound, match="ghost"):
        users.grant(app, "ghost", "sales")
    with pytest.raises(NotFound, match="no_such_process"):
        instances.start(app, "no_such_process")


# --------------------------------------------------------------------------------------- routing


def test_task_routing_by_group_lane_several_groups_and_initiator(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally"}, user="sally")
    enter = only_task(app, inst.id, "enter")
    assert (enter.role, enter.assignee, enter.candidate_roles) == ("sales", None, [])
    assert (inst.id, "enter") in inbox(app, "sally") and (inst.id, "enter") in inbox(app, "sam")
    assert inbox(app, "sponsor") == set() and inbox(app, "nobody") == set()

    tasks.complete(app, enter.id, "sam", VALID_ORDER)
    approve = only_task(app, inst.id, "approve")
    assert approve.role == "Sponsor"  # the lane's name: the task has no candidate groups
    assert inbox(app, "sponsor") == {(inst.id, "approve")}
    assert inbox(app, "sally") == set()
    with pytest.raises(Forbidden):
        tasks.complete(app, approve.id, "sally", {})

    tasks.complete(app, approve.id, "sponsor", {"approved": True})
    ship = only_task(app, inst.id, "ship")
    assert ship.role == "warehouse"
    assert sorted(ship.candidate_roles) == ["logistics", "warehouse"]
    assert sorted(ship.to_dict()["roles"]) == ["logistics", "warehouse"]
    # Members of either group see it and may act; members of neither do not.
    assert (inst.id, "ship") in inbox(app, "wendy")
    assert (inst.id, "ship") in inbox(app, "lou")
    assert inbox(app, "sally") == set()
    with pytest.raises(Forbidden):
        tasks.complete(app, ship.id, "olga", {})
    tasks.complete(app, ship.id, "lou", {"carrier": "DHL"})

    confirm = only_task(app, inst.id, "confirm")
    assert confirm.assignee == "sally"  # ${initiator} from the instance data
    assert (inst.id, "confirm") in inbox(app, "sally")
    assert (inst.id, "confirm") not in inbox(app, "sam")  # assigned to someone else
    with pytest.raises(Forbidden):
        tasks.complete(app, confirm.id, "sam", {})
    tasks.complete(app, confirm.id, "sally", {})
    done = instances.show(app, inst.id)
    assert done.state == "completed" and done.tasks == []
    assert done.data["total"] == 30 and done.data["carrier"] == "DHL" and done.data["approved"] is True


def test_initiator_assignee_without_data_leaves_the_task_to_its_roles(app, deployed):
    inst = instances.start(app, "svc_order", data={}, user="sally")
    tasks.complete(app, only_task(app, inst.id, "enter").id, "sally", VALID_ORDER)
    tasks.complete(app, only_task(app, inst.id, "approve").id, "sponsor", {})
    tasks.complete(app, only_task(app, inst.id, "ship").id, "wendy", {})
    confirm = only_task(app, inst.id, "confirm")
    # No `initiator` in the data: nobody named "initiator" gets the task; the sales role does.
    assert confirm.assignee is None
    assert (inst.id, "confirm") in inbox(app, "sam")
    tasks.complete(app, confirm.id, "sam", {})
    assert instances.show(app, inst.id).state == "completed"


def test_role_membership_is_resolved_at_read_time(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally"})
    enter = only_task(app, inst.id, "enter")
    assert inbox(app, "nobody") == set()
    with pytest.raises(Forbidden):
        tasks.complete(app, enter.id, "nobody", VALID_ORDER)

    users.grant(app, "nobody", "sales")
    assert inbox(app, "nobody") == {(inst.id, "enter")}
    users.revoke(app, "nobody", "sales")
    assert inbox(app, "nobody") == set()
    with pytest.raises(Forbidden):
        tasks.complete(app, enter.id, "nobody", VALID_ORDER)

    users.grant(app, "nobody", "sales")
    tasks.complete(app, enter.id, "nobody", VALID_ORDER)
    assert only_task(app, inst.id, "approve").role == "Sponsor"
    with pytest.raises(NotFound):
        users.revoke(app, "nobody", "not-held")


def test_admins_see_and_may_work_every_task(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally"})
    assert (inst.id, "enter") in inbox(app, "admin")
    tasks.complete(app, only_task(app, inst.id, "enter").id, "admin", VALID_ORDER)
    assert only_task(app, inst.id, "approve")


def test_claim_takes_the_task_out_of_other_members_lists(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally"})
    tasks.complete(app, only_task(app, inst.id, "enter").id, "sally", VALID_ORDER)
    tasks.complete(app, only_task(app, inst.id, "approve").id, "sponsor", {})
    ship = only_task(app, inst.id, "ship")
    for member in ("wendy", "lou", "lara"):
        assert (inst.id, "ship") in inbox(app, member)

    claimed = tasks.claim(app, ship.id, "lou")
    assert claimed.assignee == "lou" and claimed.state == "ready"
    assert (inst.id, "ship") in inbox(app, "lou")
    assert (inst.id, "ship") not in inbox(app, "lara")
    assert (inst.id, "ship") not in inbox(app, "wendy")
    with pytest.raises(Forbidden, match="lou"):
        tasks.complete(app, ship.id, "wendy", {})
    with pytest.raises(Conflict, match="claimed by 'lou'"):  # taken: HTTP 409
        tasks.claim(app, ship.id, "lara")
    assert tasks.get_task(app, ship.id).assignee == "lou"

    tasks.complete(app, ship.id, "lou", {})
    done = tasks.get_task(app, ship.id)
    assert (done.state, done.completed_by) == ("completed", "lou")
    claims = [e for e in instances.history(app, inst.id) if e.type == "claimed"]
    assert [(e.actor, e.task_id, e.element_id) for e in claims] == [("lou", ship.id, "ship")]


# ----------------------------------------------------------------------------------------- forms


def test_invalid_form_data_names_every_bad_field_and_writes_nothing(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally"})
    enter = only_task(app, inst.id, "enter")
    before_row = instance_row(app, inst.id)
    before_events = instances.history(app, inst.id)

    bad = {"quantity": 0, "lines": [{"sku": "A-1"}, {"priority": "urgent"}]}
    with pytest.raises(InvalidInput) as info:
        tasks.complete(app, enter.id, "sally", bad)
    assert set(info.value.fields) == {"customer", "quantity", "lines/1/sku", "lines/1/priority"}
    with pytest.raises(InvalidInput) as info:
        tasks.complete(app, enter.id, "sally", {"customer": "ACME", "quantity": "three"})
    assert set(info.value.fields) == {"quantity"}
    with pytest.raises(InvalidInput):
        tasks.complete(app, enter.id, "sally", ["not", "an", "object"])

    after_row = instance_row(app, inst.id)
    assert instances.history(app, inst.id) == before_events
    assert (after_row.revision, after_row.event_seq, after_row.event_hash, after_row.state) == (
        before_row.revision, before_row.event_seq, before_row.event_hash, before_row.state)
    assert after_row.data == before_row.data
    task = tasks.get_task(app, enter.id)
    assert (task.state, task.completed_by) == ("ready", None)

    # The same task still completes with valid data afterwards (nothing half-done in a cache).
    tasks.complete(app, enter.id, "sally", VALID_ORDER)
    assert instances.show(app, inst.id).data["customer"] == "ACME"
    assert only_task(app, inst.id, "approve")


def test_a_form_named_by_the_form_property(app, deployed):
    inst = instances.start(app, "svc_form_property", user="clerk")
    note = only_task(app, inst.id, "note")
    assert note.form == "svc_note_form"
    with pytest.raises(InvalidInput) as info:
        tasks.complete(app, note.id, "clerk", {"note": "ok", "tags": ["a", "b", "c"], "extra": 1})
    assert set(info.value.fields) == {"note", "tags", "extra"}
    with restarted(app) as other:  # the form is rebuilt from the stored deployment too
        with pytest.raises(InvalidInput) as info:
            tasks.complete(other, note.id, "clerk", {})
        assert set(info.value.fields) == {"note"}
        tasks.complete(other, note.id, "clerk", {"note": "all good", "tags": ["x"]})
    done = instances.show(app, inst.id)
    assert done.state == "completed" and done.data["note"] == "all good"


def test_completing_a_task_that_is_not_ready_is_a_conflict(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally"})
    enter = only_task(app, inst.id, "enter")
    tasks.complete(app, enter.id, "sally", VALID_ORDER)
    events = instances.history(app, inst.id)
    with pytest.raises(Conflict, match=str(enter.id)):
        tasks.complete(app, enter.id, "sally", VALID_ORDER)
    with pytest.raises(Conflict):
        tasks.claim(app, enter.id, "sally")
    assert instances.history(app, inst.id) == events


# ---------------------------------------------------------------------------------------- cancel


def test_cancel_needs_a_reason_closes_open_tasks_and_blocks_them(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally"})
    enter = only_task(app, inst.id, "enter")
    for reason in ("", "   "):
        with pytest.raises(InvalidInput) as info:
            instances.cancel(app, inst.id, reason=reason, user="admin")
        assert "reason" in info.value.fields
    assert instances.show(app, inst.id).state == "running"
    assert len(instances.history(app, inst.id)) == 1

    cancelled = instances.cancel(app, inst.id, reason="customer withdrew", user="admin")
    assert cancelled.state == "cancelled"
    assert cancelled.cancel_reason == "customer withdrew"
    assert cancelled.ended_at is not None
    assert cancelled.tasks == []
    assert tasks.get_task(app, enter.id).state == "cancelled"
    assert tasks.list_tasks(app, instance_id=inst.id) == []
    assert inbox(app, "sally") == set()

    with pytest.raises(Conflict):
        tasks.complete(app, enter.id, "sally", VALID_ORDER)
    with pytest.raises(Conflict):
        instances.cancel(app, inst.id, reason="again")
    last = instances.history(app, inst.id)[-1]
    assert (last.type, last.actor, last.payload["reason"]) == ("cancelled", "admin", "customer withdrew")
    assert [i.id for i in instances.list_instances(app, state="cancelled")] == [inst.id]


# ---------------------------------------------------------------------------------------- errors


def test_a_failing_script_puts_the_instance_in_error_and_records_it(app, deployed):
    inst = instances.start(app, "svc_script_error", user="clerk")
    prepare = only_task(app, inst.id, "prepare")
    result = tasks.complete(app, prepare.id, "clerk", {"amount": 3})
    assert result.state == "error"

    shown = instances.show(app, inst.id)
    assert shown.state == "error"
    assert shown.error["element"] == "compute"
    assert shown.error["name"] == "Compute price"
    assert "rate" in shown.error["message"]
    assert shown.tasks == []
    assert tasks.get_task(app, prepare.id).state == "completed"

    events = instances.history(app, inst.id)
    assert [e.type for e in events] == ["started", "completed"]
    assert events[-1].payload["error"]["element"] == "compute"
    assert_valid_chain(events)
    assert [i.id for i in instances.list_instances(app, state="error")] == [inst.id]
    # An instance in error cannot be worked on, but it can be cancelled.
    assert instances.cancel(app, inst.id, reason="bad model").state == "cancelled"


# ---------------------------------------------------------------------------------------- phases


def test_phases_follow_the_element_and_enclosing_subprocess_properties(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally"})
    seen = [(inst.phase, [(t.element_id, t.phase) for t in inst.tasks])]
    for element, user, data in (("enter", "sally", VALID_ORDER), ("approve", "sponsor", {}), ("ship", "wendy", {})):
        tasks.complete(app, only_task(app, inst.id, element).id, user, data)
        shown = instances.show(app, inst.id)
        seen.append((shown.phase, [(t.element_id, t.phase) for t in shown.tasks]))
    assert seen == [
        ("Intake", [("enter", "Intake")]),
        ("Approval", [("approve", "Approval")]),
        ("Fulfilment", [("ship", "Fulfilment")]),  # ship has no phase of its own: its sub-process's
        ("Closing", [("confirm", "Closing")]),
    ]
    # The phase is stored, not recomputed by the object that ran the step.
    with restarted(app) as other:
        assert instances.show(other, inst.id).phase == "Closing"
    assert [i.phase for i in instances.list_instances(app)] == ["Closing"]


def test_a_process_without_phases_has_none(app, deployed):
    inst = instances.start(app, "svc_versioned", user="rita")
    assert inst.phase is None
    assert [t.phase for t in inst.tasks] == [None]


# ---------------------------------------------------------------------------------------- events


def drive_order(app_for_step, business_key: str) -> int:
    """svc_order from start to completion; `app_for_step()` gives the application for each command."""
    inst = instances.start(app_for_step(), "svc_order", data={"initiator": "sally"},
                           business_key=business_key, user="sally")
    steps = [("enter", "sam", VALID_ORDER), ("approve", "sponsor", {"approved": True}), ("ship", "lou", {}),
             ("confirm", "sally", {"rating": 5})]
    for element, user, data in steps:
        application = app_for_step()
        task = only_task(application, inst.id, element)
        if element == "ship":
            tasks.claim(application, task.id, user)
            application = app_for_step()
        tasks.complete(application, task.id, user, data)
    return inst.id


def test_one_event_per_command_with_a_valid_hash_chain(app, deployed):
    instance_id = drive_order(lambda: app, "EV-1")
    events = instances.history(app, instance_id)
    assert [(e.type, e.element_id, e.actor) for e in events] == [
        ("started", None, "sally"),
        ("completed", "enter", "sam"),
        ("completed", "approve", "sponsor"),
        ("claimed", "ship", "lou"),
        ("completed", "ship", "lou"),
        ("completed", "confirm", "sally"),
    ]
    assert_valid_chain(events)
    assert events[0].payload["data"] == {"initiator": "sally"}
    assert events[0].payload["business_key"] == "EV-1"
    assert events[1].payload["data"] == VALID_ORDER
    assert all(e.at.tzinfo is not None for e in events)
    head = instance_row(app, instance_id)
    assert (head.event_seq, head.event_hash) == (len(events), events[-1].hash)
    # A changed payload no longer matches its stored hash.
    tampered = events[1]
    assert tampered.hash != event_hash(tampered.prev_hash, instance_id=tampered.instance_id, seq=tampered.seq,
                                       at=tampered.at, actor=tampered.actor, type=tampered.type,
                                       task_id=tampered.task_id, element_id=tampered.element_id,
                                       payload={**tampered.payload, "data": {"quantity": 300}})


def _summary(app: Phasegate, instance_id: int):
    shown = instances.show(app, instance_id).to_dict()
    events = instances.history(app, instance_id)
    return (
        {k: shown[k] for k in ("key", "version", "state", "phase", "error", "tasks")},
        shown["data"],
        [(e.seq, e.type, e.actor, e.element_id, e.payload.get("path"), e.payload.get("data")) for e in events],
    )


def test_a_new_application_object_mid_instance_continues_to_the_same_result(app, deployed):
    warm = drive_order(lambda: app, "WARM")

    created: list[Phasegate] = []

    def new_application() -> Phasegate:
        application = fresh(app)
        created.append(application)
        return application

    try:
        cold = drive_order(new_application, "COLD")
    finally:
        for application in created:
            application.dispose()
    assert len(created) >= 6
    warm_summary, cold_summary = _summary(app, warm), _summary(app, cold)
    assert warm_summary[0]["state"] == "completed"
    assert warm_summary == cold_summary
    assert instances.show(app, cold).data["total"] == 30
    assert_valid_chain(instances.history(app, cold))


def test_restart_between_start_and_first_completion(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally"})
    with restarted(app) as other:
        enter = only_task(other, inst.id, "enter")
        tasks.complete(other, enter.id, "sally", VALID_ORDER)
        assert only_task(other, inst.id, "approve")
    # The first application's cached workflow is stale now: it must not be used.
    tasks.complete(app, only_task(app, inst.id, "approve").id, "sponsor", {})
    assert only_task(app, inst.id, "ship")
    assert [e.type for e in instances.history(app, inst.id)] == ["started", "completed", "completed"]


# ---------------------------------------------------------------------------------------- timers


def test_timer_waits_until_due_and_fire_due_timers_moves_it_on(app, deployed, frozen_clock):
    started_at = frozen_clock.now()
    inst = instances.start(app, "svc_timer", user="olga")
    assert inst.state == "running" and inst.tasks == []
    assert instance_row(app, inst.id).wake_at == started_at + timedelta(hours=1)

    assert instances.fire_due_timers(app) == []
    frozen_clock.advance(minutes=59)
    assert instances.fire_due_timers(app) == []
    assert ready(app, inst.id) == {}

    frozen_clock.advance(hours=2)
    # A new application object: the waiting timer is restored from the stored rows.
    with restarted(app) as worker:
        assert instances.fire_due_timers(worker) == [inst.id]
        assert instances.fire_due_timers(worker) == []
    follow_up = only_task(app, inst.id, "follow_up")
    assert follow_up.role == "ops"
    assert instance_row(app, inst.id).wake_at is None
    last = instances.history(app, inst.id)[-1]
    assert (last.type, last.actor, last.at) == ("timer", "timer", frozen_clock.now())

    tasks.complete(app, follow_up.id, "olga", {})
    assert instances.show(app, inst.id).state == "completed"
    assert_valid_chain(instances.history(app, inst.id))


def test_a_cancelled_instance_is_not_woken_by_its_timer(app, deployed, frozen_clock):
    inst = instances.start(app, "svc_timer", user="olga")
    instances.cancel(app, inst.id, reason="not needed")
    frozen_clock.advance(hours=2)
    assert instances.fire_due_timers(app) == []
    assert instances.show(app, inst.id).state == "cancelled"


# ----------------------------------------------------------------------------------- performance


def test_warm_cache_task_completion_takes_at_most_ten_statements(app, deployed):
    inst = instances.start(app, "svc_order", data={"initiator": "sally"})
    enter = only_task(app, inst.id, "enter")
    counter = StatementCounter(app.engine)
    counter.keep_text = True
    try:
        tasks.complete(app, enter.id, "sally", VALID_ORDER)
        first = counter.count
        approve = only_task(app, inst.id, "approve")
        counter.reset()
        tasks.complete(app, approve.id, "sponsor", {})  # makes a task with several candidate roles
        second = counter.count
    finally:
        counter.close()
    assert 0 < first <= 10, counter.statements
    assert 0 < second <= 10, counter.statements
    assert only_task(app, inst.id, "ship")


# ----------------------------------------------------------------------------------------- users


def test_users_add_grant_revoke_and_list(app):
    user = users.add_user(app, "newbie", ["sales", "Project Manager"], display_name="New Bie")
    assert (user.name, user.display_name, sorted(user.roles)) == ("newbie", "New Bie", ["Project Manager", "sales"])
    with pytest.raises(Conflict):
        users.add_user(app, "newbie", [])
    with pytest.raises(InvalidInput):
        users.add_user(app, "bad name!", [])
    assert sorted(users.grant(app, "newbie", "ops").roles) == ["Project Manager", "ops", "sales"]
    assert sorted(users.revoke(app, "newbie", "sales").roles) == ["Project Manager", "ops"]
    listed = {u.name: sorted(u.roles) for u in users.list_users(app)}
    assert listed["newbie"] == ["Project Manager", "ops"]
    assert set(PEOPLE) <= set(listed)
    with pytest.raises(NotFound, match="ghost"):
        users.get_user(app, "ghost")
