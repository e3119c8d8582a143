"""Replica choice. Each policy returns routable replicas best first; the proxy tries them
in that order, so the tail is the retry order when the first one fails."""
from __future__ import annotations

import hashlib
import time
from typing import Sequence

from .config import RouterConfig
from .prefix import PrefixIndex
from .replicas import KV_FULL, Replica


class Chooser:
    def __init__(self, config: RouterConfig):
        self.config = config
        self._rr: dict[str, int] = {}
        self.prefixes = PrefixIndex(config.prefix_max_entries, config.prefix_ttl_s)

    def _rotation(self, model: str, replicas: Sequence[Replica]) -> list[Replica]:
        start = self._rr.get(model, 0)
        self._rr[model] = start + 1
        k = start % len(replicas)
        return list(replicas[k:]) + list(replicas[:k])

    def load(self, replica: Replica, now: float) -> float:
        """queue_aware's cost of sending one more request to a replica."""
        return self.price(replica, now)[1]

    def price(self, replica: Replica, now: float) -> tuple[bool, float]:
        """(full, cost): whether one more request would wait for a batch slot, and its cost.

        `present` is what the replica holds: the last scrape's running + waiting plus what
        the router sent after that scrape went out (a burst between polls), never below the
        router's own in-flight count. With a known capacity, the requests beyond it are queued.
        A queued request waits until that many of the running ones finish: about
        queued/capacity generations, so it costs `wait_weight` per generation of waiting —
        one request behind a full 2-slot batch waits half a generation, behind a full
        16-slot batch a sixteenth. Joining a batch with free slots costs its share of the
        batch (present+1)/capacity. Without a known capacity the scraped queue is the queued
        part, drained by the running batch, and the share uses `assumed_capacity`.
        KV-cache pressure adds `kv_weight * usage`. `full`: the request would queue (or the
        KV cache is nearly full); order() never prefers a full replica to one with room.
        """
        cfg = self.config
        metrics = replica.fresh_metrics(cfg.metrics_stale_s, now)
        capacity = replica.capacity(cfg.capacity_ttl_s, now)
        if metrics is None:  # stale or never scraped: only what the router itself knows
            present, waiting, running, kv = float(replica.inflight), 0.0, 0.0, 0.0
        else:
            present = max(metrics.running + metrics.waiting + replica.new_inflight, float(replica.inflight))
            waiting, running, kv = metrics.waiting, metrics.running, metrics.kv_usage
        if capacity:
            queued = max(0.0, present + 1 - capacity)
            drain = float(capacity)
        else:
            queued = waiting
            drain = max(running, 1.0)
            capacity = cfg.assumed_capacity
        cost = cfg.wait_weight * queued / drain + (present + 1) / capacity + cfg.kv_weight * kv
        return queued > 0 or kv >= KV_FULL, cost

    def order(self, model: str, replicas: Sequence[Replica], policy: str,
              session: str | None = None, prefix: Sequence[int] = ()) -> list[Replica]:
        now = time.monotonic()
        live = [r for r in replicas if r.routable(now)]
        if not live:
            return []
        # Rotating first makes every tie-break fair instead of always favouring replica 0.
        rotated = self._rotation(model, live)
        if policy == "round_robin":
            return rotated
        if policy == "least_inflight":
            return sorted(rotated, key=lambda r: r.inflight)
        prices = {id(r): self.price(r, now) for r in rotated}
        loads = {key: cost for key, (_, cost) in prices.items()}
        # A replica with a free batch slot always beats one where the request would queue:
        # a queued request waits for a running one to finish, a whole E2E on a small replica.
        by_load = sorted(rotated, key=lambda r: prices[id(r)])
        if policy == "prefix_aware":
            full = {key: is_full for key, (is_full, _) in prices.items()}
            return self._by_prefix(by_load, loads, full, prefix, now)
        if policy == "queue_aware" or not session:
            return by_load
        # session_affinity: rendezvous hashing keeps a session on its replica while the set
        # of replicas changes, and moves only the sessions of a replica that left.
        home = max(live, key=lambda r: hashlib.blake2b(f"{session}|{r.url}".encode(),
                                                       digest_size=8).digest())
        if self.load(home, now) - self.load(by_load[0], now) > self.config.affinity_max_imbalance:
            return by_load  # overloaded: escape to the least loaded replica
        return [home] + [r for r in by_load if r is not home]

    def _by_prefix(self, by_load: list[Replica], loads: dict[int, float], full: dict[int, bool],
                   prefix: Sequence[int], now: float) -> list[Replica]:
        """prefix_aware: queue_aware cost minus prefix_weight x the fraction of the prompt's
        blocks the replica was recently sent. A replica whose cost exceeds the least loaded
        one's by more than prefix_max_imbalance gets no credit: one hot prefix cannot pin a
        saturated replica. As in queue_aware, a replica where the request would queue never
        beats one with a free slot, whatever its prefix credit."""
        if not prefix:
            return by_load
        cfg = self.config
        matched = self.prefixes.matched(prefix, [r.url for r in by_load], now)
        cap = loads[id(by_load[0])] + cfg.prefix_max_imbalance

        def cost(replica: Replica) -> float:
            load = loads[id(replica)]
            if load > cap:
                return load
            return load - cfg.prefix_weight * matched[replica.url] / len(prefix)

        return sorted(by_load, key=lambda r: (full[id(r)], cost(r)))

    def record(self, replica: Replica, prefix: Sequence[int]) -> None:
        """prefix_aware: the request with these blocks was sent to `replica`."""
        if prefix:
            self.prefixes.record(prefix, replica.url, time.monotonic())
