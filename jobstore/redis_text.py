"""Redis answers bytes (the clients here do not decode responses)."""


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
