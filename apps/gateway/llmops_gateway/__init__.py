"""llmops gateway: the OpenAI-compatible front door (API keys, timeouts, metrics, chat page)
in front of the llmops router. See apps/gateway/README.md and docs/gateway.md."""

__version__ = "0.1.0"
