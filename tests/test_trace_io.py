"""Canonical Parquet traces: exact round trips, streaming reads, atomic writes, bad files."""

from __future__ import annotations

import json
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embsim.errors import InputError
from traces.batch import Batch
from traces.parquet_io import TraceWriter, open_trace, write_trace
from traces.schema import TableSpec, TraceMeta

META = TraceMeta([TableSpec(50, 8), TableSpec(7, 16, "float16"), TableSpec(1000, 4)],
                 batch_size=5, provenance={"test": "io"})


def random_batches(meta: TraceMeta, count: int, seed: int, *, with_ts: bool = False,
                   empty: tuple[int, ...] = ()) -> list[Batch]:
    """Batches with many zero-length bags; batches listed in ``empty`` have no lookups."""
    rng = np.random.default_rng(seed)
    batches = []
    for index in range(count):
        lengths = rng.integers(0, 4, size=(meta.num_tables, meta.batch_size))
        if index in empty:
            lengths[:] = 0
        table = np.repeat(np.arange(meta.num_tables), lengths.sum(axis=1))
        indices = rng.integers(0, meta.rows[table]).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths.ravel())]).astype(np.int64)
        ts = np.sort(rng.integers(0, 10**9, indices.size)) if with_ts else None
        batches.append(Batch(index, indices, offsets, meta.num_tables, meta.batch_size, ts))
    return batches


def assert_same(expected: list[Batch], got: list[Batch]) -> None:
    assert len(got) == len(expected)
    for want, have in zip(expected, got, strict=True):
        assert have.index == want.index
        assert have.indices.dtype == np.int64 and have.offsets.dtype == np.int64
        np.testing.assert_array_equal(have.indices, want.indices)
        np.testing.assert_array_equal(have.offsets, want.offsets)
        assert (have.ts_ns is None) == (want.ts_ns is None)
        if want.ts_ns is not None:
            np.testing.assert_array_equal(have.ts_ns, want.ts_ns)


def write_raw(path, columns: dict[str, pa.Array], meta: TraceMeta | None = META) -> None:
    """A Parquet file with exactly these columns and (optionally) the embsim metadata."""
    table = pa.table(columns)
    if meta is not None:
        table = table.replace_schema_metadata({"embsim": json.dumps(meta.to_json())})
    pq.write_table(table, path)


@pytest.mark.parametrize("with_ts", [False, True])
def test_round_trip_is_exact_including_empty_bags_and_batches(tmp_path, with_ts):
    batches = random_batches(META, 9, seed=1, with_ts=with_ts, empty=(0, 4, 7, 8))
    path = tmp_path / "t.parquet"
    with TraceWriter(path, META, row_group_lookups=7) as writer:
        for batch in batches:
            writer.write(batch)
    assert writer.meta.num_batches == 9
    reader = open_trace(path, chunk_lookups=5)
    assert reader.meta.to_json() == writer.meta.to_json()
    assert reader.meta.provenance == {"test": "io"}
    assert reader.num_lookups == sum(b.num_lookups for b in batches)
    assert pq.ParquetFile(path).metadata.num_row_groups > 3
    assert_same(batches, list(reader))
    assert_same(batches, list(reader))  # a reader can be iterated again


def test_file_layout_matches_the_documented_schema(tmp_path):
    batches = random_batches(META, 3, seed=2)
    write_trace(tmp_path / "t.parquet", META, batches)
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.schema.names == ["batch", "table", "bag", "row"]
    assert [str(t) for t in table.schema.types] == ["int32", "int32", "int32", "int64"]
    key = (table["batch"].to_numpy().astype(np.int64) * 1000
           + table["table"].to_numpy() * 10 + table["bag"].to_numpy())
    assert np.all(np.diff(key) >= 0)
    stored = json.loads(pq.ParquetFile(tmp_path / "t.parquet").metadata.metadata[b"embsim"])
    assert stored["num_batches"] == 3 and stored["batch_size"] == 5
    assert stored["tables"][1] == {"rows": 7, "dim": 16, "dtype": "float16"}


def test_columns_are_written_with_the_documented_encodings_and_statistics(tmp_path):
    batches = random_batches(META, 4, seed=4, with_ts=True)
    with TraceWriter(tmp_path / "t.parquet", META, row_group_lookups=16) as writer:
        for batch in batches:
            writer.write(batch)
    metadata = pq.ParquetFile(tmp_path / "t.parquet").metadata
    assert metadata.num_row_groups > 1
    for group in range(metadata.num_row_groups):
        chunks = {metadata.schema.column(i).name: metadata.row_group(group).column(i)
                  for i in range(metadata.num_columns)}
        assert "BYTE_STREAM_SPLIT" in chunks["row"].encodings
        assert "DELTA_BINARY_PACKED" in chunks["ts_ns"].encodings
        assert all("RLE_DICTIONARY" in chunks[c].encodings for c in ("batch", "table", "bag"))
        assert all(chunks[c].is_stats_set for c in ("batch", "table", "bag"))
        assert not chunks["row"].is_stats_set and not chunks["ts_ns"].is_stats_set
    assert_same(batches, list(open_trace(tmp_path / "t.parquet")))


def test_failure_after_row_groups_went_to_the_encoder_leaves_nothing(tmp_path):
    path = tmp_path / "t.parquet"
    batches = random_batches(META, 30, seed=7)
    with pytest.raises(ValueError, match="tables"), TraceWriter(
            path, META, row_group_lookups=8) as writer:
        for batch in batches:
            writer.write(batch)
        writer.write(Batch(30, batch.indices, batch.offsets[:4], 1, 3))
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("trace-writer")]


def test_reader_accepts_any_row_order_within_a_batch(tmp_path):
    batches = random_batches(META, 2, seed=3)
    write_trace(tmp_path / "sorted.parquet", META, batches)
    table = pq.read_table(tmp_path / "sorted.parquet")
    batch_col = table["batch"].to_numpy()
    shuffled = np.concatenate([np.random.default_rng(0).permutation(np.flatnonzero(batch_col == b))
                               for b in (0, 1)])
    table = table.take(pa.array(shuffled))
    write_raw(tmp_path / "shuffled.parquet", {n: table[n] for n in table.schema.names})
    got = list(open_trace(tmp_path / "shuffled.parquet"))
    for want, have in zip(batches, got, strict=True):
        np.testing.assert_array_equal(have.offsets, want.offsets)
        for bag in range(want.offsets.size - 1):
            lo, hi = want.offsets[bag], want.offsets[bag + 1]
            assert sorted(have.indices[lo:hi]) == sorted(want.indices[lo:hi])


def test_reader_streams_in_bounded_memory(tmp_path):
    meta = TraceMeta([TableSpec(10**6, 8)] * 4, batch_size=100)
    rng = np.random.default_rng(4)
    lengths = np.full(4 * 100, 50)
    offsets = np.concatenate([[0], np.cumsum(lengths)])

    def batches():
        for index in range(40):  # 40 batches x 20,000 lookups
            yield Batch(index, rng.integers(0, 10**6, offsets[-1]), offsets, 4, 100)

    path = tmp_path / "big.parquet"
    with TraceWriter(path, meta, row_group_lookups=25_000) as writer:
        for batch in batches():
            writer.write(batch)
    reader = open_trace(path, chunk_lookups=10_000)
    assert reader.num_lookups == 800_000
    decoded_bytes = reader.num_lookups * (3 * 4 + 8)
    baseline = pa.total_allocated_bytes()
    peak, seen = 0, 0
    for batch in reader:
        peak = max(peak, pa.total_allocated_bytes() - baseline)
        seen += batch.num_lookups
        assert batch.num_lookups == 20_000
    assert seen == 800_000
    assert peak < decoded_bytes / 8, (peak, decoded_bytes)


def test_reader_yields_before_reading_the_whole_file(tmp_path):
    batches = random_batches(META, 30, seed=5)
    path = tmp_path / "t.parquet"
    with TraceWriter(path, META, row_group_lookups=20) as writer:
        for batch in batches:
            writer.write(batch)
    reader = open_trace(path, chunk_lookups=8)
    pulled = []
    original = reader._file.iter_batches

    def counting(*args, **kwargs):
        for record_batch in original(*args, **kwargs):
            pulled.append(record_batch.num_rows)
            yield record_batch

    reader._file.iter_batches = counting
    first = next(iter(reader))
    assert first.index == 0
    assert sum(pulled) < reader.num_lookups / 5


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), TraceWriter(path, META) as writer:
        writer.write(random_batches(META, 1, seed=6)[0])
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_writer_rejects_a_missing_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        TraceWriter(tmp_path / "no" / "t.parquet", META)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such trace file") as err:
        open_trace(tmp_path / "absent.parquet")
    assert err.value.source.endswith("absent.parquet")


def test_not_a_parquet_file(tmp_path):
    (tmp_path / "t.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(InputError, match="not a Parquet file") as err:
        open_trace(tmp_path / "t.parquet")
    assert err.value.source.endswith("t.parquet")


def test_parquet_without_embsim_metadata(tmp_path):
    write_raw(tmp_path / "t.parquet", {"batch": pa.array([0], pa.int32())}, meta=None)
    with pytest.raises(InputError, match="not an embsim trace"):
        open_trace(tmp_path / "t.parquet")


def test_corrupt_metadata(tmp_path):
    table = pa.table({"batch": pa.array([0], pa.int32())})
    pq.write_table(table.replace_schema_metadata({"embsim": "{not json"}), tmp_path / "t.parquet")
    with pytest.raises(InputError, match="corrupt trace metadata") as err:
        open_trace(tmp_path / "t.parquet")
    assert err.value.field == "embsim"


def good_columns() -> dict[str, pa.Array]:
    return {"batch": pa.array([0, 0, 1], pa.int32()), "table": pa.array([0, 2, 1], pa.int32()),
            "bag": pa.array([0, 4, 3], pa.int32()), "row": pa.array([49, 999, 6], pa.int64())}


@pytest.mark.parametrize("column", ["batch", "table", "bag", "row"])
def test_missing_column(tmp_path, column):
    columns = good_columns()
    del columns[column]
    write_raw(tmp_path / "t.parquet", columns)
    with pytest.raises(InputError, match=f"missing column '{column}'") as err:
        open_trace(tmp_path / "t.parquet")
    assert err.value.field == column


def test_wrong_column_type(tmp_path):
    columns = good_columns()
    columns["row"] = pa.array([1.0, 2.0, 3.0])
    write_raw(tmp_path / "t.parquet", columns)
    with pytest.raises(InputError, match="'row' has type double") as err:
        open_trace(tmp_path / "t.parquet")
    assert err.value.field == "row"


def test_row_out_of_range_names_file_batch_table_row_and_size(tmp_path):
    columns = good_columns()
    columns["row"] = pa.array([49, 999, 7], pa.int64())  # table 1 has 7 rows
    write_raw(tmp_path / "t.parquet", columns)
    reader = open_trace(tmp_path / "t.parquet")
    with pytest.raises(InputError) as err:
        list(reader)
    message = str(err.value)
    assert "t.parquet" in message and "batch 1" in message and "table 1" in message
    assert "row 7" in message and "7 rows" in message


@pytest.mark.parametrize(("column", "value", "text"), [
    ("table", 3, "table 3 is outside [0, 3)"),
    ("bag", 5, "bag 5 is outside [0, 5)"),
    ("row", -1, "row -1 is outside"),
])
def test_ids_out_of_range(tmp_path, column, value, text):
    columns = good_columns()
    values = columns[column].to_pylist()
    values[-1] = value
    columns[column] = pa.array(values, columns[column].type)
    write_raw(tmp_path / "t.parquet", columns)
    with pytest.raises(InputError, match=text.replace("[", r"\[").replace(")", r"\)")):
        list(open_trace(tmp_path / "t.parquet"))


def test_interleaved_batches_are_rejected(tmp_path):
    columns = good_columns()
    columns["batch"] = pa.array([1, 0, 1], pa.int32())
    write_raw(tmp_path / "t.parquet", columns)
    with pytest.raises(InputError, match="ordered by batch"):
        list(open_trace(tmp_path / "t.parquet"))
