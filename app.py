"""The blog: one Chalice app, one Blueprint per service (see README.md)."""

from chalice.app import Chalice

from functions import archiver, publisher
from functions.comments.blueprint import bp as comments
from functions.moderation.blueprint import bp as moderation
from functions.posts.blueprint import bp as posts
from functions.query.blueprint import bp as query

app = Chalice(app_name="blog")
app.api.cors = True

for blueprint in (posts, comments, moderation, query, publisher.bp, archiver.bp):
    app.register_blueprint(blueprint)
