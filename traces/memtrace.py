"""Raw memory-request traces (one request per line), read in bounded-memory chunks.

Formats, by name in ``MEMTRACE_FORMATS``:

- ``dramsim3``: DRAMsim3's text trace, ``ADDR OP CYCLE`` per line, e.g. ``0x2000D5C0 READ 30``:
  a hexadecimal byte address (``0x`` optional, as DRAMsim3 reads it with ``std::hex``),
  ``READ`` or ``WRITE`` (lower case accepted too), and the decimal controller cycle at which the
  request arrives. Cycles must not decrease (a device serves requests in arrival order).
- ``ramulator``: Ramulator 2's ``LoadStoreTrace``, ``OP ADDR`` per line, e.g. ``LD 0x12340``:
  ``LD`` (read) or ``ST`` (write) and a byte address, hexadecimal with ``0x`` or decimal
  without it. The lines carry no time: request ``i`` (counting from 0 over the requests of the
  file) arrives at cycle ``i``. Ramulator's other trace form, ``R|W`` followed by an address
  *vector* (one index per DRAM level), names no byte address and is not accepted.

In both formats fields are separated by spaces or tabs, blank lines and lines starting with
``#`` are skipped, and any other line that does not match is an ``InputError`` naming the file,
the line number and what was expected. Addresses must be below 2^63 (decimal ones at most
18 digits).

Parsing is a compiled loop over the file's bytes, a block at a time: several million lines per
second (about 3x a Python ``str.split`` loop on the same file, measured on this machine), and
memory does not grow with the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from embsim.errors import InputError
from embsim.registry import Registry

BLOCK_BYTES = 8 << 20
"""Bytes read per chunk (plus the rest of the line that straddles the block's end)."""

DRAMSIM3, RAMULATOR = 0, 1

# Error codes of the parsing kernel, with what was expected at that point of the line.
_OK, _BAD_ADDRESS, _BAD_OP, _BAD_CYCLE, _MISSING, _EXTRA, _TOO_LARGE, _DECREASING = range(8)
_MAX_ADDRESS = (1 << 63) - 1


@dataclass(frozen=True)
class MemTraceFormat:
    """A memory-request trace format: its kernel code and the form of one line."""

    code: int
    line_form: str
    ops: tuple[str, str]
    """The read and the write operation words (as written in upper case)."""


MEMTRACE_FORMATS: Registry[MemTraceFormat] = Registry("memory trace format")
MEMTRACE_FORMATS.register("dramsim3")(MemTraceFormat(
    DRAMSIM3, "'0xADDR READ|WRITE CYCLE' (DRAMsim3)", ("READ", "WRITE")))
MEMTRACE_FORMATS.register("ramulator")(MemTraceFormat(
    RAMULATOR, "'LD|ST ADDR' (Ramulator 2 LoadStoreTrace)", ("LD", "ST")))


@dataclass(frozen=True)
class MemRequests:
    """A chunk of requests: arrival cycle, byte address and direction of each."""

    cycles: np.ndarray
    addresses: np.ndarray
    is_write: np.ndarray

    def __len__(self) -> int:
        return int(self.cycles.size)


def _expectations(fmt: MemTraceFormat) -> dict[int, str]:
    read, write = fmt.ops
    address = ("a hexadecimal address such as 0x2000D5C0" if fmt.code == DRAMSIM3 else
               "an address, hexadecimal with 0x (0x12340) or decimal (4096)")
    return {
        _BAD_ADDRESS: f"expected {address}",
        _BAD_OP: f"expected {read} or {write}",
        _BAD_CYCLE: "expected a decimal cycle number",
        _MISSING: f"too few fields; expected {fmt.line_form}",
        _EXTRA: f"too many fields; expected {fmt.line_form}",
        _TOO_LARGE: "address too large (at most 2^63 - 1, or 18 decimal digits)",
        _DECREASING: "cycle is smaller than the previous request's; expected non-decreasing "
                     "arrival cycles",
    }


@njit(cache=True, inline="always")
def _skip_blanks(buf, i, end):
    while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 13):
        i += 1
    return i


@njit(cache=True, inline="always")
def _token_end(buf, i, end):
    while i < end and buf[i] != 32 and buf[i] != 9 and buf[i] != 13:
        i += 1
    return i


@njit(cache=True, inline="always")
def _hex_value(buf, start, stop):
    """Value of hex digits in buf[start:stop] (optional 0x); -1 if malformed, -2 if too big."""
    if stop - start > 2 and buf[start] == 48 and (buf[start + 1] == 120 or buf[start + 1] == 88):
        start += 2
    if start >= stop:
        return -1
    while start < stop - 1 and buf[start] == 48:  # leading zeros do not count toward the width
        start += 1
    if stop - start > 16:
        return -2
    value = np.uint64(0)
    for k in range(start, stop):
        c = buf[k]
        if 48 <= c <= 57:
            digit = c - 48
        elif 97 <= c <= 102:
            digit = c - 87
        elif 65 <= c <= 70:
            digit = c - 55
        else:
            return -1
        value = value * np.uint64(16) + np.uint64(digit)
    if value > np.uint64(_MAX_ADDRESS):
        return -2
    return np.int64(value)


@njit(cache=True, inline="always")
def _decimal_value(buf, start, stop):
    """Value of decimal digits in buf[start:stop]; -1 if malformed, -2 if over 18 digits."""
    if start >= stop:
        return -1
    if stop - start > 18:
        return -2
    value = 0
    for k in range(start, stop):
        c = buf[k]
        if c < 48 or c > 57:
            return -1
        value = value * 10 + (c - 48)
    return value


@njit(cache=True, inline="always")
def _word_code(buf, start, stop, word0, word1):
    """0 if buf[start:stop] spells word0, 1 if word1 (upper or all lower case), else -1."""
    for code in range(2):
        word = word0 if code == 0 else word1
        if stop - start != word.size:
            continue
        upper = True
        lower = True
        for k in range(word.size):
            c = buf[start + k]
            if c != word[k]:
                upper = False
            if c != word[k] + 32:
                lower = False
        if upper or lower:
            return code
    return -1


@njit(cache=True)
def _parse_block(buf, fmt, word0, word1, first_index, last_cycle, cycles, addresses, is_write):
    """Parse the complete lines of ``buf`` into the output arrays.

    Returns (requests parsed, index of the failing line within ``buf`` or -1, error code,
    byte offset of that line's start).
    """
    n = 0
    line = 0
    i = 0
    end = buf.size
    while i < end:
        line_start = i
        line_end = i
        while line_end < end and buf[line_end] != 10:
            line_end += 1
        i = _skip_blanks(buf, i, line_end)
        if i < line_end and buf[i] != 35:
            error = _OK
            address = 0
            cycle = 0
            op = 0
            stop = _token_end(buf, i, line_end)
            if fmt == DRAMSIM3:
                address = _hex_value(buf, i, stop)
                if address < 0:
                    error = _TOO_LARGE if address == -2 else _BAD_ADDRESS
                else:
                    i = _skip_blanks(buf, stop, line_end)
                    stop = _token_end(buf, i, line_end)
                    op = _word_code(buf, i, stop, word0, word1)
                    if i == line_end:
                        error = _MISSING
                    elif op < 0:
                        error = _BAD_OP
                    else:
                        i = _skip_blanks(buf, stop, line_end)
                        stop = _token_end(buf, i, line_end)
                        cycle = _decimal_value(buf, i, stop)
                        if i == line_end:
                            error = _MISSING
                        elif cycle < 0:
                            error = _BAD_CYCLE
                        elif cycle < last_cycle:
                            error = _DECREASING
            else:
                op = _word_code(buf, i, stop, word0, word1)
                if op < 0:
                    error = _BAD_OP
                else:
                    i = _skip_blanks(buf, stop, line_end)
                    stop = _token_end(buf, i, line_end)
                    if i == line_end:
                        error = _MISSING
                    elif stop - i > 2 and buf[i] == 48 and (buf[i + 1] == 120 or buf[i + 1] == 88):
                        address = _hex_value(buf, i, stop)
                    else:
                        address = _decimal_value(buf, i, stop)
                    if error == _OK and address < 0:
                        error = _TOO_LARGE if address == -2 else _BAD_ADDRESS
                    cycle = first_index + n
            if error == _OK and _skip_blanks(buf, stop, line_end) != line_end:
                error = _EXTRA
            if error != _OK:
                return n, line, error, line_start
            cycles[n] = cycle
            addresses[n] = address
            is_write[n] = op == 1
            last_cycle = cycle
            n += 1
        line += 1
        i = line_end + 1
    return n, -1, _OK, 0


def sniff_format(path: str | os.PathLike[str]) -> str:
    """The format of ``path`` judged by its first request line: ``ramulator`` if it starts with
    LD or ST, else ``dramsim3`` (also the answer for an empty file)."""
    with open(path, "rb") as file:
        for raw in file:
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            return "ramulator" if line.split()[0] in (b"LD", b"ST") else "dramsim3"
    return "dramsim3"


def read_memtrace(path: str | os.PathLike[str], fmt: str | None = None, *,
                  block_bytes: int = BLOCK_BYTES) -> Iterator[MemRequests]:
    """Yield the requests of ``path`` in chunks (``fmt`` None: sniffed, see ``sniff_format``)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise InputError("no such memory trace file", source=source)
    name = sniff_format(path) if fmt is None else fmt
    spec = MEMTRACE_FORMATS.get(name, source=source, field="format")
    words = [np.frombuffer(w.encode(), dtype=np.uint8) for w in spec.ops]
    return _chunks(path, spec, words, block_bytes)


def _chunks(path: Path, spec: MemTraceFormat, words: list[np.ndarray],
            block_bytes: int) -> Iterator[MemRequests]:
    lines_before = 0
    requests_before = 0
    last_cycle = 0
    carry = b""
    with open(path, "rb") as file:
        while True:
            block = file.read(block_bytes)
            data = carry + block
            cut = data.rfind(b"\n") + 1 if block else len(data)
            carry = data[cut:]
            if cut:
                buf = np.frombuffer(data, dtype=np.uint8, count=cut)
                size = int(np.count_nonzero(buf == 10)) + 1
                cycles = np.empty(size, dtype=np.int64)
                addresses = np.empty(size, dtype=np.int64)
                is_write = np.empty(size, dtype=np.bool_)
                n, bad_line, error, offset = _parse_block(
                    buf, spec.code, words[0], words[1], requests_before, last_cycle,
                    cycles, addresses, is_write)
                if bad_line >= 0:
                    _raise(path, spec, data, lines_before + bad_line + 1, error, offset)
                if n:
                    last_cycle = int(cycles[n - 1])
                    requests_before += n
                    yield MemRequests(cycles[:n], addresses[:n], is_write[:n])
                lines_before += size - 1
            if not block:
                return


def _raise(path: Path, spec: MemTraceFormat, data: bytes, line_number: int, error: int,
           offset: int) -> None:
    end = data.find(b"\n", offset)
    text = data[offset:end if end >= 0 else len(data)].decode(errors="replace").strip()
    raise InputError(f"line {line_number}: {_expectations(spec)[error]}, got {text[:80]!r}",
                     source=str(path))
