"""Per-point result shards, and the results table merged from them.

Each point's outcome is kept in ``DIR/shards/`` under its config hash the moment it arrives:
``<hash>.parquet`` (one row: ``config_hash``, ``status``, ``error``, metrics, ``wall_s``),
preceded by ``<hash>.queries.parquet`` with ``--per-query`` and by ``<hash>.traceback.txt`` when
the point failed. Every file is written atomically, so a killed run leaves whole shards or none.
A shard with ``status: ok`` is a finished point: later runs of any sweep that contains the same
resolved config reuse it. Coordinates (``point``, ``case``, swept paths, ``repeat``) are not
stored in shards but taken from the current sweep when the table is merged, so editing a sweep
keeps the finished points that it still contains.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from embsim.errors import InputError
from simulator.runs.executors import Outcome
from simulator.runs.experiment import Point
from simulator.runs.results import write_parquet, write_text


class ShardStore:
    """The shards of one results folder."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.dir = out_dir / "shards"

    def row_path(self, config_hash: str) -> Path:
        return self.dir / f"{config_hash}.parquet"

    def queries_path(self, config_hash: str) -> Path:
        return self.dir / f"{config_hash}.queries.parquet"

    def traceback_path(self, config_hash: str) -> Path:
        return self.dir / f"{config_hash}.traceback.txt"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock while a sweep writes into it (a second run into the same
        folder is an ``InputError``) and clear temporary files that a killed run left. The
        lock is on the shards folder itself, so no lock file is left behind."""
        self.dir.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.dir, os.O_RDONLY)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError("another embsim run is writing into this folder",
                                 source=str(self.out_dir), field="--out") from None
            for folder in (self.out_dir, self.dir):
                for temporary in folder.glob(".*.tmp"):
                    temporary.unlink(missing_ok=True)
            yield
        finally:
            os.close(handle)

    def read(self, config_hash: str) -> dict[str, Any] | None:
        """The shard's row, or None if there is none (or it cannot be read: it is rerun)."""
        try:
            return pd.read_parquet(self.row_path(config_hash)).to_dict("records")[0]
        except (OSError, ValueError, IndexError):
            return None

    def rows(self, hashes: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Every readable shard among ``hashes``, finished or failed."""
        found = {h: self.read(h) for h in hashes if self.row_path(h).exists()}
        return {h: row for h, row in found.items() if row is not None}

    def is_finished(self, row: dict[str, Any] | None, per_query: bool) -> bool:
        """Whether a shard's point needs no rerun: it succeeded (and has its per-query
        latencies, if they are wanted)."""
        return (row is not None and row.get("status") == "ok"
                and (not per_query or self.queries_path(row["config_hash"]).exists()))

    def save(self, outcome: Outcome) -> None:
        """Write an outcome's files; the row goes last, so it marks the point as done."""
        config_hash = outcome.config_hash
        if outcome.per_query is not None:
            write_parquet(outcome.per_query, self.queries_path(config_hash))
        if outcome.traceback is not None:
            write_text(outcome.traceback, self.traceback_path(config_hash))
        else:
            self.traceback_path(config_hash).unlink(missing_ok=True)
        write_parquet(pd.DataFrame([outcome.row]), self.row_path(config_hash))

    def per_query(self, points: list[Point]) -> pd.DataFrame:
        """The per-query latencies of the points that have them, with their ``point`` index."""
        frames = []
        for point in points:
            path = self.queries_path(point.config_hash)
            if path.exists():
                frame = pd.read_parquet(path)
                frame.insert(0, "point", point.index)
                frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def results_table(points: list[Point], measured: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per point that has a measurement: coordinates, then the measurement, with
    ``wall_s`` last. A swept column of mixed types (a value given in several forms) or of
    lists and mappings is stored as text."""
    frame = pd.DataFrame([{**p.columns(), **measured[p.config_hash]} for p in points
                          if p.config_hash in measured])
    if "wall_s" in frame.columns:
        frame = frame[[c for c in frame.columns if c != "wall_s"] + ["wall_s"]]
    for column in frame.columns:
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column] if not _missing(v)}
            if len(kinds) > 1 or kinds & {list, dict}:
                frame[column] = frame[column].map(_as_text)
    return frame


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_text(value: Any) -> str | None:
    if _missing(value):
        return None
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
