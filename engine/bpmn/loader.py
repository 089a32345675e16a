"""The strict BPMN loader: model files in, runnable specs out — or a rejection naming the element.

For every model it is given, Phasegate either runs each executable process correctly or rejects
the model at load time with issues of the form ``PATH:LINE: ELEMENT_ID: message``; it never
runs half a model and never lets a traceback escape. The pipeline:

1. read every file safely (`normalize.parse_xml`: no DTDs, no entities) and index processes,
   decisions and forms;
2. rewrite each document into the canonical form (`normalize`): ids for anonymous flows, link
   events as flows, JUEL/FEEL/ISO values as Python, vendor extensions as pg: attributes;
3. decide what runs: processes with ``isExecutable="true"`` and the processes they call;
4. check those processes (`validation.check_document`) and the decisions they use;
5. build each executable process with a fresh `parser.PhasegateParser` (a parser is never
   reused after a failure — trap 7), converting every exception into an issue;
6. compare the built specs with the XML (`validation.check_specs_complete`), so nothing the
   parser left out can run silently;
7. extract the routing facts (`routing_facts`: the `ElementInfo` Phasegate's task routing works from).

Public API: `load_path`, `load_files`, `check_path`, `SERIALIZER_CONFIG`.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from engine.domain.errors import Issue, ModelRejected

from .normalize import (
    CONTAINER_TAGS,
    NormalizedDocument,
    children,
    decision_of,
    decode_model_bytes,
    describe,
    document_kind,
    is_bpmn,
    issue_at,
    local_name,
    normalize_bpmn,
    normalize_dmn,
    parse_xml,
    pg,
)
from .package import LoadedPackage, LoadedProcess
from .spiff_config import SERIALIZER_CONFIG, create_serializer
from .routing_facts import routing_facts
from .validation import PackageIndex, check_call_cycles, check_document, check_specs_complete, decision_problems

__all__ = ["load_path", "load_files", "check_path", "load_package", "SERIALIZER_CONFIG", "create_serializer"]

BPMN_SUFFIXES = (".bpmn", ".bpmn20.xml")
DMN_SUFFIXES = (".dmn",)
_SKIPPED_DIRECTORIES = {".git", "node_modules", "__pycache__", ".venv", "target", "build"}


# --------------------------------------------------------------------------- public API


def load_path(path: str | os.PathLike, forms_dir: str | os.PathLike | None = None) -> LoadedPackage:
    """Load a BPMN file or a folder (recursively) into a LoadedPackage, or raise ModelRejected.

    A folder contributes every ``*.bpmn``, ``*.bpmn20.xml`` and ``*.dmn`` file and its JSON forms
    (``forms/<name>.json`` with an optional ``<name>.uischema.json``, or spiff-arena's
    ``<name>-schema.json``/``<name>-uischema.json``). A single BPMN file also gets the forms of a
    sibling ``forms/`` folder. `forms_dir` (e.g. the repository's ``forms/``) adds forms the
    package itself does not define. File names are relative to the folder, or the file name.
    """
    files, issues = _read_path(Path(path), Path(forms_dir) if forms_dir else None)
    return _finish(files, None, issues)


def load_files(files: dict[str, str], forms: dict[str, dict] | None = None) -> LoadedPackage:
    """The same from in-memory texts: relative name -> text (BPMN, DMN and form JSON files).

    `forms` adds already parsed forms by name (a JSON Schema, optionally with "uiSchema").
    Loading what a deployment stored gives the same specs as loading the original files.
    """
    return _finish(dict(files), forms, [])


def load_package(source, forms: dict[str, dict] | None = None) -> LoadedPackage:
    """`load_files` for a dict, `load_path` for a path."""
    if isinstance(source, dict):
        return load_files(source, forms)
    return load_path(source)


def check_path(path: str | os.PathLike, forms_dir: str | os.PathLike | None = None
               ) -> tuple[LoadedPackage | None, list[Issue]]:
    """Load without raising for model problems: (package or None, errors and warnings)."""
    files, read_issues = _read_path(Path(path), Path(forms_dir) if forms_dir else None)
    package, issues = _load(files, None, read_issues)
    return package, issues


def _finish(files: dict[str, str], forms: dict[str, dict] | None, read_issues: list[Issue]) -> LoadedPackage:
    package, issues = _load(files, forms, read_issues)
    if package is None:
        raise ModelRejected(issues)
    return package


# --------------------------------------------------------------------------- reading files


def _read_path(path: Path, forms_dir: Path | None) -> tuple[dict[str, str], list[Issue]]:
    files: dict[str, str] = {}
    issues: list[Issue] = []
    if not path.exists():
        return files, [Issue(str(path), None, None, "no such file or folder")]
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(path).as_posix()
            if file.is_file() and not _SKIPPED_DIRECTORIES.intersection(file.relative_to(path).parts) \
                    and _is_package_file(relative):
                _read_into(files, issues, file, relative)
    else:
        _read_into(files, issues, path, path.name)
        sibling_forms = path.parent / "forms"
        if sibling_forms.is_dir():
            for file in sorted(sibling_forms.glob("*.json")):
                _read_into(files, issues, file, f"forms/{file.name}")
    if forms_dir is not None and forms_dir.is_dir():
        for file in sorted(forms_dir.glob("*.json")):
            name = f"forms/{file.name}"
            if name not in files:
                _read_into(files, issues, file, name)
    return files, issues


def _is_package_file(relative: str) -> bool:
    lower = relative.lower()
    if lower.endswith(BPMN_SUFFIXES + DMN_SUFFIXES):
        return True
    return lower.endswith(".json") and _form_name(relative) is not None


def _read_into(files: dict[str, str], issues: list[Issue], file: Path, relative: str) -> None:
    try:
        data = file.read_bytes()
    except OSError as error:
        issues.append(Issue(relative, None, None, f"cannot read the file: {error.strerror or error}"))
        return
    try:
        files[relative] = decode_model_bytes(data) if not relative.lower().endswith(".json") else data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        issues.append(Issue(relative, None, None, f"the file is not valid UTF-8 text ({error.reason})"))


def _form_name(relative: str) -> tuple[str, str] | None:
    """(form name, "schema" | "ui") for a form file name, None for other JSON files."""
    path = PurePosixPath(relative)
    name = path.name
    for suffix, kind in (("-uischema.json", "ui"), ("-schema.json", "schema")):
        if name.endswith(suffix):
            return name[: -len(suffix)], kind
    if "forms" in path.parts[:-1]:
        if name.endswith(".uischema.json"):
            return name[: -len(".uischema.json")], "ui"
        if name.endswith(".json"):
            return name[: -len(".json")], "schema"
    return None


# --------------------------------------------------------------------------- the pipeline


@dataclass
class _Form:
    name: str
    schema: dict
    schema_path: str | None = None
    ui_path: str | None = None


@dataclass
class _Package:
    """Everything read and derived while loading, shared by the pipeline steps."""

    files: dict[str, str]
    bpmn: dict[str, NormalizedDocument] = field(default_factory=dict)
    dmn: dict[str, NormalizedDocument] = field(default_factory=dict)
    forms: dict[str, _Form] = field(default_factory=dict)
    index: PackageIndex = field(default_factory=PackageIndex)
    issues: list[Issue] = field(default_factory=list)
    # element id -> owning process id, per BPMN document (to keep issues of executed processes)
    owners: dict[str, dict[str, str]] = field(default_factory=dict)
    # a process id is defined twice: SpiffWorkflow cannot build anything from such a package
    ambiguous: bool = False


def _load(files: dict[str, str], forms: dict[str, dict] | None, read_issues: list[Issue]
          ) -> tuple[LoadedPackage | None, list[Issue]]:
    try:
        return _load_checked(files, forms, read_issues)
    except ModelRejected as rejected:
        return None, list(rejected.issues)
    except Exception as error:  # never leak a traceback: a bug here is still a clear rejection
        path = next(iter(files), "<package>")
        return None, read_issues + [Issue(path, None, None,
                                          f"internal error while loading the model: {type(error).__name__}: {error}")]


def _load_checked(files: dict[str, str], forms: dict[str, dict] | None, read_issues: list[Issue]
                  ) -> tuple[LoadedPackage | None, list[Issue]]:
    package = _Package(files=files, issues=list(read_issues))
    package.index.files = set(files)
    _read_documents(package)
    _read_forms(package, forms or {})
    _index_package(package)

    executable = [pid for pid, (_, process) in package.index.processes.items()
                  if process.get("isExecutable") == "true"]
    _report_executability(package, executable)
    scope = _called_closure(package, executable)
    _prune_unused_data_stores(package, scope)
    _keep_scope_issues(package, scope)
    for path, document in package.bpmn.items():
        package.issues.extend(check_document(path, document.root, package.index, scope))
    package.issues.extend(check_call_cycles(package.index, executable))
    used_decisions = _check_decisions(package, scope)

    infos, info_issues, generated_forms = routing_facts(package, scope)
    package.issues.extend(info_issues)

    processes: list[LoadedProcess] = []
    for process_id in executable:
        closure = _called_closure(package, [process_id])
        if package.ambiguous or _has_errors_in(package, closure):
            continue
        loaded = _build_process(package, process_id, closure, infos, used_decisions)
        if loaded is not None:
            processes.append(loaded)

    issues = _deduplicate(package.issues)
    if any(issue.severity == "error" for issue in issues):
        return None, issues
    all_forms = {name: form.schema for name, form in package.forms.items()}
    all_forms.update(generated_forms)
    warnings = [issue for issue in issues if issue.severity != "error"]
    return LoadedPackage(processes=processes, files=dict(files), forms=all_forms, warnings=warnings), warnings


def _read_documents(package: _Package) -> None:
    for path, text in package.files.items():
        lower = path.lower()
        if lower.endswith(".json"):
            continue
        if not lower.endswith(BPMN_SUFFIXES + DMN_SUFFIXES + (".xml",)):
            package.issues.append(Issue(path, None, None, "ignored: not a BPMN, DMN or form file", "warning"))
            continue
        root, issues = parse_xml(text, path)
        package.issues.extend(issues)
        if root is None:
            continue
        kind = document_kind(root)
        if kind == "bpmn":
            document = normalize_bpmn(root, path)
            package.bpmn[path] = document
        elif kind == "dmn":
            package.dmn[path] = normalize_dmn(root, path)
        else:
            package.issues.append(Issue(path, root.sourceline, local_name(root) or None,
                                        f"not a BPMN 2.0 or DMN document (root element {root.tag})"))


def _read_forms(package: _Package, given: dict[str, dict]) -> None:
    schemas: dict[str, tuple[str, dict]] = {}
    uis: dict[str, tuple[str, dict]] = {}
    for path, text in sorted(package.files.items()):
        if not path.lower().endswith(".json"):
            continue
        naming = _form_name(path)
        if naming is None:
            package.issues.append(Issue(path, None, None, "ignored: JSON file is not a form "
                                                          "(forms/<name>.json or <name>-schema.json)", "warning"))
            continue
        name, kind = naming
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            package.issues.append(Issue(path, error.lineno, None, f"form is not valid JSON: {error.msg}"))
            continue
        if not isinstance(document, dict):
            package.issues.append(Issue(path, 1, None, "form must be a JSON object"))
            continue
        target = schemas if kind == "schema" else uis
        if name in target and target[name][1] != document:
            package.issues.append(Issue(path, None, None, f"form '{name}' is defined twice, differently "
                                                          f"(also in {target[name][0]})"))
            continue
        target.setdefault(name, (path, document))
    for name, (path, schema) in schemas.items():
        problem = _schema_problem(schema)
        if problem:
            package.issues.append(Issue(path, None, None, f"form '{name}' is not a valid JSON Schema: {problem}"))
            continue
        merged = dict(schema)
        ui_path = None
        if name in uis:
            ui_path, ui = uis[name]
            merged["uiSchema"] = ui
        package.forms[name] = _Form(name, merged, path, ui_path)
    for name, (path, _) in uis.items():
        if name not in schemas:
            package.issues.append(Issue(path, None, None, f"UI schema for form '{name}' has no form schema", "warning"))
    for name, schema in given.items():
        if name in package.forms:
            continue
        problem = _schema_problem({k: v for k, v in schema.items() if k != "uiSchema"})
        if problem:
            package.issues.append(Issue(f"forms/{name}.json", None, None,
                                        f"form '{name}' is not a valid JSON Schema: {problem}"))
            continue
        package.forms[name] = _Form(name, dict(schema))


def _schema_problem(schema: dict) -> str | None:
    try:
        import jsonschema

        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as error:
        return error.message
    return None


def _index_package(package: _Package) -> None:
    for path, document in package.bpmn.items():
        owners: dict[str, str] = {}
        for process in children(document.root, "process"):
            process_id = process.get("id")
            if not process_id:
                package.issues.append(issue_at(path, process, "process has no id"))
                continue
            if process_id in package.index.processes:
                other = package.index.processes[process_id][0]
                package.issues.append(issue_at(path, process, f"process id '{process_id}' is also defined in {other}"))
                package.ambiguous = True
                continue
            package.index.processes[process_id] = (path, process)
            for node in process.iter():
                if isinstance(node.tag, str) and node.get("id"):
                    owners[node.get("id")] = process_id
        package.owners[path] = owners
    for path, document in package.dmn.items():
        for decision in document.root.iter():
            if local_name(decision) != "decision":
                continue
            decision_id = decision.get("id")
            if decision_id in package.index.decisions:
                other = package.index.decisions[decision_id][0]
                package.issues.append(issue_at(path, decision, f"decision id '{decision_id}' is also defined in {other}"))
                continue
            package.index.decisions[decision_id] = (path, decision)


def _report_executability(package: _Package, executable: list[str]) -> None:
    """Trap 4: only isExecutable="true" runs; say so when a file (or the package) has nothing to run."""
    for path, document in package.bpmn.items():
        processes = children(document.root, "process")
        if any(p.get("isExecutable") == "true" for p in processes):
            continue
        if processes:
            listed = ", ".join(f"{p.get('id')} (isExecutable={_quoted(p.get('isExecutable'))})" for p in processes)
            message = (f"no executable process: this file has {listed}; Phasegate runs only processes "
                       "marked isExecutable=\"true\"")
        else:
            message = "no executable process: this file defines no process"
        severity = "error" if not executable else "warning"
        line = processes[0].sourceline if processes else document.root.sourceline
        element = processes[0].get("id") if len(processes) == 1 else "definitions"
        package.issues.append(Issue(path, line, element, message, severity))
    if not package.bpmn and not any(i.severity == "error" for i in package.issues):
        package.issues.append(Issue(next(iter(package.files), "<package>"), None, None,
                                    "the package contains no BPMN file"))


def _quoted(value: str | None) -> str:
    return "missing" if value is None else f'"{value}"'


def _called_closure(package: _Package, process_ids: list[str]) -> set[str]:
    """The processes and every process they call, transitively (call activities at any depth)."""
    closure: set[str] = set()
    pending = list(process_ids)
    while pending:
        process_id = pending.pop()
        if process_id in closure or process_id not in package.index.processes:
            continue
        closure.add(process_id)
        _, process = package.index.processes[process_id]
        for call in process.iter():
            if is_bpmn(call, "callActivity") and call.get("calledElement"):
                pending.append(call.get("calledElement").strip())
    return closure


def _prune_unused_data_stores(package: _Package, scope: set[str]) -> None:
    """Data stores need an implementation Phasegate does not have.

    A data store an executed task reads or writes (a data association to a dataStoreReference)
    is rejected by element. One nobody reads or writes is a drawing only: it gets a warning. The
    global bpmn:dataStore declarations are removed from the normalized tree either way, because
    SpiffWorkflow refuses a whole file that declares a store it has no class for.
    """
    for path, document in package.bpmn.items():
        owners = package.owners.get(path, {})
        associated = set()
        for association in document.root.iter():
            if is_bpmn(association, "dataInputAssociation", "dataOutputAssociation") and \
                    owners.get(_owner_id(association)) in scope:
                for ref in children(association, "sourceRef") + children(association, "targetRef"):
                    associated.add((ref.text or "").strip())
        for reference in document.root.iter():
            if not (is_bpmn(reference, "dataStoreReference") and owners.get(reference.get("id")) in scope):
                continue
            store = reference.get("dataStoreRef") or reference.get("name") or reference.get("id")
            if reference.get("id") in associated:
                package.issues.append(issue_at(
                    path, reference, f"data store reference {reference.get('id')} (data store '{store}') is read or "
                                     "written by the process, but Phasegate has no data store implementations"))
            else:
                package.issues.append(issue_at(
                    path, reference, f"data store reference {reference.get('id')} is not read or written by any "
                                     "task; it is ignored", "warning"))
        for store in children(document.root, "dataStore"):
            document.root.remove(store)


def _owner_id(element) -> str | None:
    node = element.getparent()
    while node is not None and not node.get("id"):
        node = node.getparent()
    return node.get("id") if node is not None else None


def _keep_scope_issues(package: _Package, scope: set[str]) -> None:
    """Pre-pass issues count only inside executed processes (and for file-level problems)."""
    for path, document in list(package.bpmn.items()) + list(package.dmn.items()):
        owners = package.owners.get(path)
        for issue in document.issues:
            if owners is None:
                continue  # DMN issues are reported per used decision by _check_decisions
            owner = owners.get(issue.element_id or "")
            if owner is None or owner in scope:
                package.issues.append(issue)


def _check_decisions(package: _Package, scope: set[str]) -> dict[str, str]:
    """Check each decision a business rule task uses; warn about unused or unusable DMN files.

    Returns decision id -> DMN path for the decisions used by executed processes.
    """
    used: dict[str, str] = {}
    users: dict[str, list[tuple[str, object]]] = {}
    for process_id in scope:
        path, process = package.index.processes[process_id]
        for task in process.iter():
            if is_bpmn(task, "businessRuleTask"):
                decision = task.get(pg("decision"))
                if decision in package.index.decisions:
                    users.setdefault(decision, []).append((path, task))
    dmn_issues_by_decision: dict[str, list[Issue]] = {}
    for path, document in package.dmn.items():
        for issue in document.issues:
            element = _find_by_id(document.root, issue.element_id)
            decision = decision_of(element) if element is not None else None
            key = decision.get("id") if decision is not None else None
            dmn_issues_by_decision.setdefault(key, []).append(issue)
    for decision_id, (dmn_path, decision) in package.index.decisions.items():
        problems = decision_problems(decision)
        translation_issues = dmn_issues_by_decision.get(decision_id, [])
        if decision_id in users:
            used[decision_id] = dmn_path
            for problem in problems:
                for bpmn_path, task in users[decision_id]:
                    package.issues.append(issue_at(bpmn_path, task, f"{describe(task)}: decision '{decision_id}' "
                                                                    f"({dmn_path}) cannot be used: {problem}"))
            package.issues.extend(translation_issues)
            if not problems and not translation_issues:
                problem = _spiff_decision_problem(dmn_path, package.dmn[dmn_path].root, decision_id)
                if problem:
                    for bpmn_path, task in users[decision_id]:
                        package.issues.append(issue_at(bpmn_path, task, f"{describe(task)}: decision "
                                                                        f"'{decision_id}' ({dmn_path}) cannot be "
                                                                        f"loaded: {problem}"))
    for path, document in package.dmn.items():
        decisions = [d for d in document.root.iter() if local_name(d) == "decision"]
        if any(d.get("id") in used for d in decisions):
            continue
        listed = ", ".join(d.get("id") for d in decisions if d.get("id")) or "no decision"
        unusable = [f"'{d.get('id')}': {(decision_problems(d) or ['?'])[0]}" for d in decisions
                    if decision_problems(d)]
        untranslated = [str(i) for i in document.issues]
        note = ""
        if unusable or untranslated:
            note = "; it could not be used as it is: " + "; ".join(unusable + untranslated)[:400]
        package.issues.append(Issue(path, document.root.sourceline, local_name(document.root),
                                    f"DMN file is not used by any executable process ({listed}){note}", "warning"))
    return used


def _spiff_decision_problem(path: str, root, decision_id: str) -> str | None:
    """Let SpiffWorkflow parse one decision; its exception, if any, as text."""
    from .parser import PhasegateParser

    parser = PhasegateParser()
    try:
        parser.add_dmn_xml(root, filename=path)
        parser.get_engine(decision_id, root)
    except Exception as error:  # DMN parser failures are IndexError/AttributeError/KeyError/...
        return _exception_text(error)
    return None


def _find_by_id(root, element_id: str | None):
    if not element_id:
        return None
    for node in root.iter():
        if isinstance(node.tag, str) and node.get("id") == element_id:
            return node
    return None


def _has_errors_in(package: _Package, closure: set[str]) -> bool:
    """Whether an error concerns these processes, their files or the DMN files they use.

    Such processes are not built: the error is already reported, and SpiffWorkflow would only
    fail again (less clearly) on the same element.
    """
    paths = {package.index.processes[p][0] for p in closure}
    for process_id in closure:
        for task in package.index.processes[process_id][1].iter():
            decision = task.get(pg("decision")) if is_bpmn(task, "businessRuleTask") else None
            if decision in package.index.decisions:
                paths.add(package.index.decisions[decision][0])
    for issue in package.issues:
        if issue.severity != "error":
            continue
        owners = package.owners.get(issue.path)
        if owners is None:
            if issue.path in paths:
                return True  # a DMN file this process uses
            continue
        owner = owners.get(issue.element_id or "")
        if owner in closure or (owner is None and issue.path in paths):
            return True
    return False


# --------------------------------------------------------------------------- building specs


def _build_process(package: _Package, process_id: str, closure: set[str], infos: dict,
                   used_decisions: dict[str, str]) -> LoadedProcess | None:
    from .parser import PhasegateParser

    path, process = package.index.processes[process_id]
    parser = PhasegateParser()  # fresh per build: a failed get_spec leaves a half-built spec behind
    try:
        for document_path, document in package.bpmn.items():
            parser.add_bpmn_xml(document.root, filename=document_path)
        for document_path, document in package.dmn.items():
            parser.add_dmn_xml(document.root, filename=document_path)
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except Exception as error:
        package.issues.append(_issue_from_exception(package, error, path, process))
        return None

    specs = dict(subprocess_specs)
    specs[process_id] = spec
    containers, path_of = {}, {}
    for called_id in closure:
        called_path, called_process = package.index.processes[called_id]
        for container in [called_process] + [n for n in called_process.iter()
                                             if is_bpmn(n, *CONTAINER_TAGS) and n is not called_process]:
            containers[container.get("id")] = container
            path_of[container.get("id")] = called_path
    missing = [c for c in closure if c not in specs]
    for called_id in missing:
        called_path, called_process = package.index.processes[called_id]
        package.issues.append(issue_at(called_path, called_process,
                                       f"process {called_id} was not built although it is called"))
    drop_issues = check_specs_complete(path_of, containers, specs)
    if drop_issues:
        package.issues.extend(drop_issues)
        return None

    elements = {}
    for called_id in [process_id] + sorted(closure - {process_id}):
        for element_id, info in infos.get(called_id, {}).items():
            key = element_id if element_id not in elements else f"{called_id}:{element_id}"
            elements[key] = info
    needed_files = [path] + sorted({package.index.processes[c][0] for c in closure} - {path})
    decisions = {task.get(pg("decision"))
                 for c in closure for task in package.index.processes[c][1].iter()
                 if is_bpmn(task, "businessRuleTask")}
    needed_files += sorted({used_decisions[d] for d in decisions if d in used_decisions} - set(needed_files))
    for info in elements.values():
        form = package.forms.get(info.form) if info.form else None
        if form is not None:
            for form_path in (form.schema_path, form.ui_path):
                if form_path and form_path not in needed_files:
                    needed_files.append(form_path)
    return LoadedProcess(
        key=process_id,
        name=process.get("name"),
        spec=spec,
        subprocess_specs=subprocess_specs,
        elements=elements,
        files=needed_files,
        spec_processes={name: package.owners[path_of[name]].get(name, name) for name in containers},
    )


def _issue_from_exception(package: _Package, error: Exception, path: str, process) -> Issue:
    """An issue for an exception SpiffWorkflow raised while building, naming what it names."""
    element_id = getattr(error, "id", None) or None
    file_name = getattr(error, "file_name", None) or None
    message = _exception_text(error)
    if element_id:
        for document_path, document in package.bpmn.items():
            if file_name and document_path != file_name:
                continue
            element = _find_by_id(document.root, element_id)
            if element is not None:
                return Issue(document_path, element.sourceline, element_id, message)
    tag = getattr(error, "tag", None)
    if tag and not element_id:
        return Issue(file_name or path, None, tag, message)
    return Issue(path, process.sourceline, process.get("id"),
                 f"process {process.get('id')} cannot be built: {message}")


def _exception_text(error: Exception) -> str:
    from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

    if isinstance(error, ValidationException):
        text = str(error.args[0]) if error.args else str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    text = re.sub(r"<Element (?:\{[^}]*\})?([\w.-]+) at 0x[0-9a-fA-F]+>", r"\1", text)
    return " ".join(text.split())[:500]


def _deduplicate(issues: list[Issue]) -> list[Issue]:
    seen, result = set(), []
    for issue in issues:
        key = (issue.path, issue.line, issue.element_id, issue.message, issue.severity)
        if key not in seen:
            seen.add(key)
            result.append(issue)
    return result
