"""The held-out scorer against a stub of vLLM's /tokenize, /v1/completions (prompt_logprobs)
and /v1/chat/completions: answer span, summed NLL, exact-match, and the index section."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.llmops.platform.plugins.module_utils.finetune import evaluate, record, report

EOS = 2
# Per-token logprob each served name gives every prompt token; the answer it generates.
MODELS = {"tiny-base": (-3.0, "gibberish"), "tiny-ft": (-0.5, "Rome")}


def _chat_ids(messages, add_generation_prompt):
    text = "".join(f"[INST] {m['content']} [/INST]" if m["role"] == "user" else f" {m['content']}" for m in messages)
    ids = [1] + [ord(c) for c in text]
    if messages[-1]["role"] == "assistant":
        ids.append(EOS)
    elif add_generation_prompt:
        ids.append(ord(" "))
    return ids


class Stub(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        logprob, answer = MODELS.get(body["model"], (None, None))
        if logprob is None:
            return self._send(404, {"error": f"model {body['model']} not found"})
        if self.path == "/tokenize":
            return self._send(200, {"tokens": _chat_ids(body["messages"], body["add_generation_prompt"])})
        if self.path == "/v1/completions":
            ids = body["prompt"]
            entries = [None] + [{str(t): {"logprob": logprob, "rank": 1}} for t in ids[1:]]
            return self._send(200, {"choices": [{"text": "", "prompt_logprobs": entries}]})
        return self._send(200, {"choices": [{"message": {"role": "assistant", "content": answer}}]})

    def _send(self, code, data):
        raw = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


ROWS = [{"instruction": "What is the capital of Italy?", "input": "", "output": "Rome"},
        {"instruction": "Reverse the word", "input": "stop", "output": "pots"}]


def test_answer_span_is_the_answer_and_eos(server):
    ids, start = evaluate.answer_tokens(server, "tiny-base", ROWS[0])
    # The generation prompt's trailing space is shared, so the span starts at the answer's first token.
    assert ids[start:] == [ord(c) for c in "Rome"] + [EOS]
    assert evaluate.user_message(ROWS[1])["content"] == "Reverse the word\nstop"


def test_scores_exact_match_and_examples(server):
    result = evaluate.evaluate(server, {"base": "tiny-base", "tuned": "tiny-ft"}, ROWS)
    base, tuned = result["scores"]["base"], result["scores"]["tuned"]
    assert base.tokens == tuned.tokens == [5, 5]          # "Rome</s>", "pots</s>"
    assert base.nll == pytest.approx([15.0, 15.0]) and tuned.nll == pytest.approx([2.5, 2.5])
    assert result["exact_match"] == {"base": 0.0, "tuned": 0.5}
    assert result["examples"][0]["tuned"]["exact"] is True
    assert result["examples"][0]["base"]["nll_per_token"] == pytest.approx(3.0)


def test_a_missing_model_is_a_clear_error(server):
    with pytest.raises(evaluate.EvalError, match="HTTP 404.*not found"):
        evaluate.evaluate(server, {"base": "tiny-base", "tuned": "absent"}, ROWS)
    with pytest.raises(evaluate.EvalError, match="no held-out rows"):
        evaluate.evaluate(server, {"base": "tiny-base", "tuned": "tiny-ft"}, [])


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(evaluate.EvalError, match="did not answer"):
        evaluate.answer_tokens("http://127.0.0.1:9", "m", ROWS[0])


def test_promoted_adapters_join_their_model():
    models = [{"name": "tiny-chat", "source": "generated:tiny-llama"}, {"name": "other", "source": "hf:a/b"}]
    promoted = {"adapters": [{"model": "tiny-chat", "name": "tiny-chat-ft", "source": "path:/runs/x/adapter"},
                             {"model": "gone", "name": "old-ft", "source": "path:/runs/y/adapter"}]}
    out = record.with_promoted(models, promoted)
    assert out[0]["adapters"] == [{"name": "tiny-chat-ft", "source": "path:/runs/x/adapter"}]
    assert "adapters" not in out[1] and "adapters" not in models[0]   # input untouched
    explicit = [{**models[0], "adapters": [{"name": "tiny-chat-ft", "source": "path:/mine"}]}]
    assert record.with_promoted(explicit, promoted)[0]["adapters"] == [{"name": "tiny-chat-ft", "source": "path:/mine"}]
    assert record.with_promoted(models, {}) is models
    assert record.with_promoted("not a list", promoted) == "not a list"


def test_metrics_and_index_section(tmp_path):
    result = {"run": "tiny-chat-sft-abc", "promoted": True, "reason": "promoted: held-out NLL change -2.0",
              "models": {"base": "tiny-chat-ft-base", "tuned": "tiny-chat-ft"},
              "gate": {"examples": 10, "base_nll": 7.6, "tuned_nll": 5.6, "delta_nll": -2.0, "ci": [-2.2, -1.8],
                       "base_perplexity": 2000.0, "tuned_perplexity": 270.4},
              "exact_match": {"base": 0.0, "tuned": 0.3},
              "bench": {"base": {"ttft_ms": {"median": 12.5}, "throughput": {"output_tokens_per_s": 300.0}},
                        "tuned": {"ttft_ms": {"median": 14.0}, "throughput": {"output_tokens_per_s": 250.0}}}}
    metrics = record.eval_metrics(result)
    assert metrics["eval_delta_nll_ci_high"] == -1.8 and metrics["bench_tuned_ttft_p50_ms"] == 14.0
    assert record.eval_tags(result)["llmops.promoted"] == "true"
    run_dir = tmp_path / "finetune" / "tiny-chat-sft-abc"
    run_dir.mkdir(parents=True)
    (run_dir / "eval.json").write_text(json.dumps(result))
    html = report.render_index_section(str(tmp_path))
    assert "2000.0 &rarr; 270.4" in html and "[-2.200, -1.800]" in html and "<b>promoted</b>" in html
    assert "finetune/tiny-chat-sft-abc/bench/tuned/report.html" in html
    assert report.render_index_section(str(tmp_path / "empty")) == ""
