"""The real `phasegate` console command, run as a subprocess against a temporary SQLite file.

Every command is a new process, so each test here is also a restart test: nothing survives
between two commands but the database.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from datetime import datetime
from pathlib import Path

import pytest

from engine.domain.events import GENESIS, event_hash

MODELS = Path(__file__).parent / "models"
ORDER_FORM = MODELS / "forms" / "svc_order_form.json"
VALID_ORDER = {"customer": "ACME", "quantity": 3, "lines": [{"sku": "A-1", "priority": "high"}]}
PEOPLE = {
    "sally": ["sales"],
    "sam": ["sales"],
    "sponsor": ["Sponsor"],
    "wendy": ["warehouse"],
    "lou": ["logistics"],
    "lara": ["logistics"],
    "olga": ["ops"],
    "nobody": [],
}
ISSUE_LINE = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): (?P<element>\S+): (?P<message>.+)$")
TASK_KEYS = {"id", "instance", "element_id", "name", "role", "phase", "state"}
INSTANCE_KEYS = {"id", "key", "version", "state", "phase", "data", "tasks"}


def phasegate_command() -> list[str]:
    """The installed console script of this interpreter, else the one on PATH, else the module."""
    for scripts in (sysconfig.get_path("scripts"), sysconfig.get_path("scripts", f"{os.name}_user")):
        candidate = Path(scripts) / "phasegate"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which("phasegate")
    if found:
        return [found]
    return [sys.executable, "-m", "engine.cli"]


COMMAND = phasegate_command()


class Cli:
    """Runs `phasegate` with a database URL (from the environment, as a user would set it)."""

    def __init__(self, workdir: Path, database_url: str):
        self.workdir = workdir
        self.database_url = database_url

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PHASEGATE_DATABASE_URL", "PHASEGATE_USER", "PHASEGATE_DEBUG")}
        env["PHASEGATE_DATABASE_URL"] = self.database_url
        return env

    def run(self, *args: str, expect: int | None = 0, env: dict | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([*COMMAND, *args], cwd=self.workdir, env=env or self.env(), capture_output=True,
                                text=True, timeout=180, input=stdin)
        assert "Traceback" not in result.stderr, result.stderr
        assert "Traceback" not in result.stdout, result.stdout
        if expect is not None:
            assert result.returncode == expect, (args, result.returncode, result.stdout, result.stderr)
        return result

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json").stdout)

    def fails(self, *args: str, code: int = 1, stdin: str | None = None) -> str:
        """Run a command that must be refused; its stderr (never empty, never a traceback)."""
        result = self.run(*args, expect=None, stdin=stdin)
        assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
        assert result.stderr.strip(), args
        return result.stderr


def make_package(folder: Path) -> Path:
    (folder / "forms").mkdir(parents=True)
    for name in ("svc_order.bpmn", "svc_timer.bpmn", "svc_versioned.bpmn"):
        shutil.copy(MODELS / name, folder / name)
    shutil.copy(ORDER_FORM, folder / "forms" / ORDER_FORM.name)
    return folder


@pytest.fixture
def new_cli(tmp_path) -> Cli:
    """A CLI on a new SQLite file that was never migrated."""
    return Cli(tmp_path, f"sqlite:///{tmp_path / 'phasegate.sqlite'}")


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    """A migrated database with the svc_* models deployed and the test users added."""
    workdir = tmp_path_factory.mktemp("cli")
    runner = Cli(workdir, f"sqlite:///{workdir / 'phasegate.sqlite'}")
    runner.run("db", "upgrade")
    for name, roles in PEOPLE.items():
        runner.run("users", "add", name, *[arg for role in roles for arg in ("--role", role)])
    runner.run("deploy", str(make_package(workdir / "package")))
    return runner


def start_order(cli: Cli, business_key: str = "BK") -> dict:
    return cli.json("start", "svc_order", "--business-key", business_key, "--data", '{"initiator": "sally"}',
                    "--user", "sally")


def task_of(cli: Cli, instance_id: int, element_id: str) -> dict:
    listed = cli.json("tasks", "--instance", str(instance_id))
    matching = [t for t in listed if t["element_id"] == element_id]
    assert len(matching) == 1, listed
    return matching[0]


# ------------------------------------------------------------------------------------ help


ISSUE_COMMANDS = [
    ("db", "upgrade"), ("check",), ("deploy",), ("definitions",), ("start",), ("instances",), ("show",),
    ("tasks",), ("claim",), ("complete",), ("cancel",), ("users",), ("users", "add"), ("users", "grant"),
    ("users", "revoke"), ("users", "list"),
]


def _all_commands():
    import click

    from engine.cli import main

    found = [()]

    def walk(group, prefix):
        for name, command in group.commands.items():
            found.append(prefix + (name,))
            if isinstance(command, click.Group):
                walk(command, prefix + (name,))

    walk(main, ())
    return found


def test_every_command_has_help(new_cli):
    commands = _all_commands()
    assert set(ISSUE_COMMANDS) <= set(commands)
    for command in commands:
        result = new_cli.run(*command, "--help")
        usage = result.stdout.splitlines()[0]
        assert usage.startswith("Usage:") and " ".join(command) in usage, (command, result.stdout)
    # --help needs no database.
    assert not (new_cli.workdir / "phasegate.sqlite").exists()


def test_unknown_command_and_missing_argument_are_usage_errors(new_cli):
    assert "No such command" in new_cli.fails("no-such-command", code=2)
    assert "Missing argument" in new_cli.fails("start", code=2)
    assert "--reason" in new_cli.fails("cancel", "1", code=2)
    assert "not a valid integer" in new_cli.fails("show", "abc", code=2)


# -------------------------------------------------------------------------------- database


def test_db_upgrade_creates_the_schema_and_admin_and_is_idempotent(new_cli):
    assert "database at head" in new_cli.run("db", "upgrade").stdout
    new_cli.run("db", "upgrade")
    users = new_cli.json("users", "list")
    assert [u["name"] for u in users] == ["admin"]
    assert users[0]["roles"] == ["admin"]


def test_database_url_option_wins_over_the_environment(tmp_path):
    first = Cli(tmp_path, f"sqlite:///{tmp_path / 'first.sqlite'}")
    first.run("db", "upgrade")
    first.run("users", "add", "only-in-first")
    second_url = f"sqlite:///{tmp_path / 'second.sqlite'}"
    first.run("--database-url", second_url, "db", "upgrade")
    names = [u["name"] for u in json.loads(first.run("--database-url", second_url, "users", "list", "--json").stdout)]
    assert names == ["admin"]
    assert "only-in-first" in [u["name"] for u in first.json("users", "list")]


# ----------------------------------------------------------------------------- definitions


def test_check_a_valid_model(new_cli):
    result = new_cli.run("check", str(MODELS / "svc_order.bpmn"))
    assert "svc_order" in result.stdout
    report = new_cli.json("check", str(MODELS / "svc_order.bpmn"))
    assert report["valid"] is True and report["processes"] == ["svc_order"]
    # Checking writes nothing.
    assert not (new_cli.workdir / "phasegate.sqlite").exists()


def test_check_a_broken_model_names_file_line_and_element(new_cli, tmp_path):
    broken = tmp_path / "models" / "svc_broken.bpmn"
    broken.parent.mkdir()
    shutil.copy(MODELS / "svc_broken.bpmn", broken)
    expected_line = next(n for n, text in enumerate(broken.read_text().splitlines(), 1) if 'id="f2"' in text)

    stderr = new_cli.fails("check", str(broken))
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert lines
    for line in lines:
        assert ISSUE_LINE.match(line), line
    parsed = [ISSUE_LINE.match(line).groupdict() for line in lines]
    assert any(p["path"].endswith("svc_broken.bpmn") and p["line"] == str(expected_line) and p["element"] == "f2"
               and "nowhere" in p["message"] for p in parsed), lines

    # A folder with one broken file is refused as a whole.
    shutil.copy(MODELS / "svc_versioned.bpmn", broken.parent / "svc_versioned.bpmn")
    assert "f2" in new_cli.fails("check", str(broken.parent))

    report = json.loads(new_cli.run("check", str(broken), "--json", expect=1).stdout)
    assert report["valid"] is False and report["processes"] == []
    assert {"path", "line", "element", "message", "severity"} <= set(report["issues"][0])
    assert any(i["element"] == "f2" and i["line"] == expected_line for i in report["issues"])

    assert "no such file" in new_cli.fails("check", str(tmp_path / "missing.bpmn"))


def test_deploy_and_definitions(new_cli, tmp_path):
    new_cli.run("db", "upgrade")
    package = make_package(tmp_path / "package")
    first = new_cli.json("deploy", str(package))
    assert set(first) == {"deployed"}
    assert sorted(d["key"] for d in first["deployed"]) == ["svc_order", "svc_timer", "svc_versioned"]
    for entry in first["deployed"]:
        assert set(entry) == {"key", "version", "hash", "new"}
        assert entry["version"] == 1 and entry["new"] is True and len(entry["hash"]) == 64

    again = new_cli.json("deploy", str(package))
    assert sorted((d["key"], d["version"], d["hash"], d["new"]) for d in again["deployed"]) == sorted(
        (d["key"], d["version"], d["hash"], False) for d in first["deployed"])
    assert "unchanged" in new_cli.run("deploy", str(package)).stdout

    model = package / "svc_versioned.bpmn"
    model.write_text(model.read_text().replace("ran_version = 1", "ran_version = 2"))
    [changed] = new_cli.json("deploy", str(model))["deployed"]
    assert (changed["key"], changed["version"], changed["new"]) == ("svc_versioned", 2, True)

    listed = new_cli.json("definitions")
    assert sorted((d["key"], d["version"]) for d in listed) == [
        ("svc_order", 1), ("svc_timer", 1), ("svc_versioned", 1), ("svc_versioned", 2)]
    assert {"id", "key", "version", "hash", "name", "deployed_by", "deployed_at"} <= set(listed[0])
    latest = new_cli.json("definitions", "--latest")
    assert sorted((d["key"], d["version"]) for d in latest) == [("svc_order", 1), ("svc_timer", 1), ("svc_versioned", 2)]

    broken = tmp_path / "svc_broken.bpmn"
    shutil.copy(MODELS / "svc_broken.bpmn", broken)
    stderr = new_cli.fails("deploy", str(broken))
    assert any(ISSUE_LINE.match(line) and ": f2: " in line for line in stderr.splitlines()), stderr
    assert len(new_cli.json("definitions")) == 4
    assert "ghost" in new_cli.fails("deploy", str(package), "--user", "ghost")


# ------------------------------------------------------------------------------- instances


def test_an_instance_from_start_to_completion(cli, tmp_path):
    started = start_order(cli, "CLI-1")
    assert INSTANCE_KEYS <= set(started)
    assert (started["key"], started["version"], started["state"], started["phase"]) == ("svc_order", 1, "running",
                                                                                         "Intake")
    assert started["business_key"] == "CLI-1" and started["data"] == {"initiator": "sally"}
    [enter] = started["tasks"]
    assert TASK_KEYS <= set(enter)
    assert (enter["element_id"], enter["role"], enter["phase"], enter["state"]) == ("enter", "sales", "Intake", "ready")
    instance_id = started["id"]

    shown = cli.json("show", str(instance_id))
    assert {k: shown[k] for k in INSTANCE_KEYS} == {k: started[k] for k in INSTANCE_KEYS}
    listed = cli.json("instances")
    assert instance_id in [i["id"] for i in listed]
    assert [i["id"] for i in cli.json("instances", "--business-key", "CLI-1")] == [instance_id]

    by_instance = cli.json("tasks", "--instance", str(instance_id))
    assert [t["id"] for t in by_instance] == [enter["id"]]
    for task in by_instance:
        assert TASK_KEYS <= set(task) and task["instance"] == instance_id
    assert enter["id"] in [t["id"] for t in cli.json("tasks", "--user", "sam")]
    assert enter["id"] not in [t["id"] for t in cli.json("tasks", "--user", "sponsor")]

    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(VALID_ORDER))
    after_enter = cli.json("complete", str(enter["id"]), "--user", "sam", "--data", f"@{order_file}")
    assert after_enter["phase"] == "Approval"
    assert after_enter["data"]["customer"] == "ACME"
    assert after_enter["path"][0] == "enter"
    [approve] = after_enter["tasks"]
    assert (approve["element_id"], approve["role"]) == ("approve", "Sponsor")

    cli.run("complete", str(approve["id"]), "--user", "sponsor", "--data", '{"approved": true}')
    ship = task_of(cli, instance_id, "ship")
    assert ship["phase"] == "Fulfilment" and sorted(ship["roles"]) == ["logistics", "warehouse"]
    assert ship["id"] in [t["id"] for t in cli.json("tasks", "--user", "lou")]  # the second group
    assert ship["id"] in [t["id"] for t in cli.json("tasks", "--user", "wendy")]

    claimed = cli.json("claim", str(ship["id"]), "--user", "lou")
    assert claimed["assignee"] == "lou"
    assert ship["id"] not in [t["id"] for t in cli.json("tasks", "--user", "lara")]
    assert ship["id"] not in [t["id"] for t in cli.json("tasks", "--user", "wendy")]
    assert "lou" in cli.fails("complete", str(ship["id"]), "--user", "wendy")
    cli.run("complete", str(ship["id"]), "--user", "lou")

    confirm = task_of(cli, instance_id, "confirm")
    assert confirm["assignee"] == "sally" and confirm["phase"] == "Closing"
    done = cli.json("complete", str(confirm["id"]), "--user", "sally", "--data", '{"rating": 5}')
    assert done["state"] == "completed" and done["tasks"] == []
    assert done["data"]["total"] == 30 and done["data"]["rating"] == 5
    assert done["path"][:2] == ["confirm", "tally"]

    history = cli.json("show", str(instance_id), "--history")["history"]
    assert [(e["type"], e["element_id"]) for e in history] == [
        ("started", None), ("completed", "enter"), ("completed", "approve"), ("claimed", "ship"),
        ("completed", "ship"), ("completed", "confirm")]
    previous = GENESIS
    for seq, e in enumerate(history, 1):
        assert e["seq"] == seq and e["prev_hash"] == previous
        assert e["hash"] == event_hash(previous, instance_id=e["instance"], seq=e["seq"],
                                       at=datetime.fromisoformat(e["at"]), actor=e["actor"], type=e["type"],
                                       task_id=e["task"], element_id=e["element_id"], payload=e["payload"])
        previous = e["hash"]
    assert [i["state"] for i in cli.json("instances", "--business-key", "CLI-1")] == ["completed"]
    assert "instance" in cli.run("show", str(instance_id)).stdout  # the human-readable form


def test_human_readable_output(cli):
    started = cli.run("start", "svc_order", "-b", "CLI-TEXT", "--data", '{"initiator": "sally"}')
    assert "state=running" in started.stdout and "phase=Intake" in started.stdout
    assert "enter" in started.stdout
    assert "svc_order" in cli.run("definitions").stdout
    assert "sally" in cli.run("users", "list").stdout


def test_cancel(cli):
    started = start_order(cli, "CLI-CANCEL")
    instance_id, task_id = started["id"], started["tasks"][0]["id"]
    assert "reason" in cli.fails("cancel", str(instance_id), "--reason", "  ")
    cancelled = cli.json("cancel", str(instance_id), "--reason", "customer withdrew")
    assert cancelled["state"] == "cancelled" and cancelled["cancel_reason"] == "customer withdrew"
    assert cancelled["tasks"] == []
    assert cli.json("tasks", "--instance", str(instance_id)) == []
    assert "not ready" in cli.fails("complete", str(task_id), "--user", "sally", "--data", json.dumps(VALID_ORDER))
    assert "cancelled" in cli.fails("cancel", str(instance_id), "--reason", "again")
    history = cli.json("show", str(instance_id), "--history")["history"]
    assert history[-1]["type"] == "cancelled" and history[-1]["payload"]["reason"] == "customer withdrew"


def test_timers_command(cli):
    assert cli.json("timers") == {"instances": []}
    assert "advanced 0" in cli.run("timers").stdout


# ---------------------------------------------------------------------------------- errors


def test_bad_data_is_refused_with_a_clear_message(cli, tmp_path):
    started = start_order(cli, "CLI-BAD")
    task_id = started["tasks"][0]["id"]

    stderr = cli.fails("complete", str(task_id), "--user", "sally", "--data", '{"customer": ')
    assert "not valid JSON" in stderr and "data" in stderr
    assert "line 1 column" in stderr
    stderr = cli.fails("complete", str(task_id), "--user", "sally", "--data", "[1, 2]")
    assert "must be a JSON object" in stderr
    assert "must be a JSON object" in cli.fails("start", "svc_order", "--data", '"text"')
    assert "not valid JSON" in cli.fails("start", "svc_order", "--data", "{nope}")
    assert "no such file" in cli.fails("complete", str(task_id), "--user", "sally", "--data",
                                       f"@{tmp_path / 'missing.json'}")
    bad_file = tmp_path / "bad.json"
    bad_file.write_text("{\n  'single': 'quotes'\n}")
    assert "not valid JSON" in cli.fails("complete", str(task_id), "--user", "sally", "--data", f"@{bad_file}")

    # Valid JSON that the task's form refuses: each bad field on its own line.
    stderr = cli.fails("complete", str(task_id), "--user", "sally", "--data",
                       json.dumps({"quantity": 0, "lines": [{"priority": "urgent"}]}))
    for field in ("customer", "quantity", "lines/0/sku", "lines/0/priority"):
        assert re.search(rf"^\s+{re.escape(field)}: ", stderr, re.MULTILINE), (field, stderr)
    assert [(t["id"], t["state"]) for t in cli.json("tasks", "--instance", str(started["id"]))] == [
        (task_id, "ready")]
    assert len(cli.json("show", str(started["id"]), "--history")["history"]) == 1


def test_unknown_names_and_ids_are_refused(cli):
    task_id = start_order(cli, "CLI-UNKNOWN")["tasks"][0]["id"]
    order = json.dumps(VALID_ORDER)
    assert "ghost" in cli.fails("complete", str(task_id), "--user", "ghost", "--data", order)
    assert "ghost" in cli.fails("tasks", "--user", "ghost")
    assert "ghost" in cli.fails("claim", str(task_id), "--user", "ghost")
    assert "ghost" in cli.fails("start", "svc_order", "--user", "ghost")
    assert "987654" in cli.fails("complete", "987654", "--user", "sally", "--data", order)
    assert "987654" in cli.fails("claim", "987654", "--user", "sally")
    assert "876543" in cli.fails("show", "876543")
    assert "876543" in cli.fails("cancel", "876543", "--reason", "x")
    assert "no_such_process" in cli.fails("start", "no_such_process")
    assert "ghost" in cli.fails("users", "grant", "ghost", "sales")
    assert "unknown" in cli.fails("show", "876543").lower()


def test_completing_twice_and_without_the_role_are_refused(cli):
    task_id = start_order(cli, "CLI-TWICE")["tasks"][0]["id"]
    order = json.dumps(VALID_ORDER)
    stderr = cli.fails("complete", str(task_id), "--user", "nobody", "--data", order)
    assert "nobody" in stderr and "sales" in stderr
    stderr = cli.fails("complete", str(task_id), "--user", "sponsor", "--data", order)
    assert "sales" in stderr
    cli.run("complete", str(task_id), "--user", "sally", "--data", order)
    stderr = cli.fails("complete", str(task_id), "--user", "sally", "--data", order)
    assert "not ready" in stderr and str(task_id) in stderr


def test_a_database_without_the_schema_gets_one_clear_line(tmp_path):
    runner = Cli(tmp_path, f"sqlite:///{tmp_path / 'unmigrated.sqlite'}")
    for command in (("users", "list"), ("tasks",), ("start", "svc_order")):
        stderr = runner.fails(*command)
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert "phasegate db upgrade" in stderr and "SELECT" not in stderr


def test_an_unreachable_database_gets_one_clear_line(tmp_path):
    # Nothing listens on port 9 (discard): the driver's reason, on one line, no traceback.
    runner = Cli(tmp_path, "postgresql://nobody@127.0.0.1:9/nothing")
    stderr = runner.fails("users", "list")
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "database error" in stderr


# ----------------------------------------------------------------------------------- users


def test_users_add_grant_revoke_list(new_cli):
    new_cli.run("db", "upgrade")
    added = new_cli.json("users", "add", "pat", "--role", "Sponsor", "--role", "Project Manager")
    assert added["name"] == "pat" and added["roles"] == ["Project Manager", "Sponsor"]
    assert new_cli.json("users", "grant", "pat", "sales")["roles"] == ["Project Manager", "Sponsor", "sales"]
    assert new_cli.json("users", "revoke", "pat", "Sponsor")["roles"] == ["Project Manager", "sales"]
    listed = {u["name"]: u for u in new_cli.json("users", "list")}
    assert set(listed) == {"admin", "pat"}
    assert listed["pat"]["roles"] == ["Project Manager", "sales"]
    assert {"name", "display_name", "roles", "active"} <= set(listed["pat"])

    assert "already exists" in new_cli.fails("users", "add", "pat")
    assert "Sponsor" in new_cli.fails("users", "revoke", "pat", "Sponsor")
    assert "invalid user name" in new_cli.fails("users", "add", "no spaces please")


def test_users_set_password_from_stdin(new_cli):
    from engine.bootstrap import Phasegate
    from engine.services import auth

    new_cli.run("db", "upgrade")
    new_cli.run("users", "add", "sso-user", "--role", "Sponsor")  # e.g. created by single sign-on: no password
    shown = json.loads(new_cli.run("users", "set-password", "sso-user", "--password-stdin", "--json",
                                   stdin="s3cret phrase\n").stdout)
    assert shown["name"] == "sso-user"
    app = Phasegate(new_cli.database_url)
    try:
        assert auth.verify_password(app, "sso-user", "s3cret phrase")
        assert not auth.verify_password(app, "sso-user", "wrong")
    finally:
        app.dispose()
    assert "unknown user 'nobody'" in new_cli.fails("users", "set-password", "nobody", "--password-stdin", stdin="x\n")
    assert "password" in new_cli.fails("users", "set-password", "sso-user", "--password-stdin", stdin="\n")


def test_grant_and_revoke_change_a_running_instances_inbox(cli):
    task_id = start_order(cli, "CLI-GRANT")["tasks"][0]["id"]
    cli.run("users", "add", "temp")
    assert task_id not in [t["id"] for t in cli.json("tasks", "--user", "temp")]
    cli.run("users", "grant", "temp", "sales")
    assert task_id in [t["id"] for t in cli.json("tasks", "--user", "temp")]
    cli.run("users", "revoke", "temp", "sales")
    assert task_id not in [t["id"] for t in cli.json("tasks", "--user", "temp")]
    assert "temp" in cli.fails("complete", str(task_id), "--user", "temp", "--data", json.dumps(VALID_ORDER))
