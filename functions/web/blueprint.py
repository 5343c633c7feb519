"""The web client's routes: the page at ``GET /`` and its files at ``GET /static/{name}``.

Plain HTML, CSS and JavaScript with no build step: the files under ``static/`` are served as
they are. Only the files named in ``FILES`` are served, so no path can reach anything else.
"""

from pathlib import Path

from chalice.app import Blueprint, Response

from functions.http import ANY_CONTENT_TYPE, HttpError, json_errors

bp = Blueprint(__name__)

STATIC = Path(__file__).resolve().parent / "static"
FILES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}
HEADERS: dict[str, str | list[str]] = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # Defence in depth: the page renders user content as text, and no inline script or
    # style would run even if some did slip in.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def static_file(name: str) -> Response:
    content_type = FILES.get(name)
    if content_type is None:
        raise HttpError(404, "unknown_file", f"no static file {name!r}")
    return Response(
        body=(STATIC / name).read_text(encoding="utf-8"),
        status_code=200,
        headers={**HEADERS, "Content-Type": content_type},
    )


@bp.route("/", methods=["GET"], content_types=ANY_CONTENT_TYPE)
def index() -> Response:
    return static_file("index.html")


@bp.route("/static/{name}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@json_errors
def static(name: str) -> Response:
    return static_file(name)
