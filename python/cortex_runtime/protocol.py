"""Frames of the slot protocol (docs/worker-protocol.md).

    u32 big-endian  N = length of everything that follows
    u32 big-endian  H = length of the header
    H bytes         header: a UTF-8 JSON object
    N - 4 - H bytes body: raw bytes
"""

import json
import struct

__all__ = ["ProtocolError", "FrameReader", "write_frame", "encode_frame", "PREFIX"]

PREFIX = struct.Struct(">II")
_pack = PREFIX.pack
_unpack = PREFIX.unpack

# Bodies up to this size are joined with the prefix and header into one send.
_JOIN_LIMIT = 1 << 16


class ProtocolError(Exception):
    pass


class FrameReader:
    """Reads frames from a connected stream socket (blocking)."""

    __slots__ = ("_file",)

    def __init__(self, sock, buffer_size=1 << 16):
        self._file = sock.makefile("rb", buffering=buffer_size)

    def read_raw(self):
        """Returns (header bytes, body bytes), or None at a clean end of stream."""
        read = self._file.read
        prefix = read(8)
        if len(prefix) < 8:
            if not prefix:
                return None
            raise ProtocolError("connection closed inside a frame prefix")
        n, h = _unpack(prefix)
        if n < 4 or h > n - 4:
            raise ProtocolError(f"bad frame lengths: N={n} H={h}")
        header = read(h)
        body = read(n - 4 - h) if n - 4 > h else b""
        if len(header) + len(body) < n - 4:
            raise ProtocolError("connection closed inside a frame")
        return header, body

    def read(self):
        """Returns (header dict, body bytes), or None at a clean end of stream."""
        frame = self.read_raw()
        if frame is None:
            return None
        header, body = frame
        return (json.loads(header) if header else {}), body

    def close(self):
        self._file.close()


def encode_frame(header, body=b""):
    """One frame as bytes; ``header`` is a dict or already-encoded JSON bytes."""
    if not isinstance(header, (bytes, bytearray)):
        header = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return _pack(4 + len(header) + len(body), len(header)) + header + body


def write_frame(sock, header_bytes, body):
    """Sends one frame; ``header_bytes`` is encoded JSON."""
    h = len(header_bytes)
    prefix = _pack(4 + h + len(body), h)
    if len(body) <= _JOIN_LIMIT:
        sock.sendall(prefix + header_bytes + body)
    else:
        sock.sendall(prefix + header_bytes)
        sock.sendall(body)
