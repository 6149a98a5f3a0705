"""The simulation core: config, system assembly, compute units, stages, engine, metrics."""
