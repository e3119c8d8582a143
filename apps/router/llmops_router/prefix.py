"""Prompt-prefix affinity for the `prefix_aware` policy.

vLLM reuses the KV cache of a prompt prefix it computed recently (automatic prefix caching),
but only on the replica that computed it. The router cannot see a replica's cache, so it
remembers which replica it recently sent each prefix to:

- The prompt (chat: every message's role and text in order; completions: the prompt) is cut
  into fixed-size character blocks. Block i's hash covers blocks 0..i (each hash chains the
  previous one, seeded with the model name), so equal hashes mean equal prefixes, and a
  request that diverges after block k still matches blocks 0..k. Only whole blocks count:
  vLLM caches whole KV blocks too.
- `PrefixIndex` maps block hash -> {replica url: last time sent}, at most `max_entries`
  hashes (least recently used evicted first) and each entry forgotten `ttl_s` after it was
  last sent, so memory stays bounded whatever the traffic.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Iterable, Sequence

# Separators that cannot be confused with text: role and content never run together.
_ROLE_END, _MESSAGE_END = "\x1f", "\x1e"


def _text(content: Any) -> str:
    """A message's content: a string, or OpenAI content parts (text parts only)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) and isinstance(part.get("text"), str)
                       else "" for part in content)
    return ""


def prompt_text(payload: dict[str, Any]) -> str:
    """The text a request's prompt starts with, as the replica will see it, in order."""
    messages = payload.get("messages")
    if isinstance(messages, list):
        return "".join(f"{m.get('role', '')}{_ROLE_END}{_text(m.get('content'))}{_MESSAGE_END}"
                       for m in messages if isinstance(m, dict))
    prompt = payload.get("prompt")
    if isinstance(prompt, list) and prompt:
        prompt = prompt[0] if isinstance(prompt[0], (str, list)) else prompt  # a batch: its first prompt
        if isinstance(prompt, list):  # token ids
            return ",".join(str(t) for t in prompt) + ","
    return prompt if isinstance(prompt, str) else ""


def prefix_blocks(model: str, payload: dict[str, Any], block_chars: int, max_blocks: int) -> list[int]:
    """Chained hashes of the prompt's whole blocks, at most `max_blocks` (the first ones)."""
    text = prompt_text(payload)
    count = min(len(text) // block_chars, max_blocks)
    out: list[int] = []
    previous = hashlib.blake2b(model.encode(), digest_size=8).digest()
    for i in range(count):
        previous = hashlib.blake2b(previous + text[i * block_chars:(i + 1) * block_chars].encode(),
                                   digest_size=8).digest()
        out.append(int.from_bytes(previous, "little"))
    return out


class PrefixIndex:
    """block hash -> {replica url: monotonic time last sent there}, LRU-bounded and expiring."""

    def __init__(self, max_entries: int, ttl_s: float):
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        # Ordered by last use: the front is the least recently used (and the oldest).
        self._map: OrderedDict[int, dict[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._map)

    def _expire(self, now: float) -> None:
        cutoff = now - self.ttl_s
        while self._map:
            key, holders = next(iter(self._map.items()))
            if max(holders.values()) > cutoff:
                return
            del self._map[key]

    def matched(self, blocks: Sequence[int], urls: Iterable[str], now: float) -> dict[str, int]:
        """For each url: how many leading blocks of the request it was sent recently."""
        self._expire(now)
        cutoff = now - self.ttl_s
        result = {url: 0 for url in urls}
        open_ = set(result)  # replicas whose match is still running
        for i, block in enumerate(blocks):
            holders = self._map.get(block)
            if not holders:
                break
            still = {url for url in open_ if holders.get(url, -1.0) > cutoff}
            for url in still:
                result[url] = i + 1
            open_ = still
            if not open_:
                break
        return result

    def record(self, blocks: Sequence[int], url: str, now: float) -> None:
        # Last block first, so the first blocks (the prefix other requests share) are the most
        # recently used and the last to be evicted.
        for block in reversed(blocks):
            holders = self._map.get(block)
            if holders is None:
                self._map[block] = {url: now}
            else:
                holders[url] = now
                self._map.move_to_end(block)
        while len(self._map) > self.max_entries:
            self._map.popitem(last=False)
        self._expire(now)
