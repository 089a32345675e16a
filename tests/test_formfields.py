"""web.formfields without a server: which widget each schema gets, posted array rows read back
into lists (strictly to submit, leniently for drafts), the array buttons, and where errors go."""
from __future__ import annotations

import json
from pathlib import Path

from werkzeug.datastructures import MultiDict

from engine.domain.forms import validate_submission
from web import formfields
from web.formfields import (
    apply_array_action,
    array_rows,
    fields_of,
    find_field,
    parse_draft,
    parse_submission,
    place_errors,
    row_field,
    with_checklist,
)

FORMS = Path(__file__).resolve().parent.parent / "forms"

TEAM_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["team"],
    "properties": {
        "team": {
            "type": "array", "title": "Team", "minItems": 1,
            "items": {"type": "object", "required": ["name", "role"], "properties": {
                "name": {"type": "string", "title": "Name", "minLength": 1},
                "role": {"type": "string", "title": "Role", "enum": ["lead", "member"]},
                "share": {"type": "number", "title": "Share", "minimum": 0, "maximum": 100},
                "remote": {"type": "boolean", "title": "Remote"},
            }},
        },
        "tags": {"type": "array", "title": "Tags", "maxItems": 2, "items": {"type": "string"}},
        "phases": {"type": "array", "title": "Phases", "uniqueItems": True,
                   "items": {"type": "string", "enum": ["Design", "Build", "Run"]}},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
    },
}


def widgets(form) -> dict[str, str]:
    return {f.path: f.widget for f in fields_of(form)}


def test_arrays_get_row_editors_checkboxes_or_json():
    assert widgets(TEAM_FORM) == {"team": "array", "tags": "array", "phases": "multiselect", "matrix": "json"}
    team = find_field(fields_of(TEAM_FORM), "team")
    assert (team.min_items, team.max_items, team.required) == (1, None, True)
    assert [c.path for c in team.columns] == ["team/*/name", "team/*/role", "team/*/share", "team/*/remote"]
    assert [c.widget for c in team.columns] == ["text", "select", "number", "checkbox"]
    row = row_field(team, 3)
    assert [c.path for c in row.children] == ["team/3/name", "team/3/role", "team/3/share", "team/3/remote"]
    assert row_field(team, formfields.ROW_TOKEN).children[0].dom_id == "f-team-__row__-name"
    tags = find_field(fields_of(TEAM_FORM), "tags")
    assert tags.item.widget == "text" and tags.max_items == 2 and [c.path for c in tags.columns] == ["tags/*"]
    assert find_field(fields_of(TEAM_FORM), "team/2/role").path == "team/2/role"


def test_every_flagship_array_has_an_editor():
    for path in sorted(FORMS.glob("crm_*.json")):
        if path.name.endswith(".uischema.json"):
            continue
        form = json.loads(path.read_text())
        ui = FORMS / path.name.replace(".json", ".uischema.json")
        if ui.exists():
            form["uiSchema"] = json.loads(ui.read_text())
        for name, spec in form["properties"].items():
            if spec.get("type") == "array":
                assert widgets(form)[name] in ("array", "multiselect"), (path.name, name)
    goals = json.loads((FORMS / "crm_project_goals.json").read_text())
    goals["uiSchema"] = json.loads((FORMS / "crm_project_goals.uischema.json").read_text())
    [field] = fields_of(goals)
    assert [c.widget for c in field.columns] == ["text", "text", "text", "text", "date"]


def test_required_arrays_show_min_items_rows_and_optional_ones_none():
    fields = fields_of(TEAM_FORM)
    team, tags = find_field(fields, "team"), find_field(fields, "tags")
    assert len(array_rows(team, {})) == 1
    assert len(array_rows(team, {"team": [{}, {}, {}]})) == 3
    assert array_rows(tags, {}) == []
    team.min_items = 3
    assert [i for i, _row in array_rows(team, {"team": [{"name": "a"}]})] == [0, 1, 2]


def test_submission_reads_rows_into_lists_and_leaves_empty_rows_out():
    fields = fields_of(TEAM_FORM)
    posted = MultiDict([
        ("team/0/name", "Ann"), ("team/0/role", "lead"), ("team/0/share", "50"), ("team/0/remote", "on"),
        ("_row", "team/0"), ("_row", "team/1"), ("team/1/name", ""), ("team/1/share", ""),  # an empty row
        ("_row", "team/2"), ("team/2/name", "Bob"), ("team/2/share", "lots"),
        ("_row", "tags/0"), ("tags/0", "crm"), ("_row", "tags/1"), ("tags/1", " "),
        ("phases", "Run"), ("phases", "Design"), ("phases", "Bogus"),
    ])
    data, errors = parse_submission(fields, posted)
    assert errors == {}
    assert data == {
        "team": [{"name": "Ann", "role": "lead", "share": 50, "remote": True},
                 {"name": "Bob", "share": "lots", "remote": False}],  # text that is no number: the schema says so
        "tags": ["crm"],
        "phases": ["Design", "Run"],  # in the form's order; unknown values dropped
    }
    with_errors = validate_error_fields(data)
    assert set(with_errors) == {"team/1/role", "team/1/share"}  # the rows as submitted


def validate_error_fields(data) -> dict:
    try:
        validate_submission(TEAM_FORM, data)
    except Exception as exc:  # InvalidInput
        return exc.fields
    return {}


def test_rows_without_markers_are_read_from_the_input_names():
    data, _errors = parse_submission(fields_of(TEAM_FORM), MultiDict([("team/1/name", "Bo"), ("team/0/name", "Al")]))
    assert [row["name"] for row in data["team"]] == ["Al", "Bo"]


def test_a_row_of_unticked_boxes_still_counts_in_a_draft():
    fields = fields_of(TEAM_FORM)
    draft = parse_draft(fields, MultiDict([("_row", "team/0"), ("_row", "team/1"), ("team/1/name", "Bo")]))
    assert draft["team"] == [{"name": None, "role": None, "share": None, "remote": False},
                             {"name": "Bo", "role": None, "share": None, "remote": False}]
    assert draft["tags"] == [] and draft["phases"] == []
    submitted, _ = parse_submission(fields, MultiDict([("_row", "team/0"), ("_row", "team/1"), ("team/1/name", "Bo")]))
    assert submitted["team"] == [{"name": "Bo", "remote": False}]


def test_an_optional_list_with_min_items_left_empty_is_left_out():
    form = {"type": "object", "properties": {"refs": {"type": "array", "minItems": 2, "items": {"type": "string"}}}}
    assert parse_submission(fields_of(form), MultiDict([("_row", "refs/0"), ("refs/0", "")]))[0] == {}
    form["required"] = ["refs"]
    assert parse_submission(fields_of(form), MultiDict([("_row", "refs/0"), ("refs/0", "")]))[0] == {"refs": []}


def test_add_and_remove_rows_keep_values_and_respect_limits():
    fields = fields_of(TEAM_FORM)
    data = parse_draft(fields, MultiDict([("_row", "team/0"), ("team/0/name", "Ann"), ("tags/0", "a")]))
    data, focus = apply_array_action(fields, data, "add:team")
    assert data["team"] == [{"name": "Ann", "role": None, "share": None, "remote": False}, {}]
    assert focus == "team/1/name"
    data["team"][1] = {"name": "Bob"}
    data, focus = apply_array_action(fields, data, "remove:team:0")
    assert data["team"] == [{"name": "Bob"}] and focus == "add:team"
    data, _focus = apply_array_action(fields, data, "remove:team:0")  # minItems 1: the last row stays
    assert data["team"] == [{"name": "Bob"}]
    data, focus = apply_array_action(fields, data, "add:tags")
    assert data["tags"] == ["a", None] and focus == "tags/1"
    data, focus = apply_array_action(fields, data, "add:tags")  # maxItems 2
    assert data["tags"] == ["a", None] and focus == "add:tags"
    unchanged = {"team": [{"name": "x"}]}
    assert apply_array_action(fields, unchanged, "add:nothing") == (unchanged, None)
    assert apply_array_action(fields, unchanged, "explode:team") == (unchanged, None)
    assert apply_array_action(fields, unchanged, "remove:team:x")[0] == unchanged


def test_add_to_a_list_shown_but_not_posted_keeps_the_shown_rows():
    fields = fields_of(TEAM_FORM)
    data, focus = apply_array_action(fields, {}, "add:team")  # the required first row was shown empty
    assert data["team"] == [{}, {}] and focus == "team/1/name"


def test_errors_go_to_the_row_field_or_the_nearest_shown_field():
    fields = fields_of(TEAM_FORM)
    data = {"team": [{"name": "Ann"}, {"name": ""}], "tags": ["a", "b", "c"]}
    placed, others = place_errors(fields, data, {
        "team/1/name": ["'' should be non-empty"], "team/0/role": ["'role' is a required property"],
        "tags": ["['a', 'b', 'c'] is too long"], "tags/7": ["bad"], "phases/0": ["'x' is not one of"],
        "criteria/quality_bar": ["not met"], "(form)": ["expected an object"],
    }, extra_paths=["criteria/quality_bar"])
    assert placed == {"team/1/name": ["'' should be non-empty"], "team/0/role": ["'role' is a required property"],
                      "tags": ["at most 2 rows", "bad"], "phases": ["'x' is not one of"],
                      "criteria/quality_bar": ["not met"]}
    assert others == {"(form)": ["expected an object"]}
    placed, _ = place_errors(fields, {"team": []}, {"team": ["[] should be non-empty"]})
    assert placed == {"team": ["add at least 1 row"]}


def test_the_gate_checklist_becomes_checkboxes_to_tick():
    items = [{"id": "tests_run", "text": "The suite ran.", "gate": "Quality review"}]
    fields = with_checklist(fields_of(TEAM_FORM), items)
    checklist = fields[-1]
    assert (checklist.path, checklist.widget, checklist.required) == ("checklist", "checklist", True)
    assert [(c.path, c.label, c.widget, c.required) for c in checklist.children] == [
        ("checklist/tests_run", "The suite ran.", "checkbox", True)]
    assert "“Quality review”" in checklist.description
    data, _ = parse_submission(fields, MultiDict([("team/0/name", "A"), ("checklist/tests_run", "on")]))
    assert data["checklist"] == {"tests_run": True}
    assert parse_submission(fields, MultiDict())[0]["checklist"] == {"tests_run": False}


def test_a_form_checklist_of_booleans_is_a_checklist_and_gains_the_gate_items():
    form = {"type": "object", "properties": {"checklist": {"type": "object", "title": "Before you submit", "properties": {
        "risks_reviewed": {"type": "boolean", "title": "Risks were reviewed"}}}}}
    [checklist] = fields_of(form)
    assert checklist.widget == "checklist" and checklist.label == "Before you submit"
    [checklist] = with_checklist(fields_of(form), [{"id": "risks_reviewed", "text": "ignored", "gate": "G"},
                                                   {"id": "signed", "text": "Signed off", "gate": "G"}])
    assert [(c.name, c.label, c.required) for c in checklist.children] == [
        ("risks_reviewed", "Risks were reviewed", True), ("signed", "Signed off", True)]
    other = {"type": "object", "properties": {"checklist": {"type": "array", "items": {"type": "string"}}}}
    assert [f.widget for f in with_checklist(fields_of(other), [{"id": "x", "text": "X", "gate": "G"}])] == ["array"]


def test_arrays_inside_array_rows():
    form = {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}}}}}
    fields = fields_of(form)
    posted = MultiDict([("_row", "items/0"), ("items/0/name", "a"), ("_row", "items/0/tags/0"), ("items/0/tags/0", "x"),
                        ("_row", "items/1"), ("items/1/name", "b")])
    assert parse_submission(fields, posted)[0] == {"items": [{"name": "a", "tags": ["x"]}, {"name": "b", "tags": []}]}
    data, focus = apply_array_action(fields, parse_draft(fields, posted), "add:items/1/tags")
    assert data["items"][1]["tags"] == [None] and focus == "items/1/tags/0"
    data, focus = apply_array_action(fields, data, "remove:items/0/tags:0")
    assert data["items"][0]["tags"] == [] and focus == "add:items/0/tags"
    assert find_field(fields, "items/1/tags/0").path == "items/1/tags/0"
