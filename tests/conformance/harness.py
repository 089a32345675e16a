"""Run Phasegate's loader over the BPMN conformance corpus and classify each model.

Outcomes (the rule: run it, or reject it naming the element — never the silent third way):

* ``runs`` — loaded; every executable process was started and driven, completing ready human
  tasks with empty data, until it completed or waits (timers, messages, signals);
* ``runs-error-named`` — loaded, and a run failed with an error that names the element;
* ``rejected`` — `ModelRejected` whose errors all name an element, or are file-level problems
  (malformed XML, no executable process, …);
* ``fails`` — anything else: an exception escaping the loader, an issue without the element it
  should name, an unnamed run-time error, or a model that loaded although a node or flow of an
  executable process is missing from its specs (checked here independently of the loader).

The harness drives SpiffWorkflow directly; it does not depend on Phasegate's runtime.
"""
from __future__ import annotations

import json
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lxml import etree

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = (REPO_ROOT / ".." / "shared" / "bpmn-corpus").resolve()
MAX_STEPS = 60  # human-task completions per process
RUN_SECONDS = 10  # wall-clock guard per model against engine loops

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
FLOW_NODES = {
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway",
}
# Issues allowed to name no element: problems of a whole file.
FILE_LEVEL_MESSAGES = (
    "malformed XML", "XML with a DOCTYPE", "no executable process", "not a BPMN", "the package contains no BPMN",
    "cannot read the file", "the file is not valid", "imported file", "import has no location",
    "form ", "DMN file",
)


def corpus_available() -> bool:
    return (CORPUS / "MANIFEST.json").is_file()


def manifest() -> list[dict]:
    return json.loads((CORPUS / "MANIFEST.json").read_text())


def bpmn_entries() -> list[dict]:
    return [entry for entry in manifest() if entry["kind"] == "bpmn"]


@dataclass
class Outcome:
    path: str
    kind: str  # runs | runs-error-named | rejected | fails
    detail: str = ""
    issues: list = field(default_factory=list)
    processes: int = 0

    @property
    def first_issue(self):
        errors = [i for i in self.issues if i.severity == "error"]
        return errors[0] if errors else None


# --------------------------------------------------------------------------- package assembly


def _parse(path: Path):
    try:
        return etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    except (etree.XMLSyntaxError, OSError):
        return None


def _decision_refs(root) -> set[str]:
    refs = set()
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        for name, value in node.attrib.items():
            if name.endswith("}decisionRef"):
                refs.add(value)
        if node.tag.endswith("}calledDecisionId") and node.text:
            refs.add(node.text.strip())
        if node.tag.endswith("}calledDecision") and node.get("decisionId"):
            refs.add(node.get("decisionId"))
    return refs


def _process_ids(root) -> set[str]:
    return {p.get("id") for p in root.iter(f"{{{BPMN_NS}}}process")}


def _called_ids(root) -> set[str]:
    called = {c.get("calledElement") for c in root.iter(f"{{{BPMN_NS}}}callActivity") if c.get("calledElement")}
    for node in root.iter("{http://camunda.org/schema/zeebe/1.0}calledElement"):
        if node.get("processId"):
            called.add(node.get("processId"))
    return called


def _imports(root) -> list[str]:
    return [i.get("location") for i in root.iter(f"{{{BPMN_NS}}}import")
            if i.get("location") and not (i.get("importType") or "").endswith("XMLSchema")]


def package_for(relative: str) -> dict[str, str]:
    """The file plus the siblings it needs: called processes, imports, DMN decisions, forms.

    Names are relative to the file's folder. Siblings come from the same folder (and its `dmn/`
    and `forms/` sub-folders); a called process defined in several files is taken from the
    first in name order. Needs are followed transitively (a called file's own calls and imports).
    """
    target = CORPUS / relative
    folder = target.parent
    files: dict[str, str] = {}
    roots: dict[Path, object] = {}

    def root_of(path: Path):
        if path not in roots:
            roots[path] = _parse(path)
        return roots[path]

    def add(path: Path) -> bool:
        name = path.relative_to(folder).as_posix()
        if name in files:
            return False
        files[name] = path.read_bytes().decode("utf-8", errors="replace")
        return True

    siblings = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith((".bpmn", ".bpmn20.xml")))
    dmn_files = sorted(list(folder.glob("*.dmn")) + list((folder / "dmn").glob("*.dmn")))
    add(target)
    pending = [target]
    while pending:
        current = pending.pop()
        root = root_of(current)
        if root is None:
            continue
        defined = set()
        for name in files:
            if name.lower().endswith((".bpmn", ".bpmn20.xml")) and root_of(folder / name) is not None:
                defined |= _process_ids(root_of(folder / name))
        for location in _imports(root):
            imported = (current.parent / location).resolve()
            if folder.resolve() not in imported.parents:
                continue  # outside the model's folder: the loader reports the missing import
            imported = folder / imported.relative_to(folder.resolve())
            if imported.is_file() and add(imported) and imported.suffix.lower() != ".dmn":
                pending.append(imported)
        for called in sorted(_called_ids(root) - defined):
            for sibling in siblings:
                if root_of(sibling) is not None and called in _process_ids(root_of(sibling)):
                    if add(sibling):
                        pending.append(sibling)
                    defined |= _process_ids(root_of(sibling))
                    break
        for decision in sorted(_decision_refs(root)):
            for dmn in dmn_files:
                if f'id="{decision}"' in dmn.read_text(errors="replace"):
                    add(dmn)
                    break
    for form in sorted((folder / "forms").glob("*.json")):
        add(form)
    return files


# --------------------------------------------------------------------------- classification


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def force_executable(files: dict[str, str]) -> dict[str, str]:
    """The lenient probe: every process marked isExecutable="true" (what a lax engine would run)."""
    forced = {}
    for name, text in files.items():
        if name.lower().endswith((".bpmn", ".bpmn20.xml")):
            text = text.replace('isExecutable="false"', 'isExecutable="true"')
            text = re.sub(r'(<(?:[\w-]+:)?process\b)(?![^>]*isExecutable)', r'\1 isExecutable="true"', text)
        forced[name] = text
    return forced


def classify(relative: str, forced: bool = False) -> Outcome:
    """Load (and drive) one corpus model with the siblings it needs; `forced`: lenient probe."""
    from engine.bpmn.loader import load_files
    from engine.domain.errors import ModelRejected

    files = package_for(relative)
    if forced:
        files = force_executable(files)
    try:
        package = load_files(files)
    except ModelRejected as rejected:
        return _classify_rejection(relative, rejected.issues)
    except Exception as error:  # the loader must never let one escape
        return Outcome(relative, "fails", f"exception escaped the loader: {type(error).__name__}: {error}")
    drop = _independent_drop_check(files, PurePosixPath(relative).name, package)
    if drop:
        return Outcome(relative, "fails", f"loaded although {drop} is missing from the specs",
                       processes=len(package.processes))
    return _drive(relative, package)


def _classify_rejection(relative: str, issues) -> Outcome:
    errors = [issue for issue in issues if issue.severity == "error"]
    if not errors:
        return Outcome(relative, "fails", "ModelRejected without any error issue", issues)
    for issue in errors:
        if issue.element_id:
            continue
        if issue.message.startswith(FILE_LEVEL_MESSAGES):
            continue
        return Outcome(relative, "fails", f"issue names no element: {issue}", issues)
    if any("internal error" in issue.message for issue in errors):
        return Outcome(relative, "fails", "internal error", issues)
    return Outcome(relative, "rejected", str(errors[0]), issues)


def _independent_drop_check(files: dict[str, str], main: str, package) -> str | None:
    """Every flow node (and flow) of the executable processes is in the built specs."""
    for loaded in package.processes:
        names: set[str] = set()
        outputs: dict[str, set[str]] = {}
        for spec in [loaded.spec] + [s for s in loaded.subprocess_specs.values() if s is not None]:
            for task_spec in spec.task_specs.values():
                bpmn_id = getattr(task_spec, "bpmn_id", None) or task_spec.name
                names.add(bpmn_id)
                outputs.setdefault(bpmn_id, set()).update(
                    getattr(o, "bpmn_id", None) or o.name for o in task_spec.outputs)
        for name, text in files.items():
            if not name.lower().endswith((".bpmn", ".bpmn20.xml")):
                continue
            root = etree.fromstring(text.encode("utf-8"), etree.XMLParser(resolve_entities=False))
            for process in root.iter(f"{{{BPMN_NS}}}process"):
                if process.get("id") != loaded.key and process.get("id") not in loaded.subprocess_specs:
                    continue
                for node in process.iter():
                    if not isinstance(node.tag, str) or not node.tag.startswith(f"{{{BPMN_NS}}}"):
                        continue
                    tag = node.tag.split("}")[1]
                    if tag in FLOW_NODES and node.get("id") not in names:
                        return f"{tag} {node.get('id')}"
                    if tag == "sequenceFlow":
                        source, target = node.get("sourceRef"), node.get("targetRef")
                        if source in names and target in names and not _wired(outputs, source, target):
                            return f"sequence flow {node.get('id') or '(no id)'} {source}->{target}"
    return None


def _wired(outputs: dict[str, set[str]], source: str, target: str) -> bool:
    seen, pending = set(), [source]
    while pending:  # through internal specs (boundary event splits/joins) only
        current = pending.pop()
        for output in outputs.get(current, ()):
            if output == target:
                return True
            if output not in seen and ("." in output or output.endswith("]")):
                seen.add(output)
                pending.append(output)
    return False


def _drive(relative: str, package) -> Outcome:
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.exceptions import WorkflowException
    from SpiffWorkflow.util.task import TaskState

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(RUN_SECONDS)
    try:
        for loaded in package.processes:
            workflow = BpmnWorkflow(loaded.spec, loaded.subprocess_specs)
            try:
                workflow.do_engine_steps()
                for _ in range(MAX_STEPS):
                    if workflow.completed:
                        break
                    ready = [t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.manual]
                    if not ready:
                        break
                    ready[0].run()
                    workflow.do_engine_steps()
            except WorkflowException as error:
                spec = getattr(error, "task_spec", None)
                element = getattr(spec, "bpmn_id", None) if spec is not None else None
                if element:
                    return Outcome(relative, "runs-error-named",
                                   f"{loaded.key}: {element}: {' '.join(str(error).split())[:200]}",
                                   processes=len(package.processes))
                return Outcome(relative, "fails", f"{loaded.key}: unnamed run-time error: {error}")
            except _Timeout:
                return Outcome(relative, "fails", f"{loaded.key}: engine steps did not finish in {RUN_SECONDS}s")
            except Exception as error:
                return Outcome(relative, "fails", f"{loaded.key}: raw run-time error {type(error).__name__}: {error}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return Outcome(relative, "runs", processes=len(package.processes))


# --------------------------------------------------------------------------- reasons

# First matching substring of the first error decides the category shown in the report.
REASON_CATEGORIES = (
    ("no executable process", "no executable process"),
    ("malformed XML", "malformed XML"),
    ("service task", "service task implementation not available"),
    ("connectors are not available", "service task implementation not available"),
    ("send task implementation", "service task implementation not available"),
    ("business rule implementation", "service task implementation not available"),
    ("job-worker", "service task implementation not available"),
    ("script format", "non-Python script"),
    ("is not valid Python", "script is not valid Python"),
    ("Listener", "engine listeners"),
    ("input/output variable mappings", "input/output mappings"),
    ("data store", "data store"),
    ("compensation", "compensation"),
    ("link ", "link event without partner"),
    ("complex gateway", "complex gateway"),
    ("without a condition and is not its default", "gateway flow without condition"),
    ("condition language", "expression language not supported"),
    ("condition '", "expression cannot be translated"),
    ("cannot be used:", "expression cannot be translated"),
    ("timer", "timer definition"),
    ("does not resolve", "unresolved message/signal/error reference"),
    ("called process", "call activity target missing or not executable"),
    ("imported file", "import missing"),
    ("decision", "decision missing or unsupported"),
    ("events are not supported", "unsupported event definition"),
    ("not supported inside a process", "unsupported element"),
    ("unknown element", "unsupported element"),
    ("points to a nonexistent", "flow to nonexistent element"),
    ("would not run", "unreachable element (silent-drop guard)"),
    ("would never be taken", "unwired flow (silent-drop guard)"),
    ("multiinstance", "multi-instance without cardinality or collection"),
    ("multi-instance", "multi-instance definition"),
    ("conditional sequence flow", "conditional flow out of a task"),
    ("Exactly one start event", "sub-process start events"),
    ("start event", "start events"),
    ("form '", "form not found"),
    ("Cannot resolve data", "unresolved data association"),
    ("has no id", "element without id"),
    ("recursively", "recursive call activity"),
    ("interrupting event sub-processes", "interrupting event sub-process"),
    ("Cancel Events may only be used", "cancel event outside a transaction"),
    ("loopMaximum or loopCondition", "standard loop without maximum or condition"),
)


def reason_category(issue) -> str:
    if issue is None:
        return "other"
    for needle, category in REASON_CATEGORIES:
        if needle in issue.message:
            return category
    return "other"


def source_folder(relative: str) -> str:
    parts = PurePosixPath(relative).parts
    if parts[0] == "miwg":
        return "/".join(parts[:2])
    return parts[0]


OUTCOMES = ("runs", "runs-error-named", "rejected", "fails")


def classify_all(forced: bool = False) -> list[Outcome]:
    return [classify(entry["path"], forced) for entry in bpmn_entries()]

