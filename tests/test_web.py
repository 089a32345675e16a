"""The web overview (admins and auditors): it renders what the engine holds, from the same services."""
from __future__ import annotations

import re
from pathlib import Path

from engine.bootstrap import Phasegate
from engine.services import definitions, instances, users
from web.app import create_app

MODELS = Path(__file__).parent / "models"


def test_overview_lists_definitions_tasks_and_instances(db_url):
    engine_app = Phasegate(db_url)
    users.add_user(engine_app, "admin", ["admin"], password="secret pass", exist_ok=True)
    definitions.deploy(engine_app, MODELS / "loops.bpmn", "admin")
    instances.start(engine_app, "seq_loop", data={"i": 0, "n": 1}, business_key="CRM-42")
    client = create_app(phasegate=engine_app, config={"SECRET_KEY": "test"}).test_client()

    assert client.get("/").status_code == 302  # sign in first
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").get_data(as_text=True)).group(1)
    signed_in = client.post("/sign-in", data={"username": "admin", "password": "secret pass", "csrf_token": token})
    assert signed_in.status_code == 302
    assert client.get("/").headers["Location"] == "/inbox"

    page = client.get("/overview")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Sequential loop" in html and "Parallel loop" in html
    assert "CRM-42" in html and "Build" in html and "builder" in html
    assert client.get("/healthz").get_json() == {"status": "ok"}
    engine_app.dispose()
