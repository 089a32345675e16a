"""Render a BPMN file to PNG with bpmn-js in headless Chromium (for the documentation).

    python docs/tools/render_diagram.py processes/crm_implementation.bpmn docs/flagship.png

Needs `make assets` (bpmn-js in web/static/vendor) and Debian's chromium; Playwright drives
it through `executable_path`, so no browser is downloaded.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "web" / "static" / "vendor" / "bpmn-js"
CHROMIUM = os.environ.get("PHASEGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="{vendor}/assets/diagram-js.css">
<link rel="stylesheet" href="{vendor}/assets/bpmn-js.css">
<style>html,body{{margin:0;background:#fff}} #canvas{{width:{width}px;height:{height}px}}</style>
</head><body><div id="canvas"></div>
<script src="{vendor}/bpmn-navigated-viewer.production.min.js"></script>
<script>
  const viewer = new BpmnJS({{container: '#canvas'}});
  viewer.importXML({xml}).then(({{warnings}}) => {{
    viewer.get('canvas').zoom('fit-viewport');
    window.renderResult = {{ok: true, warnings: warnings.map(w => w.message)}};
  }}).catch(err => {{ window.renderResult = {{ok: false, error: String(err)}}; }});
</script></body></html>"""


def render(bpmn: Path, png: Path, width: int, height: int) -> list[str]:
    from playwright.sync_api import sync_playwright

    if not (VENDOR / "bpmn-navigated-viewer.production.min.js").exists():
        sys.exit("bpmn-js is missing: run `make assets` first")
    html = PAGE.format(vendor=VENDOR.as_uri(), width=width, height=height,
                       xml=json.dumps(bpmn.read_text(encoding="utf-8")))
    page_file = png.with_suffix(".render.html")
    page_file.write_text(html, encoding="utf-8")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(page_file.as_uri())
            page.wait_for_function("window.renderResult !== undefined", timeout=20000)
            result = page.evaluate("window.renderResult")
            if not result["ok"]:
                sys.exit(f"bpmn-js could not render {bpmn}: {result['error']}")
            page.screenshot(path=str(png), full_page=False)
            browser.close()
    finally:
        page_file.unlink(missing_ok=True)
    return result["warnings"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bpmn", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=2400)
    parser.add_argument("--height", type=int, default=1300)
    args = parser.parse_args()
    warnings = render(args.bpmn, args.png, args.width, args.height)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
