"""prefix_aware: block hashing of chat and completion prompts, the bounded expiring index, and
replica choice (affinity, shared blocks, load cap)."""
import time
import tracemalloc
from collections import Counter

import pytest

from llmops_router.config import ConfigError, parse_config
from llmops_router.policies import Chooser
from llmops_router.prefix import PrefixIndex, prefix_blocks, prompt_text
from llmops_router.replicas import Replica
from llmops_router.vllm_metrics import QueueMetrics

SYSTEM = "You are a careful assistant for the billing team. " * 10  # 510 chars


def make(n=2, **cfg):
    config = parse_config({"models": [], "prefix_block_chars": 32, **cfg})
    reps = [Replica(f"r{i}", "m", f"http://127.0.0.1:{19900 + i}", healthy=True) for i in range(n)]
    for rep in reps:
        rep.record_scrape(QueueMetrics(0.0, 0.0, 0.0), time.monotonic())
    return Chooser(config), reps


def chat(question, system=SYSTEM):
    return {"model": "m", "messages": [{"role": "system", "content": system},
                                        {"role": "user", "content": question}]}


def route(chooser, payload, reps, start=False):
    blocks = prefix_blocks("m", payload, chooser.config.prefix_block_chars, chooser.config.prefix_max_blocks)
    choice = chooser.order("m", reps, "prefix_aware", None, blocks)[0]
    chooser.record(choice, blocks)
    if start:
        choice.start_request()
    return choice


def test_blocks_are_whole_chained_and_seeded_by_model():
    payload = {"model": "m", "prompt": "a" * 100}
    blocks = prefix_blocks("m", payload, 32, 256)
    assert len(blocks) == 3  # 100 chars: 3 whole blocks of 32, the tail is not hashed
    # Identical block text at different positions hashes differently: each hash covers 0..i.
    assert len(set(blocks)) == 3
    assert prefix_blocks("other", payload, 32, 256)[0] != blocks[0]
    assert prefix_blocks("m", payload, 32, 2) == blocks[:2]
    assert prefix_blocks("m", {"prompt": "short"}, 32, 256) == []


def test_chat_renders_roles_in_order_and_text_parts():
    parts = {"messages": [{"role": "system", "content": [{"type": "text", "text": "be brief"},
                                                         {"type": "image_url", "image_url": {"url": "x"}}]},
                          {"role": "user", "content": "hi"}]}
    plain = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}
    assert prompt_text(parts) == prompt_text(plain)
    swapped = {"messages": [{"role": "user", "content": "be brief"}, {"role": "system", "content": "hi"}]}
    assert prompt_text(swapped) != prompt_text(plain)
    assert prompt_text({"messages": [{"role": "user", "content": "be brief"}]}) != prompt_text(
        {"messages": [{"role": "userbe", "content": " brief"}]})


def test_completion_prompt_forms():
    assert prompt_text({"prompt": "hello"}) == "hello"
    assert prompt_text({"prompt": ["first", "second"]}) == "first"
    assert prompt_text({"prompt": [1, 2, 3]}) == "1,2,3,"
    assert prompt_text({"prompt": [[4, 5], [6]]}) == "4,5,"
    assert prompt_text({"prompt": None}) == prompt_text({}) == ""


def test_chat_and_completion_bodies_with_the_same_text_do_not_share_blocks():
    chat_blocks = prefix_blocks("m", chat("q"), 32, 256)
    completion_blocks = prefix_blocks("m", {"prompt": SYSTEM}, 32, 256)
    assert chat_blocks and completion_blocks and not set(chat_blocks) & set(completion_blocks)


@pytest.mark.parametrize("body", [chat("What is my balance?"), {"model": "m", "prompt": SYSTEM + "Q: balance?"}])
def test_same_prefix_goes_to_the_same_replica(body):
    chooser, reps = make(3)
    first = route(chooser, body, reps)
    assert all(route(chooser, body, reps) is first for _ in range(10))


def test_diverging_suffix_still_follows_the_shared_blocks():
    chooser, reps = make(3)
    home = route(chooser, chat("What is my balance?"), reps)
    for i in range(10):
        assert route(chooser, chat(f"Question {i}: why was I charged twice in {2000 + i}?"), reps) is home
    a = prefix_blocks("m", chat("What is my balance this month, and the last one? " * 2), 32, 256)
    b = prefix_blocks("m", chat("Why was I charged twice for one single order? " * 2), 32, 256)
    shared = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    assert len(b) > shared
    assert shared >= len(SYSTEM) // 32  # every block of the system prompt matched
    matched = chooser.prefixes.matched(b, [r.url for r in reps], time.monotonic())
    assert matched[home.url] >= shared and sum(matched.values()) == matched[home.url]


def test_different_prefixes_spread_over_replicas():
    chooser, reps = make(2)
    homes = Counter(route(chooser, chat("q", system=f"System prompt number {g}. " * 20), reps, start=True).name
                    for g in range(8))
    assert homes == {"r0": 4, "r1": 4}  # the first request of a group goes to the least loaded


def test_load_cap_overrides_affinity_and_affinity_returns():
    chooser, reps = make(2)
    home = route(chooser, chat("q"), reps)
    other = next(r for r in reps if r is not home)
    home.configured_capacity = other.configured_capacity = 4
    home.record_scrape(QueueMetrics(waiting=3, running=4, kv_usage=0.2), time.monotonic())
    assert route(chooser, chat("q"), reps) is other  # home would queue 4: no affinity
    home.record_scrape(QueueMetrics(waiting=0, running=1, kv_usage=0.0), time.monotonic())
    assert route(chooser, chat("q"), reps) in (home, other)  # both now hold the prefix
    # A moderately busier replica keeps its prefix: the cache beats a small load difference.
    chooser2, reps2 = make(2)
    home2 = route(chooser2, chat("q"), reps2)
    home2.record_scrape(QueueMetrics(waiting=0, running=20, kv_usage=0.0), time.monotonic())
    assert route(chooser2, chat("q"), reps2) is home2


def test_burst_of_one_hot_prefix_spills_when_the_home_would_queue():
    chooser, reps = make(2)
    for rep in reps:
        rep.configured_capacity = 4
    picks = Counter(route(chooser, chat("hot"), reps, start=True).name for _ in range(12))
    assert min(picks.values()) >= 4  # not all 12 pinned to one replica of 4 slots


def test_ttl_expiry_forgets_a_prefix():
    chooser, reps = make(2, prefix_ttl_s=60)
    blocks = prefix_blocks("m", chat("q"), 32, 256)
    now = time.monotonic()
    chooser.prefixes.record(blocks, reps[1].url, now - 61)
    assert chooser.prefixes.matched(blocks, [r.url for r in reps], now) == {reps[0].url: 0, reps[1].url: 0}
    assert len(chooser.prefixes) == 0  # expired entries are dropped, not only ignored
    chooser.prefixes.record(blocks, reps[1].url, now - 30)
    assert chooser.prefixes.matched(blocks, [r.url for r in reps], now)[reps[1].url] == len(blocks)


def test_per_replica_entries_expire_separately():
    index = PrefixIndex(100, ttl_s=60)
    now = time.monotonic()
    index.record([1, 2], "a", now - 100)
    index.record([1, 2], "b", now)
    assert index.matched([1, 2], ["a", "b"], now) == {"a": 0, "b": 2}


def test_lru_eviction_bounds_the_index_and_keeps_shared_prefixes():
    index = PrefixIndex(max_entries=50, ttl_s=600)
    now = time.monotonic()
    shared = [10_000 + i for i in range(5)]
    for request in range(200):
        index.record(shared + [request * 10 + k for k in range(3)], f"r{request % 2}", now)
        assert len(index) <= 50
    assert len(index) == 50
    # The shared blocks are used by every request: never the least recently used.
    assert index.matched(shared, ["r0", "r1"], now) == {"r0": 5, "r1": 5}
    assert index.matched([0, 1, 2], ["r0"], now) == {"r0": 0}  # the first request's tail is gone


def test_memory_stays_bounded_with_the_default_entries():
    index = PrefixIndex(max_entries=100_000, ttl_s=600)
    now = time.monotonic()
    tracemalloc.start()
    for request in range(3_000):
        index.record(list(range(request * 100, request * 100 + 100)), "http://10.0.0.1:8000", now)
    size, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(index) == 100_000
    assert size < 40 * 1024 * 1024  # README: ~30 MB at 100k entries with one replica each


def test_no_whole_block_behaves_like_queue_aware():
    chooser, reps = make(2)
    reps[0].record_scrape(QueueMetrics(waiting=5, running=2, kv_usage=0.0), time.monotonic())
    assert chooser.order("m", reps, "prefix_aware", None, [])[0] is reps[1]


@pytest.mark.parametrize("raw,field", [
    ({"prefix_block_chars": 0}, "prefix_block_chars"),
    ({"prefix_max_blocks": 1.5}, "prefix_max_blocks"),
    ({"prefix_max_entries": "100"}, "prefix_max_entries"),
    ({"prefix_ttl_s": 0}, "prefix_ttl_s"),
    ({"prefix_weight": -1}, "prefix_weight"),
    ({"prefix_max_imbalance": True}, "prefix_max_imbalance"),
])
def test_prefix_settings_are_validated(raw, field):
    with pytest.raises(ConfigError) as err:
        parse_config({"models": [], **raw})
    assert str(err.value).startswith(field + ":")


def test_prefix_aware_is_a_policy_with_defaults():
    cfg = parse_config({"models": [{"name": "m", "policy": "prefix_aware"}]})
    assert cfg.policy_for("m") == "prefix_aware"
    assert (cfg.prefix_block_chars, cfg.prefix_max_entries, cfg.prefix_ttl_s) == (128, 100_000, 300.0)


def test_prefix_credit_never_sends_a_request_into_a_full_small_replicas_queue():
    # The compare fleet: r0 (2 slots) holds the prompt but is full, r1 (16 slots) runs 8.
    # Queued behind two running generations, the request would wait longer than any prefill
    # a cache hit saves; r1 has free slots, so it goes there.
    chooser, reps = make(2)
    reps[0].configured_capacity, reps[1].configured_capacity = 2, 16
    route(chooser, chat("first"), [reps[0]])  # r0 was sent this system prompt
    reps[1].record_scrape(QueueMetrics(waiting=0, running=8, kv_usage=0.0), time.monotonic())
    reps[0].record_scrape(QueueMetrics(waiting=0, running=1, kv_usage=0.0), time.monotonic())
    assert route(chooser, chat("second"), reps) is reps[0]  # a free slot there: the prefix wins
    reps[0].record_scrape(QueueMetrics(waiting=0, running=2, kv_usage=0.0), time.monotonic())
    assert route(chooser, chat("third"), reps) is reps[1]
