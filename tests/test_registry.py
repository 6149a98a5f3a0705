import pytest

from embsim.errors import InputError
from embsim.registry import Registry


def test_register_and_get():
    reg: Registry[int] = Registry("widget")
    reg.register("b")(2)
    reg.register("a")(1)
    assert reg.get("a") == 1
    assert reg.names() == ["a", "b"]
    assert "b" in reg


def test_unknown_name_lists_choices():
    reg: Registry[int] = Registry("widget")
    reg.register("lru")(1)
    reg.register("lfu")(2)
    with pytest.raises(InputError, match="unknown widget 'fifo'; expected one of: lfu, lru"):
        reg.get("fifo", source="x.yaml", field="system.cache.policy")


def test_duplicate_registration_is_a_bug():
    reg: Registry[int] = Registry("widget")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="twice"):
        reg.register("a")(2)
