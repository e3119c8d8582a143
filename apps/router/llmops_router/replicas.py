"""Per-replica routing state: health, ejection, in-flight counts and the last scrape."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .vllm_metrics import QueueMetrics


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
    # Requests sent since the last scrape that are still running: the scrape cannot know
    # them yet, so a burst between polls is spread instead of piling onto one replica.
    scrape_epoch: int = 0
    new_inflight: int = 0
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

    def record_scrape(self, metrics: QueueMetrics | None, now: float) -> None:
        saturated = None
        if metrics is not None and metrics.running >= 1:
            running = int(metrics.running)
            if metrics.waiting > 0:
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
        self.scrape_epoch += 1
        self.new_inflight = 0

    def start_request(self) -> int:
        self.inflight += 1
        self.new_inflight += 1
        self.choices += 1
        return self.scrape_epoch

    def end_request(self, epoch: int) -> None:
        self.inflight = max(0, self.inflight - 1)
        if epoch == self.scrape_epoch:
            self.new_inflight = max(0, self.new_inflight - 1)
