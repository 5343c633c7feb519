"""The HTTP edge shared by every service's routes: parse bodies, shape errors, CORS, ETags.

Every rejection is a JSON body ``{"error": {"code", "message", "details"?}}`` with a 4xx status,
raised before anything is written. docs/api.md describes the contract.
"""

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from chalice.app import Request, Response
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

from functions.ids import MAX_ID

MAX_BODY_BYTES = 64 * 1024
JSON_MEDIA_TYPE = "application/json"
ACCEPTED_CONTENT_TYPES = [JSON_MEDIA_TYPE]
"""What writes accept. A cross-site form or a script's no-preflight request can only send
``text/plain``, ``application/x-www-form-urlencoded`` or ``multipart/form-data`` (or no type
at all): refusing them with 415 means another site can't write through its visitors."""
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


def require_json(request: Request) -> None:
    """415 unless the request says its body is JSON: its media type, parameters aside, is
    exactly ``application/json``. A missing header is refused too (Chalice would take it for
    JSON, and a script can send a body with no type without a CORS preflight)."""
    header = request.headers.get("content-type") or ""
    media_type = header.split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        shown = header[:100] or "none"
        raise HttpError(
            415,
            "unsupported_media_type",
            f"the body must be sent as Content-Type: {JSON_MEDIA_TYPE} (got {shown!r})",
        )


def parse_body(request: Request, model: type[M]) -> M:
    """The request body as ``model``, or an ``HttpError`` that names the problem."""
    require_json(request)
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


# ---- CORS: only the stage's configured origins ---------------------------------------------

CORS_ORIGINS_VARIABLE = "CORS_ALLOWED_ORIGINS"
"""A JSON list of origins (``["https://blog.example"]``) whose scripts may call the API; a
stage sets it in ``.chalice/config.json``. None by default: the page is same-origin."""
CORS_ALLOW_HEADERS = "Content-Type, Idempotency-Key, If-None-Match"
CORS_EXPOSE_HEADERS = "ETag, Link"
CORS_MAX_AGE_SECONDS = 600
Origin = Annotated[
    str,
    StringConstraints(
        to_lower=True, pattern=r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$", max_length=300
    ),
]
_ORIGINS = TypeAdapter(list[Origin])


class CorsConfigError(RuntimeError):
    """The stage's CORS setting is not a JSON list of origins."""


def allowed_origins() -> frozenset[str]:
    """The origins the stage allows, read at call time like every setting."""
    raw = os.environ.get(CORS_ORIGINS_VARIABLE) or "[]"
    try:
        return frozenset(_ORIGINS.validate_json(raw))
    except ValidationError as error:
        raise CorsConfigError(
            f"{CORS_ORIGINS_VARIABLE} must be a JSON list of origins such as "
            f'["https://blog.example"]: {error}'
        ) from error


def _is_cors_header(name: str) -> bool:
    return name.lower().startswith("access-control-")


def cors(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """HTTP middleware: the one CORS policy of every route.

    Whatever headers a route or Chalice set, ``Access-Control-*`` headers leave only for a
    request whose ``Origin`` the stage allows; an unknown origin gets none, so its scripts can
    neither read an answer nor (the preflight failing) send a JSON write. Every answer says
    ``Vary: Origin``, so no cache hands one origin's answer to another.
    """
    response = get_response(request)
    headers = {k: v for k, v in response.headers.items() if not _is_cors_header(k)}
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() in allowed_origins():
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        if request.method == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = str(headers.get("Allow", ""))
            headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
    headers["Vary"] = "Origin"
    response.headers = headers
    return response


def preflight(methods: list[str]) -> Response:
    """The answer to ``OPTIONS`` on a path with ``methods``: 204 with ``Allow``; the ``cors``
    middleware adds the ``Access-Control-Allow-*`` headers for an allowed origin only."""
    allow = ", ".join([*methods, "OPTIONS"])
    return Response(body="", status_code=204, headers={"Allow": allow})


# ---- ETags: a read answers 304 to the version the client has -------------------------------


def etag_of(*parts: str) -> str:
    """A strong entity tag of an answer: a digest of its body and the headers that vary."""
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return f'"{digest[:32]}"'


def not_modified(request: Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or ``*``): weak comparison, as RFC 9110
    section 13.1.2 requires for ``If-None-Match``."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def json_with_etag(request: Request, body: Any, headers: dict[str, str] | None = None) -> Response:
    """200 with ``body`` as JSON and its ``ETag``, or 304 (no body) if the client has it."""
    text = json.dumps(body, separators=(",", ":"))
    extra = dict(headers or {})
    etag = etag_of(text, *(f"{k}: {v}" for k, v in sorted(extra.items())))
    common: dict[str, str | list[str]] = {"ETag": etag, "Cache-Control": "no-cache", **extra}
    if not_modified(request, etag):
        return Response(body="", status_code=304, headers=common)
    return Response(body=text, status_code=200, headers={**JSON_HEADERS, **common})
