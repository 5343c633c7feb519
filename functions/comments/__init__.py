"""Comments: creates comments as pending, and applies moderation results."""
