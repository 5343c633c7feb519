"""Posts routes."""

from typing import Any

from chalice.app import Blueprint

from functions import idempotency, settings
from functions.commands import CreatePost
from functions.http import ACCEPTED_CONTENT_TYPES, created, json_errors, parse_body
from functions.posts import service

bp = Blueprint(__name__)


@bp.route("/posts", methods=["POST"], content_types=ACCEPTED_CONTENT_TYPES)
@json_errors
def create_post() -> Any:
    command = parse_body(bp.current_request, CreatePost)
    key = idempotency.from_request(bp.current_request)
    return created(service.create_post(settings.load(), command, key))
