"""A small, fast HTTP/1.1 keep-alive server base shared by the emulator and the model containers (stdlib)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Iterable

_REASONS = BaseHTTPRequestHandler.responses


MAX_HEADERS = 100
MAX_LINE = 65536


class BodyTooLarge(Exception):
    pass


class Headers:
    """Case-insensitive, multi-valued request headers: the part of email.message.Message the servers use,
    without the email parser's cost (about 50 us a request)."""

    __slots__ = ("_items", "_lower")

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []
        self._lower: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        self._lower.setdefault(name.lower(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._lower.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str, failobj: list[str] | None = None) -> list[str] | None:
        return self._lower.get(name.lower(), failobj)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def lower_dict(self) -> dict[str, str]:
        """Lower-case name -> first value."""
        return {name: values[0] for name, values in self._lower.items()}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def __str__(self) -> str:
        return "".join(f"{name}: {value}\r\n" for name, value in self._items)


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    global _date_cache  # noqa: PLW0603 - a per-second cache shared by all handler threads
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class KeepAliveServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with one daemon thread per connection that can drop its open connections on stop.

    Clients (urllib3 pools) keep connections open, so a plain server_close() would leave threads serving
    them after "stop"; close_connections() shuts those sockets down.
    """

    daemon_threads = True
    block_on_close = False
    # A burst of 64 pooled clients connecting at once must not overflow the listen backlog (SYN retries
    # would add a second of latency).
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class FastHandler(BaseHTTPRequestHandler):
    """Writes each response in one send (no Nagle/delayed-ACK stalls) and keeps connections alive."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "local-sagemaker"
    sys_version = ""
    max_body_bytes: ClassVar[int] = 64 * 1024 * 1024

    headers: Headers  # type: ignore[assignment]
    raw_requestline: bytes

    def parse_request(self) -> bool:
        # BaseHTTPRequestHandler.parse_request, minus HTTP/0.9 and with a plain header parser.
        self.command = None  # type: ignore[assignment]
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            return False
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(400, f"Bad request syntax ({self.requestline!r})")
            return False
        self.command, self.path, self.request_version = words
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        headers = self._read_headers()
        if headers is None:
            return False
        self.headers = headers
        connection = (headers.get("Connection") or "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        if (headers.get("Expect") or "").lower() == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _read_headers(self) -> Headers | None:
        """The header lines up to the blank line; None once an error has been sent for them."""
        headers = Headers()
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                self.send_error(431, "Line too long")
                return None
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, sep, value = line.decode("iso-8859-1").partition(":")
            if not sep:
                self.send_error(400, "Bad header line")
                return None
            headers.add(name.strip(), value.strip())
            if len(headers._items) > MAX_HEADERS:
                self.send_error(431, "Too many headers")
                return None

    def log_message(self, format: str, *args: Any) -> None:
        # Per-request logging to stderr costs more than the request itself.
        return

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.max_body_bytes:
            self.close_connection = True
            raise BodyTooLarge(length)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > self.max_body_bytes:
                self.close_connection = True
                raise BodyTooLarge(total)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(3)

    def send_whole(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        reason = _REASONS.get(status, ("",))[0] or "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {http_date()}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.wfile.write(body)
        self.log_request(status)
