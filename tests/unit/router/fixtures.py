"""The router under test in front of fakes (tests/fakes/fake_openai.py) on loopback."""
from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager

from fake_openai import FakeOpenAI, free_port, serving

__all__ = ["backends", "free_port", "router", "router_config"]


@asynccontextmanager
async def backends(*names: str):
    """One fake replica per name (3 tokens, no delay unless a test sets one); {name: fake}."""
    async with AsyncExitStack() as stack:
        started = {}
        for name in names:
            fake = FakeOpenAI(name, ttft=0.0, itl=0.0, tokens=3)
            await stack.enter_async_context(serving(fake))
            started[name] = fake
        yield started


def router_config(models: dict[str, list], **settings) -> dict:
    """models: {model: [FakeOpenAI | url]} -> the raw config dict the router reads."""
    out = {"models": [], **settings}
    for model, reps in models.items():
        out["models"].append({"name": model, "replicas": [
            {"name": getattr(r, "name", str(r)), "url": getattr(r, "url", r)} for r in reps]})
    return out


@asynccontextmanager
async def router(raw: dict):
    from llmops_common.service import SERVICE
    from llmops_router.config import parse_config
    from llmops_router.server import create_app

    app = create_app(parse_config(raw))
    async with serving(app) as url:
        yield url, app[SERVICE]
