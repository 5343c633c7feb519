"""Build tooling (not shipped): packaging the stack for AWS."""
