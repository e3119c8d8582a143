"""Inference autotuner (`llm_sweep`): task files -> trials -> best vLLM configuration.

Engine only: no Ansible imports. Faces: plugins/modules/llm_sweep.py, `llmops tune`, tests.
"""

TUNER_VERSION = "0.1.0"
