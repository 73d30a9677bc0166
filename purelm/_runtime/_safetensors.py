"""The safetensors file format, read and written with numpy alone: named tensors, no pickle.

    8 bytes    little-endian unsigned length N of the header
    N bytes    a JSON object: {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
               "__metadata__": {str: str}}, padded with spaces to a multiple of 8 bytes
    the rest   the tensors' bytes, little-endian, row-major, back to back in the order of their offsets

This is the whole format (https://github.com/huggingface/safetensors), so purelm writes it itself rather
than depend on the `safetensors` package: the package's numpy API has no bfloat16 (numpy has none; purelm
gets it from ml_dtypes), and reading here fetches only the tensors asked for (`purelm sample` reads the
model without the optimizer state). Files written here load with `safetensors.torch.load_file`,
`safetensors.numpy.load_file` (every dtype numpy has) and any other reader of the format.

>>> with open("x.safetensors", "wb") as f:                   # doctest: +SKIP
...     write(f, [("w", np.ones((2, 3), np.float32))], {"step": "10"})
>>> header = Header.read("x.safetensors")                    # doctest: +SKIP
>>> header.tensors["w"].shape                                # doctest: +SKIP
(2, 3)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

# safetensors' dtype names; bfloat16 comes from ml_dtypes (a dependency of jax), looked up when needed.
_CODES = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint64": "U64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "bool": "BOOL",
}
_NAMES = {code: name for name, code in _CODES.items()}
# The reference implementation refuses headers above 100 MB; so does this one, before reading one.
MAX_HEADER = 100_000_000


class FormatError(ValueError):
    """Not a safetensors file, or a damaged one (the message says what is wrong, without the path)."""


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of a dtype name (`"float32"`, `"bfloat16"`, ...)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One tensor's entry in the header: its numpy dtype name, shape and byte range in the data."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclasses.dataclass(frozen=True)
class Header:
    """A file's header: its tensors in the order their bytes are stored, its metadata, where the data begins."""

    tensors: dict[str, Tensor]
    metadata: dict[str, str]
    data_start: int

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Header:
        """Read and check the header of the file at `path` (its size must be what the header describes)."""
        with open(path, "rb") as f:
            return cls.parse(f, os.fstat(f.fileno()).st_size)

    @classmethod
    def parse(cls, f: BinaryIO, size: int) -> Header:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise FormatError(f"{size} bytes, shorter than a safetensors header")
        length = int.from_bytes(prefix, "little")
        if length > min(MAX_HEADER, size - 8):
            raise FormatError(f"its header length ({length:,} bytes) does not fit in its {size:,} bytes")
        try:
            header = json.loads(f.read(length).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FormatError(f"its header is not JSON ({err})") from None
        if not isinstance(header, dict):
            raise FormatError("its header is not a JSON object")
        metadata = header.pop("__metadata__", None) or {}
        tensors = {name: _entry(name, info) for name, info in header.items()}
        tensors = dict(sorted(tensors.items(), key=lambda item: item[1].begin))
        # The bytes are back to back, from the first to the last: no gap, no overlap, nothing after them.
        end = 0
        for name, tensor in tensors.items():
            if tensor.begin != end:
                raise FormatError(f"tensor {name}'s bytes start at {tensor.begin}, not at {end}")
            end = tensor.end
        if size != 8 + length + end:
            raise FormatError(f"it has {size:,} bytes where its header describes {8 + length + end:,}")
        return cls(tensors, metadata, 8 + length)

    def read_tensor(self, f: BinaryIO, name: str) -> np.ndarray:
        """Tensor `name`'s array, read from the open file `f`."""
        tensor = self.tensors[name]
        buffer = bytearray(tensor.end - tensor.begin)
        f.seek(self.data_start + tensor.begin)
        if f.readinto(buffer) != len(buffer):  # type: ignore[attr-defined]  # files opened with open(..., "rb")
            raise FormatError(f"tensor {name} is cut short")
        dtype = numpy_dtype(tensor.dtype).newbyteorder("<")
        return np.frombuffer(buffer, dtype).reshape(tensor.shape)


def _entry(name: str, info) -> Tensor:
    try:
        dtype, shape, (begin, end) = _NAMES[info["dtype"]], tuple(info["shape"]), info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64))
        expected = count * numpy_dtype(dtype).itemsize
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"tensor {name}'s entry is not one of the format's: {json.dumps(info)[:200]}") from None
    if not (isinstance(begin, int) and isinstance(end, int) and begin >= 0 and end - begin == expected):
        raise FormatError(f"tensor {name} ({dtype}{list(shape)}) has data offsets {[begin, end]}")
    return Tensor(dtype, shape, begin, end)


def write(f: BinaryIO, tensors: Sequence[tuple[str, np.ndarray]], metadata: dict[str, str]) -> None:
    """Write `tensors` (name, array), in this order, and `metadata` to the binary file `f`."""
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for name, array in tensors:
        code = _CODES.get(array.dtype.name)
        if code is None:
            raise TypeError(f"safetensors has no dtype for {name}'s {array.dtype}")
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Padded with spaces so that the data starts 8-byte aligned, as the reference writer does.
    text += b" " * (-(8 + len(text)) % 8)
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    for _, array in tensors:
        f.write(np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes())
