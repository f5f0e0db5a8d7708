"""Webhook attempts on threads of the worker's parent, never in a task slot:
a receiver that hangs holds a delivery thread for its time limits, not a
process that job steps need. At most `webhooks.concurrency` attempts run at
once, and at most `webhooks.per_tenant` of one tenant's, so one tenant's
hanging receivers leave threads for everyone else's."""

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from worker.service import webhook_deliveries
from worker.service.context import Services
from worker.service.tenant_slots import TenantSlots
from worker.service.webhook_deliveries import Delivery

log = logging.getLogger(__name__)
Attempt = Callable[[Services, Delivery], object]


class DeliveryPool:
    def __init__(self, services: Services, attempt: Attempt) -> None:
        w = services.settings.webhooks
        self.services, self.attempt = services, attempt
        self.per_tenant = w.per_tenant
        # A claim outlives the longest attempt: otherwise a second worker
        # would send the same delivery while the first still waits.
        self.lease = 2 * (w.connect_timeout_seconds + w.timeout_seconds) + 30
        self.executor = ThreadPoolExecutor(w.concurrency, thread_name_prefix="backdrop-webhook")
        self.slots = TenantSlots(w.concurrency, w.per_tenant)

    def start_due(self, now: float) -> int:
        """Claim and start the deliveries due by `now` that the bounds allow."""
        started = 0
        for tenant, event_ids in self._due(now).items():
            for event_id in event_ids:
                if not self.slots.take(tenant):
                    break
                if webhook_deliveries.claim(self.services.redis, tenant, event_id, now, self.lease):
                    self.executor.submit(self._run, tenant, event_id)
                    started += 1
                else:  # another worker's
                    self.slots.free(tenant)
        return started

    def _due(self, now: float) -> dict[str, list[str]]:
        if self.slots.full():
            return {}
        return webhook_deliveries.due_by_tenant(self.services.redis, now, self.per_tenant)

    def _run(self, tenant: str, event_id: str) -> None:
        try:
            delivery = webhook_deliveries.load(self.services.redis, event_id)
            if delivery is None:  # expired: nothing left to send
                webhook_deliveries.settle(self.services.redis, event_id, tenant)
            else:
                self.attempt(self.services, delivery)
        except Exception as exc:  # Redis down: the lease runs out, and it is claimed again
            log.warning("webhook %.80s not attempted: %.300s", event_id, exc)
        finally:
            self.slots.free(tenant)


def deliver_forever(services: Services, attempt: Attempt, poll_seconds: float = 0.1) -> None:
    """The parent's delivery loop: start what is due, a few times a second."""
    pool = DeliveryPool(services, attempt)
    while True:
        try:
            pool.start_due(time.time())
        except Exception as exc:  # Redis down: try again in a moment
            log.warning("webhook deliveries paused: %.300s", exc)
            time.sleep(1)
        time.sleep(poll_seconds)
