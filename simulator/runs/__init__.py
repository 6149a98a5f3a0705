"""Running experiments: loading, sweeps, executors, shards, results, compare and plots."""
