"""Kombu's Redis transport, with poison messages contained and batch work last.

A body in a queue list that is not Celery's envelope (not JSON, a JSON that is
not the envelope, a body that is not valid base64) raises inside kombu's read
loop, and Celery turns that into "Unrecoverable error" and exits; the next such
body kills the restarted worker again. Here such a body is moved to the
dead-letter list with the reason, logged once (bounded), and the worker goes on.
"""

import logging
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Empty
from kombu.utils.scheduling import round_robin_cycle

from api_contracts.names import QUEUE_GPU_BATCH
from worker.service.dead_letters import dead_letter

log = logging.getLogger(__name__)
# What a malformed body raises while kombu decodes it (JSON, base64, missing
# envelope keys); connection errors are not among them and still propagate.
POISON_ERRORS = (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError)


class BatchLastCycle(round_robin_cycle):
    """Kombu's round robin over the queues, except that the batch queue always
    comes last: BRPOP takes from the first key that holds a message, so a
    batch step is taken only when no interactive (or CPU, or notify) message
    waits, and batch work never delays a person who waits."""

    def consume(self, n: int) -> list[str]:
        items = self.items[:n]
        batch = [q for q in items if q == QUEUE_GPU_BATCH]
        return [q for q in items if q != QUEUE_GPU_BATCH] + batch


class Channel(kombu_redis.Channel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue_cycle = BatchLastCycle()
        self._update_queue_cycle()

    def _brpop_read(self, **options: Any) -> Any:
        client = self.client
        seen: dict[str, Any] = {}
        original = client.parse_response

        def recording(*args: Any, **kwargs: Any) -> Any:
            seen["reply"] = reply = original(*args, **kwargs)
            return reply

        client.parse_response = recording  # the raw reply, in case it is poison
        try:
            return super()._brpop_read(**options)
        except POISON_ERRORS as exc:
            queue, body = _queue_and_body(seen.get("reply"), self.sep)
            dead_letter(client, queue, body, f"undecodable message: {type(exc).__name__}: {exc}")
            raise Empty() from None
        finally:
            del client.parse_response


class Transport(kombu_redis.Transport):
    Channel = Channel


def _queue_and_body(reply: Any, sep: str) -> tuple[str, bytes]:
    if not reply or len(reply) != 2:
        return "?", b""
    dest, item = reply
    dest = dest.decode(errors="replace") if isinstance(dest, bytes) else str(dest)
    body = item if isinstance(item, bytes) else str(item).encode()
    return dest.rsplit(sep, 1)[0], body
