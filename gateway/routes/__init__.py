"""The HTTP API's routes, one router per resource (gateway.app puts them together)."""
