"""Process definitions: list, one version, deploy (designers and admins)."""
from __future__ import annotations

import json

import marshmallow as ma
from flask import request

from engine.domain.errors import InvalidInput
from engine.domain.permissions import Action
from engine.services import definitions
from web.api.common import Blueprint, actor, engine, flatten_messages, requires
from web.api.schemas import DefinitionListArgs, DefinitionSchema, DeployJson, DeployResultSchema, DeployUpload
from web.api.uploads import files_from_uploads

PREFIX = "/definitions"
blp = Blueprint("definitions", __name__, description="Deployed process definitions")


@blp.route("", methods=["GET"])
@requires(Action.READ_DEFINITIONS)
@blp.arguments(DefinitionListArgs, location="query", unknown=ma.RAISE)
@blp.response(200, DefinitionSchema(many=True))
def list_definitions(args):
    """Every deployed version of every process (or the latest of each)"""
    return [d.to_dict() for d in definitions.list_definitions(engine(), latest_only=args["latest"])]


@blp.route("", methods=["POST"])
@requires(Action.DEPLOY)
@blp.doc(requestBody={"required": True, "content": {
    "application/json": {"schema": DeployJson},
    "multipart/form-data": {"schema": DeployUpload},
}})
@blp.response(200, DeployResultSchema)
def deploy():
    """Deploy BPMN/DMN files, forms and gate configurations as new versions

    JSON `{"files": {"name": "text"}}`, or a multipart upload of the files (field `file`,
    repeatable) or of one .zip. Identical content deploys nothing new (`"new": false`).
    """
    if request.mimetype == "multipart/form-data":
        args = _load(DeployUpload(), {**request.form.to_dict(), "file": request.files.getlist("file")})
        files = files_from_uploads(args["file"])
        overrides = _json_object(args.get("gate_overrides"), "gate_overrides")
    else:
        body = request.get_json(silent=True)
        if body is None:
            raise InvalidInput("send JSON {\"files\": {...}} or a multipart upload",
                               fields={"(body)": ["JSON object or multipart/form-data expected"]})
        args = _load(DeployJson(), body)
        files, overrides = args["files"], args.get("gate_overrides")
    deployed = definitions.deploy_files(engine(), files, actor().name, gate_overrides=overrides,
                                        apply_to_open_gates=args["apply_to_open_gates"])
    return {"deployed": deployed}


def _load(schema: ma.Schema, data) -> dict:
    try:
        return schema.load(data)
    except ma.ValidationError as error:
        fields = flatten_messages(error.messages)
        raise InvalidInput("invalid request: " + "; ".join(f"{k}: {v[0]}" for k, v in fields.items()),
                           fields=fields) from None


def _json_object(text: str | None, field: str) -> dict | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{field} is not valid JSON: {error.msg}", fields={field: [error.msg]}) from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object", fields={field: ["expected an object"]})
    return value


@blp.route("/<key>", methods=["GET"])
@requires(Action.READ_DEFINITIONS)
@blp.response(200, DefinitionSchema)
def latest(key):
    """The latest version of a process"""
    return definitions.get_definition(engine(), key).to_dict()


@blp.route("/<key>/<int:version>", methods=["GET"])
@requires(Action.READ_DEFINITIONS)
@blp.response(200, DefinitionSchema)
def one_version(key, version):
    """One version of a process"""
    return definitions.get_definition(engine(), key, version).to_dict()
