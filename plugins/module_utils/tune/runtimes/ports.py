"""Port allocation inside a range without clashing with anything already listening."""
from __future__ import annotations

import socket
from typing import Iterable


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        if sock.connect_ex((host, port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def allocate(port_range: tuple[int, int], taken: Iterable[int] = (), host: str = "127.0.0.1") -> int:
    busy = set(taken)
    low, high = port_range
    for port in range(low, high + 1):
        if port not in busy and port_free(port, host):
            return port
    raise RuntimeError(f"no free port in {low}-{high}; stop what holds them or widen port_range")
