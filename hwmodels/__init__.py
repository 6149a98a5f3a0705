"""Device models: memory tiers, links and caches.

Each model is a validated spec (from a preset YAML in ``hwmodels/presets/``, every number with a
``source:``) plus a timing model with a vectorised ``access(...)`` over arrays of requests and
explicit state that persists across calls. Knows nothing of SimPy or experiment YAML.
"""
