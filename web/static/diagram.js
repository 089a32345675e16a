// Draws the instance's BPMN diagram with bpmn-js (vendored, web/static/vendor) and marks the
// completed elements and current tasks. Any failure shows the text note instead.
(function () {
  "use strict";
  var container = document.getElementById("diagram");
  var note = document.getElementById("diagram-note");
  var data = JSON.parse(document.getElementById("diagram-data").textContent);
  function fallback(message) {
    container.hidden = true;
    if (message) { note.insertBefore(document.createTextNode(message + " "), note.firstChild); }
    note.hidden = false;
  }
  if (!data.xml || typeof window.BpmnJS !== "function") { fallback("The diagram could not be drawn."); return; }
  var viewer = new window.BpmnJS({ container: container });
  viewer.importXML(data.xml).then(function () {
    var canvas = viewer.get("canvas");
    var registry = viewer.get("elementRegistry");
    canvas.zoom("fit-viewport", "auto");
    // A long process fits as a thin strip: show the first current task at a readable size instead.
    var focus = data.current.map(function (id) { return registry.get(id); }).filter(Boolean)[0];
    if (focus && canvas.zoom() < 0.6) {
      canvas.zoom(0.9);
      canvas.scrollToElement(focus);
    }
    data.completed.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "pg-done"); } });
    data.current.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "pg-current"); } });
  }).catch(function () {
    viewer.destroy();
    fallback("The diagram could not be drawn.");
  });
}());
