"""Load-aware OpenAI-compatible router in front of vLLM replicas (one asyncio process).

stdlib + aiohttp only, so it runs in the serving venv, the control venv or a venv of its own.
Routes each request by its `model` to that model's healthy replicas with a policy:
round_robin, least_inflight, queue_aware (live vLLM queue metrics + own in-flight counts)
or session_affinity. See apps/router/README.md.
"""

__version__ = "0.1.0"
