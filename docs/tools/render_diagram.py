"""Render a BPMN file to PNG with bpmn-js in headless Chromium (for the documentation).

    python docs/tools/render_diagram.py processes/crm_implementation.bpmn docs/flagship.png

Three ways to frame the picture:

* default: the whole diagram fitted into a --width x --height viewport;
* ``--rows N``: the whole diagram at one scale, cut into N horizontal slices stacked under each
  other ("wrapped"), so a very wide diagram stays readable at a sensible image width;
  ``--break-at ID`` (repeatable) cuts at the left edge of those elements instead, e.g. phases;
* ``--element ID`` (repeatable): zoomed to the bounding box of the given elements (their union,
  labels included, plus --padding) at --scale; ``--lanes`` puts the pool's lane names beside the
  crop so every task's role can still be read.

Needs `make assets` (bpmn-js in web/static/vendor) and Debian's chromium; Playwright drives
it through `executable_path`, so no browser is downloaded.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "web" / "static" / "vendor" / "bpmn-js"
CHROMIUM = os.environ.get("PHASEGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LANE_STRIP = 60       # pool name strip + lane name strip (BPMN DI of the generated flagship: 30 + 30)
ROW_GAP = 16          # white space between the slices of a wrapped overview
LOGO_SPACE = 34       # pixels of white below each panel for the bpmn.io logo (which must stay visible)

HEAD = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="{vendor}/assets/diagram-js.css">
<link rel="stylesheet" href="{vendor}/assets/bpmn-js.css">
<style>html,body{{margin:0;background:#fff}} .panel{{position:absolute;overflow:hidden}}</style>
</head><body>
<script src="{vendor}/bpmn-navigated-viewer.production.min.js"></script>
"""

# The default: one viewer fitted to the viewport (unchanged behaviour).
FIT_PAGE = HEAD + """<div id="canvas" style="width:{width}px;height:{height}px"></div>
<script>
  const viewer = new BpmnJS({{container: '#canvas'}});
  viewer.importXML({xml}).then(({{warnings}}) => {{
    viewer.get('canvas').zoom('fit-viewport');
    window.renderResult = {{ok: true, warnings: warnings.map(w => w.message)}};
  }}).catch(err => {{ window.renderResult = {{ok: false, error: String(err)}}; }});
</script></body></html>"""

# Geometry probe: the diagram's bounding box, the requested elements' boxes, the pools.
PROBE_PAGE = HEAD + """<div id="canvas" style="width:800px;height:600px"></div>
<script>
  const viewer = new BpmnJS({{container: '#canvas'}});
  const wanted = {elements};
  viewer.importXML({xml}).then(({{warnings}}) => {{
    const registry = viewer.get('elementRegistry');
    const box = e => ({{x: e.x, y: e.y, width: e.width, height: e.height}});
    const boxes = {{}}, missing = [];
    for (const id of wanted) {{
      const element = registry.get(id);
      if (!element) {{ missing.push(id); continue; }}
      boxes[id] = [box(element)].concat(element.label ? [box(element.label)] : []);
    }}
    const pools = registry.filter(e => e.type === 'bpmn:Participant').map(box);
    window.renderResult = {{ok: true, warnings: warnings.map(w => w.message), missing, boxes, pools,
                           inner: box(viewer.get('canvas').viewbox().inner)}};
  }}).catch(err => {{ window.renderResult = {{ok: false, error: String(err)}}; }});
</script></body></html>"""

# Several viewers, each showing one rectangle of the diagram at the same scale.
PANELS_PAGE = HEAD + """<script>
  const xml = {xml};
  const panels = {panels};
  Promise.all(panels.map((p, i) => {{
    const div = document.createElement('div');
    div.className = 'panel';
    Object.assign(div.style, {{left: p.left + 'px', top: p.top + 'px', width: p.width + 'px',
                               height: p.height + 'px'}});
    document.body.appendChild(div);
    const viewer = new BpmnJS({{container: div}});
    return viewer.importXML(xml).then(({{warnings}}) => {{
      viewer.get('canvas').viewbox(p.box);
      return warnings.map(w => w.message);
    }});
  }})).then(all => {{ window.renderResult = {{ok: true, warnings: all[0] || []}}; }})
    .catch(err => {{ window.renderResult = {{ok: false, error: String(err)}}; }});
</script></body></html>"""


@dataclass
class Box:
    x: float
    y: float
    width: float
    height: float

    @classmethod
    def of(cls, d: dict) -> "Box":
        return cls(d["x"], d["y"], d["width"], d["height"])

    def union(self, other: "Box") -> "Box":
        x, y = min(self.x, other.x), min(self.y, other.y)
        right = max(self.x + self.width, other.x + other.width)
        bottom = max(self.y + self.height, other.y + other.height)
        return Box(x, y, right - x, bottom - y)

    def grow(self, pad: float) -> "Box":
        return Box(self.x - pad, self.y - pad, self.width + 2 * pad, self.height + 2 * pad)

    def as_dict(self) -> dict:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


def _run_page(html: str, png: Path, width: int, height: int, screenshot: bool = True) -> dict:
    from playwright.sync_api import sync_playwright

    page_file = png.resolve().with_suffix(".render.html")
    page_file.write_text(html, encoding="utf-8")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(page_file.as_uri())
            page.wait_for_function("window.renderResult !== undefined", timeout=60000)
            result = page.evaluate("window.renderResult")
            if not result["ok"]:
                sys.exit(f"bpmn-js could not render the diagram: {result['error']}")
            if screenshot:
                page.screenshot(path=str(png), full_page=False)
            browser.close()
    finally:
        page_file.unlink(missing_ok=True)
    return result


def _check_vendor() -> None:
    if not (VENDOR / "bpmn-navigated-viewer.production.min.js").exists():
        sys.exit("bpmn-js is missing: run `make assets` first")


def render(bpmn: Path, png: Path, width: int, height: int) -> list[str]:
    """The whole diagram fitted into a width x height viewport."""
    _check_vendor()
    html = FIT_PAGE.format(vendor=VENDOR.as_uri(), width=width, height=height,
                           xml=json.dumps(bpmn.read_text(encoding="utf-8")))
    return _run_page(html, png, width, height)["warnings"]


def probe(bpmn: Path, png: Path, elements: list[str]) -> dict:
    _check_vendor()
    html = PROBE_PAGE.format(vendor=VENDOR.as_uri(), elements=json.dumps(elements),
                             xml=json.dumps(bpmn.read_text(encoding="utf-8")))
    result = _run_page(html, png, 800, 600, screenshot=False)
    if result["missing"]:
        sys.exit(f"no such element(s) in {bpmn}: {', '.join(result['missing'])}")
    return result


def render_panels(bpmn: Path, png: Path, panels: list[dict]) -> list[str]:
    width = math.ceil(max(p["left"] + p["width"] for p in panels))
    height = math.ceil(max(p["top"] + p["height"] for p in panels))
    html = PANELS_PAGE.format(vendor=VENDOR.as_uri(), panels=json.dumps(panels),
                              xml=json.dumps(bpmn.read_text(encoding="utf-8")))
    return _run_page(html, png, width, height)["warnings"]


def _panel(left: float, top: float, box: Box, scale: float) -> dict:
    """A viewer showing `box` at `scale`, with white space below it for the bpmn.io logo."""
    box = Box(box.x, box.y, box.width, box.height + LOGO_SPACE / scale)
    return {"left": round(left), "top": round(top), "width": round(box.width * scale),
            "height": round(box.height * scale), "box": box.as_dict()}


def wrapped(geometry: dict, width: int, padding: float, rows: int | None = None,
            breaks: list[str] = ()) -> list[dict]:
    """The whole diagram cut into slices (equal ones, or at the left edge of `breaks`), stacked under
    each other at one scale so that the widest slice is `width` pixels wide."""
    inner = Box.of(geometry["inner"]).grow(padding)
    if breaks:
        cuts = sorted(Box.of(geometry["boxes"][b][0]).x - padding for b in breaks)
    else:
        cuts = [inner.x + r * inner.width / rows for r in range(1, rows)]
    edges = [inner.x] + cuts + [inner.x + inner.width]
    slices = [Box(a, inner.y, b - a, inner.height) for a, b in zip(edges, edges[1:])]
    scale = width / max(s.width for s in slices)
    panels, top = [], 0
    for piece in slices:
        panels.append(_panel(0, top, piece, scale))
        top += panels[-1]["height"] + ROW_GAP
    return panels


def cropped(geometry: dict, elements: list[str], scale: float, padding: float, lanes: bool) -> list[dict]:
    """The union of the elements' boxes at `scale`; with `lanes`, the pool's lane names on the left."""
    boxes = [Box.of(b) for element in elements for b in geometry["boxes"][element]]
    area = boxes[0]
    for b in boxes[1:]:
        area = area.union(b)
    area = area.grow(padding)
    panels = []
    left = 0
    if lanes and geometry["pools"]:
        pool = Box.of(geometry["pools"][0])
        if area.x <= pool.x + LANE_STRIP:
            # The crop reaches the pool's left edge: show the lane names in place.
            area = Box(min(area.x, pool.x - 12), area.y, area.x + area.width - min(area.x, pool.x - 12), area.height)
        else:
            # 12 units of white left of the pool keep the narrow strip wide enough for the bpmn.io logo.
            panels.append(_panel(0, 0, Box(pool.x - 12, area.y, LANE_STRIP + 14, area.height), scale))
            left = panels[0]["width"] + 6
    panels.append(_panel(left, 0, area, scale))
    return panels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bpmn", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=2400, help="Image width (fit and --rows).")
    parser.add_argument("--height", type=int, default=1300, help="Image height (fit only).")
    parser.add_argument("--rows", type=int, help="Wrap the whole diagram into this many stacked slices.")
    parser.add_argument("--break-at", action="append", default=[], metavar="ID",
                        help="Wrap the whole diagram, starting a new slice at this element's left edge (repeatable).")
    parser.add_argument("--element", action="append", default=[], metavar="ID",
                        help="Zoom to this element (repeat to frame several; their union is shown).")
    parser.add_argument("--scale", type=float, default=1.0, help="Zoom for --element (1.0 = diagram units).")
    parser.add_argument("--padding", type=float, default=30, help="Diagram units around --element / --rows.")
    parser.add_argument("--lanes", action="store_true", help="With --element: show the lane names on the left.")
    args = parser.parse_args()
    if args.element and (args.rows or args.break_at):
        parser.error("--element and --rows/--break-at exclude each other")
    if args.element:
        geometry = probe(args.bpmn, args.png, args.element)
        warnings = render_panels(args.bpmn, args.png,
                                 cropped(geometry, args.element, args.scale, args.padding, args.lanes))
    elif args.rows or args.break_at:
        geometry = probe(args.bpmn, args.png, args.break_at)
        warnings = render_panels(args.bpmn, args.png,
                                 wrapped(geometry, args.width, args.padding, args.rows, args.break_at))
    else:
        warnings = render(args.bpmn, args.png, args.width, args.height)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
