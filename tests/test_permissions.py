"""Who may do what (engine.domain.permissions): pure rules, no database."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.domain.errors import Forbidden, InvalidInput
from engine.domain.inbox import TaskFilter, page_window, repository_filters, week_bounds
from engine.domain.permissions import (
    Action,
    Actor,
    allowed,
    may_read_instance,
    may_see_task,
    may_start,
    permissions_of,
    require,
    start_roles,
)

ADMIN = Actor("ann", {"admin"})
DESIGNER = Actor("dan", {"designer"})
AUDITOR = Actor("aud", {"auditor"})
APPROVER = Actor("sam", {"Sponsor"})
NOBODY = Actor("nob", set())
AUDITING_APPROVER = Actor("ava", {"auditor", "Sponsor"})

A = Action
EVERY = set(Action)
# Role-level permissions: what each kind of actor's roles permit.
EXPECTED = {
    "admin": (ADMIN, EVERY),
    "designer": (DESIGNER, {A.READ_DEFINITIONS, A.READ_INSTANCE, A.READ_TASKS, A.OWN_TOKENS, A.CHECK, A.DEPLOY,
                            A.WORK_ON_TASKS, A.CLOSE_ACTION_ITEMS}),
    "auditor": (AUDITOR, {A.READ_DEFINITIONS, A.READ_INSTANCE, A.READ_TASKS, A.OWN_TOKENS, A.LIST_INSTANCES,
                          A.READ_USERS, A.PORTFOLIO}),
    "approver": (APPROVER, {A.READ_DEFINITIONS, A.READ_INSTANCE, A.READ_TASKS, A.OWN_TOKENS, A.WORK_ON_TASKS,
                            A.CLOSE_ACTION_ITEMS, A.START}),
    "no roles": (NOBODY, {A.READ_DEFINITIONS, A.READ_INSTANCE, A.READ_TASKS, A.OWN_TOKENS, A.WORK_ON_TASKS,
                          A.CLOSE_ACTION_ITEMS}),
    # Permissions add up: an auditor who is also an approver is not read-only.
    "auditor and approver": (AUDITING_APPROVER, {A.READ_DEFINITIONS, A.READ_INSTANCE, A.READ_TASKS, A.OWN_TOKENS,
                                                 A.LIST_INSTANCES, A.READ_USERS, A.WORK_ON_TASKS,
                                                 A.CLOSE_ACTION_ITEMS, A.START, A.PORTFOLIO}),
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_role_level_permissions(kind):
    who, permitted = EXPECTED[kind]
    for action in Action:
        assert allowed(who, action) is (action in permitted), (kind, action)
    assert permissions_of(who) == sorted(a.value for a in permitted)


def test_only_admins_manage_users_cancel_and_send_messages():
    for action in (A.MANAGE_USERS, A.CANCEL, A.SEND_MESSAGE):
        assert [k for k, (who, _) in EXPECTED.items() if allowed(who, action)] == ["admin"]


def test_require_raises_forbidden_naming_the_action():
    require(DESIGNER, A.DEPLOY)
    with pytest.raises(Forbidden) as refused:
        require(AUDITOR, A.DEPLOY)
    assert refused.value.details == {"action": "definitions:deploy", "roles": ["auditor"]}
    assert "deploy" in refused.value.message and refused.value.http_status == 403


def test_actions_accept_their_string_values():
    assert allowed(DESIGNER, "definitions:deploy") and not allowed(APPROVER, "definitions:deploy")
    with pytest.raises(ValueError):
        allowed(ADMIN, "definitions:drop")


def test_actor_properties():
    assert ADMIN.is_admin and not DESIGNER.is_admin
    assert AUDITOR.read_only and not AUDITING_APPROVER.read_only and not NOBODY.read_only
    assert AUDITING_APPROVER.process_roles == {"Sponsor"} and ADMIN.process_roles == frozenset()
    assert ADMIN.sees_everything and AUDITOR.sees_everything and not APPROVER.sees_everything
    assert Actor("x", ["a", "a"]).roles == frozenset({"a"})


@pytest.mark.parametrize("who, roles, assignee, expected", [
    (APPROVER, ["Sponsor"], None, True),
    (APPROVER, ["Board", "Sponsor"], None, True),  # any candidate role
    (APPROVER, ["Board"], None, False),
    (APPROVER, ["Board"], "sam", True),  # assigned to them
    (APPROVER, [], None, False),
    (ADMIN, ["Board"], None, True),
    (AUDITOR, ["Board"], "someone", True),
    (DESIGNER, ["Board"], None, False),
])
def test_who_sees_a_task(who, roles, assignee, expected):
    assert may_see_task(who, roles, assignee) is expected


@pytest.mark.parametrize("who, takes_part, expected", [
    (ADMIN, False, True), (AUDITOR, False, True), (APPROVER, True, True), (APPROVER, False, False),
    (DESIGNER, False, False), (NOBODY, True, True),
])
def test_who_reads_an_instance(who, takes_part, expected):
    assert may_read_instance(who, takes_part) is expected


def test_start_roles_come_from_the_role_property_or_the_lane():
    assert start_roles({"tag": "startEvent", "lane": "Project Manager"}) == ["Project Manager"]
    assert start_roles({"tag": "startEvent", "lane": "Office", "properties": {"role": "Sales, Ops"}}) == ["Sales", "Ops"]
    assert start_roles({"tag": "startEvent"}) == [] and start_roles(None) == []


@pytest.mark.parametrize("who, roles, expected", [
    (ADMIN, [], True), (ADMIN, ["Project Manager"], True),
    (Actor("pm", {"Project Manager"}), ["Project Manager"], True),
    (APPROVER, ["Project Manager"], False),
    (APPROVER, [], False),  # no start role: admins only
    (Actor("aud", {"auditor", "Project Manager"}), ["Project Manager"], True),
    (DESIGNER, ["Project Manager"], False),
])
def test_who_starts_a_process(who, roles, expected):
    assert may_start(who, roles) is expected


# -- the inbox filters (engine.domain.inbox) --------------------------------------------------------

def test_week_bounds_are_monday_to_monday_utc():
    start, end = week_bounds(datetime(2026, 3, 4, 15, 30, tzinfo=timezone.utc))  # a Wednesday
    assert (start, end) == (datetime(2026, 3, 2, tzinfo=timezone.utc), datetime(2026, 3, 9, tzinfo=timezone.utc))
    assert week_bounds(datetime(2026, 3, 2, tzinfo=timezone.utc))[0] == datetime(2026, 3, 2, tzinfo=timezone.utc)


def test_repository_filters():
    now = datetime(2026, 3, 4, 12, tzinfo=timezone.utc)
    assert repository_filters(TaskFilter(), now) == {"process": None, "phase": None, "gate": None, "role": None,
                                                     "due_after": None, "due_before": None, "search": None}
    assert repository_filters(TaskFilter(overdue=True), now)["due_before"] == now
    week = repository_filters(TaskFilter(due_this_week=True), now)
    assert (week["due_after"], week["due_before"]) == week_bounds(now)
    both = repository_filters(TaskFilter(due_this_week=True, overdue=True, q="  CRM  "), now)
    assert (both["due_after"], both["due_before"], both["search"]) == (week_bounds(now)[0], now, "CRM")


def test_unknown_sort_and_bad_pages_are_invalid_input():
    with pytest.raises(InvalidInput) as bad:
        TaskFilter(sort="random")
    assert "sort" in bad.value.fields
    assert page_window(3, 20) == (20, 40)
    with pytest.raises(InvalidInput) as bad:
        page_window(0, 1000)
    assert set(bad.value.fields) == {"page", "per_page"}
