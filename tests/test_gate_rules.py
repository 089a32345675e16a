"""Gate decision rules as a table: rule × votes × who can still vote → decided outcome."""
from __future__ import annotations

import pytest

from engine.domain.gates import (
    ApproverGroup,
    DecisionRule,
    GateHistory,
    SeparationOfDuties,
    Vote,
    decision_refusal,
    evaluate,
    exclusion_reason,
    normalise_vote,
)

SPONSORS = [ApproverGroup("Sponsor", 1)]
BOARD = [ApproverGroup("Board", 3)]
DESIGN = [ApproverGroup("Business", 2), ApproverGroup("Technical", 2)]


def v(user, outcome, role="Board", **kw):
    return Vote(user, role, normalise_vote(outcome), **kw)


CASES = [
    # id, rule, groups, votes, still eligible per role, expected (decided, outcome)
    ("any: one approval decides", DecisionRule("any"), SPONSORS, [v("ann", "approve", "Sponsor")], {"Sponsor": 2},
     (True, "go")),
    ("any: a rejection alone does not", DecisionRule("any"), SPONSORS, [v("ann", "reject", "Sponsor")],
     {"Sponsor": 1}, (False, None)),
    ("any: everyone rejected", DecisionRule("any"), SPONSORS, [v("ann", "reject", "Sponsor")], {"Sponsor": 0},
     (True, "recycle")),
    ("all: waits for every slot", DecisionRule("all"), BOARD, [v("a", "go"), v("b", "go")], {"Board": 3},
     (False, None)),
    ("all: every slot approves", DecisionRule("all"), BOARD, [v("a", "go"), v("b", "go"), v("c", "go")],
     {"Board": 2}, (True, "go")),
    ("all: first rejection decides", DecisionRule("all"), BOARD, [v("a", "go"), v("b", "recycle")], {"Board": 3},
     (True, "recycle")),
    ("all: not enough people left", DecisionRule("all"), BOARD, [v("a", "go")], {"Board": 1}, (True, "recycle")),
    ("quorum 2 of 3: reached", DecisionRule("quorum", quorum=2), BOARD,
     [v("a", "go"), v("b", "reject"), v("c", "go")], {"Board": 0}, (True, "go")),
    ("quorum 2: still possible", DecisionRule("quorum", quorum=2), BOARD, [v("a", "go"), v("b", "reject")],
     {"Board": 1}, (False, None)),
    ("quorum 2: impossible", DecisionRule("quorum", quorum=2), BOARD, [v("a", "reject"), v("b", "reject")],
     {"Board": 1}, (True, "recycle")),
    ("percentage 60: 2 of 3 approve", DecisionRule("percentage", percentage=60), BOARD,
     [v("a", "go"), v("b", "go"), v("c", "reject")], {"Board": 0}, (True, "go")),
    ("percentage 75: 2 of 3 is not enough", DecisionRule("percentage", percentage=75), BOARD,
     [v("a", "go"), v("b", "go"), v("c", "reject")], {"Board": 0}, (True, "recycle")),
    ("percentage: abstentions do not count", DecisionRule("percentage", percentage=100), BOARD,
     [v("a", "go"), v("b", "abstain"), v("c", "abstain")], {"Board": 0}, (True, "go")),
    ("percentage: undecided while it can swing", DecisionRule("percentage", percentage=60), BOARD,
     [v("a", "go"), v("b", "reject")], {"Board": 1}, (False, None)),
    ("n_of_m: both groups give two", DecisionRule("n_of_m"), DESIGN,
     [v("b1", "go", "Business"), v("b2", "go", "Business"), v("t1", "go", "Technical"), v("t2", "go", "Technical")],
     {"Business": 1, "Technical": 0}, (True, "go")),
    ("n_of_m: one group missing", DecisionRule("n_of_m"), DESIGN,
     [v("b1", "go", "Business"), v("b2", "go", "Business"), v("t1", "go", "Technical")],
     {"Business": 0, "Technical": 1}, (False, None)),
    ("n_of_m: a group can no longer make it", DecisionRule("n_of_m"), DESIGN,
     [v("t1", "reject", "Technical"), v("t2", "go", "Technical")], {"Business": 3, "Technical": 0},
     (True, "recycle")),
    ("veto: one rejection by a veto role decides", DecisionRule("quorum", quorum=1, veto_roles=("Sponsor",)),
     [ApproverGroup("Sponsor", 1), ApproverGroup("Board", 3)],
     [v("x", "go"), v("s", "kill", "Sponsor")], {"Board": 2, "Sponsor": 0}, (True, "kill")),
    ("min participation holds a decision back", DecisionRule("any", min_participation=2), BOARD,
     [v("a", "go")], {"Board": 2}, (False, None)),
    ("min participation met", DecisionRule("any", min_participation=2), BOARD,
     [v("a", "go"), v("b", "abstain")], {"Board": 1}, (True, "go")),
    ("min participation can no longer be met", DecisionRule("any", min_participation=3), BOARD,
     [v("a", "go")], {"Board": 1}, (True, "recycle")),
    ("recusal counts for nothing", DecisionRule("all"), [ApproverGroup("Board", 2)],
     [v("a", "recuse"), v("b", "go")], {"Board": 1}, (False, None)),
    ("conditional go when any approval had conditions", DecisionRule("all"), [ApproverGroup("Board", 2)],
     [v("a", "go"), v("b", "conditional-go")], {"Board": 0}, (True, "conditional-go")),
    ("hold wins over recycle on a tie", DecisionRule("any"), [ApproverGroup("Board", 2)],
     [v("a", "hold"), v("b", "recycle")], {"Board": 0}, (True, "hold")),
    ("the most common negative wins", DecisionRule("any"), BOARD,
     [v("a", "recycle"), v("b", "recycle"), v("c", "kill")], {"Board": 0}, (True, "recycle")),
]


@pytest.mark.parametrize("rule, groups, votes, eligible, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_table(rule, groups, votes, eligible, expected):
    result = evaluate(rule, groups, votes, eligible)
    assert (result.decided, result.outcome) == expected, result.reason
    assert result.reason


@pytest.mark.parametrize("text, vote", [("approve", "go"), ("reject", "recycle"), ("Conditional_Go", "conditional-go"),
                                        ("KILL", "kill"), ("abstain", "abstain"), ("recuse", "recuse")])
def test_vote_vocabulary(text, vote):
    assert normalise_vote(text) == vote


def test_unknown_vote_is_refused_with_the_vocabulary():
    with pytest.raises(ValueError, match="conditional-go"):
        normalise_vote("maybe")


def test_rule_descriptions_are_readable():
    assert DecisionRule("quorum", quorum=2, veto_roles=("Sponsor",)).describe() == "2 approvals; veto: Sponsor"


HISTORY = GateHistory(
    submitter="pm",
    completers={"design_data_model": {"archie"}},
    phase_participants={"pm", "archie", "dev"},
    earlier_round_deciders={"olga"},
    voted={"vera"},
)


@pytest.mark.parametrize("sod, user, reason", [
    (SeparationOfDuties(), "pm", "submitted the work under review"),
    (SeparationOfDuties(submitter_may_not_approve=False), "pm", None),
    (SeparationOfDuties(exclude_completers_of=("design_data_model",)), "archie", "completed task design_data_model"),
    (SeparationOfDuties(exclude_phase_participants=True), "dev", "worked on a task in this phase"),
    (SeparationOfDuties(distinct_across_rounds=True), "olga", "decided this gate in an earlier round"),
    (SeparationOfDuties(), "olga", None),
    (SeparationOfDuties(), "vera", "has already decided this gate (one person cannot fill two approver slots)"),
])
def test_separation_of_duties(sod, user, reason):
    assert exclusion_reason(user, sod, HISTORY) == reason


def test_a_delegate_is_checked_together_with_whom_they_act_for():
    sod = SeparationOfDuties()
    assert decision_refusal("deputy", "pm", sod, HISTORY) == "pm submitted the work under review"
    assert decision_refusal("pm", "sponsor", sod, HISTORY) == "pm submitted the work under review"
    assert decision_refusal("deputy", "sponsor", sod, HISTORY) is None
