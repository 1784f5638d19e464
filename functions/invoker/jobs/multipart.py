"""One output object of any size: an S3 multipart upload fed line by line, parts of `part_bytes`
(S3 wants at least 5 MiB for every part but the last), so memory holds one part at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoker.contract import S3_MAX_PARTS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef


class PartLimitReached(RuntimeError):
    def __init__(self, key: str, part_bytes: int) -> None:
        super().__init__(f"{key}: more than {S3_MAX_PARTS} parts of {part_bytes} bytes")


class MultipartWriter:
    def __init__(self, s3: S3Client, bucket: str, key: str, *, part_bytes: int, content_type: str) -> None:
        self._s3, self._bucket, self._key = s3, bucket, key
        self._part_bytes = part_bytes
        self._buffer = bytearray()
        self._parts: list[CompletedPartTypeDef] = []
        self._upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)[
            "UploadId"
        ]
        self.bytes_written = 0

    @property
    def part_sizes(self) -> list[int]:
        return list(self._sizes)

    _sizes: list[int]

    def __enter__(self) -> MultipartWriter:
        self._sizes = []
        return self

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.bytes_written += len(data)
        if len(self._buffer) >= self._part_bytes:
            self._upload(bytes(self._buffer))
            self._buffer.clear()

    def _upload(self, data: bytes) -> None:
        number = len(self._parts) + 1
        if number > S3_MAX_PARTS:
            raise PartLimitReached(self._key, self._part_bytes)
        answer = self._s3.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=data
        )
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})
        self._sizes.append(len(data))

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if kind is not None:
            # Parts of an abandoned upload are billed until aborted (the bucket's lifecycle rule is the net).
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
            return
        if self._buffer or not self._parts:  # the last part may be small; an empty output is one empty part
            self._upload(bytes(self._buffer))
            self._buffer.clear()
        self._s3.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
