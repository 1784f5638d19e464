"""A job's input, read as lines with ranged S3 GETs from any byte offset: memory stays bounded by one
chunk plus one line, whatever the file's size, and a split or an assembly can resume at a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_s3 import S3Client

CHUNK_BYTES: Final = 1024 * 1024
# A line longer than this cannot become one SQS message (1 MiB with the job's keys added): it is read
# past, not held, and refused.
MAX_LINE_BYTES: Final = 1024 * 1024 - 256


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based
    text: bytes  # without its line break ("\n" or "\r\n"); empty when too_long
    end: int  # byte offset just past the line break: the checkpoint after this line
    too_long: bool = False


def object_size(s3: S3Client, bucket: str, key: str) -> int:
    return s3.head_object(Bucket=bucket, Key=key)["ContentLength"]


def read_lines(  # noqa: PLR0913 - where to read, where to start, and how much at a time
    s3: S3Client,
    bucket: str,
    key: str,
    *,
    size: int,
    offset: int = 0,
    line: int = 0,
    chunk_bytes: int = CHUNK_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[Line]:
    """The lines after byte `offset` (which follows line number `line`), in order. A final line without
    a line break is a line; a line break at the very end does not start another."""
    buffer = bytearray()
    start = offset  # the file offset of buffer[0]
    skipping = False  # inside a line that grew past max_line_bytes
    position = offset
    while position < size:
        last = min(position + chunk_bytes, size) - 1
        body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={position}-{last}")["Body"]
        chunk = body.read()
        position += len(chunk)
        if not chunk:
            break
        buffer += chunk
        cursor = 0  # lines are sliced off the front once per chunk, not once per line
        while True:
            newline = buffer.find(b"\n", cursor)
            if newline < 0:
                break
            line += 1
            end = start + newline + 1
            if skipping or newline - cursor > max_line_bytes:
                yield Line(line, b"", end, too_long=True)
            else:
                yield Line(line, bytes(buffer[cursor:newline]).removesuffix(b"\r"), end)
            skipping = False
            cursor = newline + 1
        del buffer[:cursor]
        start += cursor
        if len(buffer) > max_line_bytes:
            start += len(buffer)
            buffer.clear()
            skipping = True
    if buffer or skipping:
        line += 1
        yield Line(line, b"" if skipping else bytes(buffer).removesuffix(b"\r"), size, too_long=skipping)
