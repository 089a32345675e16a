"""Use cases for process definitions: check, deploy, list, and loading a deployed process."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath

from engine.bootstrap import DeployedProcess, Phasegate
from engine.adapters.gate_files import find_gate_files, load_gate_config, validate_gate_document
from engine.bpmn import loader
from engine.bpmn.gate_binding import check_gate_config
from engine.bpmn.package import LoadedPackage, LoadedProcess
from engine.domain import clock
from engine.domain.errors import InvalidInput, Issue, ModelRejected, NotFound
from engine.domain.events import canonical_json
from engine.domain.gate_config import GateConfigSet, apply_overrides, from_document
from engine.domain.model import Definition
from engine.services.users import require_user


def forms_dir_for(path: Path, forms_dir: str | Path | None = None) -> Path | None:
    """Where a package's task forms live: the given folder, $PHASEGATE_FORMS_DIR, or the nearest
    `forms/` folder beside or above the package (so `processes/` finds the repository's `forms/`)."""
    explicit = forms_dir or os.environ.get("PHASEGATE_FORMS_DIR")
    if explicit:
        return Path(explicit)
    start = path if path.is_dir() else path.parent
    for folder in (start, start.parent, start.parent.parent):
        candidate = folder / "forms"
        if candidate.is_dir():
            return candidate
    return None


def check(path: str | Path, forms_dir: str | Path | None = None,
          known_roles: set[str] = frozenset()) -> tuple[LoadedPackage | None, list[Issue]]:
    """Validate a file or folder (models, forms and gate files) without deploying."""
    path = Path(path)
    if not path.exists():
        return None, [Issue(str(path), None, None, "no such file or folder")]
    package, issues = loader.check_path(path, forms_dir_for(path, forms_dir))
    if package is not None:
        issues = issues + _gate_configs(path, package, set(known_roles), None)[1]
    return package, issues


def content_hash(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


def _process_files(package: LoadedPackage, process: LoadedProcess) -> dict[str, str]:
    return {name: package.files[name] for name in process.files if name in package.files}


def _gate_configs(path: Path, package: LoadedPackage, known_roles: set[str],
                  overrides: dict | None) -> tuple[dict[str, GateConfigSet], list[Issue]]:
    """The gate configuration files deployed with `path`, checked against their processes.

    Returns {process key: config} and every issue (errors reject the deployment). Deployment
    overrides ({gate id: {key: value}}) may change any setting and are checked like the file.
    """
    configs: dict[str, GateConfigSet] = {}
    issues: list[Issue] = []
    base = path if path.is_dir() else path.parent
    for file in find_gate_files(path):
        name = file.relative_to(base).as_posix() if file.is_relative_to(base) else str(file)
        try:
            config = load_gate_config(file, name)
            if overrides:
                document = apply_overrides(config.raw, overrides, only_overridable=False)
                problems = validate_gate_document(document, f"{name} (with --gate-overrides)")
                if problems:
                    issues.extend(problems)
                    continue
                config = GateConfigSet(config.process, from_document(document), document, config.path,
                                       content_hash({name: canonical_json(document)}), config.lines)
        except ModelRejected as rejected:
            issues.extend(rejected.issues)
            continue
        except KeyError as exc:
            issues.append(Issue(name, None, "gates", f"--gate-overrides: {exc.args[0]}"))
            continue
        roles = known_roles | set().union(*(set(i.roles) for p in package.processes for i in p.elements.values()))
        issues.extend(check_gate_config(config, package, None, roles))
        if config.process in configs:
            issues.append(Issue(name, None, "process", f"a second gates file for process '{config.process}' "
                                                       f"(the first is {configs[config.process].path})"))
        configs[config.process] = config
    return configs, issues


def deploy(app: Phasegate, path: str | Path, user: str = "admin", forms_dir: str | Path | None = None, *,
           gate_overrides: dict | None = None, apply_to_open_gates: bool = False,
           source: str | None = None) -> list[dict]:
    """Deploy every executable process found at `path` and its gate configuration.

    Unchanged content makes no new version — of the process, or of its gate configuration (a
    gates file can change on its own: the new version applies to gates that open afterwards, or
    also to open ones with `apply_to_open_gates`).
    """
    path = Path(path)
    if not path.exists():
        raise ModelRejected([Issue(str(path), None, None, "no such file or folder")])
    package = loader.load_path(path, forms_dir_for(path, forms_dir))
    now = clock.now()
    deployed = []
    with app.uow() as uow:
        require_user(uow, user)
        gate_configs, gate_issues = _gate_configs(path, package, set(uow.users.all_roles()), gate_overrides)
        errors = [i for i in gate_issues if i.severity == "error"]
        if errors:
            raise ModelRejected(errors)
        deployment_id = None
        for process in package.processes:
            files = _process_files(package, process)
            digest = content_hash(files)
            latest = uow.definitions.latest(process.key)
            if latest is not None and latest.hash == digest:
                deployed.append({"key": process.key, "version": latest.version, "hash": digest, "new": False})
                continue
            if deployment_id is None:
                deployment_id = uow.definitions.add_deployment(user, now, (source or str(path))[:1000])
            definition = uow.definitions.add(
                key=process.key, version=(latest.version + 1) if latest else 1, hash=digest, name=process.name,
                deployment_id=deployment_id, deployed_by=user, at=now, files=files,
                elements={eid: info.to_dict() for eid, info in process.elements.items()},
            )
            uow.after_commit(lambda d=definition, p=process: app.remember_process(
                DeployedProcess(d.id, d.key, d.version, p, dict(package.forms))))
            deployed.append({"key": process.key, "version": definition.version, "hash": digest, "new": True})
        for entry in deployed:
            config = gate_configs.get(entry["key"])
            if config is not None:
                entry["gates"] = _store_gate_config(uow, config, user, now, apply_to_open_gates)
        uow.commit()
    return deployed


def _store_gate_config(uow, config: GateConfigSet, user: str, now, apply_to_open: bool) -> dict:
    latest = uow.gates.latest_config(config.process)
    if latest is not None and latest.hash == config.hash:
        return {"version": latest.version, "hash": config.hash, "new": False}
    version = latest.version + 1 if latest else 1
    config_id = uow.gates.add_config(process_key=config.process, version=version, hash=config.hash,
                                     path=config.path, document=config.raw, apply_to_open=apply_to_open,
                                     deployed_by=user, deployed_at=now)
    if apply_to_open:
        uow.gates.reconfigure_open_gates(config.process, config_id, config.raw.get("gates") or {})
    return {"version": version, "hash": config.hash, "new": True}


# What an upload (API, pages) may contain: models, forms and gate configurations.
PACKAGE_SUFFIXES = (".bpmn", ".bpmn20.xml", ".dmn", ".json", ".gates.yaml", ".gates.yml")
MAX_UPLOAD_FILES = 500
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def is_package_file(name: str) -> bool:
    """Whether an uploaded file name is one `deploy_files` takes (by its suffix)."""
    return name.lower().endswith(PACKAGE_SUFFIXES)


def _upload_path(name: str) -> PurePosixPath | None:
    """The relative path an uploaded file is written to, or None if the name could leave the folder."""
    if not name or "\\" in name or "\0" in name or len(name) > 255:
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")) or ":" in path.parts[0]:
        return None
    return path


def deploy_files(app: Phasegate, files: dict[str, str], user: str, *, gate_overrides: dict | None = None,
                 apply_to_open_gates: bool = False) -> list[dict]:
    """`deploy` for uploaded texts {relative file name: text} (BPMN, DMN, `forms/*.json`,
    `*.gates.yaml`): written to a temporary folder and deployed like a folder from the CLI.

    Forms come from the upload (`forms/<name>.json`), else from $PHASEGATE_FORMS_DIR.
    """
    if not isinstance(files, dict) or not files:
        raise InvalidInput("nothing to deploy: upload at least one .bpmn file", fields={"files": ["required"]})
    problems: dict[str, list[str]] = {}
    if len(files) > MAX_UPLOAD_FILES:
        problems["files"] = [f"at most {MAX_UPLOAD_FILES} files"]
    if sum(len(text) for text in files.values() if isinstance(text, str)) > MAX_UPLOAD_BYTES:
        problems["files"] = [f"at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB in all"]
    for name, text in files.items():
        if _upload_path(name) is None:
            problems[f"files/{name}"] = ["a relative path without '..' (e.g. forms/review.json)"]
        elif not is_package_file(name):
            problems[f"files/{name}"] = ["not a package file: " + ", ".join(PACKAGE_SUFFIXES)]
        elif not isinstance(text, str):
            problems[f"files/{name}"] = ["the file's text is expected"]
    if problems:
        raise InvalidInput("the upload cannot be deployed: " + "; ".join(
            f"{k}: {v[0]}" for k, v in problems.items()), fields=problems)
    with tempfile.TemporaryDirectory(prefix="phasegate-deploy-") as folder:
        root = Path(folder)
        for name, text in files.items():
            target = root / _upload_path(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        forms_dir = os.environ.get("PHASEGATE_FORMS_DIR") or root / "forms"
        try:
            return deploy(app, root, user, forms_dir, gate_overrides=gate_overrides,
                          apply_to_open_gates=apply_to_open_gates,
                          source="upload: " + ", ".join(sorted(files)))
        except ModelRejected as rejected:
            # Name the uploaded files, not the temporary folder.
            raise ModelRejected([Issue(i.path.replace(str(root) + os.sep, ""), i.line, i.element_id, i.message,
                                       i.severity) for i in rejected.issues]) from None


def get_definition(app: Phasegate, key: str, version: int | None = None) -> Definition:
    """One deployed version of `key` (the latest without `version`)."""
    with app.uow() as uow:
        row = uow.definitions.latest(key) if version is None else uow.definitions.by_key_version(key, version)
    if row is None:
        raise NotFound(f"unknown process definition '{key}'" + (f" version {version}" if version is not None else ""))
    return Definition(row.id, row.key, row.version, row.hash, row.name, row.deployed_by, row.deployed_at)


def list_definitions(app: Phasegate, latest_only: bool = False) -> list[Definition]:
    with app.uow() as uow:
        return uow.definitions.list(latest_only=latest_only)


def deployed_process(app: Phasegate, uow, definition_id: int) -> DeployedProcess:
    """The parsed process of a stored definition, rebuilt from its stored files on first use."""
    cached = app.cached_process(definition_id)
    if cached is not None:
        return cached
    row = uow.definitions.get_row(definition_id)
    if row is None:
        raise NotFound(f"unknown definition id {definition_id}")
    package = loader.load_files(dict(row.files))
    process = next((p for p in package.processes if p.key == row.key), None)
    if process is None:
        raise NotFound(f"definition {row.key} v{row.version} no longer contains process {row.key}")
    deployed = DeployedProcess(row.id, row.key, row.version, process, dict(package.forms))
    app.remember_process(deployed)
    return deployed


def latest_definition_row(uow, key: str):
    row = uow.definitions.latest(key)
    if row is None:
        raise NotFound(f"unknown process definition '{key}' (deploy it first; see `phasegate definitions`)")
    return row


def phases_in_order(app: Phasegate, uow, definition_id: int) -> list[str]:
    """The phases of a deployed process in BPMN document order, from the parsed (and cached)
    process: the stored `elements` JSON cannot say, as PostgreSQL's JSONB does not keep key order."""
    order: list[str] = []
    for info in deployed_process(app, uow, definition_id).process.elements.values():
        if info.phase and info.phase not in order:
            order.append(info.phase)
    return order
