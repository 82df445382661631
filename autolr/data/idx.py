"""IDX files (the MNIST format): read plain or gzipped, write plain, count without reading.

An IDX file is a 4-byte magic number (0, 0, dtype code, number of dimensions), one
big-endian uint32 per dimension, then the values. MNIST-style datasets use unsigned
bytes (code 0x08): images N x H x W, labels N.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from pathlib import Path

import numpy as np
import torch

from autolr.errors import DataError

UNSIGNED_BYTE = 0x08


def _open(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_header(stream: io.BufferedIOBase, path: Path) -> tuple[int, ...]:
    magic = stream.read(4)
    if len(magic) != 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != UNSIGNED_BYTE:
        raise DataError(f"{path} is not an IDX file of unsigned bytes.")
    dims = magic[3]
    return struct.unpack(f">{dims}I", stream.read(4 * dims))


def idx_count(path: Path) -> int:
    """Number of items (the first dimension) in an IDX file, read from its header only."""
    with _open(path) as stream:
        return _read_header(stream, path)[0]


def read_idx(path: Path) -> torch.Tensor:
    """The uint8 tensor stored in an IDX file (`.gz` is decompressed on the fly)."""
    with _open(path) as stream:
        shape = _read_header(stream, path)
        buffer = bytearray(int(np.prod(shape)))
        view, filled = memoryview(buffer), 0
        while filled < len(buffer) and (read := stream.readinto(view[filled:])):
            filled += read
    if filled != len(buffer):
        raise DataError(f"{path} is truncated: expected {len(buffer)} bytes of data, found {filled}.")
    return torch.frombuffer(buffer, dtype=torch.uint8).reshape(shape)


def write_idx(path: Path, values: np.ndarray) -> None:
    """Write a uint8 array as an uncompressed IDX file, atomically (temporary file, rename)."""
    values = np.ascontiguousarray(values, dtype=np.uint8)
    header = bytes([0, 0, UNSIGNED_BYTE, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(header + values.tobytes())
    os.replace(temporary, path)
