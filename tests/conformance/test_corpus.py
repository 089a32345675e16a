"""Every BPMN model of the corpus runs, or is rejected naming the element — never the silent third way.

See harness.py for the outcomes. The whole corpus loads and runs in a few seconds; per-file
parametrisation keeps failures readable. The per-trap checks are in tests/test_loader_traps.py.
"""
from __future__ import annotations

import pytest

from tests.conformance.harness import CORPUS, bpmn_entries, classify, corpus_available, manifest

pytestmark = pytest.mark.skipif(not corpus_available(),
                                reason=f"BPMN corpus not found at {CORPUS} (expected ../shared/bpmn-corpus)")

ENTRIES = bpmn_entries() if corpus_available() else []
PATHS = [entry["path"] for entry in ENTRIES]


@pytest.mark.parametrize("path", PATHS)
def test_model_runs_or_is_rejected_naming_the_element(path):
    outcome = classify(path)
    assert outcome.kind != "fails", f"{path}: {outcome.detail}"


@pytest.mark.parametrize("path", PATHS)
def test_model_forced_executable_runs_or_is_rejected_naming_the_element(path):
    # The lenient probe: what a model would do if its author marked every process executable.
    outcome = classify(path, forced=True)
    assert outcome.kind != "fails", f"{path} (forced executable): {outcome.detail}"


# What each regression/ model must do (README: known traps).
REGRESSION = {
    "regression/holidayRequest.bpmn20.xml": ("rejected", "externalSystemCall"),  # trap 1 + service tasks
    "regression/B.2.0.bpmn": ("rejected", "no executable process"),  # link events, not executable
    "regression/C.9.0.bpmn": ("rejected", "SequenceFlow_Red"),  # FEEL `some … satisfies`
    "regression/C.9.1.bpmn": ("rejected", "SendTask_RequestDocument"),  # external-task send task
    "regression/C.9.2.bpmn": ("rejected", "UserTask_DecideOnApplication"),  # zeebe:ioMapping
    "regression/pizza-collaboration.bpmn": ("rejected", "no executable process"),
}


def test_every_regression_model_is_covered():
    regression = {e["path"] for e in ENTRIES if e["path"].startswith("regression/")}
    assert regression == set(REGRESSION)


@pytest.mark.parametrize("path", sorted(REGRESSION))
def test_regression_models_behave_as_their_traps_require(path):
    kind, named = REGRESSION[path]
    outcome = classify(path)
    assert outcome.kind == kind, outcome.detail
    errors = [i for i in outcome.issues if i.severity == "error"]
    assert any(named in (i.element_id or "") or named in i.message for i in errors), errors


def test_the_silent_drop_model_is_not_loaded_with_missing_nodes():
    silent = [m["path"] for m in manifest() if m.get("verdict") == "SILENT-DROP"]
    assert silent == ["regression/holidayRequest.bpmn20.xml"]
    outcome = classify(silent[0])
    assert outcome.kind == "rejected"
    # rejected for what Phasegate cannot run, not for the flows SpiffWorkflow would have dropped
    assert {i.element_id for i in outcome.issues if i.severity == "error"} == {"externalSystemCall", "sendRejectionMail"}


def test_models_spiffworkflow_runs_still_load_unless_rejected_for_a_named_reason():
    # "at least as well as SpiffWorkflow": a model all three parsers build is either loaded by
    # Phasegate or rejected with issues that name elements (never a file-level shrug).
    for entry in ENTRIES:
        if entry["verdict"] != "all-parsers-ok":
            continue
        outcome = classify(entry["path"])
        if outcome.kind == "rejected":
            assert all(i.element_id for i in outcome.issues if i.severity == "error"), entry["path"]
