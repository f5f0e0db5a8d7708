"""Webhook DNS lookups with a deadline, and a bound on those still running.

getaddrinfo blocks in C with no timeout of its own, so a tenant's slow name
server would hold a delivery thread past the attempt's deadline and its
claim's lease (and the delivery would be sent twice). Each lookup runs on a
daemon thread; the attempt waits `seconds` for it, then goes on without it
(a timeout, tried again later). A late lookup still holds its thread and the
resolver's socket until the system resolver gives up (glibc: 5 s a try, two
tries, per name server and search domain), so the lookups still running are
bounded: `limit` in all and `per_tenant` of one tenant's. Past either the
attempt is a timeout at once, so one tenant's black-holed domain leaves
lookups for everyone else's.
"""

import socket
import threading
from collections import Counter
from typing import Any

from worker.runtime.settings import WebhookSettings
from worker.service.tenant_slots import TenantSlots


class Resolver:
    """One per worker process (Services.resolver): it counts the lookups
    still running there."""

    def __init__(self, limit: int, per_tenant: int) -> None:
        self.slots = TenantSlots(limit, per_tenant)

    @property
    def running(self) -> Counter[str]:
        """The lookups still running, per tenant."""
        return self.slots.taken

    @classmethod
    def for_settings(cls, webhooks: WebhookSettings) -> "Resolver":
        # Room for every delivery slot's lookup and one late one behind it.
        return cls(2 * webhooks.concurrency, 2 * webhooks.per_tenant)

    def resolve(self, host: str, port: int, seconds: float, tenant: str = "") -> list[Any]:
        """getaddrinfo's answer; TimeoutError when it is late or too many of
        the tenant's (or anyone's) lookups are still running; its own error
        (OSError, or ValueError for a name IDNA cannot encode) otherwise."""
        if not self.slots.take(tenant):
            raise TimeoutError("no DNS answer: too many lookups still running")
        answer: list[Any] = []

        def lookup() -> None:
            try:
                answer.append(socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP))
            except Exception as exc:  # reported to the attempt, never lost on this thread
                answer.append(exc)
            finally:
                self.slots.free(tenant)

        thread = threading.Thread(target=lookup, name="backdrop-webhook-dns", daemon=True)
        thread.start()
        thread.join(seconds)
        if not answer:
            raise TimeoutError(f"no DNS answer within {seconds:g} s")
        if isinstance(answer[0], Exception):
            raise answer[0]
        return list(answer[0])
