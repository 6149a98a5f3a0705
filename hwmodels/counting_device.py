"""The part of ``Device.service`` every request-level model shares: array conversion and the
read/write counts; each model supplies ``_serve`` (completion times, its own counters)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from hwmodels.device import Device


class CountingDevice(Device):
    """A ``Device`` that counts reads and writes."""

    def __init__(self, spec: Any, **attributes: Any) -> None:
        """``attributes``: ``Device``'s (request_bytes, cycle_s, capacity, peak_bandwidth)."""
        super().__init__(spec, **attributes)
        self.reads = 0
        self.writes = 0

    def service(self, arrival_s: np.ndarray, addresses: np.ndarray,
                is_write: np.ndarray) -> np.ndarray:
        arrival = np.ascontiguousarray(arrival_s, dtype=np.float64)
        addr = np.ascontiguousarray(addresses, dtype=np.int64)
        write = np.ascontiguousarray(is_write, dtype=np.bool_)
        if arrival.size == 0:
            return np.empty(0)
        done = self._serve(arrival, addr, write)
        writes = int(np.count_nonzero(write))
        self.writes += writes
        self.reads += arrival.size - writes
        return done

    @abstractmethod
    def _serve(self, arrival_s: np.ndarray, addresses: np.ndarray,
               is_write: np.ndarray) -> np.ndarray:
        """Completion time of each request (contiguous float64/int64/bool arrays, non-empty)."""

    def host_counts(self) -> dict[str, int]:
        """Requests, reads, writes and the bytes they moved at ``request_bytes`` each."""
        return {
            "requests": self.reads + self.writes,
            "reads": self.reads,
            "writes": self.writes,
            "bytes_read": self.reads * self.request_bytes,
            "bytes_written": self.writes * self.request_bytes,
        }
