"""Phase gates through the real `phasegate` command (a subprocess per command, temporary SQLite).

The package is the gated model of tests/test_gates.py (tests/models/gated.bpmn extended with
hold and conditional-go flows and a second gate `release_gate`); one database per module holds
the users and the deployment, each test starts its own instances. Refusals must exit 1 with a
clear message on stderr, never a traceback.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from tests.test_gates import MODELS, extended_bpmn, gates_document, work

PEOPLE = {
    "eve": ["engineer"],
    "ed": ["engineer", "reviewer"],  # prepares work and reviews other people's
    "rita": ["reviewer"],
    "rob": ["reviewer"],
    "dana": ["qa_lead"],
    "olga": [],
}
PASSWORD = "rita-signs-here"
GATE_KEYS = {"gate", "phase", "state", "round", "rule", "decisions", "eligible", "excluded"}
DECISION_KEYS = {"user", "on_behalf_of", "outcome", "comment", "at"}


def phasegate_command() -> list[str]:
    for scripts in (sysconfig.get_path("scripts"), sysconfig.get_path("scripts", f"{os.name}_user")):
        candidate = Path(scripts) / "phasegate"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which("phasegate")
    return [found] if found else [sys.executable, "-m", "engine.cli"]


COMMAND = phasegate_command()


class Cli:
    """`phasegate --database-url URL ...` in a working folder."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.database_url = f"sqlite:///{workdir / 'phasegate.sqlite'}"

    def run(self, *args: str, expect: int | None = 0, input: str | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
        environment = {k: v for k, v in os.environ.items()
                       if k not in ("PHASEGATE_DATABASE_URL", "PHASEGATE_USER", "PHASEGATE_DEBUG",
                                    "PHASEGATE_SIGNATURE_PASSWORD")}
        environment.update(env or {})
        result = subprocess.run([*COMMAND, "--database-url", self.database_url, *args], cwd=self.workdir,
                                env=environment, capture_output=True, text=True, timeout=180, input=input)
        assert "Traceback" not in result.stderr, result.stderr
        assert "Traceback" not in result.stdout, result.stdout
        if expect is not None:
            assert result.returncode == expect, (args, result.returncode, result.stdout, result.stderr)
        return result

    def json(self, *args: str, **options):
        return json.loads(self.run(*args, "--json", **options).stdout)

    def fails(self, *args: str, **options) -> str:
        """A refused command: exit 1, a message on stderr (returned), nothing on stdout."""
        result = self.run(*args, expect=None, **options)
        assert result.returncode == 1, (args, result.returncode, result.stdout, result.stderr)
        assert result.stderr.strip(), args
        assert result.stdout == "", result.stdout
        return result.stderr

    # -- the gated process

    def start(self, key: str = "gated", *extra: str, user: str = "eve") -> int:
        return self.json("start", key, "--user", user, *extra)["id"]

    def ready(self, instance_id: int) -> list[dict]:
        return self.json("tasks", "--instance", str(instance_id))

    def submit(self, instance_id: int, user: str = "eve", data: dict | None = None) -> dict:
        [task] = [t for t in self.ready(instance_id) if t["element_id"] == "prepare"]
        return self.json("complete", str(task["id"]), "--user", user, "--data", json.dumps(data or work()))

    def opened(self, key: str = "gated", user: str = "eve") -> int:
        instance_id = self.start(key, user=user)
        self.submit(instance_id, user)
        return instance_id

    def approval(self, instance_id: int, role: str = "reviewer", element_id: str = "review") -> int:
        [task] = [t for t in self.ready(instance_id)
                  if t["kind"] == "approval" and t["role"] == role and t["element_id"] == element_id]
        return task["id"]

    def gates(self, instance_id: int) -> dict[str, dict]:
        """The latest round of each gate."""
        return {g["gate"]: g for g in self.json("gates", str(instance_id))}

    def show(self, instance_id: int) -> dict:
        return self.json("show", str(instance_id))


def write_package(folder: Path, process: str = "gated", review: dict | None = None,
                  release: dict | None = None) -> Path:
    (folder / "forms").mkdir(parents=True)
    (folder / f"{process}.bpmn").write_text(extended_bpmn(process))
    for form in (MODELS / "forms").glob("gated_*.json"):
        shutil.copy(form, folder / "forms" / form.name)
    document = gates_document(review, release, process)
    (folder / f"{process}.gates.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    """A migrated database with users, `gated` (one reviewer's vote decides; a release gate) and
    `gated_signed` (signature required) deployed."""
    runner = Cli(tmp_path_factory.mktemp("gates-cli"))
    runner.run("db", "upgrade")  # also creates the `admin` user
    for name, roles in PEOPLE.items():
        passwords = ["--password", PASSWORD] if name == "rita" else []
        runner.run("users", "add", name, *[arg for role in roles for arg in ("--role", role)], *passwords)
    runner.run("deploy", str(write_package(runner.workdir / "package", release={},
                                           review={"overridable": ["due"]})))
    runner.run("deploy", str(write_package(
        runner.workdir / "signed", "gated_signed",
        review={"outcomes": {"go": "to_done", "recycle": "to_rework"},
                "signature": {"meaning": "I approve the work as a reviewer."}})))
    return runner


# --------------------------------------------------------------------------------- phasegate gates


def test_gates_json_lists_every_gate_with_who_may_decide(cli):
    instance_id = cli.start()
    listed = cli.json("gates", str(instance_id))
    assert [(g["gate"], g["state"], g["round"]) for g in listed] == [
        ("review_gate", "not opened", 0), ("release_gate", "not opened", 0)]
    for gate in listed:
        assert GATE_KEYS <= set(gate), gate

    cli.submit(instance_id, user="ed")
    review = cli.gates(instance_id)["review_gate"]
    assert GATE_KEYS <= set(review)
    assert (review["gate"], review["phase"], review["state"], review["round"]) == ("review_gate", "Build", "open", 1)
    assert review["rule"] == "every required approver approves"
    assert review["decisions"] == []
    assert review["eligible"] == ["rita", "rob"]
    assert review["excluded"] == [{"user": "ed", "reason": "submitted the work under review"}]

    cli.run("decide", str(cli.approval(instance_id)), "--user", "rob", "--outcome", "abstain",
            "--comment", "not my area")
    review = cli.gates(instance_id)["review_gate"]
    [decision] = review["decisions"]
    assert DECISION_KEYS <= set(decision)
    assert (decision["user"], decision["on_behalf_of"], decision["outcome"], decision["comment"]) == (
        "rob", None, "abstain", "not my area")
    assert decision["at"]
    assert review["eligible"] == ["rita"]

    # The human form says the same.
    text = cli.run("gates", str(instance_id)).stdout
    assert "review_gate" in text and "may still decide: rita" in text
    assert "excluded: ed (submitted the work under review)" in text and "rob: abstain - not my area" in text


def test_gates_of_an_unknown_instance(cli):
    assert "unknown instance 999" in cli.fails("gates", "999", "--json")


# -------------------------------------------------------------------------------- phasegate decide


@pytest.mark.parametrize("spelling, outcome, instance_state, next_element", [
    ("go", "go", "completed", None),
    ("approve", "go", "completed", None),
    ("Go", "go", "completed", None),
    ("hold", "hold", "running", "resume"),
    ("recycle", "recycle", "running", "prepare"),
    ("reject", "recycle", "running", "prepare"),
    ("kill", "kill", "running", "archive"),
])
def test_decide_with_each_outcome(cli, spelling, outcome, instance_state, next_element):
    instance_id = cli.opened()
    task_id = cli.approval(instance_id)
    result = cli.json("decide", str(task_id), "--user", "rita", "--outcome", spelling, "--comment", "my reason")
    assert (result["decided"], result["outcome"], result["round"], result["instance"]) == (
        True, outcome, 1, instance_id)
    shown = cli.show(instance_id)
    assert shown["state"] == instance_state and shown["data"]["gate_outcome"] == outcome
    assert shown["data"]["decision"] == ("approve" if outcome == "go" else "reject")
    assert [t["element_id"] for t in shown["tasks"]] == ([next_element] if next_element else [])
    if outcome == "kill":
        assert shown["outcome"] == "killed"
    review = cli.gates(instance_id)["review_gate"]
    assert review["state"] == ("passed" if outcome == "go" else "rejected")
    assert [(d["user"], d["outcome"], d["comment"]) for d in review["decisions"]] == [("rita", outcome, "my reason")]


def test_decide_human_output(cli):
    instance_id = cli.opened()
    out = cli.run("decide", str(cli.approval(instance_id)), "-u", "rob", "-o", "abstain").stdout
    assert out.strip() == "gate review_gate round 1: recorded; the gate is still open (0 of 1 approvals)"
    out = cli.run("decide", str(cli.approval(instance_id)), "-u", "rita", "-o", "approve").stdout
    assert out.strip() == "gate review_gate round 1: decided: go (all 1 required approvals)"


def test_conditional_go_with_conditions_from_a_file_and_action_items(cli):
    instance_id = cli.opened()
    conditions = cli.workdir / f"conditions-{instance_id}.json"
    conditions.write_text(json.dumps([{"text": "Add load tests", "owner": "eve", "due": "2026-04-01"},
                                      {"text": "Update the runbook", "owner": "ed"}]))
    result = cli.json("decide", str(cli.approval(instance_id)), "--user", "rita", "--outcome", "conditional-go",
                      "--conditions", f"@{conditions}")
    assert (result["decided"], result["outcome"]) == (True, "conditional-go")

    items = cli.json("actions", str(instance_id))
    assert [(i["text"], i["owner"], i["state"]) for i in items] == [
        ("Add load tests", "eve", "open"), ("Update the runbook", "ed", "open")]
    assert items[0]["due"].startswith("2026-04-01")
    assert "Add load tests (owner eve, due 2026-04-01" in cli.run("actions", str(instance_id)).stdout
    assert cli.gates(instance_id)["release_gate"]["state"] == "blocked"
    assert [t for t in cli.ready(instance_id) if t["kind"] == "approval"] == []

    assert "only the owner (eve) or an admin" in cli.fails("close-action", str(items[0]["id"]), "--user", "ed")
    closed = cli.json("close-action", str(items[0]["id"]), "--user", "eve", "--note", "done")
    assert (closed["state"], closed["closed_by"], closed["note"]) == ("closed", "eve", "done")
    assert cli.gates(instance_id)["release_gate"]["state"] == "blocked"
    out = cli.run("close-action", str(items[1]["id"]), "--user", "ed").stdout
    assert out.strip() == f"action item {items[1]['id']} closed by ed"
    release = cli.gates(instance_id)["release_gate"]
    assert (release["state"], release["eligible"]) == ("open", ["dana"])
    cli.run("decide", str(cli.approval(instance_id, "qa_lead", "release")), "-u", "dana", "-o", "go")
    assert cli.show(instance_id)["state"] == "completed"


def test_conditions_inline_json(cli):
    instance_id = cli.opened()
    result = cli.json("decide", str(cli.approval(instance_id)), "-u", "rita", "-o", "conditional_go",
                      "--conditions", '[{"text": "Fix the flaky test", "owner": "eve"}]')
    assert result["outcome"] == "conditional-go"
    assert [i["text"] for i in cli.json("actions", str(instance_id))] == ["Fix the flaky test"]


# ---------------------------------------------------------------------------------------- refusals


def test_refusals_exit_1_with_a_clear_message_and_record_nothing(cli):
    instance_id = cli.opened(user="ed")
    task = str(cli.approval(instance_id))
    before = cli.gates(instance_id)["review_gate"]
    history = len(cli.json("show", str(instance_id), "--history")["history"])

    assert "ed submitted the work under review" in cli.fails("decide", task, "-u", "ed", "-o", "go")
    assert "dana may not decide gate 'review_gate': not an approver" in cli.fails("decide", task, "-u", "dana",
                                                                                  "-o", "go")
    assert "unknown user 'ghost'" in cli.fails("decide", task, "-u", "ghost", "-o", "go")
    stderr = cli.fails("decide", task, "-u", "rita", "-o", "maybe")
    assert "unknown outcome 'maybe'" in stderr and stderr.startswith("error: ")
    assert "a reason is required to hold" in cli.fails("decide", task, "-u", "rita", "-o", "hold")
    assert "a reason is required to recycle" in cli.fails("decide", task, "-u", "rita", "-o", "reject")
    assert "a Conditional Go needs at least one condition" in cli.fails("decide", task, "-u", "rita", "-o",
                                                                         "conditional-go")
    assert "--conditions is not valid JSON" in cli.fails("decide", task, "-u", "rita", "-o", "conditional-go",
                                                         "--conditions", "[{text: 1")
    assert "owner is required" in cli.fails("decide", task, "-u", "rita", "-o", "conditional-go",
                                            "--conditions", '[{"text": "x"}]')
    assert "unknown task 99999" in cli.fails("decide", "99999", "-u", "rita", "-o", "go")
    prepare_of_other = [t for t in cli.ready(cli.start()) if t["element_id"] == "prepare"][0]["id"]
    assert "not a gate approval" in cli.fails("decide", str(prepare_of_other), "-u", "eve", "-o", "go")

    assert cli.gates(instance_id)["review_gate"] == before
    assert len(cli.json("show", str(instance_id), "--history")["history"]) == history


def test_deciding_twice_and_deciding_a_withdrawn_task_are_refused(cli):
    instance_id = cli.opened()
    task = str(cli.approval(instance_id))
    cli.run("decide", task, "-u", "rob", "-o", "abstain")
    assert "rob has already decided this gate" in cli.fails("decide", task, "-u", "rob", "-o", "go")
    cli.run("decide", task, "-u", "rita", "-o", "go")
    stderr = cli.fails("decide", task, "-u", "ed", "-o", "go")
    assert f"task {task} can no longer be decided" in stderr and "gate review_gate is passed" in stderr
    assert len(cli.gates(instance_id)["review_gate"]["decisions"]) == 2


def test_a_missing_conditions_file_is_a_clear_refusal(cli):
    instance_id = cli.opened()
    stderr = cli.fails("decide", str(cli.approval(instance_id)), "-u", "rita", "-o", "conditional-go",
                       "--conditions", "@no-such-conditions.json")
    assert "internal error" not in stderr
    assert "no such file" in stderr


# --------------------------------------------------------------------------------------- signature


def test_signed_decisions_need_the_password(cli):
    instance_id = cli.opened("gated_signed")
    task = str(cli.approval(instance_id))
    assert "requires an electronic signature" in cli.fails("decide", task, "-u", "rita", "-o", "go")
    assert "password is not correct" in cli.fails("decide", task, "-u", "rita", "-o", "go", "--sign",
                                                  input="wrong\n")
    assert cli.gates(instance_id)["review_gate"]["decisions"] == []
    result = cli.json("decide", task, "-u", "rita", "-o", "go", "--sign", input=f"{PASSWORD}\n")
    assert result["decided"] is True
    [decision] = cli.gates(instance_id)["review_gate"]["decisions"]
    assert decision["signature"] == "I approve the work as a reviewer."


def test_the_signature_password_may_come_from_the_environment(cli):
    instance_id = cli.opened("gated_signed")
    result = cli.json("decide", str(cli.approval(instance_id)), "-u", "rita", "-o", "go",
                      env={"PHASEGATE_SIGNATURE_PASSWORD": PASSWORD})
    assert result["outcome"] == "go"


# -------------------------------------------------------------------------------------- delegation


def test_delegate_and_decide_on_behalf_of(cli):
    instance_id = cli.opened()
    task = str(cli.approval(instance_id))
    assert "separation of duties: eve submitted the work under review" in cli.fails("delegate", task, "-u", "rita",
                                                                                    "--to", "eve")
    out = cli.run("delegate", task, "-u", "rita", "--to", "olga").stdout
    assert out.strip() == f"task {task}: olga decides on behalf of rita"
    assert "olga may not decide on behalf of rob" in cli.fails("decide", task, "-u", "olga", "-o", "go",
                                                               "--on-behalf-of", "rob")
    result = cli.json("decide", task, "-u", "olga", "-o", "go", "--on-behalf-of", "rita")
    assert result["outcome"] == "go"
    [decision] = cli.gates(instance_id)["review_gate"]["decisions"]
    assert (decision["user"], decision["on_behalf_of"]) == ("olga", "rita")


def test_out_of_office(cli):
    result = cli.json("out-of-office", "rob", "--delegate", "olga", "--from", "2020-01-01T00:00",
                      "--until", "2020-01-02T00:00")
    assert (result["delegator"], result["delegate"]) == ("rob", "olga")
    assert result["until"].startswith("2020-01-02T00:00")
    # That period is over: olga is nobody's delegate now.
    instance_id = cli.opened()
    assert "olga" not in cli.gates(instance_id)["review_gate"]["eligible"]
    assert "olga may not decide" in cli.fails("decide", str(cli.approval(instance_id)), "-u", "olga", "-o", "go")
    assert "must end after it starts" in cli.fails("out-of-office", "rob", "--delegate", "olga",
                                                   "--from", "2030-01-02", "--until", "2030-01-01")
    assert "is not an ISO 8601 date/time" in cli.fails("out-of-office", "rob", "--delegate", "olga",
                                                       "--until", "soon")


# --------------------------------------------------------------------------------------- overrides


def test_start_with_gate_overrides(cli):
    instance_id = cli.start("gated", "--gate-overrides", '{"review_gate": {"due": "P1D"}}')
    cli.submit(instance_id)
    assert cli.gates(instance_id)["review_gate"]["due"] is not None
    stderr = cli.fails("start", "gated", "--user", "eve", "--gate-overrides",
                       '{"review_gate": {"rule": {"kind": "any"}}}')
    assert "gate 'review_gate' does not allow overriding 'rule' (overridable: due)" in stderr
    assert "gate 'nope' is not configured" in cli.fails("start", "gated", "--gate-overrides", '{"nope": {}}')


def test_deploy_with_overrides_and_apply_to_open_gates(tmp_path):
    cli = Cli(tmp_path)
    cli.run("db", "upgrade")
    for name, roles in PEOPLE.items():
        cli.run("users", "add", name, *[arg for role in roles for arg in ("--role", role)])
    package = write_package(tmp_path / "package", review={"approvers": [{"role": "reviewer", "count": 2}]})
    overrides = tmp_path / "site-gates.yaml"
    overrides.write_text("review_gate:\n  approvers: [{role: qa_lead}]\n")
    out = cli.run("deploy", str(package), "--user", "eve", "--gate-overrides", str(overrides)).stdout
    assert "gates: new configuration v1" in out
    instance_id = cli.opened()
    assert [t["role"] for t in cli.ready(instance_id)] == ["qa_lead"]

    # The file alone (no overrides) is another configuration; applied to the open gate too.
    deployed = cli.json("deploy", str(package), "--user", "eve", "--apply-to-open-gates")["deployed"]
    assert (deployed[0]["new"], deployed[0]["gates"]["version"], deployed[0]["gates"]["new"]) == (False, 2, True)
    review = cli.gates(instance_id)["review_gate"]
    assert review["config_version"] == 2 and review["approvers"] == [{"role": "reviewer", "count": 2}]
    out = cli.run("deploy", str(package), "--user", "eve").stdout
    assert "gates: unchanged v2" in out

    (tmp_path / "bad.yaml").write_text("- not a mapping\n")
    assert "expected a mapping of gate id to settings" in cli.fails("deploy", str(package), "--gate-overrides",
                                                                    str(tmp_path / "bad.yaml"))
    stderr = cli.fails("deploy", str(package), "--gate-overrides", str(tmp_path / "missing.yaml"))
    assert "missing.yaml" in stderr
