"""The HTTP edge shared by every service's routes: parse bodies, shape errors.

Every rejection is a JSON body ``{"error": {"code", "message", "details"?}}`` with a 4xx status,
raised before anything is written.
"""

import functools
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from chalice.app import Request, Response
from pydantic import BaseModel, ValidationError

from functions.ids import MAX_ID

MAX_BODY_BYTES = 64 * 1024
ACCEPTED_CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]
"""Accepted so that the body check, not Chalice's 415, answers: the body must be JSON."""
ANY_CONTENT_TYPE = ["*/*"]
"""For reads: a GET has no body, so its Content-Type is not a reason to refuse it."""
JSON_HEADERS: dict[str, str | list[str]] = {"Content-Type": "application/json"}


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return Response(body={"error": error}, status_code=self.status, headers=JSON_HEADERS)


M = TypeVar("M", bound=BaseModel)


def parse_body(request: Request, model: type[M]) -> M:
    """The request body as ``model``, or an ``HttpError`` that names the problem."""
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise HttpError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise HttpError(400, "invalid_json", f"the body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise HttpError(400, "invalid_body", "the body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        details = [
            {"field": ".".join(str(part) for part in e["loc"]), "problem": e["msg"]}
            for e in error.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        raise HttpError(422, "invalid_input", summary, details) from error


def path_id(value: str, missing: str) -> str:
    """An id from the path; one no id could have (too long, odd characters) is not found.

    It never reaches DynamoDB, whose key size limits would otherwise answer with a 500.
    """
    if not (0 < len(value) <= MAX_ID and value.replace("-", "").replace("_", "").isalnum()):
        raise HttpError(404, missing, f"{value[:MAX_ID]!r} does not exist")
    return value


def created(body: Any) -> Response:
    return Response(body=body, status_code=201, headers=JSON_HEADERS)


def json_errors(
    route: Callable[..., Any] | None = None,
    *,
    translate: Callable[[Exception], HttpError | None] = lambda _: None,
) -> Any:
    """Turn an ``HttpError`` raised by a route, or another exception ``translate`` maps to one,
    into its JSON response. Use as ``@json_errors`` or ``@json_errors(translate=...)``."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            except HttpError as error:
                return error.response()
            except Exception as error:
                mapped = translate(error)
                if mapped is None:
                    raise
                return mapped.response()

        return wrapper

    return decorate if route is None else decorate(route)


def chalice_errors_as_ours(
    request: Request, get_response: Callable[[Request], Response]
) -> Response:
    """HTTP middleware: the refusals Chalice answers itself (415 for a Content-Type outside a
    route's list, 405 for a method the path lacks) get the same ``{"error": {...}}`` body as ours.

    Chalice shapes them as ``{"Code": "UnsupportedMediaType", "Message": ...}``; the code
    becomes ``unsupported_media_type``.
    """
    response = get_response(request)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", str(body["Code"]).removesuffix("Error")).lower()
        ours = HttpError(response.status_code, code, str(body["Message"])).response()
        ours.headers = {**response.headers, **ours.headers}  # keeps Allow and the CORS headers
        return ours
    return response
