"""The local stack: moto, the infra template deployed into it, and the event-source runner."""
