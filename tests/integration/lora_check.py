"""Real LoRA check on vLLM CPU: a tiny PEFT adapter served next to its base model, unmerged.

Reusable helper (not collected by pytest): `write_tiny_lora` writes a PEFT LoRA adapter
(adapter_config.json + adapter_model.safetensors) for the generated tiny Llama
(plugins/module_utils/tiny_llama.py), with non-zero lora_B so it changes the outputs. Run as
a script it builds the server with the platform's own server definition
(vllm_server.local_server on an llm_models entry with `adapters`), starts vLLM from the
serving venv, and checks that /v1/models lists the adapter and that a greedy chat
completion under the adapter's name answers 200 and differs from the base model's.

    PATH=~/.cache/llmops/venvs/control-*/bin:$PATH \\
      python tests/integration/lora_check.py --port 23100 [--python SERVING_PY] [--work DIR]

Prints one JSON summary (argv, timings, answers); exit code 0 when every check passed.
Needs numpy, safetensors and tokenizers in the running interpreter (the control venv).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.llmops.platform.plugins.module_utils import model_source, tiny_llama  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.inventory import normalize_models  # noqa: E402
from ansible_collections.llmops.platform.plugins.module_utils.vllm_server import local_server  # noqa: E402

# The modules a LoRA adapts (PEFT names); vLLM packs q/k/v and gate/up, adapters name them apart.
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# The role's CPU defaults (roles/platform_defaults/defaults/main/vllm.yml).
CPU_ARGS = {"max_num_seqs": 64, "dtype": "bfloat16", "block_size": 32}


def _shapes() -> dict[str, tuple[int, int]]:
    """(out, in) of each adaptable linear layer of the tiny Llama."""
    shape = tiny_llama.SHAPE
    hidden, inter = shape["hidden_size"], shape["intermediate_size"]
    kv = shape["num_key_value_heads"] * hidden // shape["num_attention_heads"]
    return {"q_proj": (hidden, hidden), "k_proj": (kv, hidden), "v_proj": (kv, hidden), "o_proj": (hidden, hidden),
            "gate_proj": (inter, hidden), "up_proj": (inter, hidden), "down_proj": (hidden, inter)}


def write_tiny_lora(dest: str, rank: int = 4, seed: int = 1, scale: float = 0.5,
                    target_modules: tuple[str, ...] = TARGET_MODULES, base_model: str = "generated:tiny-llama") -> str:
    """Write a PEFT LoRA adapter for the generated tiny Llama into `dest`; returns `dest`.

    lora_B is non-zero (PEFT initialises it to zero, which would change nothing), large
    enough that greedy decoding differs from the base model's."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    os.makedirs(dest, exist_ok=True)
    tensors = {}
    shapes = _shapes()
    for layer in range(tiny_llama.SHAPE["num_hidden_layers"]):
        for module in target_modules:
            out, inp = shapes[module]
            part = "self_attn" if module.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            key = f"base_model.model.model.layers.{layer}.{part}.{module}"
            tensors[f"{key}.lora_A.weight"] = (rng.standard_normal((rank, inp)) * scale).astype(np.float32)
            tensors[f"{key}.lora_B.weight"] = (rng.standard_normal((out, rank)) * scale).astype(np.float32)
    save_file(tensors, os.path.join(dest, "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank,
              "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "target_modules": list(target_modules),
              "base_model_name_or_path": base_model, "modules_to_save": None, "use_rslora": False,
              "use_dora": False, "inference_mode": True}
    with open(os.path.join(dest, "adapter_config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
    return dest


def _http(method: str, url: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (our own server)
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _chat(base: str, model: str) -> tuple[int, str]:
    status, body = _http("POST", f"{base}/v1/chat/completions", {
        "model": model, "messages": [{"role": "user", "content": "Say something about serving."}],
        "temperature": 0, "max_tokens": 24, "seed": 0})
    return status, body["choices"][0]["message"]["content"] if status == 200 else str(body)[:500]


def serving_python() -> str:
    out = subprocess.run([os.path.join(ROOT, "scripts", "venv.sh"), "path", "serving"], check=True,
                         capture_output=True, text=True).stdout.strip()
    return os.path.join(out, "bin", "python")


def run(port: int, python: str, work: str, timeout_s: float) -> dict[str, Any]:
    started = time.monotonic()
    model = model_source.resolve("generated:tiny-llama", os.path.join(work, "models"))
    adapter_dir = write_tiny_lora(os.path.join(work, "adapters", "tiny-chat-ft"), rank=4)
    entry = normalize_models([{"name": "tiny-chat", "source": "generated:tiny-llama",
                               "adapters": [{"name": "tiny-chat-ft", "source": f"path:{adapter_dir}"}]}],
                             default_args=CPU_ARGS, base_port=port, device="cpu")[0]
    resolved = model_source.resolve_adapter(entry["adapters"][0]["source"], field="llm_models[tiny-chat].adapters[0]")
    server = local_server(entry, {"kind": "local", "device": "cpu", "kvcache_space_gib": 1}, model["path"], python,
                          adapters={"tiny-chat-ft": {"path": resolved["path"], "rank": resolved["rank"]}})
    log_path = os.path.join(work, "vllm.log")
    summary: dict[str, Any] = {"argv": server["argv"], "log": log_path, "ok": False}
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(server["argv"], env={**os.environ, **server["env"]}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    launched = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                with open(log_path, encoding="utf-8", errors="replace") as handle:
                    summary["error"] = f"vLLM exited with {proc.returncode}:\n" + "".join(handle.readlines()[-40:])
                return summary
            try:
                if _http("GET", f"{base}/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - launched > timeout_s:
                summary["error"] = f"not ready within {timeout_s}s"
                return summary
            time.sleep(0.5)
        summary["ready_s"] = round(time.monotonic() - launched, 1)
        status, models = _http("GET", f"{base}/v1/models")
        summary["models"] = [(m["id"], m.get("parent")) for m in models["data"]] if status == 200 else models
        base_status, base_text = _chat(base, "tiny-chat")
        lora_status, lora_text = _chat(base, "tiny-chat-ft")
        again_status, again_text = _chat(base, "tiny-chat-ft")
        summary.update(base_status=base_status, base_answer=base_text, adapter_status=lora_status,
                       adapter_answer=lora_text, adapter_repeatable=again_text == lora_text)
        ids = [m[0] for m in summary["models"]] if status == 200 else []
        summary["ok"] = (ids[:1] == ["tiny-chat"] and "tiny-chat-ft" in ids and base_status == 200
                         and lora_status == 200 and again_status == 200 and base_text != lora_text
                         and again_text == lora_text)
        return summary
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        summary["total_s"] = round(time.monotonic() - started, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=23100)
    parser.add_argument("--python", help="the serving venv's python (default: scripts/venv.sh path serving)")
    parser.add_argument("--work", help="working directory (default: a new temporary one)")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="llmops-lora-check-")
    summary = run(args.port, args.python or serving_python(), work, args.timeout)
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
