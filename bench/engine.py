"""Engine benchmark: durable task completions, SQL statements per completion, loop cost.

Prints one JSON object:
  durable_completions_per_s       completions through the engine's service layer, each its own
                                  committed transaction, SQLite file in WAL mode, one process
  raw_spiff_completions_per_s     the same steps on SpiffWorkflow alone, in memory (the ceiling)
  sql_statements_per_completion   mean statements per completion (SQLAlchemy event listener)
  sql_statements_per_completion_max
  loop_cost_ratio_1000_vs_10      cost of a completion at iteration ~1000 / at iteration ~10, for a
                                  sequential 3-task loop
  parallel_loop_cost_ratio_1000_vs_10  the same for a loop whose body is a parallel split of 3
                                  user tasks and a join
  parallel_loop_iterations        iterations of the parallel loop completed (must reach 1000)
  flagship_seconds                the flagship CRM process from start to closure (null until the
                                  scenario runner exists)

Usage: python bench/engine.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.adapters import migrations  # noqa: E402
from engine.adapters.database import StatementCounter  # noqa: E402
from engine.bootstrap import Phasegate  # noqa: E402
from engine.services import definitions, instances, tasks, users  # noqa: E402

LOOPS = ROOT / "tests" / "models" / "loops.bpmn"
USER = "bench"


def fresh_app(tmp: Path, name: str) -> Phasegate:
    url = f"sqlite:///{tmp / name}"
    migrations.upgrade(url)
    app = Phasegate(url)
    users.add_user(app, USER, ["admin", "builder", "tester", "reviewer"])
    definitions.deploy(app, LOOPS, USER)
    return app


def next_task(app: Phasegate, instance_id: int) -> int | None:
    ready = tasks.list_tasks(app, instance_id=instance_id)
    return ready[0].id if ready else None


def durable(app: Phasegate, instances_count: int, iterations: int) -> float:
    """Completions/s over several sequential-loop instances, each completion its own transaction."""
    elapsed, done = 0.0, 0
    for _ in range(instances_count):
        inst = instances.start(app, "seq_loop", data={"i": 0, "n": iterations}, user=USER)
        task_id = inst.tasks[0].id
        while task_id is not None:
            t0 = time.perf_counter()
            tasks.complete(app, task_id, USER, {"result": "ok"})
            elapsed += time.perf_counter() - t0
            done += 1
            task_id = next_task(app, inst.id)
    return done / elapsed


def statements_per_completion(app: Phasegate, iterations: int) -> tuple[float, int]:
    """SQL statements per completion, counted in a separate run: the listener that counts them
    slows every statement down, so it is kept out of the timed run."""
    counter = StatementCounter(app.engine)
    counts = []
    inst = instances.start(app, "seq_loop", data={"i": 0, "n": iterations}, user=USER)
    task_id = inst.tasks[0].id
    while task_id is not None:
        counter.reset()
        tasks.complete(app, task_id, USER, {"result": "ok"})
        counts.append(counter.count)
        task_id = next_task(app, inst.id)
    counter.close()
    return statistics.mean(counts), max(counts)


def raw_spiff(instances_count: int, iterations: int) -> float:
    """The same completions on SpiffWorkflow alone: no persistence, no routing, no events."""
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
    from SpiffWorkflow.util.task import TaskState

    parser = CamundaParser()
    parser.add_bpmn_file(str(LOOPS))
    spec, subprocesses = parser.get_spec("seq_loop"), parser.get_subprocess_specs("seq_loop")
    elapsed, done = 0.0, 0
    for _ in range(instances_count):
        workflow = BpmnWorkflow(spec, subprocesses)
        workflow.task_tree.data.update({"i": 0, "n": iterations})
        for child in workflow.task_tree.children:
            child.data.update({"i": 0, "n": iterations})
        workflow.do_engine_steps()
        while True:
            ready = workflow.get_tasks(state=TaskState.READY, manual=True)
            if not ready:
                break
            t0 = time.perf_counter()
            ready[0].data.update({"result": "ok"})
            ready[0].run()
            workflow.do_engine_steps()
            elapsed += time.perf_counter() - t0
            done += 1
    return done / elapsed


def loop_cost_ratio(app: Phasegate, key: str, tasks_per_iteration: int, iterations: int = 1000) -> tuple[float, int]:
    """Mean completion cost near iteration `iterations` / near iteration 10."""
    inst = instances.start(app, key, data={"i": 0, "n": iterations + 5}, user=USER)
    costs: list[float] = []
    task_id = inst.tasks[0].id
    while task_id is not None:
        t0 = time.perf_counter()
        tasks.complete(app, task_id, USER, {"result": "ok"})
        costs.append(time.perf_counter() - t0)
        task_id = next_task(app, inst.id)
    done_iterations = len(costs) // tasks_per_iteration

    def window(around: int) -> float:
        start = around * tasks_per_iteration
        sample = costs[start:start + 10 * tasks_per_iteration]
        return statistics.median(sample)

    return window(iterations - 10) / window(10), done_iterations


def flagship_seconds(tmp: Path) -> float | None:
    try:
        from engine.services import scenarios
    except ImportError:
        return None
    bpmn = ROOT / "processes" / "crm_implementation.bpmn"
    scenario = ROOT / "processes" / "scenarios" / "happy_path.yaml"
    if not bpmn.exists() or not scenario.exists():
        return None
    url = f"sqlite:///{tmp / 'flagship.sqlite'}"
    migrations.upgrade(url)
    app = Phasegate(url)
    from engine.domain import clock
    from engine.services import demo

    users.add_user(app, "admin", ["admin"], exist_ok=True)
    definitions.deploy(app, ROOT / "processes", "admin")
    demo.create_demo_users(app)
    previous = clock.use(clock.FrozenClock(clock.now()))  # scenarios move time with `advance` steps
    try:
        t0 = time.perf_counter()
        scenarios.run_scenario(app, "crm_implementation", scenario)
        elapsed = time.perf_counter() - t0
    finally:
        clock.use(previous)
        app.dispose()
    return round(elapsed, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run (well under 60 s)")
    args = parser.parse_args()
    instances_count, iterations = (3, 100) if args.quick else (10, 200)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        app = fresh_app(tmp, "durable.sqlite")
        per_s = durable(app, instances_count, iterations)
        stmts_mean, stmts_max = statements_per_completion(app, 30)
        raw = raw_spiff(instances_count, iterations)
        seq_ratio, _ = loop_cost_ratio(app, "seq_loop", 3)
        par_ratio, par_iterations = loop_cost_ratio(app, "par_loop", 4)
        app.dispose()
        result = {
            "durable_completions_per_s": round(per_s, 1),
            "raw_spiff_completions_per_s": round(raw, 1),
            "sql_statements_per_completion": round(stmts_mean, 2),
            "sql_statements_per_completion_max": stmts_max,
            "loop_cost_ratio_1000_vs_10": round(seq_ratio, 3),
            "parallel_loop_cost_ratio_1000_vs_10": round(par_ratio, 3),
            "parallel_loop_iterations": par_iterations,
            "flagship_seconds": flagship_seconds(tmp),
            "mode": "quick" if args.quick else "full",
            "database": "sqlite (WAL, synchronous=NORMAL)",
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
