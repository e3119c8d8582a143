"""Request bodies: prompts (synthetic, datasets, exact-length) and the JSON each request sends.

Bodies are built (and encoded) before the clock starts so JSON and tokenizer work never
lands inside a measured TTFT.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .config import GENERATED, BenchConfig
from .scenario import parse_scenario

# Common short words: roughly one token each for most BPE vocabularies, so N words ~ N tokens.
_WORDS = (
    "the of and to in is it you that he was for on are with as his they be at one have this "
    "from or had by hot word but what some we can out other were all there when up use your "
    "how said an each she which do their time if will way about many then them write would "
    "like so these her long make thing see him two has look more day could go come did number "
    "sound no most people my over know water than call first who may down side been now find "
    "any new work part take get place made live where after back little only round man year "
    "came show every good me give our under name very through just form sentence great think "
    "say help low line differ turn cause much mean before move right boy old too same tell does "
    "set three want air well also play small end put home read hand port large spell add even "
    "land here must big high such follow act why ask men change went light kind off need house "
    "picture try us again animal point mother world near build self earth father head stand own"
).split()


@dataclass(frozen=True)
class RequestSpec:
    index: int
    body: bytes
    prompt_tokens: Optional[int]   # exact when a tokenizer was given, else None
    max_tokens: int


def synthetic_prompt(seed: int, index: int, words: int, salt: str = "m") -> str:
    # Every request gets its own text: identical prompts would hit the prefix cache and make
    # TTFT look better than real traffic. The same (seed, index) always gives the same text.
    rng = random.Random(f"{seed}:{salt}:{index}")
    return " ".join(rng.choice(_WORDS) for _word in range(words))


def load_tokenizer(path: str) -> Any:
    """A `tokenizers.Tokenizer` from a model dir or a tokenizer.json (local only, no hub)."""
    from tokenizers import Tokenizer  # late: only exact-length workloads need it

    file = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise FileNotFoundError(f"tokenizer: no tokenizer.json at {file}")
    return Tokenizer.from_file(file)


def count_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def exact_prompt(tokenizer: Any, seed: int, index: int, tokens: int, salt: str = "m") -> str:
    """Text that the model's tokenizer encodes to exactly `tokens` ids (no special tokens).

    Words are appended or dropped one at a time (pre-tokenizers split at spaces, so a
    word's tokens do not depend on its neighbours) until the count is exact; bounded.
    """
    rng = random.Random(f"{seed}:{salt}:{index}:exact")
    filler = [w for w in _WORDS if count_tokens(tokenizer, " " + w) == 1] or list(_WORDS)
    words = synthetic_prompt(seed, index, tokens, salt).split()
    for _attempt in range(4 * tokens + 64):
        text = " ".join(words)
        have = count_tokens(tokenizer, text)
        if have == tokens:
            return text
        if have < tokens:
            words += [rng.choice(filler) for _word in range(max(1, (tokens - have) // 2))]
        else:
            words.pop()
            if not words:
                words = [rng.choice(filler)]
    raise ValueError(f"could not build a prompt of exactly {tokens} tokens")


def request_body(config: BenchConfig, prompt: str,
                 max_tokens: Optional[int] = None, system: Optional[str] = None,
                 history: Sequence[Tuple[str, str]] = ()) -> Dict[str, Any]:
    """`history`: earlier (question, answer) turns, resent in order before `prompt`."""
    body: Dict[str, Any] = {"model": config.model}
    if config.endpoint == "chat":
        turns: List[Dict[str, str]] = []
        for question, answer in history:
            turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        body["messages"] = ([{"role": "system", "content": system}] if system else []) + turns + [
            {"role": "user", "content": prompt}]
    else:
        earlier = "".join(f"{question}\n\n{answer}\n\n" for question, answer in history)
        body["prompt"] = (f"{system}\n\n" if system else "") + earlier + prompt
    body["max_tokens"] = max_tokens or config.max_tokens
    body["stream"] = True
    # Usage from the server is the only trustworthy token count (no re-tokenising).
    body["stream_options"] = {"include_usage": True}
    if config.ignore_eos:
        # vLLM extensions; omitted when false so strict OpenAI-style servers do not reject
        # them. Running usage on every chunk gives tokens per chunk without re-tokenising.
        body["ignore_eos"] = True
        body["stream_options"]["continuous_usage_stats"] = True
    body.update(config.additional_params)
    return body


def _dataset_prompts(config: BenchConfig) -> List[Tuple[str, Optional[str]]]:
    """(prompt, reference answer or None) from a ShareGPT/alpaca JSON or a JSONL file."""
    path = str(config.dataset_path)
    with open(path, encoding="utf-8") as handle:
        if config.dataset == "jsonl":
            rows = [json.loads(line) for line in handle if line.strip()]
            out = [(str(r.get("prompt") or r.get("text") or ""), r.get("output"))
                   for r in rows if isinstance(r, dict)]
        else:
            data = json.load(handle)
            out = []
            for item in data if isinstance(data, list) else []:
                if not isinstance(item, dict):
                    continue
                if config.dataset == "sharegpt":
                    turns = item.get("conversations") or item.get("conversation") or []
                    if len(turns) >= 2:
                        out.append((str(turns[0].get("value", "")), str(turns[1].get("value", ""))))
                else:  # alpaca
                    prompt = str(item.get("instruction", ""))
                    if item.get("input"):
                        prompt += "\n\n" + str(item["input"])
                    out.append((prompt, item.get("output")))
    out = [(p, a) for p, a in out if p.strip()]
    if not out:
        raise ValueError(f"dataset {config.dataset} at {path}: no usable prompts")
    return out


def shared_prefix_groups(config: BenchConfig, tokenizer: Any = None) -> List[str]:
    """The shared_prefix dataset's system prompts: `prefix_groups` texts of `prefix_tokens`
    each (exactly, with a tokenizer). They depend on the seed only, not on the phase, so
    warmup requests warm the same prefixes the measured ones use, as a live service's
    traffic would."""
    if tokenizer is not None:
        return [exact_prompt(tokenizer, config.seed, g, config.prefix_tokens, "prefix")
                for g in range(config.prefix_groups)]
    return [synthetic_prompt(config.seed, g, config.prefix_tokens, "prefix")
            for g in range(config.prefix_groups)]


def build_requests(config: BenchConfig, count: int, salt: str,
                   tokenizer: Any = None,
                   lengths: Optional[List[Tuple[Optional[int], Optional[int]]]] = None
                   ) -> List[RequestSpec]:
    """`count` request bodies; `lengths` (from a trace) overrides scenario/config lengths."""
    if lengths is None:
        if config.scenario:
            seed = config.seed if salt == "m" else config.seed + 7919
            lengths = list(parse_scenario(config.scenario).sample(count, seed))
        else:
            lengths = [(None, None)] * count  # config lengths; datasets may set their own
    if config.dataset == "multi_turn":
        return _multi_turn(config, count, salt, lengths)
    dataset = _dataset_prompts(config) if config.dataset not in GENERATED else None
    if dataset:
        order = list(range(len(dataset)))
        random.Random(f"{config.seed}:{salt}:dataset").shuffle(order)
    groups: List[str] = []
    if config.dataset == "shared_prefix":
        groups = shared_prefix_groups(config, tokenizer)
        # Users of all groups arrive interleaved (seeded): a group's requests are not adjacent.
        pick = random.Random(f"{config.seed}:{salt}:groups")
    specs = []
    for i in range(count):
        want_in, want_out = lengths[i] if i < len(lengths) else (None, None)
        want_in = want_in or config.prompt_tokens
        out_tokens = want_out or config.max_tokens
        exact: Optional[int] = None
        if dataset:
            prompt, answer = dataset[order[i % len(order)]]
            if not config.scenario and want_out is None and answer and tokenizer is not None:
                out_tokens = max(1, count_tokens(tokenizer, str(answer)))
            if tokenizer is not None:
                exact = count_tokens(tokenizer, prompt)
        elif tokenizer is not None:
            prompt = exact_prompt(tokenizer, config.seed, i, want_in, salt)
            exact = want_in
        else:
            prompt = synthetic_prompt(config.seed, i, want_in, salt)
        system = None
        if groups:
            system = groups[pick.randrange(len(groups))]
            exact = exact + config.prefix_tokens if exact is not None else None
        body = json.dumps(request_body(config, prompt, out_tokens, system)).encode()
        specs.append(RequestSpec(i, body, exact, out_tokens))
    return specs


def _multi_turn(config: BenchConfig, count: int, salt: str,
                lengths: List[Tuple[Optional[int], Optional[int]]]) -> List[RequestSpec]:
    """Conversations of `turns` user turns, ceil(count / turns) of them, sent turn by turn:
    all first turns (interleaved), then all second turns, ... Each request resends its
    conversation so far: the earlier questions and, for each, a stand-in answer of the
    earlier request's output length (the real answers are not known when requests are built
    ahead; what matters to the server is that the same history comes back, as a chat client
    resends it, so the prefix cache can serve it). Seeded; warm-up conversations differ."""
    conversations = -(-count // config.turns)
    asked: Dict[int, List[Tuple[str, str]]] = {}
    specs = []
    for i in range(count):
        turn, conv = divmod(i, conversations)
        want_in, want_out = lengths[i] if i < len(lengths) else (None, None)
        out_tokens = want_out or config.max_tokens
        question = synthetic_prompt(config.seed, conv * 64 + turn, want_in or config.prompt_tokens, f"{salt}-turn")
        history = asked.setdefault(conv, [])
        body = json.dumps(request_body(config, question, out_tokens, history=list(history))).encode()
        specs.append(RequestSpec(i, body, None, out_tokens))
        history.append((question, synthetic_prompt(config.seed, conv * 64 + turn, out_tokens, f"{salt}-answer")))
    return specs


def encoded_bodies(config: BenchConfig, count: int, salt: str) -> List[bytes]:
    return [spec.body for spec in build_requests(config, count, salt)]
