"""Human units, parsed in one place.

Config files say ``"3.35 TB/s"``, ``"64 GiB"``, ``"14 ns"`` or ``"250 MHz"``; code works in SI
base units (bytes, seconds, bytes per second, hertz). Decimal prefixes are powers of 1000,
binary prefixes (KiB, MiB, ...) powers of 1024. A bare number is already in base units.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

from embsim.limits import MAX_SIZE
from embsim.validation import shown

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_PATTERN = re.compile(rf"^\s*{_NUMBER}\s*([A-Za-z/]*)\s*$")

_PREFIX = {
    "": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50,
}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12}


def _split(text: str | float | int, kind: str) -> tuple[float, str]:
    if isinstance(text, bool):
        raise ValueError(f"expected a {kind}, got {text!r}")
    if isinstance(text, (int, float)):
        value, unit = _finite(text, kind), ""
    elif not isinstance(text, str):
        raise ValueError(f"expected a {kind}, got {text!r}")
    else:
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"expected a {kind} such as {_EXAMPLE[kind]!r}, got {text!r}")
        value, unit = _finite(match.group(1), kind), match.group(2)
    return value, unit


def _finite(number: str | float | int, kind: str) -> float:
    """``number`` as a finite float (an int too large for a float, inf and nan are refused)."""
    try:
        value = float(number)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"expected a finite {kind}, got {shown(number)}")
    return value


_EXAMPLE = {"size": "64 GiB", "bandwidth": "3.35 TB/s", "time": "14 ns", "energy": "3.9 pJ",
            "frequency": "250 MHz"}
_ENERGY = {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "µJ": 1e-6, "nJ": 1e-9, "pJ": 1e-12, "fJ": 1e-15}


def _prefixed(value: float, unit: str, base: str, kind: str, original: object) -> float:
    if not unit:
        return value
    if unit.endswith(base):
        prefix = unit[: -len(base)]
        if prefix in _PREFIX:
            return value * _PREFIX[prefix]
    raise ValueError(f"expected a {kind} such as {_EXAMPLE[kind]!r}, got {original!r}")


def parse_size(text: str | float | int) -> float:
    """Bytes from ``"64 GiB"``, ``"80 GB"``, ``"256 B"`` or a bare number of bytes; at most
    ``limits.MAX_SIZE`` (1024 PiB), so that any size fits a 64-bit count of bytes."""
    value, unit = _split(text, "size")
    size = _prefixed(value, unit, "B", "size", text)
    if size > MAX_SIZE:
        raise ValueError(f"expected a size of at most 1024 PiB, got {shown(text)}")
    return size


def parse_bandwidth(text: str | float | int) -> float:
    """Bytes per second from ``"3.35 TB/s"``, ``"64 GiB/s"`` or a bare number."""
    value, unit = _split(text, "bandwidth")
    if unit and not unit.endswith("/s"):
        raise ValueError(f"expected a bandwidth such as '3.35 TB/s', got {text!r}")
    return _prefixed(value, unit[:-2] if unit else "", "B", "bandwidth", text)


def _scaled(text: str | float | int, kind: str, units: dict[str, float]) -> float:
    value, unit = _split(text, kind)
    if not unit:
        return value
    if unit not in units:
        raise ValueError(f"expected a {kind} such as {_EXAMPLE[kind]!r}, got {text!r}")
    return value * units[unit]


def parse_time(text: str | float | int) -> float:
    """Seconds from ``"14 ns"``, ``"1.5 us"``, ``"2 ms"`` or a bare number of seconds."""
    return _scaled(text, "time", _TIME)


def parse_energy(text: str | float | int) -> float:
    """Joules from ``"3.9 pJ"``, ``"1.2 nJ"`` or a bare number of joules."""
    return _scaled(text, "energy", _ENERGY)


def parse_frequency(text: str | float | int) -> float:
    """Hertz from ``"250 MHz"``, ``"1.2 GHz"`` or a bare number of hertz."""
    value, unit = _split(text, "frequency")
    return _prefixed(value, unit, "Hz", "frequency", text)


def format_size(num_bytes: float) -> str:
    """A short binary-prefixed rendering, e.g. ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(num_bytes) < 1024 or unit == "TiB":
            return f"{num_bytes:.4g} {unit}"
        num_bytes /= 1024
    raise AssertionError("unreachable")


Size = Annotated[float, BeforeValidator(parse_size)]
Bandwidth = Annotated[float, BeforeValidator(parse_bandwidth)]
Time = Annotated[float, BeforeValidator(parse_time)]
Energy = Annotated[float, BeforeValidator(parse_energy)]
Frequency = Annotated[float, BeforeValidator(parse_frequency)]
