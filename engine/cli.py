"""The `phasegate` command line: thin click commands over the service layer.

Every command accepts `--json` for machine-readable output (shapes documented in the README),
writes errors to stderr and exits non-zero: 1 for a refused command (bad input, unknown id, not
allowed), 2 for bad usage. No traceback reaches the user unless PHASEGATE_DEBUG=1.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from engine.domain.errors import InvalidInput, ModelRejected, PhasegateError

DEFAULT_USER = "admin"


# -- plumbing ---------------------------------------------------------------------------------

class Context:
    def __init__(self, database_url: str | None):
        self.database_url = database_url
        self._app = None

    @property
    def app(self):
        if self._app is None:
            from engine.bootstrap import Phasegate

            self._app = Phasegate(self.database_url)
        return self._app


def _emit(value, as_json: bool, human=None) -> None:
    if as_json:
        click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))
    elif human is not None:
        human(value)
    else:
        click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def _fail(message: str, code: int = 1):
    click.echo(message, err=True)
    sys.exit(code)


def handles_errors(func):
    """Turn domain errors into a message on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ModelRejected as exc:
            _fail("\n".join(str(issue) for issue in exc.issues))
        except InvalidInput as exc:
            lines = [f"error: {exc.message}"]
            lines += [f"  {field}: {msg}" for field, msgs in exc.fields.items() for msg in msgs]
            _fail("\n".join(lines))
        except PhasegateError as exc:
            _fail(f"error: {exc.message}")
        except click.exceptions.Exit:
            raise
        except Exception as exc:  # last resort: a clear line, never a stack dump
            if os.environ.get("PHASEGATE_DEBUG"):
                raise
            _fail(_unexpected_error_message(exc))

    return wrapper


def _unexpected_error_message(exc: Exception) -> str:
    """One line for an error that is not the user's input: the database's own reason, not its SQL."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError) and exc.orig is not None:
        reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
        if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
            return (f"error: the database has no Phasegate schema or an outdated one ({reason}); "
                    "run `phasegate db upgrade`")
        return f"database error: {reason} (set PHASEGATE_DEBUG=1 for details)"
    text = " ".join(str(exc).split())
    return f"internal error: {type(exc).__name__}: {text} (set PHASEGATE_DEBUG=1 for details)"


def _read_yaml_or_json(path: str, option: str) -> dict:
    import yaml

    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"{option}: no such file '{path}'", fields={option.lstrip("-"): ["file not found"]})
    try:
        value = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{option}: {path} is not valid YAML/JSON: {exc}", fields={option.lstrip("-"): [str(exc)]})
    if not isinstance(value, dict):
        raise InvalidInput(f"{option}: expected a mapping of gate id to settings", fields={option.lstrip("-"): ["mapping"]})
    return value


def _read_data(value: str | None, option: str = "--data") -> dict:
    """JSON text, or @file holding JSON."""
    from engine.services.steps import parse_json_object

    if value is None:
        return {}
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise InvalidInput(f"{option}: no such file '{path}'", fields={option.lstrip("-"): ["file not found"]})
        value = path.read_text(encoding="utf-8")
    return parse_json_object(value, option.lstrip("-"))


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
user_option = click.option("--user", "-u", default=lambda: os.environ.get("PHASEGATE_USER", DEFAULT_USER),
                           show_default="$PHASEGATE_USER or admin", help="Who is acting.")


@click.group()
@click.option("--database-url", envvar="PHASEGATE_DATABASE_URL",
              help="SQLAlchemy URL; default sqlite:///phasegate.sqlite (env PHASEGATE_DATABASE_URL).")
@click.version_option(package_name="phasegate")
@click.pass_context
def main(ctx, database_url):
    """Phasegate: BPMN workflows with configurable phase gates."""
    ctx.obj = Context(database_url)


pass_ctx = click.make_pass_decorator(Context)


# -- database ---------------------------------------------------------------------------------

@main.group()
def db():
    """Database schema management (alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_ctx
@handles_errors
def db_upgrade(ctx, revision):
    """Create or migrate the schema, and make sure the built-in admin user exists."""
    from engine.adapters.migrations import upgrade
    from engine.services import users

    upgrade(ctx.database_url, revision)
    users.add_user(ctx.app, DEFAULT_USER, ["admin"], display_name="Administrator", exist_ok=True)
    click.echo(f"database at {revision}")


# -- definitions ------------------------------------------------------------------------------

forms_option = click.option("--forms", "forms_dir", type=click.Path(file_okay=False),
                            help="Folder of task forms (default: $PHASEGATE_FORMS_DIR or the nearest forms/ folder).")


@main.command()
@click.argument("path", type=click.Path())
@forms_option
@json_option
@handles_errors
def check(path, forms_dir, as_json):
    """Validate BPMN/DMN/forms at PATH without deploying."""
    from engine.services import definitions

    package, issues = definitions.check(path, forms_dir)
    errors = [i for i in issues if i.severity == "error"]
    if as_json:
        _emit({
            "valid": not errors,
            "processes": [p.key for p in package.processes] if package and not errors else [],
            "issues": [i.to_dict() for i in issues],
        }, True)
    else:
        for issue in issues:
            prefix = "" if issue.severity == "error" else "warning: "
            click.echo(f"{prefix}{issue}", err=True)
        if not errors and package:
            click.echo(f"ok: {len(package.processes)} executable process(es): "
                       + ", ".join(p.key for p in package.processes))
    if errors:
        sys.exit(1)


@main.command()
@click.argument("path", type=click.Path())
@forms_option
@click.option("--gate-overrides", type=click.Path(dir_okay=False),
              help="YAML/JSON file {gate id: {setting: value}} overriding the gates file for this deployment.")
@click.option("--apply-to-open-gates", is_flag=True,
              help="A changed gate configuration also applies to gates already open (default: new gates only).")
@user_option
@json_option
@pass_ctx
@handles_errors
def deploy(ctx, path, forms_dir, user, gate_overrides, apply_to_open_gates, as_json):
    """Deploy a BPMN file or a folder (BPMN, DMN, forms, *.gates.yaml) as new versions."""
    from engine.services import definitions

    overrides = _read_yaml_or_json(gate_overrides, "--gate-overrides") if gate_overrides else None
    deployed = definitions.deploy(ctx.app, path, user, forms_dir, gate_overrides=overrides,
                                  apply_to_open_gates=apply_to_open_gates)

    def human(value):
        for d in value["deployed"]:
            status = "deployed" if d["new"] else "unchanged"
            click.echo(f"{status}: {d['key']} v{d['version']} ({d['hash'][:12]})")
            if "gates" in d:
                g = d["gates"]
                click.echo(f"  gates: {'new configuration' if g['new'] else 'unchanged'} v{g['version']}")

    _emit({"deployed": deployed}, as_json, human)


@main.command("definitions")
@click.option("--latest", is_flag=True, help="Only the newest version of each key.")
@json_option
@pass_ctx
@handles_errors
def definitions_cmd(ctx, latest, as_json):
    """List deployed process definitions."""
    from engine.services import definitions

    rows = [d.to_dict() for d in definitions.list_definitions(ctx.app, latest_only=latest)]

    def human(value):
        for d in value:
            click.echo(f"{d['key']:<30} v{d['version']:<4} {d['hash'][:12]}  {d['deployed_at']}  {d['name'] or ''}")

    _emit(rows, as_json, human)


# -- instances --------------------------------------------------------------------------------

def _print_instance(inst: dict) -> None:
    click.echo(f"instance {inst['id']}  {inst['key']} v{inst['version']}  state={inst['state']}  "
               f"phase={inst['phase'] or '-'}  business key={inst['business_key'] or '-'}")
    if inst.get("error"):
        err = inst["error"]
        click.echo(f"  error at {err.get('element')}: {err.get('message')}")
    if inst.get("cancel_reason"):
        click.echo(f"  cancelled: {inst['cancel_reason']}")
    for task in inst.get("tasks", []):
        _print_task(task, indent="  ")
    click.echo(f"  data: {json.dumps(inst['data'], default=str, ensure_ascii=False)}")


def _print_task(task: dict, indent: str = "") -> None:
    who = f"assignee={task['assignee']}" if task.get("assignee") else f"role={task['role'] or '-'}"
    due = f" due={task['due']}" if task.get("due") else ""
    click.echo(f"{indent}task {task['id']}: {task['name'] or task['element_id']} [{task['element_id']}] "
               f"{who} phase={task['phase'] or '-'}{due}")


@main.command()
@click.argument("key")
@click.option("--business-key", "-b", help="Your own reference for the instance, e.g. a project code.")
@click.option("--data", "-d", help="Initial data: a JSON object, or @file.json.")
@click.option("--version", "version_", type=int, help="Start this version instead of the latest.")
@click.option("--gate-overrides", help="JSON {gate id: {setting: value}}, or @file: settings the gates allow "
                                       "an instance to change (their `overridable` list).")
@user_option
@json_option
@pass_ctx
@handles_errors
def start(ctx, key, business_key, data, version_, gate_overrides, user, as_json):
    """Start an instance of process KEY (latest version) and run it until it waits."""
    from engine.services import instances

    inst = instances.start(ctx.app, key, data=_read_data(data), business_key=business_key, user=user,
                           version=version_,
                           gate_overrides=_read_data(gate_overrides, "--gate-overrides") if gate_overrides else None)
    _emit(inst.to_dict(), as_json, _print_instance)


@main.command("instances")
@click.option("--state", type=click.Choice(["running", "completed", "cancelled", "error"]))
@click.option("--key", help="Only instances of this process key.")
@click.option("--business-key", "-b")
@click.option("--limit", type=int, default=200, show_default=True)
@json_option
@pass_ctx
@handles_errors
def instances_cmd(ctx, state, key, business_key, limit, as_json):
    """List instances, newest first."""
    from engine.services import instances

    rows = [i.to_dict() for i in instances.list_instances(ctx.app, state=state, key=key, business_key=business_key,
                                                          limit=limit)]

    def human(value):
        for i in value:
            click.echo(f"{i['id']:>6}  {i['key']:<28} v{i['version']:<3} {i['state']:<10} "
                       f"phase={i['phase'] or '-':<20} {i['business_key'] or ''}")

    _emit(rows, as_json, human)


@main.command()
@click.argument("instance_id", type=int)
@click.option("--history", is_flag=True, help="Include the event history.")
@json_option
@pass_ctx
@handles_errors
def show(ctx, instance_id, history, as_json):
    """Show an instance: state, current phase, open tasks and data."""
    from engine.services import instances

    from engine.services import gates as gate_service

    inst = instances.show(ctx.app, instance_id).to_dict()
    inst["phases"] = instances.phases(ctx.app, instance_id)
    inst["gates"] = gate_service.gates_view(ctx.app, instance_id)
    if history:
        inst["history"] = [e.to_dict() for e in instances.history(ctx.app, instance_id)]

    def human(value):
        _print_instance(value)
        if value["phases"]:
            click.echo("  phases: " + " > ".join(p["phase"] + (" (current)" if p["state"] == "current" else "")
                                                for p in value["phases"]))
        for g in value["gates"]:
            click.echo("  gate ", nl=False)
            _print_gate(g)
        for e in value.get("history", []):
            click.echo(f"  #{e['seq']} {e['at']} {e['actor']} {e['type']} {e['element_id'] or ''} "
                       f"{' > '.join(e['payload'].get('path', []))}")

    _emit(inst, as_json, human)


@main.command()
@click.argument("instance_id", type=int)
@click.option("--reason", "-r", required=True, help="Why the instance is cancelled (recorded in its history).")
@user_option
@json_option
@pass_ctx
@handles_errors
def cancel(ctx, instance_id, reason, user, as_json):
    """Cancel a running instance."""
    from engine.services import instances

    inst = instances.cancel(ctx.app, instance_id, reason=reason, user=user)
    _emit(inst.to_dict(), as_json, _print_instance)


@main.command()
@json_option
@pass_ctx
@handles_errors
def timers(ctx, as_json):
    """Fire every due timer once (run it from cron or a worker loop)."""
    from engine.services import instances

    moved = instances.fire_due_timers(ctx.app)
    _emit({"instances": moved}, as_json, lambda v: click.echo(f"advanced {len(moved)} instance(s)"))


@main.command()
@click.argument("instance_id", type=int)
@click.argument("name")
@click.option("--data", "-d", help="The message payload: a JSON object, or @file.json.")
@user_option
@json_option
@pass_ctx
@handles_errors
def message(ctx, instance_id, name, data, user, as_json):
    """Send message NAME (e.g. raise_risk) to a running instance."""
    from engine.services import instances

    inst = instances.send_message(ctx.app, instance_id, name, _read_data(data), user=user)
    _emit(inst.to_dict(), as_json, _print_instance)


@main.command("run-scenario")
@click.argument("process")
@click.argument("scenario", type=click.Path())
@user_option
@json_option
@pass_ctx
@handles_errors
def run_scenario(ctx, process, scenario, user, as_json):
    """Drive a real instance of PROCESS through the steps of a SCENARIO file (YAML).

    Time is simulated: `advance` steps move a controllable clock that starts now.
    """
    from engine.domain import clock
    from engine.services import instances, scenarios

    previous = clock.use(clock.FrozenClock(clock.now()))
    try:
        run = scenarios.run_scenario(ctx.app, process, scenario)
    finally:
        clock.use(previous)
    inst = instances.show(ctx.app, run.instance_id).to_dict()
    inst["path"] = run.path

    def human(value):
        for line in run.log:
            click.echo(line)
        click.echo("path: " + " > ".join(run.path))
        _print_instance(value)

    _emit(inst, as_json, human)


@main.command()
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds between timer sweeps.")
@click.option("--once", is_flag=True, help="One sweep, then exit.")
@pass_ctx
@handles_errors
def worker(ctx, interval, once):
    """Run timers continuously: every INTERVAL seconds fire what is due (one worker or several)."""
    import time

    from engine.services import instances

    click.echo(f"timer worker: sweeping every {interval:g}s (Ctrl-C to stop)")
    try:
        while True:
            moved = instances.fire_due_timers(ctx.app)
            if moved:
                click.echo(f"advanced instance(s): {', '.join(map(str, moved))}")
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("timer worker stopped")


# -- tasks ------------------------------------------------------------------------------------

@main.command()
@click.option("--instance", "instance_id", type=int, help="Only tasks of this instance.")
@click.option("--user", "-u", help="Only tasks this user may work on now (their roles and their claims).")
@json_option
@pass_ctx
@handles_errors
def tasks(ctx, instance_id, user, as_json):
    """List ready human tasks."""
    from engine.services import tasks as task_service

    rows = [t.to_dict() for t in task_service.list_tasks(ctx.app, user=user, instance_id=instance_id)]
    _emit(rows, as_json, lambda value: [_print_task(t) for t in value])


@main.command()
@click.argument("task_id", type=int)
@click.option("--user", "-u", required=True)
@json_option
@pass_ctx
@handles_errors
def claim(ctx, task_id, user, as_json):
    """Claim a task so it leaves the other role members' lists."""
    from engine.services import tasks as task_service

    _emit(task_service.claim(ctx.app, task_id, user).to_dict(), as_json, _print_task)


@main.command()
@click.argument("task_id", type=int)
@click.option("--user", "-u", required=True)
@json_option
@pass_ctx
@handles_errors
def unclaim(ctx, task_id, user, as_json):
    """Give a claimed task back to its role."""
    from engine.services import tasks as task_service

    _emit(task_service.unclaim(ctx.app, task_id, user).to_dict(), as_json, _print_task)


@main.command()
@click.argument("task_id", type=int)
@click.option("--to", "to", required=True, help="Who gets the task: a user holding one of its roles.")
@user_option
@json_option
@pass_ctx
@handles_errors
def assign(ctx, task_id, to, user, as_json):
    """Assign a task to a user holding one of its roles (recorded with from and to)."""
    from engine.services import tasks as task_service

    _emit(task_service.assign(ctx.app, task_id, user, to).to_dict(), as_json, _print_task)


@main.command()
@click.argument("task_id", type=int)
@click.option("--user", "-u", required=True)
@click.option("--data", "-d", help="The form data: a JSON object, or @file.json.")
@json_option
@pass_ctx
@handles_errors
def complete(ctx, task_id, user, data, as_json):
    """Complete a task with form data; prints the instance afterwards."""
    from engine.services import instances
    from engine.services import tasks as task_service

    result = task_service.complete(ctx.app, task_id, user, _read_data(data))
    inst = instances.show(ctx.app, result.instance_id).to_dict()
    inst["path"] = result.path
    _emit(inst, as_json, _print_instance)


# -- gates ------------------------------------------------------------------------------------

def _print_gate(g: dict) -> None:
    round_text = f" round {g['round']}" if g.get("round") else ""
    outcome = f" -> {g['outcome']}" if g.get("outcome") else ""
    click.echo(f"{g['gate']:<28} {g['state']}{round_text}{outcome}  phase={g.get('phase') or '-'}  rule: {g['rule']}")
    for d in g.get("decisions", []):
        who = d["user"] + (f" for {d['on_behalf_of']}" if d.get("on_behalf_of") else "")
        click.echo(f"    {d['at'][:16]} {who}: {d['outcome']}" + (f" - {d['comment']}" if d.get("comment") else ""))
    if g.get("eligible"):
        click.echo(f"    may still decide: {', '.join(g['eligible'])}")
    for e in g.get("excluded", []):
        click.echo(f"    excluded: {e['user']} ({e['reason']})")
    for item in g.get("action_items", []):
        click.echo(f"    action item {item['id']} [{item['state']}] {item['text']} (owner {item['owner']})")


@main.command()
@click.argument("instance_id", type=int)
@json_option
@pass_ctx
@handles_errors
def gates(ctx, instance_id, as_json):
    """The gates of an instance: state, round, rule, decisions, who may still decide and who may not."""
    from engine.services import gates as gate_service

    _emit(gate_service.gates_view(ctx.app, instance_id), as_json, lambda value: [_print_gate(g) for g in value])


@main.command()
@click.argument("task_id", type=int)
@click.option("--user", "-u", required=True)
@click.option("--outcome", "-o", required=True,
              help="go | conditional-go | hold | recycle | kill | approve | reject | abstain | recuse")
@click.option("--comment", "-c", help="Required for hold, recycle and kill.")
@click.option("--conditions", help="Conditional Go: JSON list of {text, owner, due}, or @file.json.")
@click.option("--on-behalf-of", help="Decide as the delegate of this approver.")
@click.option("--sign", is_flag=True, help="Sign electronically: prompts for your password.")
@click.option("--password", envvar="PHASEGATE_SIGNATURE_PASSWORD", hidden=True)
@json_option
@pass_ctx
@handles_errors
def decide(ctx, task_id, user, outcome, comment, conditions, on_behalf_of, sign, password, as_json):
    """Record a decision on a gate approval task (the same checks as the web and the API)."""
    from engine.services import gates as gate_service

    parsed_conditions = None
    if conditions:
        text = conditions
        if conditions.startswith("@"):
            path = Path(conditions[1:])
            if not path.is_file():
                raise InvalidInput(f"--conditions: no such file '{path}'", fields={"conditions": ["file not found"]})
            text = path.read_text(encoding="utf-8")
        try:
            parsed_conditions = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--conditions is not valid JSON: {exc.msg}", fields={"conditions": [exc.msg]})
    if sign and not password:
        password = click.prompt("Password (electronic signature)", hide_input=True)
    result = gate_service.decide(ctx.app, task_id, user, outcome, comment=comment, conditions=parsed_conditions,
                                 on_behalf_of=on_behalf_of, password=password)

    def human(value):
        state = f"decided: {value['outcome']}" if value["decided"] else "recorded; the gate is still open"
        click.echo(f"gate {value['gate']} round {value['round']}: {state} ({value['reason']})")

    _emit(result, as_json, human)


@main.command()
@click.argument("instance_id", type=int)
@json_option
@pass_ctx
@handles_errors
def actions(ctx, instance_id, as_json):
    """Action items from Conditional Go decisions (the next gate waits until all are closed)."""
    from engine.services import gates as gate_service

    _emit(gate_service.action_items(ctx.app, instance_id), as_json,
          lambda value: [click.echo(f"{i['id']:>4} [{i['state']}] {i['text']} (owner {i['owner']}, due {i['due'] or '-'})")
                         for i in value])


@main.command("close-action")
@click.argument("item_id", type=int)
@click.option("--user", "-u", required=True)
@click.option("--note", help="How it was resolved.")
@json_option
@pass_ctx
@handles_errors
def close_action(ctx, item_id, user, note, as_json):
    """Close an action item (its owner or an admin)."""
    from engine.services import gates as gate_service

    _emit(gate_service.close_action_item(ctx.app, item_id, user, note), as_json,
          lambda i: click.echo(f"action item {i['id']} closed by {i['closed_by']}"))


@main.command()
@click.argument("task_id", type=int)
@click.option("--user", "-u", required=True, help="Who hands the task (or their gate decision) on.")
@click.option("--to", "to", required=True, help="Who takes over.")
@json_option
@pass_ctx
@handles_errors
def delegate(ctx, task_id, user, to, as_json):
    """Delegate a task: a gate approval's delegate decides "on behalf of" you, checked against both;
    any other task goes to TO (who must hold one of its roles)."""
    from engine.services import tasks as task_service

    def human(v):
        if v["kind"] == "approval":
            click.echo(f"task {v['task']}: {v['delegate']} decides on behalf of {v['delegator']}")
        else:
            click.echo(f"task {v['task']}: delegated by {v['delegator']} to {v['delegate']}")

    _emit(task_service.delegate(ctx.app, task_id, user, to), as_json, human)


@main.command("out-of-office")
@click.argument("user")
@click.option("--delegate", required=True)
@click.option("--until", "until", required=True, help="ISO 8601 date/time the delegation ends.")
@click.option("--from", "starts", help="ISO 8601 date/time it starts (default: now).")
@json_option
@pass_ctx
@handles_errors
def out_of_office(ctx, user, delegate, until, starts, as_json):
    """A time-limited delegate for all of USER's gate decisions."""
    from engine.services import gates as gate_service

    def parse(value, name):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"--{name} '{value}' is not an ISO 8601 date/time", fields={name: ["ISO 8601"]})
        return when if when.tzinfo else when.replace(tzinfo=timezone.utc)

    result = gate_service.set_out_of_office(ctx.app, user, delegate, parse(until, "until"),
                                            parse(starts, "from") if starts else None)
    _emit(result, as_json, lambda v: click.echo(f"{v['delegate']} decides for {v['delegator']} until {v['until']}"))


# -- users ------------------------------------------------------------------------------------

@main.group()
def users():
    """Users and their roles."""


def _print_user(u: dict) -> None:
    click.echo(f"{u['name']:<24} {', '.join(u['roles']) or '-'}")


@users.command("add")
@click.argument("name")
@click.option("--role", "-r", "roles", multiple=True, help="Grant this role (repeatable).")
@click.option("--display-name")
@click.option("--password", help="Sign-in password for the web inbox (stored as an argon2 hash).")
@json_option
@pass_ctx
@handles_errors
def users_add(ctx, name, roles, display_name, password, as_json):
    """Add a user."""
    from engine.services import users as user_service

    _emit(user_service.add_user(ctx.app, name, list(roles), display_name, password).to_dict(), as_json, _print_user)


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting.")
@json_option
@pass_ctx
@handles_errors
def users_set_password(ctx, name, password_stdin, as_json):
    """Set the sign-in password of user NAME (also their electronic signature at gates)."""
    from engine.services import users as user_service

    if password_stdin:
        password = click.get_text_stream("stdin").readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    _emit(user_service.set_password(ctx.app, name, password).to_dict(), as_json, _print_user)


@users.command("grant")
@click.argument("name")
@click.argument("role")
@json_option
@pass_ctx
@handles_errors
def users_grant(ctx, name, role, as_json):
    """Grant ROLE to user NAME (takes effect on running instances at once)."""
    from engine.services import users as user_service

    _emit(user_service.grant(ctx.app, name, role).to_dict(), as_json, _print_user)


@users.command("revoke")
@click.argument("name")
@click.argument("role")
@user_option
@json_option
@pass_ctx
@handles_errors
def users_revoke(ctx, name, role, user, as_json):
    """Revoke ROLE from user NAME; tasks they hold and may no longer work on go back to their roles."""
    from engine.services import users as user_service

    _emit(user_service.revoke(ctx.app, name, role, actor=user).to_dict(), as_json, _print_user)


@users.command("list")
@json_option
@pass_ctx
@handles_errors
def users_list(ctx, as_json):
    """List users and their roles."""
    from engine.services import users as user_service

    _emit([u.to_dict() for u in user_service.list_users(ctx.app)], as_json,
          lambda value: [_print_user(u) for u in value])


@main.command("demo-users")
@click.option("--password", default="demo", show_default=True, help="Password given to every demo user.")
@json_option
@pass_ctx
@handles_errors
def demo_users(ctx, password, as_json):
    """Create one demo user per role used by the deployed processes, plus admin/designer/auditor."""
    from engine.services import demo

    created = demo.create_demo_users(ctx.app, password)
    _emit([u.to_dict() for u in created], as_json, lambda value: [_print_user(u) for u in value])


# -- API tokens -------------------------------------------------------------------------------

@main.group()
def tokens():
    """Personal API tokens (Authorization: Bearer <token>); stored as SHA-256, revocable."""


def _print_token(t: dict) -> None:
    state = "active" if t["active"] else f"revoked {t['revoked_at']}"
    click.echo(f"{t['id']:>4}  {t['prefix']}…  {t['name']:<24} {t['user']:<16} created {t['created_at']}  "
               f"last used {t['last_used_at'] or '-'}  {state}")


@tokens.command("create")
@click.argument("user")
@click.option("--name", "-n", required=True, help="What the token is for, e.g. 'CI pipeline'.")
@json_option
@pass_ctx
@handles_errors
def tokens_create(ctx, user, name, as_json):
    """Create a token for USER and print it once (it cannot be shown again)."""
    from engine.services import auth

    plain, record = auth.create_token(ctx.app, user, name)

    def human(value):
        click.echo(value["token"])
        click.echo(f"token {value['id']} for {value['user']} ({value['name']}): copy it now, "
                   "it is not shown again", err=True)

    _emit({"token": plain, **record.to_dict()}, as_json, human)


@tokens.command("list")
@click.argument("user")
@json_option
@pass_ctx
@handles_errors
def tokens_list(ctx, user, as_json):
    """List USER's tokens (prefix, name, last use, revoked or not; never the token)."""
    from engine.services import auth

    _emit([t.to_dict() for t in auth.list_tokens(ctx.app, user)], as_json,
          lambda value: [_print_token(t) for t in value])


@tokens.command("revoke")
@click.argument("token_id", type=int)
@json_option
@pass_ctx
@handles_errors
def tokens_revoke(ctx, token_id, as_json):
    """Revoke token TOKEN_ID: it stops working at once."""
    from engine.services import auth

    _emit(auth.revoke_token(ctx.app, token_id).to_dict(), as_json, _print_token)


# -- web --------------------------------------------------------------------------------------

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug", is_flag=True)
@pass_ctx
def serve(ctx, host, port, debug):
    """Serve the web inbox and API (development server; use gunicorn in production)."""
    from web.app import create_app

    app = create_app(database_url=ctx.database_url)
    click.echo(f"Phasegate on http://{host}:{port}/  (database: {app.config['PHASEGATE_DATABASE_LABEL']})")
    app.run(host=host, port=port, debug=debug, use_reloader=False)


if __name__ == "__main__":  # pragma: no cover
    main()
