"""Placeholder: llamafactory imports torchaudio at top level, but text fine-tuning never uses it.

The real torchaudio wheel that matches the CPU torch 2.13.0 is not available here (pip pulls a
CUDA build that fails to import), so this empty package satisfies the import (ENVIRONMENT.md).
"""
__version__ = "0.0.0+llmops.placeholder"
