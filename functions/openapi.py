"""The public API's OpenAPI 3.1 document, generated from the pydantic models; its routes.

``document()`` builds it from the commands (request bodies) and ``functions.contract`` (answers):
no schema is written by hand. ``GET /openapi.json`` serves it; ``docs/openapi.json`` is the same
document, committed (``python -m functions.openapi > docs/openapi.json`` writes it, and
``tests/e2e/test_public_api.py`` fails when the two drift apart). The ``OPTIONS`` routes answer
CORS preflights for every documented path, with ``Allow`` listing exactly its operations.
"""

import copy
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Blueprint, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from pydantic.types import StringConstraints

from functions import contract, idempotency
from functions.commands import CreateComment, CreatePost
from functions.http import ANY_CONTENT_TYPE, JSON_HEADERS, preflight
from functions.query.cursor import DEFAULT_LIMIT, MAX_LIMIT

bp = Blueprint(__name__)

VERSION = "1.0.0"
BLANKS = "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
"""What the commands strip from both ends of a text (Unicode White_Space, as pydantic does)."""
ID_PATTERN = r"^[0-9A-Za-z_-]{1,64}$"
ERROR_STATUSES = {
    400: "The body is not a JSON object, the query is not valid, or the key is malformed.",
    404: "No such post.",
    409: "The Idempotency-Key was used with another request, or its request is in flight.",
    413: "The body is over 64 KiB.",
    415: "The body was not sent as Content-Type: application/json.",
    422: "The body's fields are not valid: `details` names each problem.",
}


def stripped_text(limit: int) -> dict[str, Any]:
    """A text the commands accept: 1 to ``limit`` characters once blanks are stripped from its
    ends. A pattern, so the document refuses exactly what the API refuses."""
    solid = f"[^{BLANKS}]"
    return {
        "type": "string",
        "pattern": f"^[{BLANKS}]*{solid}(?:[\\s\\S]{{0,{limit - 2}}}{solid})?[{BLANKS}]*$",
        "description": f"1 to {limit} characters once blanks at either end are stripped.",
    }


def _with_stripped_texts(model: type[BaseModel], schema: dict[str, Any]) -> dict[str, Any]:
    """The model's schema, with each stripped text field as ``stripped_text``."""
    schema = copy.deepcopy(schema)
    for name, info in model.model_fields.items():
        constraints = [m for m in info.metadata if isinstance(m, StringConstraints)]
        if any(c.strip_whitespace for c in constraints):
            limit = min(c.max_length for c in constraints if c.max_length is not None)
            title = schema["properties"][name].get("title")
            schema["properties"][name] = {**stripped_text(limit), "title": title}
    return schema


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    operation_id: str
    summary: str
    answers: dict[int, tuple[str, type[BaseModel] | None]]
    """Status -> (description, body model or None for no body)."""
    request: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    parameters: list[dict[str, Any]] = field(default_factory=list)
    idempotent_write: bool = False
    etag: bool = False
    links: dict[str, Any] = field(default_factory=dict)


POST_ID = {
    "name": "post_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": ID_PATTERN},
}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "An ETag of an earlier answer: 304 with no body while it still holds.",
    "schema": {"type": "string"},
}
IDEMPOTENCY_KEY = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "description": (
        "A key the client draws for one write (a UUID): a retry with the same key and the same "
        "request writes nothing and answers what the first created; with another request, 409."
        f" Remembered for {idempotency.RETENTION_SECONDS // 3600} hours."
    ),
    "schema": {"type": "string", "pattern": idempotency.KEY_PATTERN},
}
FROM_CREATED_POST = {"post_id": "$response.body#/id"}

OPERATIONS = [
    Operation(
        "/posts",
        "get",
        "listPosts",
        "One page of posts, newest first, each with its comments.",
        {200: ("One page; `Link` names the next, if any.", contract.PostsPage)},
        errors=(400,),
        parameters=[
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                },
            },
            {
                "name": "after",
                "in": "query",
                "required": False,
                "description": "An opaque cursor, from the `Link` header of the page before.",
                "schema": {"type": "string", "format": "posts-cursor", "maxLength": 400},
            },
            IF_NONE_MATCH,
        ],
        etag=True,
    ),
    Operation(
        "/posts",
        "post",
        "createPost",
        "Create a post.",
        {201: ("The post created.", contract.CreatedPost)},
        request=CreatePost,
        errors=(400, 409, 413, 415, 422),
        parameters=[IDEMPOTENCY_KEY],
        idempotent_write=True,
        links={
            "GetPost": {"operationId": "getPost", "parameters": FROM_CREATED_POST},
            "CommentOnPost": {"operationId": "createComment", "parameters": FROM_CREATED_POST},
        },
    ),
    Operation(
        "/posts/{post_id}",
        "get",
        "getPost",
        "One post with its comments (404 until the query view has it).",
        {200: ("The post.", contract.Post)},
        errors=(404,),
        parameters=[POST_ID, IF_NONE_MATCH],
        etag=True,
    ),
    Operation(
        "/posts/{post_id}/comments",
        "post",
        "createComment",
        "Comment on a post; the comment waits for moderation.",
        {201: ("The post's newest comments, the one created among them.", contract.CommentsAnswer)},
        request=CreateComment,
        errors=(400, 404, 409, 413, 415, 422),
        parameters=[POST_ID, IDEMPOTENCY_KEY],
        idempotent_write=True,
    ),
    Operation(
        "/openapi.json",
        "get",
        "getOpenApi",
        "This document.",
        {200: ("The OpenAPI document.", None)},
    ),
]

_REF = "#/components/schemas/{model}"


def _schemas() -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    models: list[type[BaseModel]] = [contract.Error]
    for operation in OPERATIONS:
        models += [m for _, m in operation.answers.values() if m is not None]
        if operation.request is not None:
            models.append(operation.request)
    keys, definitions = models_json_schema(
        [(m, "validation") for m in dict.fromkeys(models)], ref_template=_REF
    )
    refs: dict[Any, dict[str, Any]] = {model: ref for (model, _), ref in keys.items()}
    components: dict[str, Any] = definitions.get("$defs", {})
    for model in (CreatePost, CreateComment):
        components[model.__name__] = _with_stripped_texts(model, components[model.__name__])
    return refs, components


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(op: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    etag_header = {"ETag": {"required": True, "schema": {"type": "string"}}}
    for status, (description, model) in op.answers.items():
        answer: dict[str, Any] = {"description": description}
        answer["content"] = _json(refs[model] if model is not None else {"type": "object"})
        if op.etag:
            answer["headers"] = dict(etag_header)
            if op.operation_id == "listPosts":
                answer["headers"]["Link"] = {
                    "required": False,
                    "description": 'The next page: `<posts?limit=...&after=...>; rel="next"`.',
                    "schema": {"type": "string"},
                }
        if op.links and 200 <= status < 300:
            answer["links"] = op.links
        responses[str(status)] = answer
    if op.etag:
        responses["304"] = {
            "description": "Not modified: `If-None-Match` named this answer's ETag.",
            "headers": etag_header,
        }
    for status in op.errors:
        responses[str(status)] = {
            "description": ERROR_STATUSES[status],
            "content": _json(refs[contract.Error]),
        }
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "parameters": op.parameters,
        "responses": responses,
    }
    if op.request is not None:
        spec["requestBody"] = {"required": True, "content": _json(refs[op.request])}
    return spec


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the public API."""
    refs, components = _schemas()
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Blog API",
            "version": VERSION,
            "description": (
                "Posts and comments; comments are moderated before their text is shown. "
                "No authentication. docs/api.md in the repository describes the contract."
            ),
        },
        "paths": paths,
        "components": {"schemas": components},
    }


def methods_by_path() -> dict[str, list[str]]:
    paths: dict[str, list[str]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, []).append(op.method.upper())
    return paths


def rendered() -> str:
    """The document as committed in docs/openapi.json."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


@bp.route("/openapi.json", methods=["GET"], content_types=ANY_CONTENT_TYPE)
def openapi_json() -> Response:
    return Response(body=rendered(), status_code=200, headers=JSON_HEADERS)


def _preflight_route(path: str, methods: list[str]) -> Callable[[], Response]:
    def answer(**_path_parameters: str) -> Response:
        return preflight(methods)

    answer.__name__ = "options_" + "".join(c if c.isalnum() else "_" for c in path)
    return answer


for _path, _methods in methods_by_path().items():
    bp.route(_path, methods=["OPTIONS"], content_types=ANY_CONTENT_TYPE)(
        _preflight_route(_path, _methods)
    )


if __name__ == "__main__":
    sys.stdout.write(rendered())
