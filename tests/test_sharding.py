"""Sharding strategies (simulator/core/sharding.py): each strategy's rule on a small example,
and a table that fits no node."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.core.sharding import SHARDINGS, ShardingError, ShardingInput

MiB = 2**20


def shard(name, table_mib, room_mib, loads=None, nets=None):
    sizes = np.array(table_mib, dtype=np.int64) * MiB
    loads = np.zeros(sizes.size) if loads is None else np.asarray(loads, dtype=float)
    room = np.array(room_mib, dtype=np.int64) * MiB
    return SHARDINGS.get(name)(ShardingInput(sizes, loads, room, nets)).tolist()


def test_the_registry_lists_lui_et_al_strategies_and_one_table_per_shard():
    assert set(SHARDINGS.names()) >= {"one_table_per_shard", "capacity_balanced",
                                      "load_balanced", "net_specific_bin_packing"}


def test_one_table_per_shard_puts_table_i_on_node_i():
    assert shard("one_table_per_shard", [5, 1, 3], [8, 8, 8, 8]) == [0, 1, 2]
    with pytest.raises(ShardingError, match="needs 3 nodes"):
        shard("one_table_per_shard", [5, 1, 3], [8, 8])


def test_capacity_balanced_evens_out_the_bytes_per_node():
    # largest first, each on the node with the most room left: 6 on node 0 (room 4 left),
    # 5 on node 1 (room 5), 4 on node 1 (5 > 4), 3 on node 0
    node = shard("capacity_balanced", [3, 6, 4, 5], [10, 10])
    assert node == [0, 0, 1, 1]
    per_node = np.bincount(node, weights=[3, 6, 4, 5])
    assert per_node.tolist() == [9, 9]


def test_load_balanced_evens_out_the_profiled_load_not_the_bytes():
    # one big cold table and three small hot ones: balancing bytes puts the big one alone
    # and every hot table together; balancing load puts the hottest beside the cold one
    loads = np.array([1, 100, 60, 50])
    node = shard("load_balanced", [8, 1, 1, 1], [10, 10], loads=loads)
    assert node == [0, 0, 1, 1]
    assert np.bincount(node, weights=loads).tolist() == [101, 110]
    capacity = shard("capacity_balanced", [8, 1, 1, 1], [10, 10])
    assert capacity == [0, 1, 1, 1]
    assert np.bincount(capacity, weights=loads).tolist() == [1, 210]


def test_load_balanced_respects_capacity():
    # the two hottest tables would share the least-loaded node but do not fit together
    node = shard("load_balanced", [6, 6, 1], [10, 10], loads=[100, 90, 1])
    assert node[0] != node[1]


def test_net_specific_bin_packing_packs_each_net_into_as_few_nodes_as_fit():
    # net A (tables 0, 1, 2: 4+3+2 MiB) fits one 10 MiB node; net B (3, 4: 7+6) needs two,
    # none shared with net A
    node = shard("net_specific_bin_packing", [4, 3, 2, 7, 6], [10, 10, 10, 10],
                 nets=[[0, 1, 2], [3, 4]])
    assert node == [0, 0, 0, 1, 2]
    # without nets: one net, packed first fit, largest first
    assert shard("net_specific_bin_packing", [4, 3, 2, 7, 6], [10, 10, 10, 10]) == \
        [1, 0, 2, 0, 1]


@pytest.mark.parametrize("name", ["capacity_balanced", "load_balanced",
                                  "net_specific_bin_packing"])
def test_a_table_that_fits_no_node_is_an_error(name):
    with pytest.raises(ShardingError, match="table 1"):
        shard(name, [2, 12], [10, 10])


def test_strategies_place_every_table_within_the_nodes_room():
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 6, size=20)
    room = [30, 30, 30, 30]
    for name in ("capacity_balanced", "load_balanced", "net_specific_bin_packing"):
        node = np.array(shard(name, sizes, room, loads=rng.random(20)))
        assert (node >= 0).all()
        assert (np.bincount(node, weights=sizes, minlength=4) <= 30).all()
