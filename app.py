"""The blog: one Chalice app, one Blueprint per service (see README.md)."""

import os

from chalice.app import Chalice

from functions import archiver, openapi, publisher
from functions.comments.blueprint import bp as comments
from functions.http import chalice_errors_as_ours, cors
from functions.moderation.blueprint import bp as moderation
from functions.posts.blueprint import bp as posts
from functions.query.blueprint import bp as query
from functions.web.blueprint import bp as web

app = Chalice(app_name="blog")
# No Chalice CORS (it allows every origin or one): the ``cors`` middleware allows only the
# stage's configured origins, and ``openapi.bp`` answers the preflights (docs/api.md).
app.register_middleware(cors, "http")
app.register_middleware(chalice_errors_as_ours, "http")

for blueprint in (posts, comments, moderation, query, publisher.bp, archiver.bp, web, openapi.bp):
    app.register_blueprint(blueprint)

if os.environ.get("BLOG_LOCAL_OPS") == "1":
    # The local stage's operations panel (docs/web.md). Imported only there: operations/ and
    # emulator/ are not in the deployed package, and no deployed stage sets BLOG_LOCAL_OPS.
    from operations.ops_api import bp as ops_api

    app.register_blueprint(ops_api)
