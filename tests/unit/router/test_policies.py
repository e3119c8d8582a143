"""Replica choice without a network: every policy, bursts between polls, stale metrics."""
import time
from collections import Counter

from llmops_router.config import parse_config
from llmops_router.policies import Chooser
from llmops_router.replicas import Replica
from llmops_router.vllm_metrics import QueueMetrics


def make(n=2, **cfg):
    config = parse_config({"models": [], **cfg})
    reps = [Replica(f"r{i}", "m", f"http://127.0.0.1:{19900 + i}", healthy=True) for i in range(n)]
    return Chooser(config), reps


def scrape(rep, waiting=0.0, running=0.0, kv=0.0, age=0.0):
    rep.record_scrape(QueueMetrics(waiting, running, kv), time.monotonic() - age)


def test_round_robin_cycles_over_replicas():
    chooser, reps = make(3)
    picks = [chooser.order("m", reps, "round_robin")[0].name for _ in range(6)]
    assert picks == ["r0", "r1", "r2", "r0", "r1", "r2"]


def test_unhealthy_and_ejected_replicas_get_nothing():
    chooser, reps = make(3)
    reps[0].healthy = False
    reps[2].eject(60)
    for policy in ("round_robin", "least_inflight", "queue_aware", "session_affinity"):
        assert [r.name for r in chooser.order("m", reps, policy, "s")] == ["r1"]
    reps[1].healthy = False
    assert chooser.order("m", reps, "queue_aware") == []


def test_least_inflight_uses_own_counts():
    chooser, reps = make(3)
    reps[0].inflight, reps[1].inflight, reps[2].inflight = 5, 1, 3
    assert [r.name for r in chooser.order("m", reps, "least_inflight")] == ["r1", "r2", "r0"]


def test_queue_aware_prefers_shortest_queue():
    chooser, reps = make(2)
    scrape(reps[0], waiting=6, running=4)
    scrape(reps[1], waiting=0, running=4)
    assert all(chooser.order("m", reps, "queue_aware")[0].name == "r1" for _ in range(5))


def test_queue_aware_waiting_costs_more_than_running():
    # A small replica (4 slots, 1 queued) vs a big one running 5: the big one is the better pick.
    chooser, reps = make(2)
    scrape(reps[0], waiting=1, running=4)
    scrape(reps[1], waiting=0, running=5)
    assert chooser.order("m", reps, "queue_aware")[0].name == "r1"


def test_queue_aware_counts_kv_cache_pressure():
    chooser, reps = make(2)
    scrape(reps[0], running=2, kv=0.95)
    scrape(reps[1], running=2, kv=0.05)
    assert chooser.order("m", reps, "queue_aware")[0].name == "r1"


def test_burst_between_polls_is_spread():
    # Same scrape for both; 20 requests arrive before the next poll. Without the router's own
    # counts they would all go to whichever replica sorts first.
    chooser, reps = make(2)
    scrape(reps[0], waiting=0, running=3)
    scrape(reps[1], waiting=0, running=3)
    picks = Counter()
    for _ in range(20):
        choice = chooser.order("m", reps, "queue_aware")[0]
        choice.start_request()
        picks[choice.name] += 1
    assert picks == {"r0": 10, "r1": 10}


def test_burst_fills_the_emptier_replica_first():
    chooser, reps = make(2)
    scrape(reps[0], running=8)
    scrape(reps[1], running=0)
    picks = []
    for _ in range(12):
        choice = chooser.order("m", reps, "queue_aware")[0]
        choice.start_request()
        picks.append(choice.name)
    assert picks[:8] == ["r1"] * 8  # r1 catches up to r0's 8 before r0 gets any
    assert Counter(picks) == {"r1": 10, "r0": 2}


def test_new_scrape_resets_burst_counter_but_not_inflight():
    _, reps = make(1)
    scrape(reps[0])
    epoch = reps[0].start_request()
    assert reps[0].new_inflight == 1
    scrape(reps[0], running=1)
    assert (reps[0].new_inflight, reps[0].inflight) == (0, 1)
    reps[0].end_request(epoch)  # finished after the scrape: the scrape counted it, not new_inflight
    assert (reps[0].new_inflight, reps[0].inflight) == (0, 0)


def test_stale_metrics_age_out():
    chooser, reps = make(2, poll_interval_s=1.0, metrics_stale_s=3.0)
    scrape(reps[0], waiting=0, age=10.0)  # looked idle, but 10 s ago
    scrape(reps[1], waiting=50, age=10.0)  # looked busy, 10 s ago
    reps[0].inflight = 4
    reps[1].inflight = 1
    # Both scrapes are stale, so only in-flight counts decide: r1 wins despite its old queue.
    assert chooser.order("m", reps, "queue_aware")[0].name == "r1"
    scrape(reps[1], waiting=50)  # fresh again: now the queue counts
    assert chooser.order("m", reps, "queue_aware")[0].name == "r0"


def test_session_affinity_is_sticky_and_spreads_sessions():
    chooser, reps = make(3)
    for r in reps:
        scrape(r)
    homes = {}
    for s in range(30):
        picks = {chooser.order("m", reps, "session_affinity", f"user-{s}")[0].name for _ in range(4)}
        assert len(picks) == 1
        homes[s] = picks.pop()
    assert len(set(homes.values())) == 3


def test_session_affinity_escapes_overloaded_home_and_returns():
    chooser, reps = make(2, affinity_max_imbalance=4)
    home = chooser.order("m", reps, "session_affinity", "alice")[0]
    other = next(r for r in reps if r is not home)
    scrape(home, waiting=10, running=4)
    scrape(other, running=1)
    assert chooser.order("m", reps, "session_affinity", "alice")[0] is other
    scrape(home, running=2)
    assert chooser.order("m", reps, "session_affinity", "alice")[0] is home


def test_session_affinity_keeps_sessions_when_another_replica_leaves():
    chooser, reps = make(3)
    before = {s: chooser.order("m", reps, "session_affinity", f"s{s}")[0].name for s in range(30)}
    reps[2].healthy = False
    after = {s: chooser.order("m", reps, "session_affinity", f"s{s}")[0].name for s in range(30)}
    assert all(after[s] == before[s] for s in before if before[s] != "r2")
    assert all(after[s] != "r2" for s in after)


def test_session_affinity_without_key_behaves_like_queue_aware():
    chooser, reps = make(2)
    scrape(reps[0], waiting=5)
    scrape(reps[1])
    assert chooser.order("m", reps, "session_affinity", None)[0].name == "r1"


def test_configured_capacity_keeps_requests_out_of_a_full_small_replica():
    # The compare.yml fleet: max_num_seqs 2 vs 16, concurrency 10, before any scrape.
    chooser, reps = make(2)
    reps[0].configured_capacity, reps[1].configured_capacity = 2, 16
    picks = Counter()
    for _ in range(10):
        choice = chooser.order("m", reps, "queue_aware")[0]
        choice.start_request()
        picks[choice.name] += 1
    assert picks["r0"] <= 2 and picks["r1"] >= 8
    assert reps[0].inflight <= reps[0].configured_capacity  # nothing queued on the small one


def test_queue_is_costlier_than_a_fuller_batch():
    chooser, reps = make(2)
    reps[0].configured_capacity, reps[1].configured_capacity = 2, 16
    scrape(reps[0], running=2)
    scrape(reps[1], running=12)
    # r0 is full: one more waits a whole generation; r1 has 4 free slots.
    assert chooser.order("m", reps, "queue_aware")[0].name == "r1"
    scrape(reps[1], running=16)  # both full: r1 would queue 1, r0 (3 waiting) would queue 4
    scrape(reps[0], running=2, waiting=3)
    assert chooser.order("m", reps, "queue_aware")[0].name == "r1"


def test_capacity_is_learned_from_two_saturated_scrapes_and_expires():
    chooser, reps = make(2, capacity_ttl_s=60)
    rep = reps[0]
    scrape(rep, running=3, waiting=2)  # one scrape: maybe just between scheduler steps
    assert rep.capacity(60, time.monotonic()) is None
    scrape(rep, running=3, waiting=1)
    assert rep.capacity(60, time.monotonic()) == 3
    scrape(rep, running=5)  # it ran more than we thought: raise, do not wait for expiry
    assert rep.capacity(60, time.monotonic()) == 5
    rep.configured_capacity = 8
    assert rep.capacity(60, time.monotonic() + 61) == 8  # learned value aged out


def test_learned_capacity_routes_away_from_a_saturated_replica():
    chooser, reps = make(2)
    for _ in range(2):
        scrape(reps[0], running=2, waiting=1)
        scrape(reps[1], running=6)
    # Unknown capacity on r1 (never saturated): joining it costs a share of assumed_capacity.
    picks = Counter()
    for _ in range(6):
        choice = chooser.order("m", reps, "queue_aware")[0]
        choice.start_request()
        picks[choice.name] += 1
    assert picks == {"r1": 6}


def test_waiting_below_configured_capacity_with_free_kv_cache_teaches_no_capacity():
    # The 16-slot replica of the compare fleet at 8 running with one request between scheduler
    # steps, twice in a row: no evidence of an 8-slot batch while the KV cache has room.
    _, reps = make(1)
    rep = reps[0]
    rep.configured_capacity = 16
    for _ in range(3):
        scrape(rep, running=8, waiting=1, kv=0.3)
    assert rep.learned_capacity is None and rep.capacity(60, time.monotonic()) == 16
    for _ in range(2):  # a full KV cache does hold requests back below max_num_seqs
        scrape(rep, running=8, waiting=1, kv=0.95)
    assert rep.capacity(60, time.monotonic()) == 8


def test_transient_waiting_on_the_big_replica_keeps_requests_off_the_full_small_one():
    # 2 vs 16 slots, 10 in flight: r0 full (2), r1 at 8 with a request between steps.
    chooser, reps = make(2)
    reps[0].configured_capacity, reps[1].configured_capacity = 2, 16
    for _ in range(2):
        scrape(reps[0], running=2)
        scrape(reps[1], running=8, waiting=1)
    reps[0].inflight, reps[1].inflight = 2, 9
    assert all(chooser.order("m", reps, "queue_aware")[0].name == "r1" for _ in range(4))


def test_requests_sent_after_the_scrape_went_out_stay_counted():
    # The replica answered /metrics late: its numbers predate a request the router sent
    # while the scrape was under way, so that request stays on top of the scrape.
    _, reps = make(1)
    rep = reps[0]
    sent_at = time.monotonic()
    token = rep.start_request(now=sent_at + 0.05)
    rep.record_scrape(QueueMetrics(0.0, 0.0, 0.0), sent_at + 0.1, sent_at=sent_at)
    assert rep.new_inflight == 1
    rep.end_request(token)
    assert (rep.new_inflight, rep.inflight) == (0, 0)
    rep.start_request(now=sent_at - 0.05)  # sent before the scrape went out: the scrape knows it
    assert rep.new_inflight == 0


def test_a_replica_with_a_free_slot_beats_a_queue_whatever_the_kv_pressure():
    # r1 has free slots but a warm KV cache (0.7 x kv_weight 4 = 2.8): the old cost sent the
    # next request into the full 2-slot r0's queue, where it waits for a running generation.
    chooser, reps = make(2)
    reps[0].configured_capacity, reps[1].configured_capacity = 2, 16
    scrape(reps[0], running=2, kv=0.1)
    scrape(reps[1], running=8, kv=0.7)
    assert chooser.load(reps[1], time.monotonic()) > chooser.load(reps[0], time.monotonic())
    assert chooser.order("m", reps, "queue_aware")[0].name == "r1"


def test_a_queued_request_is_priced_by_the_generations_it_waits():
    # Both full: one more waits behind 2 running on r0 (about half a generation) or behind 16
    # on r1 (a sixteenth): r1 takes the queue, up to about 8 times r0's.
    chooser, reps = make(2)
    reps[0].configured_capacity, reps[1].configured_capacity = 2, 16
    scrape(reps[0], running=2)
    scrape(reps[1], running=16, waiting=3)
    assert chooser.order("m", reps, "queue_aware")[0].name == "r1"
    scrape(reps[1], running=16, waiting=16)
    assert chooser.order("m", reps, "queue_aware")[0].name == "r0"
