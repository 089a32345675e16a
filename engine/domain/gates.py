"""Phase gates: the decision rules, as pure functions of configuration, votes and people.

A gate is a review point of a process (a BPMN task carrying a `gate` property). Its
configuration says who must decide and how their votes combine; this module answers, for a
set of votes, whether the gate is decided and with which stage-gate outcome, and who is
excluded from deciding and why. No database, no SpiffWorkflow: tests are tables.

Vocabulary
- outcomes (stage-gate): go, conditional-go, hold, recycle, kill;
- a vote is one of those, or approve (= go), reject (= recycle), abstain, recuse;
- positive votes: go, conditional-go; negative votes: hold, recycle, kill;
- abstain counts as participation but neither way; recuse steps aside (the voter is no longer
  eligible and the vote counts for nothing).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

OUTCOMES = ("go", "conditional-go", "hold", "recycle", "kill")
VOTE_ALIASES = {"approve": "go", "reject": "recycle"}
VOTES = OUTCOMES + ("abstain", "recuse")
POSITIVE = frozenset({"go", "conditional-go"})
NEGATIVE = frozenset({"hold", "recycle", "kill"})
# When negative votes disagree, the more severe outcome wins a tie.
SEVERITY = {"recycle": 1, "hold": 2, "kill": 3}
RULE_KINDS = ("any", "all", "quorum", "percentage", "n_of_m")


def normalise_vote(value: str) -> str:
    """'approve' -> 'go', 'Conditional_Go' -> 'conditional-go'; ValueError for anything else."""
    vote = value.strip().lower().replace("_", "-").replace(" ", "-")
    vote = VOTE_ALIASES.get(vote, vote)
    if vote not in VOTES:
        raise ValueError(f"unknown outcome '{value}' (one of: {', '.join(VOTES + tuple(VOTE_ALIASES))})")
    return vote


@dataclass(frozen=True)
class ApproverGroup:
    role: str
    count: int = 1  # how many of the role's members must decide (n_of_m: must approve)


@dataclass(frozen=True)
class DecisionRule:
    kind: str = "any"
    quorum: int | None = None  # kind == "quorum": positive votes needed
    percentage: float | None = None  # kind == "percentage": share of deciding votes, 0-100
    veto_roles: tuple[str, ...] = ()  # a negative vote by a member of these roles decides at once
    min_participation: int | None = None  # votes (abstentions included) needed before any decision
    allow_abstain: bool = True

    def describe(self) -> str:
        if self.kind == "quorum":
            text = f"{self.quorum} approvals"
        elif self.kind == "percentage":
            text = f"{self.percentage:g}% of deciding votes approve"
        else:
            text = {"any": "any one approval", "all": "every required approver approves",
                    "n_of_m": "the required approvals in every group"}[self.kind]
        if self.veto_roles:
            text += f"; veto: {', '.join(self.veto_roles)}"
        if self.min_participation:
            text += f"; at least {self.min_participation} votes"
        return text


@dataclass(frozen=True)
class Vote:
    user: str  # who decided
    role: str  # the approver group (role) the vote counts for
    outcome: str  # normalised vote
    on_behalf_of: str | None = None
    conditions: tuple = ()


@dataclass(frozen=True)
class RuleResult:
    decided: bool
    outcome: str | None = None
    reason: str = ""
    positives: int = 0
    negatives: int = 0
    abstentions: int = 0


def _negative_outcome(votes: list[Vote]) -> str:
    counts = Counter(v.outcome for v in votes if v.outcome in NEGATIVE)
    return max(counts, key=lambda o: (counts[o], SEVERITY[o]))


def _positive_outcome(votes: list[Vote]) -> str:
    conditional = any(v.outcome == "conditional-go" for v in votes)
    return "conditional-go" if conditional else "go"


def evaluate(rule: DecisionRule, groups: list[ApproverGroup], votes: list[Vote],
             still_eligible: dict[str, int]) -> RuleResult:
    """Is the gate decided by these votes?

    `still_eligible` maps each group's role to how many more people could still vote for it
    (eligible members who have not voted, recused or been excluded). A gate is decided as soon
    as the outcome can no longer change: the positive threshold is reached, or it can no longer
    be reached, or a veto role votes against.
    """
    counted = [v for v in votes if v.outcome != "recuse"]
    positives = [v for v in counted if v.outcome in POSITIVE]
    negatives = [v for v in counted if v.outcome in NEGATIVE]
    abstentions = [v for v in counted if v.outcome == "abstain"]
    tally = dict(positives=len(positives), negatives=len(negatives), abstentions=len(abstentions))
    remaining = sum(still_eligible.get(g.role, 0) for g in groups)

    vetoes = [v for v in negatives if v.role in rule.veto_roles]
    if vetoes:
        return RuleResult(True, _negative_outcome(vetoes), f"veto by {vetoes[0].user} ({vetoes[0].role})", **tally)

    if rule.min_participation and len(counted) < rule.min_participation:
        if len(counted) + remaining < rule.min_participation:
            outcome = _negative_outcome(negatives) if negatives else "recycle"
            return RuleResult(True, outcome, f"fewer than {rule.min_participation} people can still take part",
                              **tally)
        return RuleResult(False, reason=f"waiting for {rule.min_participation - len(counted)} more vote(s)", **tally)

    def go(reason: str) -> RuleResult:
        return RuleResult(True, _positive_outcome(positives), reason, **tally)

    def no(reason: str) -> RuleResult:
        outcome = _negative_outcome(negatives) if negatives else "recycle"
        return RuleResult(True, outcome, reason, **tally)

    def waiting(reason: str) -> RuleResult:
        return RuleResult(False, reason=reason, **tally)

    if rule.kind == "any":
        if positives:
            return go(f"approved by {positives[0].user}")
        if remaining == 0:
            said = ", ".join(f"{v.user}: {v.outcome}" for v in negatives)
            return no("nobody approved" + (f" ({said})" if said else ""))
        return waiting("waiting for one approval")

    if rule.kind == "all":
        required = sum(g.count for g in groups)
        if negatives:
            return no(f"{negatives[0].user} voted {negatives[0].outcome}")
        if len(positives) >= required:
            return go(f"all {required} required approvals")
        if len(positives) + remaining < required:
            return no(f"only {len(positives) + remaining} of {required} required approvals are still possible")
        return waiting(f"{len(positives)} of {required} approvals")

    if rule.kind == "quorum":
        needed = rule.quorum or 1
        if len(positives) >= needed:
            return go(f"quorum of {needed} reached")
        if len(positives) + remaining < needed:
            return no(f"a quorum of {needed} can no longer be reached")
        return waiting(f"{len(positives)} of {needed} approvals")

    if rule.kind == "percentage":
        # Decided once no remaining vote can change which side of the threshold the share is on.
        # Abstentions do not count, so a remaining voter may add to either side or to neither.
        share = (rule.percentage if rule.percentage is not None else 50.0) / 100.0
        yes, deciding = len(positives), len(positives) + len(negatives)
        if deciding + remaining == 0:
            return no("nobody decided")
        worst = yes / (deciding + remaining)
        best = max((yes + remaining) / (deciding + remaining), yes / deciding if deciding else 0.0)
        if deciding and worst >= share:
            return go(f"{yes} of {deciding} deciding votes approve ({rule.percentage:g}% needed)")
        if best < share:
            return no(f"{rule.percentage:g}% approval can no longer be reached")
        return waiting(f"{yes} of {deciding} deciding votes approve so far")

    if rule.kind == "n_of_m":
        waiting_on = []
        for group in groups:
            group_positive = sum(1 for v in positives if v.role == group.role)
            if group_positive >= group.count:
                continue
            if group_positive + still_eligible.get(group.role, 0) < group.count:
                return no(f"{group.role} can no longer give {group.count} approval(s)")
            waiting_on.append(f"{group.role} {group_positive}/{group.count}")
        if not waiting_on:
            return go("every group gave its required approvals")
        return waiting("waiting for " + ", ".join(waiting_on))

    raise ValueError(f"unknown decision rule '{rule.kind}'")


# -- separation of duties ----------------------------------------------------------------------

@dataclass(frozen=True)
class SeparationOfDuties:
    submitter_may_not_approve: bool = True
    exclude_completers_of: tuple[str, ...] = ()  # element ids: whoever completed them may not decide
    exclude_phase_participants: bool = False  # nobody who completed a task in the gate's phase
    distinct_across_rounds: bool = False  # nobody who decided in an earlier round of this gate


@dataclass
class GateHistory:
    """What separation of duties needs to know about the instance, gathered by the service."""

    submitter: str | None = None
    completers: dict[str, set[str]] = field(default_factory=dict)  # element id -> users who completed it
    phase_participants: set[str] = field(default_factory=set)
    earlier_round_deciders: set[str] = field(default_factory=set)
    voted: set[str] = field(default_factory=set)  # users whose vote (own or on behalf) is in this round


def exclusion_reason(user: str, sod: SeparationOfDuties, history: GateHistory) -> str | None:
    """Why `user` may not decide this gate now, or None."""
    if user in history.voted:
        return "has already decided this gate (one person cannot fill two approver slots)"
    if sod.submitter_may_not_approve and history.submitter == user:
        return "submitted the work under review"
    for element_id in sod.exclude_completers_of:
        if user in history.completers.get(element_id, set()):
            return f"completed task {element_id}"
    if sod.exclude_phase_participants and user in history.phase_participants:
        return "worked on a task in this phase"
    if sod.distinct_across_rounds and user in history.earlier_round_deciders:
        return "decided this gate in an earlier round"
    return None


def decision_refusal(actor: str, on_behalf_of: str | None, sod: SeparationOfDuties,
                     history: GateHistory) -> str | None:
    """Separation of duties for a decision: checked against the actor and whom they act for."""
    for person in filter(None, (actor, on_behalf_of)):
        reason = exclusion_reason(person, sod, history)
        if reason is not None:
            return f"{person} {reason}"
    return None
