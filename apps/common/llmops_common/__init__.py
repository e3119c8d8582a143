"""What the llmops router and gateway share: config file loading and checks, the OpenAI error
body, Prometheus metrics (prometheus_client), the upstream client and its stream relay, and
the process entry point. aiohttp, prometheus_client and (optionally) PyYAML only: all three
are in the serving venv, the control venv and the pinned vLLM image the apps run on.
"""

__version__ = "0.1.0"
