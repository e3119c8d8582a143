"""Kernel receive timestamps for the benchmark's HTTP connections (Linux, plain TCP).

Why: a client that stamps a chunk when its event loop gets to it adds the time the loop
spent on other streams first. When 64 first tokens land together, the last stream read is
stamped milliseconds late, and on a busy 2-core machine the process may not even be
running when the bytes arrive. With SO_TIMESTAMPNS the kernel stamps every packet as it is
queued to the socket; `recvmsg` hands the stamp of the newest packet in the read back with
the bytes, so a chunk's time is its arrival, whatever the loop was doing.

`StampConnector` is aiohttp's TCPConnector whose plain-TCP connections use `StampTransport`,
a small transport over the loop's add_reader/add_writer (works on uvloop and asyncio) that
reads with recvmsg and exposes the newest read's arrival as `rx_stamp` (perf_counter
seconds). TLS connections and platforms without SO_TIMESTAMPNS keep aiohttp's own transport.
"""
from __future__ import annotations

import asyncio
import functools
import socket
import struct
import sys
import time
from typing import Any, Optional, Tuple

import aiohttp

try:
    import aiohappyeyeballs  # aiohttp's own dependency for connecting
except ImportError:  # pragma: no cover - aiohttp >= 3.10 always brings it
    aiohappyeyeballs = None

__all__ = ["StampConnector", "StampTransport", "supported", "kernel_to_perf"]

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = getattr(socket, "SCM_TIMESTAMPNS", SO_TIMESTAMPNS)
_TIMESPEC = struct.Struct("qq")
_ANC_SIZE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
# A stamp older than this is not a queueing delay but a clock step (settimeofday, NTP jump):
# fall back to the read time rather than report it.
_MAX_AGE_S = 30.0
_HIGH_WATER = 64 * 1024


@functools.lru_cache(maxsize=None)
def supported() -> bool:
    """Linux with recvmsg, and a kernel (or sandbox) that accepts SO_TIMESTAMPNS: probed once,
    so a sandbox that refuses it keeps aiohttp's transport instead of failing every request."""
    if not (sys.platform.startswith("linux") and _ANC_SIZE > 0
            and hasattr(socket.socket, "recvmsg") and aiohappyeyeballs is not None):
        return False
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def kernel_to_perf(ancdata: Any, now_perf: float, now_real_ns: int) -> Optional[float]:
    """The kernel's CLOCK_REALTIME stamp in `ancdata`, as perf_counter seconds.

    Converted through a pair of clock reads taken together at read time, so the result is
    `now_perf - age`: immune to the offset between the clocks and to NTP slewing. None when
    the read carried no stamp or the stamp is not a plausible age."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            age = (now_real_ns - (sec * 1_000_000_000 + nsec)) / 1e9
            if -0.001 <= age <= _MAX_AGE_S:
                return now_perf - max(age, 0.0)
    return None


class StampTransport(asyncio.Transport):  # pylint: disable=too-many-instance-attributes
    """A plain-TCP transport that reads with recvmsg and keeps the kernel's arrival stamp."""

    max_size = 256 * 1024

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol: asyncio.Protocol) -> None:
        super().__init__({"socket": sock, "peername": sock.getpeername(),
                          "sockname": sock.getsockname()})
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._buffer = bytearray()
        self._closing = False
        self._lost = False
        self._reading = False
        self._write_paused = False
        self.rx_stamp = 0.0  # perf_counter seconds: arrival of the newest byte read
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        protocol.connection_made(self)
        if not self._closing:
            self.resume_reading()

    # -- reading ---------------------------------------------------------------------------
    def _read_ready(self) -> None:
        try:
            data, ancdata, _flags, _addr = self._sock.recvmsg(self.max_size, _ANC_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._force_close(exc)
            return
        if not data:
            self.pause_reading()
            try:
                keep_open = self._protocol.eof_received()
            except Exception as exc:  # noqa: BLE001 - the protocol's failure ends the connection
                self._force_close(exc)
                return
            if not keep_open:
                self.close()
            return
        now_perf = time.perf_counter()
        stamp = kernel_to_perf(ancdata, now_perf, time.time_ns())
        self.rx_stamp = now_perf if stamp is None else stamp
        try:
            self._protocol.data_received(data)
        except Exception as exc:  # noqa: BLE001 - as asyncio's own transports do
            self._force_close(exc)

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if not self._reading and not self._closing:
            self._reading = True
            self._loop.add_reader(self._fd, self._read_ready)

    def is_reading(self) -> bool:
        return self._reading

    # -- writing ---------------------------------------------------------------------------
    def write(self, data: Any) -> None:
        if self._closing or not data:
            return
        if not self._buffer:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._force_close(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._loop.add_writer(self._fd, self._write_ready)
        self._buffer.extend(data)
        if not self._write_paused and len(self._buffer) > _HIGH_WATER:
            self._write_paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def _write_ready(self) -> None:
        try:
            sent = self._sock.send(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._force_close(exc)
            return
        del self._buffer[:sent]
        if self._buffer:
            return
        self._loop.remove_writer(self._fd)
        if self._write_paused:
            self._write_paused = False
            self._protocol.resume_writing()
        if self._closing:
            self._lost_soon(None)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if not self._closing:
            self._sock.shutdown(socket.SHUT_WR)

    # -- closing ---------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.pause_reading()
        if not self._buffer:
            self._lost_soon(None)

    def abort(self) -> None:
        self._force_close(None)

    def _force_close(self, exc: Optional[BaseException]) -> None:
        if self._lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._loop.remove_writer(self._fd)
        self._closing = True
        self.pause_reading()
        self._lost_soon(exc)

    def _lost_soon(self, exc: Optional[BaseException]) -> None:
        if not self._lost:
            self._lost = True
            self._loop.call_soon(self._connection_lost, exc)

    def _connection_lost(self, exc: Optional[BaseException]) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._sock.close()


class StampConnector(aiohttp.TCPConnector):
    """aiohttp's TCP connector; plain-TCP connections get a StampTransport."""

    async def _wrap_create_connection(self, *args: Any, addr_infos: Any, req: Any,
                                      timeout: Any, client_error: Any = aiohttp.ClientConnectorError,
                                      **kwargs: Any) -> Tuple[asyncio.Transport, Any]:
        if kwargs.get("ssl") or not supported():
            return await super()._wrap_create_connection(
                *args, addr_infos=addr_infos, req=req, timeout=timeout,
                client_error=client_error, **kwargs)
        loop = asyncio.get_running_loop()
        try:
            sock = await asyncio.wait_for(
                aiohappyeyeballs.start_connection(addr_infos=addr_infos, loop=loop),
                timeout.sock_connect)
        except OSError as exc:
            if exc.errno is None and isinstance(exc, asyncio.TimeoutError):
                raise
            raise client_error(req.connection_key, exc) from exc
        protocol = args[0]()
        return StampTransport(loop, sock, protocol), protocol
