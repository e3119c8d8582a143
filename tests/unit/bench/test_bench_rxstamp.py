"""Kernel receive timestamps: a chunk's time is when it reached the socket, not when the
client's event loop got round to it."""
import asyncio
import socket
import struct
import threading
import time

import aiohttp
import pytest

from ansible_collections.llmops.platform.plugins.module_utils.bench import client, rxstamp
from ansible_collections.llmops.platform.plugins.module_utils.bench.config import BenchConfig
from ansible_collections.llmops.platform.plugins.module_utils.bench.engine import run_loop

pytestmark = pytest.mark.skipif(not rxstamp.supported(), reason="SO_TIMESTAMPNS is Linux-only")


def _anc(real_ns: int):
    return [(socket.SOL_SOCKET, rxstamp.SCM_TIMESTAMPNS,
             struct.pack("qq", real_ns // 1_000_000_000, real_ns % 1_000_000_000))]


def test_a_kernel_stamp_becomes_an_age_on_the_perf_clock():
    now_real = time.time_ns()
    assert rxstamp.kernel_to_perf(_anc(now_real - 5_000_000), 100.0, now_real) == pytest.approx(99.995)
    assert rxstamp.kernel_to_perf(_anc(now_real), 100.0, now_real) == pytest.approx(100.0)


@pytest.mark.parametrize("age_s", [-0.5, 120.0])
def test_an_implausible_stamp_is_not_used(age_s):
    """A clock step between the packet and the read must not become a latency."""
    now_real = time.time_ns()
    assert rxstamp.kernel_to_perf(_anc(now_real - int(age_s * 1e9)), 100.0, now_real) is None


def test_a_read_without_a_stamp_gives_none():
    assert rxstamp.kernel_to_perf([], 100.0, time.time_ns()) is None


class SlowResponder(threading.Thread):
    """A raw HTTP server: reads one request, sends the response head at once and, `delay_s`
    later, a body holding the request body's length; notes (perf_counter) when it sent the
    body."""

    def __init__(self, delay_s: float = 0.0, read_chunk: int = 65536) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.delay_s = delay_s
        self.read_chunk = read_chunk
        self.sent_at = 0.0

    def run(self) -> None:
        conn, _addr = self.listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(self.read_chunk)
            head, body = data.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(body) < length:
                time.sleep(0.001)  # a slow reader: the client's writes must buffer
                body += conn.recv(self.read_chunk)
            answer = str(len(body)).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer))
            time.sleep(self.delay_s)
            self.sent_at = time.perf_counter()
            conn.sendall(answer)
            # Close well after the client's read: segments that wait in the socket together
            # are merged, and the merged one keeps the newest stamp (here: the FIN's).
            time.sleep(0.5)


async def _fetch(port: int, block_loop_s: float, body: bytes = b"") -> tuple:
    config = BenchConfig(base_url=f"http://127.0.0.1:{port}", model="m", request_timeout_s=10.0)
    async with client.open_session(config) as session:
        async with session.post(f"http://127.0.0.1:{port}/", data=body) as resp:
            protocol = resp.connection.protocol  # released once the body is read
            transport = type(resp.connection.transport).__name__
            time.sleep(block_loop_s)  # the loop is busy elsewhere while the body lands
            text = await resp.text()
            return text, protocol.rx_last, transport


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_arrival_is_the_kernels_stamp_while_the_loop_is_busy(monkeypatch, loop):
    monkeypatch.setenv("LLMOPS_BENCH_LOOP", loop)
    monkeypatch.delenv(client.RX_CLOCK_ENV, raising=False)
    server = SlowResponder(delay_s=0.02)
    server.start()
    text, stamp, transport = run_loop(_fetch(server.port, block_loop_s=0.15, body=b"x" * 10))
    assert text == "10" and transport == "StampTransport"
    # sent ~20 ms after the head, read ~150 ms after it: the stamp is the send
    assert 0.0 <= stamp - server.sent_at < 0.01, stamp - server.sent_at


def test_the_loop_clock_shows_the_delay_the_kernel_stamp_removes(monkeypatch):
    monkeypatch.setenv(client.RX_CLOCK_ENV, "loop")
    server = SlowResponder(delay_s=0.02)
    server.start()
    text, stamp, transport = run_loop(_fetch(server.port, block_loop_s=0.15, body=b"x" * 10))
    assert text == "10" and transport != "StampTransport"
    assert stamp - server.sent_at > 0.1


def test_a_large_body_is_buffered_until_the_server_reads_it(monkeypatch):
    monkeypatch.delenv(client.RX_CLOCK_ENV, raising=False)
    server = SlowResponder(delay_s=0.02, read_chunk=4096)
    server.start()
    body = bytes(range(256)) * 16384  # 4 MiB: more than the socket takes at once
    text, _stamp, transport = run_loop(_fetch(server.port, block_loop_s=0.0, body=body))
    assert text == str(len(body)) and transport == "StampTransport"


def test_an_unsupported_platform_keeps_aiohttps_transport(monkeypatch):
    monkeypatch.setattr(rxstamp, "supported", lambda: False)

    async def connector_type() -> type:
        async with client.open_session(BenchConfig(base_url="http://127.0.0.1:1", model="m")) as session:
            return type(session.connector)
    assert asyncio.run(connector_type()) is aiohttp.TCPConnector


def test_eof_and_close_reach_the_protocol():
    loop = asyncio.new_event_loop()
    try:
        listener = socket.create_server(("127.0.0.1", 0))
        left = socket.create_connection(listener.getsockname())
        right, _addr = listener.accept()
        listener.close()
        events = []

        class Proto(asyncio.Protocol):
            def data_received(self, data):
                events.append(("data", data))

            def eof_received(self):
                events.append(("eof",))

            def connection_lost(self, exc):
                events.append(("lost", exc))

        transport = rxstamp.StampTransport(loop, left, Proto())
        right.sendall(b"abc")
        right.close()
        loop.run_until_complete(asyncio.sleep(0.05))
        assert events == [("data", b"abc"), ("eof",), ("lost", None)]
        assert transport.is_closing() and left.fileno() == -1
        assert transport.rx_stamp <= time.perf_counter()
    finally:
        loop.close()


def test_a_kernel_that_refuses_the_option_keeps_aiohttps_transport(monkeypatch):
    class Refusing(socket.socket):
        def setsockopt(self, *args):
            raise OSError(92, "Protocol not available")
    monkeypatch.setattr(socket, "socket", Refusing)
    rxstamp.supported.cache_clear()
    try:
        assert rxstamp.supported() is False
    finally:
        monkeypatch.undo()
        rxstamp.supported.cache_clear()
    assert rxstamp.supported() is True
