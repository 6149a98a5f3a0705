"""The embsim simulator: SimPy engine, system assembly, metrics, experiments and the CLI."""
