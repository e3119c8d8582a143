"""Per-replica routing state: health, ejection, in-flight counts and the last scrape."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .vllm_metrics import QueueMetrics

# vLLM runs fewer sequences than its max_num_seqs only when the KV cache is full (it then
# holds requests back or preempts). Requests seen waiting while the cache has room are between
# scheduler steps, behind a slow step or a prefill token budget: no evidence of a smaller batch.
KV_FULL = 0.9


@dataclass
class Replica:
    name: str
    model: str
    url: str
    # Not routable until a /health check has passed: a starting vLLM is never sent traffic.
    healthy: bool = False
    ejected_until: float = 0.0
    inflight: int = 0
    metrics: QueueMetrics | None = None
    metrics_at: float = 0.0  # monotonic time of the last good scrape
    # Requests the router has open here, by the monotonic time it sent them (insertion order
    # is send order). Those sent after the last scrape's request went out cannot be in it
    # (new_inflight), so a burst between polls is spread instead of piling onto one replica.
    _open: dict = field(default_factory=dict)
    _next_request: int = 0
    counted_since: float = float("inf")  # when the last scrape was sent (no scrape: none counted)
    failures: int = 0
    choices: int = 0
    # Sequences the replica runs at once: the deployer's max_num_seqs, if known, and what
    # the scrapes showed (running while requests waited = saturated). A request beyond
    # capacity waits a whole generation, so queue_aware prices it far above a busier batch.
    configured_capacity: int | None = None
    learned_capacity: int | None = None
    learned_at: float = 0.0
    _saturated_at: int | None = None  # running count of the previous scrape if requests waited
    extra: dict = field(default_factory=dict)

    def routable(self, now: float | None = None) -> bool:
        return self.healthy and (now if now is not None else time.monotonic()) >= self.ejected_until

    def eject(self, seconds: float) -> None:
        self.failures += 1
        self.healthy = False  # back only after the health checker sees /health pass again
        self.ejected_until = time.monotonic() + seconds

    def fresh_metrics(self, stale_s: float, now: float) -> QueueMetrics | None:
        if self.metrics is None or now - self.metrics_at > stale_s:
            return None
        return self.metrics

    def capacity(self, ttl_s: float, now: float) -> int | None:
        """Learned capacity while recent (KV-cache limits change with prompt lengths), else
        the configured one; None when neither is known."""
        if self.learned_capacity is not None and now - self.learned_at <= ttl_s:
            return self.learned_capacity
        return self.configured_capacity

    @property
    def new_inflight(self) -> int:
        """Open requests sent after the last scrape was sent: that scrape cannot count them."""
        count = 0
        for sent in reversed(self._open.values()):
            if sent < self.counted_since:
                break
            count += 1
        return count

    def record_scrape(self, metrics: QueueMetrics | None, now: float, sent_at: float | None = None) -> None:
        """`sent_at`: when the scrape request went out (default `now`). Requests the router
        sent after that stay counted on top of the scrape, even if they finish later: the
        scrape's numbers may predate them (a replica answers /metrics late under load)."""
        saturated = None
        if metrics is not None and metrics.running >= 1:
            running = int(metrics.running)
            # Below the configured max_num_seqs with room in the KV cache, a waiting request is
            # only between scheduler steps: learning that running count as the capacity would
            # price a 16-slot replica as an 8-slot one and push requests into the queue of a
            # truly small one (the tail of a 2 vs 16 slot fleet).
            below = (self.configured_capacity is not None and running < self.configured_capacity
                     and metrics.kv_usage < KV_FULL)
            if metrics.waiting > 0 and not below:
                saturated = running
                # Requests also wait for a moment between arriving and the next scheduler step,
                # so one scrape proves nothing; two in a row at the same batch size do.
                if self._saturated_at == running:
                    self.learned_capacity, self.learned_at = running, now
            elif self.learned_capacity is not None and running > self.learned_capacity:
                self.learned_capacity, self.learned_at = running, now  # it holds more than we thought
        self._saturated_at = saturated
        self.metrics = metrics
        self.metrics_at = now
        self.counted_since = now if sent_at is None else sent_at

    def start_request(self, now: float | None = None) -> int:
        """Count a request sent here; returns its token for end_request."""
        token = self._next_request
        self._next_request += 1
        self._open[token] = time.monotonic() if now is None else now
        self.inflight += 1
        self.choices += 1
        return token

    def end_request(self, token: int) -> None:
        self._open.pop(token, None)
        self.inflight = max(0, self.inflight - 1)
