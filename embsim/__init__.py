"""Shared foundations of embsim: errors, human units and name registries.

The simulator proper lives in the sibling packages ``traces`` (what is accessed),
``hwmodels`` (the devices that serve accesses) and ``simulator`` (the SimPy engine,
experiments and the ``embsim`` command).
"""

__version__ = "0.1.0"
