"""What a run observed: one record per request, plus the run around them.

Kept apart from the client so metrics, results files and reports never need aiohttp.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

from .config import BenchConfig

ERROR_CLASSES = (
    "connection_refused",  # nothing listens on the server's port
    "connection_reset",  # the server dropped the connection before its response began
    "timeout",
    "stream_cut",        # the server cut a started stream, or it ended without [DONE]
    "invalid_response",  # unparseable chunk, or the server sent an error object mid-stream
    "client_error",      # anything else that went wrong on our side of the socket
)  # plus "http_<code>" for any non-200 status

MAX_ERROR_CHARS = 300


@dataclass
class RequestRecord:
    index: int
    # Offsets in seconds from the run's perf_counter anchor; wall time only for humans.
    scheduled_s: float = 0.0
    send_s: float = 0.0                 # when the sender actually started this request
    send_wall: float = 0.0
    end_s: Optional[float] = None
    # send_s - scheduled_s: how late the sender was (open loop); 0 by design in closed loop.
    dispatch_lag_s: float = 0.0
    # Client-side queueing between send_s and the request being on the wire (connection
    # pool wait, connect, write). Kept OUT of TTFT/E2E so they measure the server (#54101).
    queue_s: Optional[float] = None
    ttft_s: Optional[float] = None      # first content chunk, seconds after the request was written
    # Arrival of each content-carrying chunk, seconds after the request was written
    # (first one == ttft_s).
    chunk_times: List[float] = field(default_factory=list)
    # Output tokens carried by each content chunk, from the server's running usage
    # (continuous_usage_stats); empty when the server sends usage only at the end.
    chunk_tokens: List[int] = field(default_factory=list)
    # Gaps between consecutive content chunks after the first: never contains TTFT.
    itl_s: List[float] = field(default_factory=list)
    # Network reads that carried content: far fewer reads than chunks means the stream
    # arrived coalesced (a buffering proxy, an overloaded client) and its gaps are unknown.
    reads: int = 0
    e2e_s: Optional[float] = None
    input_tokens: Optional[int] = None   # from the server's usage chunk, never re-tokenised
    output_tokens: Optional[int] = None
    prompt_tokens_target: Optional[int] = None  # exact tokenizer length we built, if known
    max_tokens: Optional[int] = None
    step: int = 0
    repeat: int = 0
    status: Optional[int] = None
    error_class: Optional[str] = None
    error: Optional[str] = None

    @property
    def coalesced(self) -> bool:
        """Content chunks arrived in fewer reads than half their number: most inter-token
        gaps were never observed by this client, so none of them is reported as ITL."""
        chunks = len(self.chunk_times)
        return chunks > 1 and self.reads * 2 < chunks

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
    not_sent: int = 0                     # requests never sent (run_timeout_s, saturation)
    stopped_reason: Optional[str] = None
    profile: str = "concurrency"          # how this phase sent load (the step's own profile)
    target_rate: Optional[float] = None   # requests/s the schedule asked for (open loop)
    concurrency: Optional[int] = None     # closed-loop workers
    saturated: bool = False               # the saturation guard stopped this phase
    step: int = 0
    repeat: int = 0
    server: Optional[Dict[str, Any]] = None  # /metrics deltas over this phase
