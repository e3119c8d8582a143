"""Request bodies: synthetic prompts and the JSON each request sends.

Bodies are built (and encoded) before the clock starts so JSON work never lands inside a
measured TTFT. Issue-4 workloads (scenarios, datasets, tokenizer-exact prompts) plug in here.
"""
from __future__ import annotations

import json
import random
from typing import Any, Dict, List

from .config import BenchConfig

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


def synthetic_prompt(seed: int, index: int, words: int, salt: str = "m") -> str:
    # Every request gets its own text: identical prompts would hit the prefix cache and make
    # TTFT look better than real traffic. The same (seed, index) always gives the same text.
    rng = random.Random(f"{seed}:{salt}:{index}")
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def request_body(config: BenchConfig, prompt: str) -> Dict[str, Any]:
    body: Dict[str, Any] = {"model": config.model}
    if config.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    body["max_tokens"] = config.max_tokens
    body["stream"] = True
    # Usage from the server is the only trustworthy token count (no re-tokenising).
    body["stream_options"] = {"include_usage": True}
    if config.ignore_eos:
        # vLLM extension; omitted when false so strict OpenAI-style servers do not reject it.
        body["ignore_eos"] = True
    body.update(config.additional_params)
    return body


def encoded_bodies(config: BenchConfig, count: int, salt: str) -> List[bytes]:
    return [
        json.dumps(request_body(config, synthetic_prompt(config.seed, i, config.prompt_tokens,
                                                         salt))).encode()
        for i in range(count)
    ]
