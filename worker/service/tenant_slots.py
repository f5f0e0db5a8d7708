"""Slots shared by tenants in one process: at most `limit` taken in all and
`per_tenant` by one tenant, so one tenant's stuck work leaves slots for
everyone else's. The webhook delivery threads (webhook_pool) and the DNS
lookups still running (webhook_dns) each count theirs with one."""

import threading
from collections import Counter


class TenantSlots:
    def __init__(self, limit: int, per_tenant: int) -> None:
        self.limit, self.per_tenant = limit, per_tenant
        self.taken: Counter[str] = Counter()
        self._lock = threading.Lock()

    def full(self) -> bool:
        with self._lock:
            return sum(self.taken.values()) >= self.limit

    def take(self, tenant: str) -> bool:
        """A slot for `tenant`, if both bounds allow one."""
        with self._lock:
            if sum(self.taken.values()) >= self.limit or self.taken[tenant] >= self.per_tenant:
                return False
            self.taken[tenant] += 1
            return True

    def free(self, tenant: str) -> None:
        with self._lock:
            self.taken[tenant] -= 1
            if self.taken[tenant] <= 0:
                del self.taken[tenant]
