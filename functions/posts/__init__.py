"""Posts: creates posts."""
