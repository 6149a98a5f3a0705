"""Encrypted embedding lookups under CKKS: the scheme's sizes and work (``ckks``) and the
lookup algorithms that turn a batch's shapes into CKKS operations (``lookup``).

The unit kind that runs them is ``simulator.core.units.fhe``; its engines' speeds are ``fhe``
presets (``hwmodels.fhe``); the real CKKS library that checks and times them is
``simulator.grounding.fhe_seal``.
"""
