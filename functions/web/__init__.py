"""The web client: a static page served by the app itself at ``GET /``."""
