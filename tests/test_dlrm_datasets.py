"""Importer for Meta's dlrm_datasets files, on small files in exactly the published layout."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest
import torch

from embsim.errors import InputError
from traces.dlrm_datasets import import_dlrm_dataset
from traces.formats import detect_format, open_any

TABLES, SAMPLES = 3, 8


def published_tuple(seed: int = 0):
    """(indices, offsets, lengths) as torch tensors, with some empty bags."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 4, size=(TABLES, SAMPLES))
    lengths[1, 2] = 0
    highest = np.array([40, 9, 1000])
    table = np.repeat(np.arange(TABLES), lengths.sum(axis=1))
    indices = rng.integers(0, highest[table])
    offsets = np.concatenate([[0], np.cumsum(lengths.ravel())])
    return torch.from_numpy(indices), torch.from_numpy(offsets), torch.from_numpy(lengths)


def save(path, obj, *, gzipped: bool = False):
    with (gzip.open(path, "wb") if gzipped else open(path, "wb")) as file:
        torch.save(obj, file)
    return path


def expected_bag(data, table: int, sample: int) -> np.ndarray:
    indices, offsets, _ = (t.numpy() for t in data)
    bag = table * SAMPLES + sample
    return indices[offsets[bag]: offsets[bag + 1]]


@pytest.mark.parametrize("gzipped", [False, True])
def test_import_with_inferred_rows_matches_the_tuple(tmp_path, gzipped):
    data = published_tuple()
    path = save(tmp_path / "trace.bin", data, gzipped=gzipped)  # detected by magic, not name
    meta, batches = import_dlrm_dataset(path, batch_size=4)
    indices = data[0].numpy()
    offsets = data[1].numpy()
    inferred = [int(indices[offsets[t * SAMPLES]: offsets[(t + 1) * SAMPLES]].max()) + 1
                for t in range(TABLES)]
    assert [t.rows for t in meta.tables] == inferred
    assert meta.batch_size == 4 and meta.num_batches == 2
    assert meta.provenance["dropped_samples"] == 0 and meta.provenance["rows"] == "inferred"
    batches = list(batches)
    assert len(batches) == 2
    for batch in batches:
        assert batch.indices.dtype == np.int64 and batch.offsets.dtype == np.int64
        for t in range(TABLES):
            for b in range(4):
                bag = batch.indices[batch.offsets[t * 4 + b]: batch.offsets[t * 4 + b + 1]]
                np.testing.assert_array_equal(bag, expected_bag(data, t, batch.index * 4 + b))
    assert batches[0].lengths()[1, 2] == 0


def test_default_is_one_batch_of_all_samples(tmp_path):
    data = published_tuple()
    meta, batches = import_dlrm_dataset(save(tmp_path / "t.pt", data))
    (batch,) = list(batches)
    assert meta.batch_size == SAMPLES
    np.testing.assert_array_equal(batch.indices, data[0].numpy())
    np.testing.assert_array_equal(batch.offsets, data[1].numpy())


def test_rows_given_as_one_number_or_per_table(tmp_path):
    path = save(tmp_path / "t.pt", published_tuple())
    meta, _ = import_dlrm_dataset(path, rows=5000, dim=16, dtype="float16")
    assert {(t.rows, t.dim, t.dtype) for t in meta.tables} == {(5000, 16, "float16")}
    meta, _ = import_dlrm_dataset(path, rows=[100, 10, 2000])
    assert [t.rows for t in meta.tables] == [100, 10, 2000]
    assert meta.provenance["rows"] == "given"


def test_remainder_samples_are_dropped_and_recorded(tmp_path):
    meta, batches = import_dlrm_dataset(save(tmp_path / "t.pt", published_tuple()),
                                        batch_size=3)
    assert meta.num_batches == 2 and meta.provenance["dropped_samples"] == 2
    assert len(list(batches)) == 2


def test_detection_and_open_any(tmp_path):
    path = save(tmp_path / "weird_name.dat", published_tuple(), gzipped=True)
    assert detect_format(path) == "dlrm_datasets"
    meta, batches = open_any(path, batch_size=2)
    assert meta.num_batches == 4 and len(list(batches)) == 4


def test_rows_smaller_than_the_data(tmp_path):
    path = save(tmp_path / "t.pt", published_tuple())
    with pytest.raises(InputError, match="table 2: rows 10 is smaller") as err:
        import_dlrm_dataset(path, rows=[50, 10, 10])
    assert err.value.field == "rows" and "t.pt" in str(err.value)
    with pytest.raises(InputError, match="expected 3 row counts"):
        import_dlrm_dataset(path, rows=[50, 10])


def test_batch_size_larger_than_the_samples(tmp_path):
    with pytest.raises(InputError, match=r"batch size must be in \[1, 8\]"):
        import_dlrm_dataset(save(tmp_path / "t.pt", published_tuple()), batch_size=9)


def inconsistent(kind: str):
    indices, offsets, lengths = published_tuple()
    if kind == "offsets length":
        return indices, offsets[:-1], lengths
    if kind == "lengths sum":
        lengths = lengths.clone()
        lengths[0, 0] += 1
        return indices, offsets, lengths
    if kind == "not monotone":
        offsets = offsets.clone()
        offsets[5] = offsets[6] + 1
        return indices, offsets, lengths
    if kind == "offsets end":
        return indices[:-1], offsets, lengths
    if kind == "float tensor":
        return indices.double(), offsets, lengths
    if kind == "two tensors":
        return indices, offsets
    raise AssertionError(kind)


@pytest.mark.parametrize(("kind", "text"), [
    ("offsets length", "T\\*B \\+ 1"),
    ("lengths sum", "must equal diff\\(offsets\\)"),
    ("not monotone", "non-decreasing"),
    ("offsets end", "expected len\\(indices\\)"),
    ("float tensor", "integer tensor"),
    ("two tensors", "tuple of 3 tensors"),
])
def test_inconsistent_tuples_are_input_errors(tmp_path, kind, text):
    path = save(tmp_path / "bad.pt", inconsistent(kind))
    with pytest.raises(InputError, match=text) as err:
        import_dlrm_dataset(path)
    assert "bad.pt" in str(err.value)


def test_missing_corrupt_and_truncated_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        import_dlrm_dataset(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x80\x02 definitely not a torch file")
    with pytest.raises(InputError, match="not a readable torch.save file"):
        import_dlrm_dataset(tmp_path / "junk.pt")
    packed = gzip.compress(b"x" * 1000)
    (tmp_path / "cut.pt.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InputError, match="corrupt gzip data"):
        import_dlrm_dataset(tmp_path / "cut.pt.gz")


def test_missing_torch_tells_how_to_install_it(tmp_path, monkeypatch):
    path = save(tmp_path / "t.pt", published_tuple())
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(InputError, match=r"pip install 'embsim\[torch\]'"):
        import_dlrm_dataset(path)
