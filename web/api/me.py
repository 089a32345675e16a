"""Who am I: the authenticated user, their roles and what they may do."""
from __future__ import annotations

from engine.services import auth
from web.api.common import Blueprint, actor, engine
from web.api.schemas import MeSchema

PREFIX = "/me"
blp = Blueprint("me", __name__, description="The authenticated user")


@blp.route("", methods=["GET"])
@blp.response(200, MeSchema)
def me():
    """The authenticated user and the permissions their roles give (any authenticated user)"""
    return auth.profile(engine(), actor())
