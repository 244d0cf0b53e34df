from __future__ import annotations

import pytest

from automl_noisy.errors import UserError
from automl_noisy.registry import Registry


def test_register_get_names():
    reg = Registry("widget")

    @reg.register("b")
    class B:
        pass

    @reg.register("a")
    class A:
        pass

    assert reg.names() == ["a", "b"] and reg.get("a") is A and A.name == "a" and "b" in reg and len(reg) == 2


def test_duplicate_name_is_an_error():
    reg = Registry("widget")
    reg.register("a")(type("A", (), {}))
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(type("A2", (), {}))


def test_none_is_reserved():
    with pytest.raises(ValueError, match="reserved"):
        Registry("widget").register("none")(type("N", (), {}))


def test_unknown_name_lists_choices():
    reg = Registry("loss")
    reg.register("ce")(type("CE", (), {}))
    with pytest.raises(UserError, match=r"unknown loss 'cee'; choose one of: ce"):
        reg.get("cee")
