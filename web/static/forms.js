// Array editors of task forms (web/formfields.py, web/templates/_fields.html): "Add row" and
// "Remove" change the table in the page instead of the round trip the same submit buttons make
// without JavaScript. Rows stay numbered 0, 1, 2... in their field names (`goals/1/target`), the
// way the server reads them, so every name, id and label is renumbered after a removal.
(function () {
  "use strict";
  var TOKEN = "__row__";

  function domId(path) { return "f-" + path.replace(/[^A-Za-z0-9_-]/g, "-"); }

  // `value` with the prefix `from` (followed by `sep` or nothing) replaced by `to`.
  function swapPrefix(value, from, to, sep) {
    if (value === from) { return to; }
    return value.indexOf(from + sep) === 0 ? to + value.slice(from.length) : value;
  }

  // A function renaming one element from row path `from` to `to` (paths, ids, button values).
  function renamer(from, to) {
    var fromId = domId(from), toId = domId(to);
    function path(value) { return swapPrefix(value, from, to, "/"); }
    function id(value) { return swapPrefix(value, fromId, toId, "-"); }
    function action(value) {
      // "add:PATH" or "remove:ARRAY:INDEX" (the row path ARRAY/INDEX)
      if (value.indexOf("add:") === 0) { return "add:" + path(value.slice(4)); }
      if (value.indexOf("remove:") !== 0) { return value; }
      var body = value.slice(7), cut = body.lastIndexOf(":");
      var row = path(body.slice(0, cut) + "/" + body.slice(cut + 1));
      cut = row.lastIndexOf("/");
      return "remove:" + row.slice(0, cut) + ":" + row.slice(cut + 1);
    }
    return function (el) {
      if (el.name) { el.name = path(el.name); }
      if (el.id) { el.id = id(el.id); }
      if (el.htmlFor) { el.htmlFor = id(el.htmlFor); }
      var described = el.getAttribute("aria-describedby");
      if (described) { el.setAttribute("aria-describedby", described.split(/\s+/).map(id).join(" ")); }
      if (el.dataset.row) { el.dataset.row = path(el.dataset.row); }
      if (el.dataset.array) { el.dataset.array = path(el.dataset.array); }
      if (el.name === "_row") { el.value = path(el.value); }
      if (el.name === "_array_action") { el.value = action(el.value); }
    };
  }

  // Apply `rename` to `root` and everything inside it, row templates of nested arrays included.
  function renameAll(root, rename) {
    rename(root);
    Array.prototype.forEach.call(root.querySelectorAll("*"), rename);
    Array.prototype.forEach.call(root.querySelectorAll("template"), function (t) {
      Array.prototype.forEach.call(t.content.querySelectorAll("*"), rename);
    });
  }

  function rowsOf(array) { return array.querySelector("table.array-table > tbody"); }

  // This array's own elements matching `selector` (not those of an array nested in its rows).
  function own(array, root, selector) {
    return Array.prototype.filter.call(root.querySelectorAll(selector), function (el) {
      return el.closest("fieldset.array") === array;
    });
  }

  function refresh(array) {
    var rows = Array.prototype.slice.call(rowsOf(array).children);
    var min = parseInt(array.dataset.min, 10) || 0;
    var max = parseInt(array.dataset.max, 10);
    rows.forEach(function (row, index) {
      Array.prototype.forEach.call(row.querySelectorAll(".row-number"), function (el) {
        if (el.closest("tr.array-row") === row) { el.textContent = String(index + 1); }
      });
    });
    own(array, array, "button[data-array-remove]").forEach(function (b) { b.disabled = rows.length <= min; });
    own(array, array, "button[data-array-add]").forEach(function (b) { b.disabled = !isNaN(max) && rows.length >= max; });
    own(array, array, ".array-empty").forEach(function (p) { p.hidden = rows.length > 0; });
  }

  function announce(form, text) {
    var status = form && form.querySelector("#form-announce");
    if (status) { status.textContent = text; }
  }

  function changed(form) {
    // Lets htmx autosave the draft, as it does after any edit of a field.
    if (form) { form.dispatchEvent(new Event("change", { bubbles: true })); }
  }

  function legendOf(array) {
    var legend = array.querySelector("legend");
    return legend ? legend.textContent.replace("*", "").trim() : "the list";
  }

  function addRow(array) {
    var template = own(array, array, "template.row-template")[0];
    var tbody = rowsOf(array);
    var max = parseInt(array.dataset.max, 10);
    if (!template || (!isNaN(max) && tbody.children.length >= max)) { return; }
    var index = tbody.children.length;
    var row = template.content.querySelector("tr").cloneNode(true);
    var path = array.dataset.array;
    renameAll(row, renamer(path + "/" + TOKEN, path + "/" + index));
    tbody.appendChild(row);
    refresh(array);
    var first = row.querySelector("input:not([type=hidden]), select, textarea");
    if (first) { first.focus(); }
    announce(array.form, "Row " + (index + 1) + " added to " + legendOf(array) + ".");
    changed(array.form);
  }

  function removeRow(array, row) {
    var tbody = rowsOf(array);
    var rows = Array.prototype.slice.call(tbody.children);
    var index = rows.indexOf(row);
    var min = parseInt(array.dataset.min, 10) || 0;
    if (index < 0 || rows.length <= min) { return; }
    var path = array.dataset.array;
    tbody.removeChild(row);
    for (var i = index + 1; i < rows.length; i += 1) {
      renameAll(rows[i], renamer(path + "/" + i, path + "/" + (i - 1)));
    }
    refresh(array);
    // Keep the keyboard where it was: the next row's Remove, else the previous one's, else Add.
    var next = rows[index + 1] || rows[index - 1];
    var target = next ? own(array, next, "button[data-array-remove]")[0] : null;
    if (!target || target.disabled) { target = own(array, array, "button[data-array-add]")[0]; }
    if (target) { target.focus(); }
    announce(array.form, "Row " + (index + 1) + " removed from " + legendOf(array) + ".");
    changed(array.form);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-array-add], button[data-array-remove]");
    var array = button && button.closest("fieldset.array");
    if (!array || button.disabled) { return; }
    event.preventDefault();
    if (button.hasAttribute("data-array-add")) {
      addRow(array);
    } else {
      removeRow(array, button.closest("tr.array-row"));
    }
  });
}());
