"""Uploaded deployment files (multipart): BPMN/DMN/form/gates files, or one .zip of a package."""
from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath

from engine.domain.errors import InvalidInput
from engine.services.definitions import MAX_UPLOAD_BYTES, MAX_UPLOAD_FILES, is_package_file


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{name} is not UTF-8 text", fields={f"files/{name}": [error.reason]}) from None


def files_from_zip(data: bytes, name: str) -> dict[str, str]:
    """The package files of a zip (other entries — folders, READMEs, __MACOSX — are skipped).
    A single top folder (`package/…`) is dropped from the names."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidInput(f"{name} is not a zip file", fields={f"files/{name}": ["not a zip file"]}) from None
    entries = [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")
               and not PurePosixPath(i.filename).name.startswith(".") and is_package_file(i.filename)]
    if len(entries) > MAX_UPLOAD_FILES or sum(i.file_size for i in entries) > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"{name} is too large", fields={f"files/{name}": [
            f"at most {MAX_UPLOAD_FILES} files and {MAX_UPLOAD_BYTES // (1024 * 1024)} MB unpacked"]})
    names = [i.filename for i in entries]
    tops = {n.split("/", 1)[0] for n in names}
    strip = len(tops) == 1 and all("/" in n for n in names)
    files = {}
    for info in entries:
        relative = info.filename.split("/", 1)[1] if strip else info.filename
        with archive.open(info) as handle:
            files[relative] = _text(handle.read(MAX_UPLOAD_BYTES + 1), info.filename)
    return files


def files_from_uploads(uploads) -> dict[str, str]:
    """{name: text} from werkzeug FileStorage objects: each file as is, a .zip unpacked."""
    files: dict[str, str] = {}
    for upload in uploads:
        # The name as sent (curl may send `forms/review.json`; deploy_files refuses unsafe paths);
        # a form sent on its own, without its folder, goes to forms/ where the loader looks.
        name = (upload.filename or "").replace("\\", "/").lstrip("/")
        if "/" not in name and name.lower().endswith(".json") and not name.endswith(("-schema.json", "-uischema.json")):
            name = f"forms/{name}"
        data = upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise InvalidInput(f"{name} is too large", fields={f"files/{name}": ["too large"]})
        if name.lower().endswith(".zip"):
            files.update(files_from_zip(data, name))
        else:
            files[name] = _text(data, name)
    return files
