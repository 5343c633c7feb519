"""The blog's services (posts, comments, moderation, query) and the modules they share."""
