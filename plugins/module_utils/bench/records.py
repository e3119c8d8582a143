"""What a run observed: one record per request, plus the run around them.

Kept apart from the client so metrics, results files and reports never need aiohttp.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

from .config import BenchConfig

ERROR_CLASSES = (
    "connection_refused",
    "timeout",
    "stream_cut",        # stream ended without the [DONE] marker
    "invalid_response",  # unparseable chunk, or the server sent an error object mid-stream
    "client_error",      # anything else that went wrong on our side of the socket
)  # plus "http_<code>" for any non-200 status

MAX_ERROR_CHARS = 300


@dataclass
class RequestRecord:
    index: int
    # Offsets in seconds from the run's perf_counter anchor; wall time only for humans.
    scheduled_s: float = 0.0
    send_s: float = 0.0
    send_wall: float = 0.0
    end_s: Optional[float] = None
    ttft_s: Optional[float] = None
    # Arrival of each content-carrying chunk, seconds after send (first one == ttft_s).
    chunk_times: List[float] = field(default_factory=list)
    # Gaps between consecutive content chunks after the first: never contains TTFT.
    itl_s: List[float] = field(default_factory=list)
    e2e_s: Optional[float] = None
    input_tokens: Optional[int] = None   # from the server's usage chunk, never re-tokenised
    output_tokens: Optional[int] = None
    status: Optional[int] = None
    error_class: Optional[str] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error_class is None and self.e2e_s is not None

    def fail(self, error_class: str, message: str) -> None:
        self.error_class = error_class
        self.error = message[:MAX_ERROR_CHARS]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RequestRecord":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RunResult:
    config: BenchConfig
    records: List[RequestRecord]          # measured requests only; warm-up excluded
    started_wall: float
    ended_wall: float
    duration_s: float                     # first measured send -> last measured completion
    warmup_completed: int = 0
    not_sent: int = 0                     # requests never sent because run_timeout_s hit
    stopped_reason: Optional[str] = None
