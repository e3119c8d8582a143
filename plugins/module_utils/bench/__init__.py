"""Benchmark engine for OpenAI-compatible LLM endpoints.

The engine knows nothing about Ansible: the modules, the CLI and the tests are thin faces
over it. Only the client needs aiohttp; every other file is stdlib-only so reports and
argument validation work on any Python that runs Ansible modules.
"""

# Stamped into every results.json so a number can always be traced to the code that made it.
ENGINE_VERSION = "0.2.0"
