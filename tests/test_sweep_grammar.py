"""The sweep grammar: grid, zip, cases, repeats, include/exclude, and point identity."""

from __future__ import annotations

import pytest
from conftest import experiment

from embsim.errors import InputError
from simulator.runs.experiment import load_points
from simulator.runs.sweep import derive_seed


def points_of(write_experiment, sweep, **overrides):
    data = experiment(**overrides)
    data["sweep"] = sweep
    return load_points(write_experiment(data), {})[1]


def test_grid_is_a_cartesian_product_last_path_fastest(write_experiment):
    points = points_of(write_experiment, {"grid": {"system.cache.ways": [4, 8],
                                                   "system.cache.policy": ["lru", "lfu"]}})
    assert [p.overrides for p in points] == [
        {"system.cache.ways": 4, "system.cache.policy": "lru"},
        {"system.cache.ways": 4, "system.cache.policy": "lfu"},
        {"system.cache.ways": 8, "system.cache.policy": "lru"},
        {"system.cache.ways": 8, "system.cache.policy": "lfu"}]
    assert [p.index for p in points] == [0, 1, 2, 3]
    assert points[3].config.system.cache.ways == 8
    assert points[3].config.system.cache.policy == "lfu"


def test_zip_groups_advance_together_and_combine_with_the_grid(write_experiment):
    points = points_of(write_experiment, {
        "grid": {"system.cache.policy": ["lru", "lfu"]},
        "zip": [{"workload.generator.alpha": [0.9, 1.2], "workload.generator.seed": [1, 2]},
                {"run.seed": [5, 6, 7]}]})
    assert len(points) == 2 * 2 * 3
    pairs = {(p.config.workload.generator.alpha, p.config.workload.generator.seed)
             for p in points}
    assert pairs == {(0.9, 1), (1.2, 2)}


def test_zip_lists_of_different_lengths(write_experiment):
    with pytest.raises(InputError, match="has 3 values but sweep.zip.run.seed has 2") as err:
        points_of(write_experiment, {"zip": {"run.seed": [1, 2],
                                             "workload.generator.seed": [1, 2, 3]}})
    assert err.value.field == "sweep.zip.workload.generator.seed"


def test_cases_are_named_override_sets_outermost(write_experiment):
    points = points_of(write_experiment, {
        "cases": {"small": {"system.cache.size": "16 KiB"},
                  "big": {"system.cache.size": "1 MiB", "system.cache.ways": "full"}},
        "grid": {"system.cache.policy": ["lru", "lfu"]}})
    assert [(p.case, p.overrides["system.cache.policy"]) for p in points] == [
        ("small", "lru"), ("small", "lfu"), ("big", "lru"), ("big", "lfu")]
    assert points[2].config.system.cache.ways == "full"
    assert points[0].columns() == {"point": 0, "case": "small", "system.cache.size": "16 KiB",
                                   "system.cache.policy": "lru"}


def test_a_path_swept_twice_is_an_error(write_experiment):
    with pytest.raises(InputError, match="also swept in sweep.cases") as err:
        points_of(write_experiment, {"cases": {"a": {"system.cache.ways": 4}},
                                     "grid": {"system.cache.ways": [8]}})
    assert err.value.field == "sweep.grid.system.cache.ways"


def test_repeats_derive_seeds_and_repeat_zero_keeps_the_point(write_experiment):
    plain = points_of(write_experiment, {"grid": {"system.cache.ways": [4, 8]}})
    repeated = points_of(write_experiment, {"grid": {"system.cache.ways": [4, 8]},
                                            "repeats": 3})
    assert len(repeated) == 6
    assert [p.repeat for p in repeated] == [0, 1, 2, 0, 1, 2]
    # repeat 0 is the point as configured: adding repeats reuses finished points
    assert repeated[0].config_hash == plain[0].config_hash
    assert repeated[3].config_hash == plain[1].config_hash
    seeds = [(p.config.run.seed, p.config.workload.generator.seed) for p in repeated[:3]]
    assert seeds[0] == (0, 3)
    assert seeds[1] == (derive_seed(0, 1), derive_seed(3, 1))
    assert len(set(seeds)) == 3
    assert len({p.config_hash for p in repeated}) == 6
    assert repeated[1].overrides["run.seed"] == derive_seed(0, 1)


def test_repeats_of_a_trace_workload_vary_only_the_run_seed(write_experiment):
    points = points_of(write_experiment, {"repeats": 2},
                       workload={"trace": "t.parquet"})
    assert [set(p.overrides) for p in points] == [{"run.seed"}, {"run.seed"}]


def test_repeat_seed_paths_can_be_chosen(write_experiment):
    points = points_of(write_experiment, {"repeats": {"count": 2, "seeds": ["run.seed"]}})
    assert points[1].config.workload.generator.seed == 3
    assert points[1].config.run.seed == derive_seed(0, 1)
    with pytest.raises(InputError, match="expected an integer seed") as err:
        points_of(write_experiment, {"repeats": {"count": 2, "seeds": ["system.cache.size"]}})
    assert err.value.field == "sweep.repeats.seeds"


def test_derived_seeds_are_stable():
    assert derive_seed(7, 0) == 7
    assert derive_seed(7, 1) == derive_seed(7, 1) != derive_seed(7, 2)
    assert derive_seed(7, 1) == 0xD7A0CEE7  # sha256("7:1")[:8]: the same on every machine


def test_include_and_exclude_filter_points(write_experiment):
    sweep = {"grid": {"system.cache.ways": [2, 4, 8], "system.cache.policy": ["lru", "lfu"]}}
    include = points_of(write_experiment, {
        **sweep, "include": [{"system.cache.ways": [2, 4], "system.cache.policy": "lru"},
                             {"system.cache.ways": 8}]})
    assert [(p.overrides["system.cache.ways"], p.overrides["system.cache.policy"])
            for p in include] == [(2, "lru"), (4, "lru"), (8, "lru"), (8, "lfu")]
    assert [p.index for p in include] == [0, 1, 2, 3]
    exclude = points_of(write_experiment, {**sweep, "exclude": [{"system.cache.policy": "lfu"}]})
    assert {p.overrides["system.cache.policy"] for p in exclude} == {"lru"}
    cases = points_of(write_experiment, {"cases": {"a": {}, "b": {"run.seed": 1}},
                                         "exclude": [{"case": "a"}]})
    assert [p.case for p in cases] == ["b"]


@pytest.mark.parametrize(("condition", "message"), [
    ({"system.cache.size": "1 MiB"}, "'system.cache.size' is not swept; expected one of: "
                                     "system.cache.ways"),
    ({"system.cache.ways": 16}, "system.cache.ways never takes the value 16; it takes: 2, 4"),
])
def test_filters_name_only_swept_paths_and_values(write_experiment, condition, message):
    with pytest.raises(InputError, match=message) as err:
        points_of(write_experiment, {"grid": {"system.cache.ways": [2, 4]},
                                     "exclude": [condition]})
    assert err.value.field == "sweep.exclude[0]"


def test_filters_that_leave_nothing(write_experiment):
    with pytest.raises(InputError, match="leave no point") as err:
        points_of(write_experiment, {"grid": {"system.cache.ways": [2]},
                                     "exclude": [{"system.cache.ways": 2}]})
    assert err.value.field == "sweep.exclude"


def test_unknown_sweep_key(write_experiment):
    with pytest.raises(InputError, match="unknown key") as err:
        points_of(write_experiment, {"product": {"system.cache.ways": [2]}})
    assert err.value.field == "sweep.product"


def test_config_hash_identifies_the_resolved_config(write_experiment):
    by_grid = points_of(write_experiment, {"grid": {"system.cache.ways": [4]}})
    by_case = points_of(write_experiment, {"cases": {"four": {"system.cache.ways": 4}}},
                        name="renamed")
    assert by_grid[0].config_hash == by_case[0].config_hash
    unchanged = points_of(write_experiment, {"grid": {"system.cache.ways": [8]}})
    assert unchanged[0].config_hash != by_grid[0].config_hash
