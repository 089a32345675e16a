"""The minimal web overview: it renders what the engine holds, from the same services."""
from __future__ import annotations

from pathlib import Path

from engine.bootstrap import Phasegate
from engine.services import definitions, instances, users
from web.app import create_app

MODELS = Path(__file__).parent / "models"


def test_overview_lists_definitions_tasks_and_instances(db_url):
    engine_app = Phasegate(db_url)
    users.add_user(engine_app, "admin", ["admin"], exist_ok=True)
    definitions.deploy(engine_app, MODELS / "loops.bpmn", "admin")
    instances.start(engine_app, "seq_loop", data={"i": 0, "n": 1}, business_key="CRM-42")
    client = create_app(phasegate=engine_app).test_client()

    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Sequential loop" in html and "Parallel loop" in html
    assert "CRM-42" in html and "Build" in html and "builder" in html
    assert client.get("/healthz").get_json() == {"status": "ok"}
    engine_app.dispose()
