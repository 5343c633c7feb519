"""Query: a read model of posts with their comments and statuses."""
