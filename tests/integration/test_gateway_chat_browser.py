"""The chat page in real headless Chromium, through the gateway (a real `python -m
llmops_gateway` process) in front of the fake OpenAI server (tests/fakes): pick a model, type,
send, watch the answer stream in, read TTFT and tokens/s, then see a 504 shown as an error.

Ports come from the kernel's free ones. Everything started here is stopped here.
Set LLMOPS_CHAT_SCREENSHOT=docs/img/chat.png to keep the answered page's screenshot.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import aiohttp
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "apps", "dashboard"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))

import screenshot  # noqa: E402  apps/dashboard/screenshot.py: headless Chromium + DevTools client
from fake_openai import SENTENCE, free_port, running  # noqa: E402
from procs import terminate  # noqa: E402

from ansible_collections.llmops.platform.plugins.module_utils import app_code  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(screenshot.CHROMIUM), reason="needs /usr/bin/chromium")


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout_s} s")


@pytest.fixture
def gateway(tmp_path):
    gw_port = free_port()
    fake = ["--answer", SENTENCE, "--ttft-ms", "0", "--itl-ms", "200", "--model", "fixture-chat", "--model", "slow",
            "--name", "fixture-0", "--replica-header"]
    with running(fake, log=str(tmp_path / "upstream.log")) as upstream:
        config = tmp_path / "gateway.json"
        # read_timeout_s 1.5 < the fake's 3 s delay for model `slow`: that model answers 504.
        config.write_text(json.dumps({"upstream_url": upstream, "port": gw_port, "read_timeout_s": 1.5}))
        proc = subprocess.Popen([sys.executable, "-m", "llmops_gateway", "--config", str(config)],
                                env=dict(os.environ, PYTHONPATH=app_code.pythonpath("gateway", os.path.join(ROOT, "apps"))),
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "gateway.log", "w"))
        try:
            _wait_http(f"http://127.0.0.1:{gw_port}/health", proc)
            yield f"http://127.0.0.1:{gw_port}/"
        finally:
            terminate(proc)


async def _js(cdp: screenshot.DevTools, expression: str):
    result = await cdp.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in result:
        raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
    return result["result"].get("value")


async def _until(cdp: screenshot.DevTools, expression: str, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await _js(cdp, expression)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; page text: {await _js(cdp, 'document.body.innerText')!r}")


SEND = """(() => {{ document.getElementById('model').value = {model};
  document.getElementById('prompt').value = {text};
  document.getElementById('send').click(); return true; }})()"""
LAST_ANSWER = ("(() => { const m = document.querySelectorAll('.msg.assistant');"
               " return m.length ? m[m.length - 1].innerText : ''; })()")


async def _session(ws_url: str, url: str, shots: dict[str, str]) -> dict:
    seen: dict = {}
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, max_msg_size=0) as ws:
        cdp = screenshot.DevTools(ws)
        await cdp.call("Emulation.setDeviceMetricsOverride", width=1100, height=760, deviceScaleFactor=1,
                       mobile=False)
        await cdp.call("Page.navigate", url=url)
        models = await _until(cdp, "[...document.querySelectorAll('#model option')].map(o => o.value).join(',')"
                                   ".includes('fixture-chat') && [...document.querySelectorAll('#model option')]"
                                   ".map(o => o.value).join(',')", 15, "the model list")
        seen["models"] = models
        for turn, text in enumerate(["Say hello in one sentence.", "And once more, please."]):
            await _js(cdp, SEND.format(model=json.dumps("fixture-chat"), text=json.dumps(text)))
            # Streaming: the answer shows some words before it is complete.
            partial = await _until(cdp, f"(() => {{ const t = {LAST_ANSWER}.replace(/^assistant\\s*/i, '');"
                                        " return t.length > 0 && !t.includes('one word at a time.') ? t : ''; })()",
                                   10, "a partial answer")
            seen.setdefault("partials", []).append(partial)
            seen.setdefault("answers", []).append(
                await _until(cdp, f"(() => {{ const t = {LAST_ANSWER}; return t.includes('TTFT') ? t : ''; }})()",
                             15, f"answer {turn + 1} with its TTFT line"))
        shot = await cdp.call("Page.captureScreenshot", format="png")
        with open(shots["answer"], "wb") as handle:
            handle.write(__import__("base64").b64decode(shot["data"]))
        # An upstream timeout appears as an error on the page (HTTP status + message).
        await _js(cdp, SEND.format(model=json.dumps("slow"), text=json.dumps("This one times out.")))
        seen["error"] = await _until(cdp, "(() => { const e = document.querySelector('.msg.assistant .error');"
                                          " return e ? e.innerText : ''; })()", 15, "the error state")
        seen["text"] = await _js(cdp, "document.body.innerText")
        shot = await cdp.call("Page.captureScreenshot", format="png")
        with open(shots["error"], "wb") as handle:
            handle.write(__import__("base64").b64decode(shot["data"]))
    return seen


def test_chat_page_streams_an_answer_in_chromium(gateway, tmp_path):
    url = gateway
    debug_port = free_port()
    shots = {"answer": str(tmp_path / "chat.png"), "error": str(tmp_path / "chat-error.png")}
    with screenshot.chromium(debug_port, 1100, 760) as ws_url:
        seen = asyncio.run(_session(ws_url, url, shots))
    assert "fixture-chat" in seen["models"].split(",")
    for partial in seen["partials"]:
        assert SENTENCE.startswith(partial.strip()[:5]) and len(partial) < len(SENTENCE)
    for answer in seen["answers"]:
        assert SENTENCE in answer
        assert "TTFT" in answer and "tokens/s" in answer and "11 tokens" in answer
    # The conversation is kept: both questions and both answers are on the page.
    assert "Say hello in one sentence." in seen["text"] and "And once more, please." in seen["text"]
    assert seen["text"].count(SENTENCE) == 2
    assert seen["error"].startswith("HTTP 504:") and "did not answer within 1.5 s" in seen["error"]
    for png in shots.values():
        width, height = screenshot.png_size(png)
        assert (width, height) == (1100, 760)
    keep = os.environ.get("LLMOPS_CHAT_SCREENSHOT")
    if keep:
        shutil.copy(shots["answer"], keep)
