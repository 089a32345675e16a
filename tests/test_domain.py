"""Unit tests of engine.domain without a database: routing, forms, the event hash chain, issues."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engine.domain import routing
from engine.domain.errors import InvalidInput, Issue, ModelRejected
from engine.domain.events import GENESIS, event_hash
from engine.domain.forms import check_schema, form_schema, validate_submission

READY_AT = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


# ----------------------------------------------------------------------------------- routing


@pytest.mark.parametrize("text, expected", [
    ("PT1H", timedelta(hours=1)),
    ("PT90M", timedelta(minutes=90)),
    ("PT1.5S", timedelta(seconds=1.5)),
    ("P1D", timedelta(days=1)),
    ("P2W", timedelta(weeks=2)),
    ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
    ("P1M", timedelta(days=30)),  # months approximated as 30 days
    ("P1Y", timedelta(days=365)),  # years approximated as 365 days
    ("P1Y2M3W4DT5H6M7S", timedelta(days=365 + 60 + 4, weeks=3, hours=5, minutes=6, seconds=7)),
    ("  pt2h ", timedelta(hours=2)),  # case and surrounding blanks do not matter
])
def test_parse_duration_accepts_iso_8601_durations(text, expected):
    assert routing.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", None, "P", "PT", "1H", "PT1H30", "P1H", "one hour", "2026-01-05", "PT-1H"])
def test_parse_duration_rejects_what_is_not_a_duration(text):
    assert routing.parse_duration(text) is None


def test_resolve_due_from_a_duration_counts_from_when_the_task_became_ready():
    assert routing.resolve_due("P2D", READY_AT) == READY_AT + timedelta(days=2)
    assert routing.resolve_due("PT30M", READY_AT) == READY_AT + timedelta(minutes=30)


def test_resolve_due_from_a_date_time_is_timezone_aware():
    assert routing.resolve_due("2026-03-01T12:00:00Z", READY_AT) == datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    offset = routing.resolve_due("2026-03-01T12:00:00+02:00", READY_AT)
    assert offset == datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    # A naive date (or date-time) is taken as UTC, so it compares with aware timestamps.
    naive = routing.resolve_due("2026-03-01", READY_AT)
    assert naive == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert naive.tzinfo is not None


@pytest.mark.parametrize("due", [None, "", "next week", "P"])
def test_resolve_due_without_a_usable_value_gives_no_due_date(due):
    assert routing.resolve_due(due, READY_AT) is None


def test_resolve_assignee_expression_reads_the_named_data_field():
    assert routing.resolve_assignee("${initiator}", {"initiator": "alice"}) == "alice"
    assert routing.resolve_assignee("${ initiator }", {"initiator": "alice"}) == "alice"
    # Camunda writes the bare name too.
    assert routing.resolve_assignee("initiator", {"initiator": "carol"}) == "carol"
    # Non-string values become a user name text.
    assert routing.resolve_assignee("${owner}", {"owner": 42}) == "42"


def test_resolve_assignee_expression_without_data_leaves_the_task_to_its_roles():
    assert routing.resolve_assignee("${initiator}", {}) is None
    assert routing.resolve_assignee("${initiator}", {"initiator": None}) is None
    assert routing.resolve_assignee("${initiator}", {"initiator": ""}) is None


def test_resolve_assignee_literal_user_name():
    assert routing.resolve_assignee("bob", {}) == "bob"
    assert routing.resolve_assignee("  bob ", {"initiator": "alice"}) == "bob"
    assert routing.resolve_assignee(None, {"initiator": "alice"}) is None
    assert routing.resolve_assignee("", {"initiator": "alice"}) is None


def test_resolve_assignee_flagged_expression_never_becomes_a_user_name():
    # The loader translates ${initiator} to the expression `initiator` and flags it.
    assert routing.resolve_assignee("initiator", {"initiator": "alice"}, is_expression=True) == "alice"
    assert routing.resolve_assignee("initiator", {}, is_expression=True) is None
    assert routing.resolve_assignee("owner.name", {"owner": {"name": "dora"}}, is_expression=True) == "dora"
    assert routing.resolve_assignee("owner.name", {"owner": "dora"}, is_expression=True) is None
    assert routing.resolve_assignee("owner.name", {}, is_expression=True) is None


def test_resolve_assignee_flagged_literal_is_the_user_even_if_data_has_that_name():
    assert routing.resolve_assignee("bob", {"bob": "mallory"}, is_expression=False) == "bob"
    assert routing.resolve_assignee("bob", {}, is_expression=False) == "bob"


def test_route_passes_the_expression_flag():
    assert routing.route(["sales"], "initiator", None, {}, READY_AT, assignee_expression=True).assignee is None
    assert routing.route(["sales"], "initiator", None, {"initiator": "al"}, READY_AT, True).assignee == "al"
    assert routing.route(["sales"], "bob", None, {"bob": "x"}, READY_AT, False).assignee == "bob"


def test_route_single_role():
    r = routing.route(["sales"], None, None, {}, READY_AT)
    assert r == routing.Routing(role="sales", candidate_roles=[], assignee=None, due=None)


def test_route_several_roles_keeps_the_first_as_role_and_all_as_candidates():
    roles = ["warehouse", "logistics"]
    r = routing.route(roles, None, None, {}, READY_AT)
    assert r.role == "warehouse"
    assert r.candidate_roles == ["warehouse", "logistics"]
    r.candidate_roles.append("x")
    assert roles == ["warehouse", "logistics"]  # the element's list is not shared


def test_route_without_roles_assignee_and_due():
    r = routing.route([], "${initiator}", "PT4H", {"initiator": "alice"}, READY_AT)
    assert r.role is None
    assert r.candidate_roles == []
    assert r.assignee == "alice"
    assert r.due == READY_AT + timedelta(hours=4)


# ------------------------------------------------------------------------------------- forms

ORDER_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["customer", "quantity"],
    "properties": {
        "customer": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1}, "email": {"type": "string"}},
        },
        "quantity": {"type": "integer", "minimum": 1},
        "requirements": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title"],
                "properties": {"title": {"type": "string"}, "priority": {"enum": ["low", "high"]}},
            },
        },
    },
    "uiSchema": {"quantity": {"ui:widget": "updown"}},
}


def _fields(form, data) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as info:
        validate_submission(form, data, "order")
    assert info.value.details["fields"] == info.value.fields
    return info.value.fields


def test_valid_submission_is_returned_unchanged():
    data = {"customer": {"name": "ACME"}, "quantity": 2, "requirements": [{"title": "fast", "priority": "high"}]}
    assert validate_submission(ORDER_FORM, data, "order") == data


def test_read_only_fields_are_dropped_from_a_submission():
    form = {"type": "object", "properties": {"iteration": {"type": "integer", "readOnly": True},
                                             "notes": {"type": "string"}}}
    assert validate_submission(form, {"iteration": 99, "notes": "ok"}) == {"notes": "ok"}


def test_without_a_form_any_object_is_accepted():
    assert validate_submission(None, {"anything": [1, 2]}) == {"anything": [1, 2]}


@pytest.mark.parametrize("data", [[1, 2], "text", 3, None])
def test_submission_must_be_an_object_even_without_a_form(data):
    with pytest.raises(InvalidInput) as info:
        validate_submission(None, data)
    assert "(form)" in info.value.fields
    with pytest.raises(InvalidInput):
        validate_submission(ORDER_FORM, data)


def test_required_fields_are_named_themselves_not_their_parent():
    fields = _fields(ORDER_FORM, {})
    assert set(fields) == {"customer", "quantity"}
    assert all("required" in msgs[0] for msgs in fields.values())


def test_nested_required_field_path():
    fields = _fields(ORDER_FORM, {"customer": {}, "quantity": 1})
    assert set(fields) == {"customer/name"}


def test_array_item_errors_name_the_index_and_property():
    data = {
        "customer": {"name": "ACME"},
        "quantity": 1,
        "requirements": [{"title": "a"}, {"title": "b"}, {"title": "c", "priority": "urgent"}, {}],
    }
    fields = _fields(ORDER_FORM, data)
    assert set(fields) == {"requirements/2/priority", "requirements/3/title"}
    assert "urgent" in fields["requirements/2/priority"][0]


def test_every_bad_field_is_reported_at_once_and_the_message_names_the_form():
    with pytest.raises(InvalidInput) as info:
        validate_submission(ORDER_FORM, {"customer": {"name": ""}, "quantity": 0}, "order")
    assert set(info.value.fields) == {"customer/name", "quantity"}
    assert "form 'order'" in info.value.message
    assert "quantity" in info.value.message and "customer/name" in info.value.message


def test_wrong_types_are_reported_per_field():
    fields = _fields(ORDER_FORM, {"customer": "ACME", "quantity": "two"})
    assert set(fields) == {"customer", "quantity"}


def test_properties_that_are_not_allowed_are_named_themselves():
    form = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "inner": {"type": "object", "properties": {"x": {"type": "integer"}},
                                                          "additionalProperties": False}},
        "patternProperties": {"^note_": {"type": "string"}},
        "additionalProperties": False,
    }
    assert validate_submission(form, {"a": "x", "note_1": "fine", "inner": {"x": 1}}) is not None
    fields = _fields(form, {"a": "x", "note_1": "fine", "b": 1, "c": 2, "inner": {"x": 1, "y": 2}})
    assert set(fields) == {"b", "c", "inner/y"}


def test_required_names_with_quotes_are_named_exactly():
    form = {"type": "object", "required": ["it's", "plain"]}
    assert set(_fields(form, {})) == {"it's", "plain"}


def test_form_schema_drops_the_ui_schema_only():
    schema = form_schema(ORDER_FORM)
    assert "uiSchema" not in schema
    assert schema["properties"] == ORDER_FORM["properties"]
    assert "uiSchema" in ORDER_FORM  # the stored form is not modified


def test_check_schema():
    assert check_schema(ORDER_FORM) is None
    assert check_schema({"type": "no-such-type"}) is not None
    assert check_schema({"type": "object", "required": "name"}) is not None


# ------------------------------------------------------------------------------------ events

AT = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def _event(prev: str, **overrides) -> str:
    fields = dict(instance_id=1, seq=1, at=AT, actor="alice", type="started", task_id=None, element_id=None,
                  payload={"data": {"a": 1, "b": [1, 2]}})
    fields.update(overrides)
    return event_hash(prev, **fields)


def test_event_hash_is_a_deterministic_sha256_hex_digest():
    first = _event(GENESIS)
    assert first == _event(GENESIS)
    assert len(first) == 64 and int(first, 16) >= 0
    assert GENESIS == "0" * 64


def test_event_hash_ignores_payload_key_order():
    a = _event(GENESIS, payload={"x": 1, "y": {"p": 1, "q": 2}})
    b = _event(GENESIS, payload={"y": {"q": 2, "p": 1}, "x": 1})
    assert a == b


@pytest.mark.parametrize("override", [
    {"instance_id": 2}, {"seq": 2}, {"at": AT + timedelta(microseconds=1)}, {"actor": "bob"},
    {"type": "completed"}, {"task_id": 7}, {"element_id": "review"}, {"payload": {"data": {"a": 2, "b": [1, 2]}}},
    {"payload": {"data": {"a": 1, "b": [2, 1]}}},
])
def test_event_hash_covers_every_field(override):
    assert _event(GENESIS, **override) != _event(GENESIS)


def test_event_hash_chains_on_the_previous_hash():
    h1 = _event(GENESIS)
    h2 = _event(h1, seq=2, type="completed", task_id=1, element_id="review")
    # The same second event after a different first one hashes differently...
    other_h1 = _event(GENESIS, actor="mallory")
    assert _event(other_h1, seq=2, type="completed", task_id=1, element_id="review") != h2
    # ...so changing an early event breaks every later hash.
    h3 = _event(h2, seq=3, type="cancelled", payload={"reason": "x"})
    chain = [h1, h2, h3]
    assert len(set(chain)) == 3
    rebuilt = []
    prev = GENESIS
    for seq, (kind, task, element, payload) in enumerate(
            [("started", None, None, {"data": {"a": 1, "b": [1, 2]}}), ("completed", 1, "review", {"data": {"a": 1, "b": [1, 2]}}),
             ("cancelled", None, None, {"reason": "x"})], start=1):
        prev = _event(prev, seq=seq, type=kind, task_id=task, element_id=element, payload=payload)
        rebuilt.append(prev)
    assert rebuilt == chain


def test_event_hash_of_an_equivalent_time_in_another_zone_differs():
    # The hash covers the ISO text: the engine must store and re-read UTC for the chain to verify.
    other_zone = AT.astimezone(timezone(timedelta(hours=2)))
    assert other_zone == AT
    assert _event(GENESIS, at=other_zone) != _event(GENESIS)


# ------------------------------------------------------------------------------------ issues


def test_issue_formats_path_line_element_message():
    issue = Issue("processes/order.bpmn", 12, "approve", "no outgoing sequence flow")
    assert str(issue) == "processes/order.bpmn:12: approve: no outgoing sequence flow"
    assert issue.severity == "error"


def test_issue_without_line_or_element():
    assert str(Issue("order.bpmn", None, None, "not well-formed")) == "order.bpmn:0: -: not well-formed"


def test_issue_to_dict():
    issue = Issue("order.bpmn", 3, "t1", "bad", severity="warning")
    assert issue.to_dict() == {"path": "order.bpmn", "line": 3, "element": "t1", "message": "bad",
                               "severity": "warning"}


def test_model_rejected_keeps_errors_and_drops_warnings_from_its_message():
    error = Issue("a.bpmn", 4, "t1", "broken")
    warning = Issue("a.bpmn", 5, "t2", "odd", severity="warning")
    exc = ModelRejected([warning, error])
    assert exc.issues == [error]
    assert exc.message == "a.bpmn:4: t1: broken"
    assert exc.details["issues"] == [error.to_dict()]
    assert exc.code == "model_rejected"
    # Only warnings: they are what is reported.
    assert ModelRejected([warning]).issues == [warning]
