"""Moderation: decides whether a new comment is approved or rejected."""
