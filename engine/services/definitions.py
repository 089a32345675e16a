"""Use cases for process definitions: check, deploy, list, and loading a deployed process."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from engine.bootstrap import DeployedProcess, Phasegate
from engine.bpmn import loader
from engine.bpmn.package import LoadedPackage, LoadedProcess
from engine.domain import clock
from engine.domain.errors import Issue, ModelRejected, NotFound
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


def check(path: str | Path, forms_dir: str | Path | None = None) -> tuple[LoadedPackage | None, list[Issue]]:
    """Validate a file or folder without deploying; returns the package (if valid) and all issues."""
    path = Path(path)
    if not path.exists():
        return None, [Issue(str(path), None, None, "no such file or folder")]
    return loader.check_path(path, forms_dir_for(path, forms_dir))


def content_hash(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


def _process_files(package: LoadedPackage, process: LoadedProcess) -> dict[str, str]:
    return {name: package.files[name] for name in process.files if name in package.files}


def deploy(app: Phasegate, path: str | Path, user: str = "admin", forms_dir: str | Path | None = None) -> list[dict]:
    """Deploy every executable process found at `path`; unchanged content makes no new version."""
    path = Path(path)
    if not path.exists():
        raise ModelRejected([Issue(str(path), None, None, "no such file or folder")])
    package = loader.load_path(path, forms_dir_for(path, forms_dir))
    now = clock.now()
    deployed = []
    with app.uow() as uow:
        require_user(uow, user)
        deployment_id = None
        for process in package.processes:
            files = _process_files(package, process)
            digest = content_hash(files)
            latest = uow.definitions.latest(process.key)
            if latest is not None and latest.hash == digest:
                deployed.append({"key": process.key, "version": latest.version, "hash": digest, "new": False})
                continue
            if deployment_id is None:
                deployment_id = uow.definitions.add_deployment(user, now, str(path))
            definition = uow.definitions.add(
                key=process.key, version=(latest.version + 1) if latest else 1, hash=digest, name=process.name,
                deployment_id=deployment_id, deployed_by=user, at=now, files=files,
                elements={eid: info.to_dict() for eid, info in process.elements.items()},
            )
            uow.after_commit(lambda d=definition, p=process: app.remember_process(
                DeployedProcess(d.id, d.key, d.version, p, dict(package.forms))))
            deployed.append({"key": process.key, "version": definition.version, "hash": digest, "new": True})
        uow.commit()
    return deployed


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
