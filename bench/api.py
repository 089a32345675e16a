"""REST API and inbox benchmark: page and API latency on a large inbox, task completions over HTTP.

Prints one JSON object:
  inbox_p95_ms_sqlite, inbox_p95_ms_postgresql
        GET /inbox (the server-rendered page, default filters: 25 tasks, the counts) as a signed-in
        user holding 5 of the 50 roles, 95th percentile in ms
  api_my_tasks_p95_ms_sqlite, api_my_tasks_p95_ms_postgresql
        GET /api/v1/tasks (my tasks, default paging: 50) as the same user with an API token
  api_completions_per_s_1_client_sqlite
        POST /api/v1/tasks/<id>/complete, one client, one keep-alive connection, SQLite
  api_completions_per_s_8_clients_postgresql
        the same with 8 concurrent clients (threads, one keep-alive connection each), PostgreSQL
  api_errors
        responses that were not 2xx, over every measured request of the run (must be 0)
and, to read the figures: p50s, p95s of a mix of filtered/sorted/paged requests (`*_mix_*`),
the tasks the user sees, seeding times and how the server ran.

Method
- Database: 100,000 open tasks (10,000 with --quick) in 1,000 (100) instances, all real: the
  engine starts instances of bench/models/inbox_fanout.bpmn (a parallel fan-out of 100 user tasks
  over roles role_00..role_49, some with a second candidate role, phases and due dates varying
  per task) with the clock set back so that instances were started over the last 60 days (ages,
  overdue and due-this-week tasks vary), and a few tasks per 10 instances are claimed through
  the service layer. The measured user holds role_00..role_04 and sees about 12% of the tasks.
- Server: gunicorn on `web.app:create_app()` in a subprocess, gthread workers, reached over real
  HTTP/1.1 with keep-alive (http.client); SQLite and PostgreSQL get the same server. 4 workers x
  2 threads on 2 cores: a worker's threads share one interpreter lock, and with 2 workers x 4
  threads the machine stayed 10-25% idle under the 8 clients (measured): requests waited for a
  worker's lock while its other threads waited for the database.
- Latency: sequential requests after a warm-up; p95 over 200 requests (60 with --quick).
- Completions: the API client completes the tasks of bench/models/api_worklist.bpmn, the shape
  of bench/engine.py's seq_loop (three user tasks per item, then a script and a gateway loop back)
  so the two benchmarks compare; every completion is a full durable step and puts the next task in
  the inbox. The client is a user with the role `clerk` and a personal API token; each client works
  round-robin through its own instances, taking the next task id from the response. All clients
  run for the same 10 s (3 s with --quick) after a warm-up; throughput = successful completions /
  that time.
- PostgreSQL: a throwaway database on $PHASEGATE_BENCH_PG_URL (default
  postgresql://postgres@127.0.0.1:5432/postgres as the maintenance database), migrated with
  `phasegate db upgrade`, ANALYZEd after seeding (what autovacuum does after a bulk load; it may
  be off or not have run yet) and dropped afterwards; if it is unreachable its keys are null and
  the reason goes to stderr. SQLite gets no ANALYZE: Phasegate never runs it.
- Noise: the load generator shares the machine; `load_average_1m` (at the start) and
  `other_processes_cores_during_completions_*` (cores that processes other than the bench, its
  gunicorn and its database backends kept busy while the completions ran) say how busy it was.

Usage: python bench/api.py [--quick] [--only sqlite|postgresql] [--workers N] [--threads N]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.bootstrap import Phasegate  # noqa: E402
from engine.domain import clock  # noqa: E402
from engine.services import auth, definitions, instances, tasks, users  # noqa: E402

MODELS = ROOT / "bench" / "models"
ROLES = [f"role_{i:02d}" for i in range(50)]
INBOX_USER, INBOX_ROLES, PASSWORD = "bench", ROLES[:5], "bench password"
WORKER = "clerk_1"
TASKS_PER_INSTANCE = 100  # inbox_fanout.bpmn
SPREAD = timedelta(days=60)  # instances were started over this many days
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER = {"workers": 4, "threads": 2}  # gunicorn; see the module docstring

# The default calls are the headline figures; the mix is what people also do with an inbox.
INBOX_MIX = ["/inbox?sort=due", "/inbox?overdue=1", "/inbox?due_this_week=1", "/inbox?role=role_02",
             "/inbox?q=CUST-1", "/inbox?page=7", "/inbox?phase=review&sort=priority", "/inbox?per_page=100"]
API_MIX = ["/api/v1/tasks?sort=due", "/api/v1/tasks?overdue=true", "/api/v1/tasks?role=role_03",
           "/api/v1/tasks?q=CUST-2", "/api/v1/tasks?page=20", "/api/v1/tasks?phase=design&sort=priority",
           "/api/v1/tasks/count", "/api/v1/tasks?per_page=200"]


class Errors:
    """Non-2xx responses of the whole run (thread-safe: the completion clients share it)."""

    def __init__(self):
        self.count = 0
        self.samples: list[str] = []
        self._lock = threading.Lock()

    def add(self, method: str, path: str, status: int, body: bytes) -> None:
        with self._lock:
            self.count += 1
            if len(self.samples) < 5:
                self.samples.append(f"{method} {path} -> {status}: {body[:200]!r}")


ERRORS = Errors()


# -- seeding ----------------------------------------------------------------------------------

def seed(app: Phasegate, instance_count: int) -> dict:
    """Users, the two bench models, and `instance_count` fan-out instances (100 open tasks each)."""
    t0 = time.perf_counter()
    users.add_user(app, "admin", ["admin"], exist_ok=True)
    users.add_user(app, INBOX_USER, INBOX_ROLES, password=PASSWORD, exist_ok=True)
    # Ten colleagues hold the 50 roles between them, five each; they claim some tasks below.
    colleagues = {f"user_{k}": ROLES[5 * k:5 * k + 5] for k in range(10)}
    for name, roles in colleagues.items():
        users.add_user(app, name, roles, exist_ok=True)
    users.add_user(app, WORKER, ["clerk"], exist_ok=True)
    definitions.deploy(app, MODELS, "admin")

    started = clock.now()
    frozen = clock.FrozenClock(started - SPREAD)
    previous = clock.use(frozen)
    try:
        for i in range(instance_count):
            # Spread the starts evenly over SPREAD, so created_at and due dates (P4H..P30D after
            # creation) cover old, overdue, due-this-week and future tasks as a real backlog does.
            frozen.set(started - SPREAD + SPREAD * (i / instance_count))
            inst = instances.start(app, "inbox_fanout", business_key=f"CUST-{i + 1}", user="admin")
            if i % 10 == 0:
                _claim_some(app, inst, colleagues)
    finally:
        clock.use(previous)
    return {"seed_seconds": round(time.perf_counter() - t0, 1)}


def _claim_some(app: Phasegate, inst, colleagues: dict[str, list[str]]) -> None:
    """Three tasks claimed by colleagues (they leave the bench user's list if shared) and one by
    the bench user: claimed rows exercise the assignee conditions of the inbox query."""
    holders = {role: name for name, roles in colleagues.items() for role in roles}
    by_role = {t.role: t for t in inst.tasks}
    for role in ("role_01", "role_20", "role_33"):
        task = by_role.get(role)
        if task is not None:
            tasks.claim(app, task.id, holders[role])
    mine = by_role.get("role_04")
    if mine is not None:
        tasks.claim(app, mine.id, INBOX_USER)


def start_worklists(app: Phasegate, count: int) -> list[tuple[int, int]]:
    """`count` work-list instances, each waiting on its first item: [(instance id, task id)]."""
    started = []
    for i in range(count):
        inst = instances.start(app, "api_worklist", data={"handled": 0, "items": 10 ** 9},
                               business_key=f"WL-{i + 1}", user="admin")
        started.append((inst.id, inst.tasks[0].id))
    return started


# -- the server -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def phasegate_env(url: str) -> dict:
    return {**os.environ, "PHASEGATE_DATABASE_URL": url, "PHASEGATE_SECRET_KEY": "bench-" + secrets.token_hex(8)}


def migrate(url: str) -> None:
    """`phasegate db upgrade`, as an operator would run it."""
    subprocess.run([sys.executable, "-m", "engine.cli", "db", "upgrade"], cwd=ROOT, env=phasegate_env(url),
                   check=True, stdout=subprocess.DEVNULL)


class Server:
    """gunicorn serving Phasegate on a free port, in a subprocess."""

    def __init__(self, url: str):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(SERVER["workers"]), "--threads", str(SERVER["threads"]), "--worker-class", "gthread",
             "--log-level", "warning", "web.app:create_app()"],
            cwd=ROOT, env=phasegate_env(url))
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = self.connect()
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- clients ----------------------------------------------------------------------------------

class Client:
    """One keep-alive HTTP connection with fixed headers (a bearer token or a session cookie)."""

    def __init__(self, server: Server, headers: dict | None = None):
        self.conn = server.connect()
        self.headers = dict(headers or {})

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             expect_ok: bool = True) -> tuple[int, bytes, http.client.HTTPResponse]:
        self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        response = self.conn.getresponse()
        data = response.read()
        if expect_ok and not 200 <= response.status < 300:
            ERRORS.add(method, path, response.status, data)
        return response.status, data, response

    def close(self) -> None:
        self.conn.close()


def signed_in(server: Server) -> Client:
    """A browser-like client: signs in through the sign-in form (CSRF token, session cookie)."""
    client = Client(server)
    _status, page, response = client.call("GET", "/sign-in")
    client.headers["Cookie"] = _cookie(response)
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    form = urlencode({"username": INBOX_USER, "password": PASSWORD, "csrf_token": csrf, "next": "/inbox"})
    status, _body, response = client.call("POST", "/sign-in", form.encode(),
                                          {"Content-Type": "application/x-www-form-urlencoded"}, expect_ok=False)
    if status != 302:
        raise RuntimeError(f"sign-in failed: {status}")
    client.headers["Cookie"] = _cookie(response)
    return client


def _cookie(response: http.client.HTTPResponse) -> str:
    jar = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return "; ".join(f"{k}={m.value}" for k, m in jar.items())


def latencies_ms(client: Client, paths: list[str], count: int, warmup: int) -> list[float]:
    """Sequential GETs cycling through `paths`; the first `warmup` are not measured."""
    found = []
    for i in range(warmup + count):
        path = paths[i % len(paths)]
        t0 = time.perf_counter()
        client.call("GET", path)
        elapsed = (time.perf_counter() - t0) * 1000
        if i >= warmup:
            found.append(elapsed)
    return found


def p95(values: list[float]) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[94], 2)


def p50(values: list[float]) -> float:
    return round(statistics.median(values), 2)


class OthersCpu:
    """How many cores processes other than this run's kept busy during a window (Linux /proc):
    the machine's busy time minus the bench's own, gunicorn's and the database backends'. The
    machine is shared; this says how much of it the figures had."""

    def __init__(self, server: Server, url: str):
        self.server, self.url = server, url
        self.tick = os.sysconf("SC_CLK_TCK")

    def _pids(self) -> list[int]:
        pids = [self.server.process.pid]
        for entry in os.listdir("/proc"):
            if entry.isdigit() and self._stat(int(entry))[:1] == [self.server.process.pid]:
                pids.append(int(entry))  # gunicorn's workers
        if self.url.startswith("postgresql"):
            import sqlalchemy as sa

            from engine.adapters.database import resolve_url

            engine = sa.create_engine(resolve_url(self.url))
            with engine.connect() as conn:
                pids += list(conn.exec_driver_sql("SELECT pid FROM pg_stat_activity WHERE datname = "
                                                  "current_database() AND pid <> pg_backend_pid()").scalars())
            engine.dispose()
        return pids

    def _stat(self, pid: int) -> list[int]:
        """[parent pid, CPU ticks] of a process, [] if it is gone."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return [int(fields[1]), int(fields[11]) + int(fields[12])]
        except OSError:
            return []

    def _sample(self) -> tuple[float, float, float]:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / self.tick  # all but idle and iowait
        ours = sum((self._stat(pid) or [0, 0])[1] for pid in self.pids) / self.tick + time.process_time()
        return time.perf_counter(), busy, ours

    def start(self) -> None:
        self.pids = self._pids()
        self.begin = self._sample()

    def cores(self) -> float:
        end = self._sample()
        return round(max(0.0, (end[1] - self.begin[1]) - (end[2] - self.begin[2])) / (end[0] - self.begin[0]), 2)


def completions_per_s(server: Server, token: str, worklists: list[tuple[int, int]], clients: int,
                      seconds: float, others: OthersCpu | None = None) -> float:
    """`clients` threads completing tasks round-robin over their own work lists, all of them for
    the same `seconds`: completions / wall time. A fixed time rather than a fixed count per client,
    so a client whose connection shares a busy worker does not leave the others idle at the end."""
    shares = [worklists[i::clients] for i in range(clients)]
    warmup = 2 * max(len(s) for s in shares)  # every instance's workflow gets into its worker's cache
    window: dict[str, float] = {}

    def begin() -> None:
        if others is not None:
            others.start()
        window.update(start=time.perf_counter())

    ready = threading.Barrier(clients, action=begin)
    done_counts: list[int] = []
    ends: list[float] = []
    failures: list[BaseException] = []

    def work(share: list[tuple[int, int]]) -> None:
        client = Client(server, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        current = {instance_id: task_id for instance_id, task_id in share}
        order = [instance_id for instance_id, _ in share]
        body = json.dumps({"data": {"result": "ok"}}).encode()

        def complete(i: int) -> bool:
            instance_id = order[i % len(order)]
            status, data, _ = client.call("POST", f"/api/v1/tasks/{current[instance_id]}/complete", body)
            if status == 200:
                current[instance_id] = json.loads(data)["tasks"][0]["id"]
                return True
            # Counted in ERRORS; find the item again so the client can go on.
            _status, listed, _ = client.call("GET", f"/api/v1/instances/{instance_id}")
            current[instance_id] = json.loads(listed)["tasks"][0]["id"]
            return False

        done = 0
        try:
            for i in range(warmup):
                complete(i)
            ready.wait()
            deadline = window["start"] + seconds
            i = 0
            while time.perf_counter() < deadline:
                done += complete(i)
                i += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
            ready.abort()
        finally:
            done_counts.append(done)
            ends.append(time.perf_counter())
            client.close()

    threads = [threading.Thread(target=work, args=(share,), daemon=True) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return round(sum(done_counts) / (max(ends) - window["start"]), 1)


# -- one database -----------------------------------------------------------------------------

def run_database(label: str, url: str, sizes: dict, completion_clients: int) -> dict:
    """Seed `url`, serve it with gunicorn, measure. Keys are suffixed with `label`."""
    migrate(url)
    app = Phasegate(url)
    try:
        result = {f"{k}_{label}": v for k, v in seed(app, sizes["instances"]).items()}
        worklists = start_worklists(app, 4 * completion_clients)
        token, _ = auth.create_token(app, WORKER, "bench")
        reader_token, _ = auth.create_token(app, INBOX_USER, "bench")
        if label == "postgresql":
            with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        app.dispose()

    server = Server(url)
    try:
        page = signed_in(server)
        inbox = latencies_ms(page, ["/inbox"], sizes["requests"], sizes["warmup"])
        inbox_mix = latencies_ms(page, INBOX_MIX, sizes["requests"], sizes["warmup"])
        page.close()

        api = Client(server, {"Authorization": f"Bearer {reader_token}"})
        _status, _body, response = api.call("GET", "/api/v1/tasks")
        visible = int(response.headers["X-Total-Count"])
        my_tasks = latencies_ms(api, ["/api/v1/tasks"], sizes["requests"], sizes["warmup"])
        my_tasks_mix = latencies_ms(api, API_MIX, sizes["requests"], sizes["warmup"])
        api.close()

        others = OthersCpu(server, url) if sys.platform.startswith("linux") else None
        rate = completions_per_s(server, token, worklists, completion_clients, sizes["completion_seconds"], others)
        others_cores = others.cores() if others is not None else None
    finally:
        server.stop()
    clients = f"{completion_clients}_client{'s' if completion_clients > 1 else ''}"
    result.update({
        f"inbox_p95_ms_{label}": p95(inbox), f"inbox_p50_ms_{label}": p50(inbox),
        f"inbox_mix_p95_ms_{label}": p95(inbox_mix),
        f"api_my_tasks_p95_ms_{label}": p95(my_tasks), f"api_my_tasks_p50_ms_{label}": p50(my_tasks),
        f"api_my_tasks_mix_p95_ms_{label}": p95(my_tasks_mix),
        f"api_completions_per_s_{clients}_{label}": rate,
        f"tasks_visible_to_user_{label}": visible,
        f"other_processes_cores_during_completions_{label}": others_cores,
    })
    return result


def run_sqlite(sizes: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmpdir:
        return run_database("sqlite", f"sqlite:///{Path(tmpdir) / 'bench.sqlite'}", sizes, completion_clients=1)


def run_postgresql(sizes: dict) -> dict | None:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from engine.adapters.database import resolve_url

    admin_url = resolve_url(os.environ.get("PHASEGATE_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL))
    name = "phasegate_bench_" + secrets.token_hex(4)
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means: no PostgreSQL figures
        print(f"PostgreSQL figures skipped: cannot create a database on {admin_url}: {exc}", file=sys.stderr)
        return None
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        return run_database("postgresql", url, sizes, completion_clients=8)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 tasks and fewer requests (within 120 s)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"),
                        help="measure one database (the other's keys are null)")
    parser.add_argument("--workers", type=int, default=SERVER["workers"], help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=SERVER["threads"], help="threads per gunicorn worker")
    args = parser.parse_args()
    SERVER.update(workers=args.workers, threads=args.threads)
    load = os.getloadavg()[0]
    sizes = ({"instances": 100, "requests": 60, "warmup": 10, "completion_seconds": 3} if args.quick else
             {"instances": 1000, "requests": 200, "warmup": 20, "completion_seconds": 10})
    t0 = time.perf_counter()
    result: dict = {key: None for key in (
        "inbox_p95_ms_sqlite", "inbox_p95_ms_postgresql", "api_my_tasks_p95_ms_sqlite",
        "api_my_tasks_p95_ms_postgresql", "api_completions_per_s_1_client_sqlite",
        "api_completions_per_s_8_clients_postgresql")}
    if args.only in (None, "sqlite"):
        result.update(run_sqlite(sizes))
    if args.only in (None, "postgresql"):
        result.update(run_postgresql(sizes) or {})
    result.update({
        "api_errors": ERRORS.count,
        "open_tasks": sizes["instances"] * TASKS_PER_INSTANCE,
        "mode": "quick" if args.quick else "full",
        "server": f"gunicorn gthread {SERVER['workers']} workers x {SERVER['threads']} threads, HTTP/1.1 keep-alive",
        "load_average_1m": round(load, 2),
        "seconds": round(time.perf_counter() - t0, 1),
    })
    for sample in ERRORS.samples:
        print("error response:", sample, file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
