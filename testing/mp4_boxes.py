"""A small reader of MP4 boxes for the tests: duration and frame size straight from the file's `mvhd`
and `tkhd` boxes, independent of the FFmpeg the bot uses, so a test proves the posted bytes are an MP4
of the asked length and shape without trusting the code under test."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


@dataclass(frozen=True)
class Mp4Facts:
    brand: str
    duration: float
    width: int
    height: int


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box between start and end, descending into containers."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[at + 8 : at + 16])[0]
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise ValueError(f"box {kind!r} at {at} runs past the end")
        yield kind, at + header, at + size
        if kind in CONTAINERS:
            yield from boxes(data, at + header, at + size)
        at += size


def read_mp4(data: bytes) -> Mp4Facts:
    brand, duration, width, height = "", -1.0, 0, 0
    for kind, start, end in boxes(data):
        payload = data[start:end]
        if kind == b"ftyp":
            brand = payload[:4].decode("ascii", "replace")
        elif kind == b"mvhd":
            version = payload[0]
            if version == 1:
                timescale, length = struct.unpack(">IQ", payload[20:32])
            else:
                timescale, length = struct.unpack(">II", payload[12:20])
            duration = length / timescale
        elif kind == b"tkhd" and not width:
            # The last two 16.16 fixed-point numbers of a track header are its width and height.
            w, h = struct.unpack(">II", payload[-8:])
            width, height = w >> 16, h >> 16
    if not brand or duration < 0:
        raise ValueError("not an MP4 file")
    return Mp4Facts(brand, duration, width, height)
