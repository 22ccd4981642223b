"""sensor_msgs/Image straight from its CDR bytes, the pixels a view of those bytes (no rclpy).

The policy node subscribes to images raw (rclpy hands the callback the serialized bytes) and reads them with
``image_from_cdr``: the pixel buffer is never copied or converted into a Python object, and only the set the worker
takes is converted at all. Why by hand: rclpy's deserialisation copies the 0.9 MB buffer of a 640x480 colour image
into an array.array (0.5 ms here); rosbags' decoder slices the byte string (a copy, 0.25 ms); this parser reads the
header fields and returns a numpy view (~10 us). It returns duck-typed messages that the conversion code
(robot/convert.py) reads exactly like rclpy's or rosbags' Image.

Layout (XCDR1, the encoding rmw_fastrtps publishes for ROS 2 messages): a 4-byte encapsulation header (byte 1:
1 = little endian, 0 = big endian), then the fields in order, each aligned to its size relative to the end of the
encapsulation header: stamp (int32 sec, uint32 nanosec), frame_id (uint32 length with the NUL, chars), height,
width (uint32), encoding (string), is_bigendian (uint8), step (uint32), data (uint32 count, bytes).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

_ENCAPSULATION = 4


class CdrError(ValueError):
    """The bytes are not a complete CDR-encoded sensor_msgs/Image; the message says where it broke."""


@dataclass(frozen=True)
class Stamp:
    sec: int
    nanosec: int


@dataclass(frozen=True)
class Header:
    stamp: Stamp
    frame_id: str


@dataclass(frozen=True)
class CdrImage:
    """The fields of sensor_msgs/Image; ``data`` is a read-only uint8 view of the serialized bytes."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray


class _Reader:
    def __init__(self, raw, little: bool):
        self.raw, self.pos, self.end = raw, _ENCAPSULATION, len(raw)
        self.order = "<" if little else ">"

    def take(self, size: int, what: str) -> int:
        """The offset of the next ``size`` bytes (and moves past them); CdrError naming ``what`` if they are missing."""
        start = self.pos
        if start + size > self.end:
            raise CdrError(f"sensor_msgs/Image CDR truncated at {what}: needs {start + size} bytes, has {self.end}")
        self.pos = start + size
        return start

    def align(self, size: int) -> None:
        self.pos += (-(self.pos - _ENCAPSULATION)) % size

    def u32(self, what: str, signed: bool = False) -> int:
        self.align(4)
        at = self.take(4, what)
        return struct.unpack_from(self.order + ("i" if signed else "I"), self.raw, at)[0]

    def u8(self, what: str) -> int:
        return self.raw[self.take(1, what)]

    def string(self, what: str) -> str:
        n = self.u32(what)
        at = self.take(n, what)
        if n == 0 or self.raw[at + n - 1] != 0:
            raise CdrError(f"sensor_msgs/Image CDR: {what} is not a NUL-terminated string")
        return bytes(self.raw[at:at + n - 1]).decode("utf-8", errors="replace")


def image_from_cdr(raw) -> CdrImage:
    """Serialized sensor_msgs/Image (bytes or any buffer) -> CdrImage whose ``data`` views ``raw``."""
    if len(raw) < _ENCAPSULATION:
        raise CdrError(f"sensor_msgs/Image CDR: {len(raw)} bytes is shorter than the encapsulation header")
    if raw[0] != 0 or raw[1] not in (0, 1):
        raise CdrError(f"sensor_msgs/Image CDR: unsupported encapsulation {bytes(raw[:2]).hex()} (plain CDR expected)")
    r = _Reader(raw, little=raw[1] == 1)
    stamp = Stamp(r.u32("header.stamp.sec", signed=True), r.u32("header.stamp.nanosec"))
    header = Header(stamp, r.string("header.frame_id"))
    height, width = r.u32("height"), r.u32("width")
    encoding = r.string("encoding")
    is_bigendian = r.u8("is_bigendian")
    step = r.u32("step")
    count = r.u32("data length")
    at = r.take(count, "data")
    data = np.frombuffer(raw, np.uint8, count, at)
    return CdrImage(header, height, width, encoding, is_bigendian, step, data)
