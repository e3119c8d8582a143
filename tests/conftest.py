"""Make `ansible_collections.llmops.platform` importable from the checkout itself, and the
fakes in tests/fakes (one fake OpenAI server for every test).

.collections/ansible_collections/llmops/platform is a symlink to the repository root.
"""
import os
import sys

_COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            ".collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
_FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fakes")
if _FAKES not in sys.path:
    sys.path.insert(0, _FAKES)
