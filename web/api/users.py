"""Users and roles: admins manage them, auditors read them."""
from __future__ import annotations

from engine.domain.permissions import Action
from engine.services import users
from web.api.common import Blueprint, actor, engine, requires
from web.api.schemas import GrantArgs, NewUserArgs, RoleSchema, UserSchema

PREFIX = ""
blp = Blueprint("users", __name__, description="Users and roles (admins; auditors read)")


@blp.route("/users", methods=["GET"])
@requires(Action.READ_USERS)
@blp.response(200, UserSchema(many=True))
def list_users():
    """Every user with their roles"""
    return [u.to_dict() for u in users.list_users(engine())]


@blp.route("/users", methods=["POST"])
@requires(Action.MANAGE_USERS)
@blp.arguments(NewUserArgs)
@blp.response(201, UserSchema)
def add_user(args):
    """Add a user (409 if the name is taken)"""
    return users.add_user(engine(), args["name"], args["roles"], args.get("display_name"),
                          args.get("password")).to_dict()


@blp.route("/users/<name>/roles", methods=["POST"])
@requires(Action.MANAGE_USERS)
@blp.arguments(GrantArgs)
@blp.response(200, UserSchema)
def grant(args, name):
    """Grant a role (applies to running instances at once)"""
    return users.grant(engine(), name, args["role"]).to_dict()


@blp.route("/users/<name>/roles/<role>", methods=["DELETE"])
@requires(Action.MANAGE_USERS)
@blp.response(200, UserSchema)
def revoke(name, role):
    """Revoke a role"""
    return users.revoke(engine(), name, role, actor=actor().name).to_dict()


@blp.route("/roles", methods=["GET"])
@requires(Action.READ_USERS)
@blp.response(200, RoleSchema(many=True))
def list_roles():
    """Every role with its members"""
    return users.list_roles(engine())
