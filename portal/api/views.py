from __future__ import annotations

from flask import Blueprint, g, jsonify

from portal.permissions.decorators import api_permission_required

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/me")
@api_permission_required("api.profile")
def me():
    """Who is calling: the user behind the session or token, and the scopes it holds."""
    p = g.api_principal
    return jsonify({
        "authenticated_by": p.kind,
        "user": None if p.user_id is None else {
            "id": p.user_id, "username": p.username, "role": p.role,
        },
        "token": None if p.token_id is None else {"id": p.token_id, "name": p.token_name},
        "scopes": list(p.scopes),
    })
