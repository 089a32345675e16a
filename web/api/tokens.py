"""The caller's own personal API tokens."""
from __future__ import annotations

from engine.domain.permissions import Action
from engine.services import auth
from web.api.common import Blueprint, actor, engine, requires
from web.api.schemas import NewTokenArgs, NewTokenSchema, TokenSchema

PREFIX = "/tokens"
blp = Blueprint("tokens", __name__, description="My personal API tokens")


@blp.route("", methods=["GET"])
@requires(Action.OWN_TOKENS)
@blp.response(200, TokenSchema(many=True))
def list_tokens():
    """My tokens (never the token itself: its prefix, name, last use)"""
    return [t.to_dict() for t in auth.list_tokens(engine(), actor().name)]


@blp.route("", methods=["POST"])
@requires(Action.OWN_TOKENS)
@blp.arguments(NewTokenArgs)
@blp.response(201, NewTokenSchema)
def create_token(args):
    """Create a token for me: `token` is in this response only"""
    plain, record = auth.create_token(engine(), actor().name, args["name"])
    return {"token": plain, **record.to_dict()}


@blp.route("/<int:token_id>", methods=["DELETE"])
@requires(Action.OWN_TOKENS)
@blp.response(200, TokenSchema)
def revoke_token(token_id):
    """Revoke one of my tokens (admins: anyone's); it stops working at once"""
    return auth.revoke_token(engine(), token_id, actor().name).to_dict()
