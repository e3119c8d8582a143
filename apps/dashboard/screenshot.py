"""Screenshot the Streamlit dashboard (or any JS page) in headless Chromium via the DevTools protocol.

    python apps/dashboard/screenshot.py URL OUT.png   # waits 25 s of real time for the websocket render
"""
import asyncio, base64, json, subprocess, sys, time, urllib.request  # noqa: E401

import aiohttp

URL, OUT, PORT = sys.argv[1], sys.argv[2], 19951
proc = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={PORT}",
                         "--window-size=1400,2400", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(60):
        try:
            tabs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json"))
            break
        except OSError:
            time.sleep(0.5)
    ws_url = next(t["webSocketDebuggerUrl"] for t in tabs if t["type"] == "page")

    async def main():
        async with aiohttp.ClientSession() as s, s.ws_connect(ws_url, max_msg_size=0) as ws:
            n = 0
            async def call(method, **params):
                nonlocal n; n += 1; await ws.send_json({"id": n, "method": method, "params": params})
                async for msg in ws:
                    data = json.loads(msg.data)
                    if data.get("id") == n:
                        return data.get("result", {})
            await call("Emulation.setDeviceMetricsOverride", width=1400, height=2400, deviceScaleFactor=1, mobile=False)
            await call("Page.navigate", url=URL)
            await asyncio.sleep(25)
            shot = await call("Page.captureScreenshot", format="png")
            open(OUT, "wb").write(base64.b64decode(shot["data"]))
    asyncio.run(main())
finally:
    proc.terminate(); proc.wait(10)
