"""One registry type and one pool type: the same rules for sources, drivers and nodes."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest

from kvmrpa import UrlError
from kvmrpa._registry import RefPool, Registry
from kvmrpa.capture import SOURCES, get_hub, open_source, register_source, registered_schemes
from kvmrpa.kvm import DRIVERS, open_driver, register_driver, use_driver
from kvmrpa.kvm import get_hub as driver_hub
from kvmrpa.kvm import registered_schemes as driver_schemes


def _factory(url: str) -> Any:  # pragma: no cover - never called
    raise AssertionError(url)


def _other(url: str) -> Any:  # pragma: no cover - never called
    raise AssertionError(url)


def test_duplicates_are_refused_unless_replaced_and_the_same_object_is_idempotent() -> None:
    reg: Registry[Any] = Registry("thing", error=UrlError, normalize=str.lower)
    reg.register("One", _factory)
    reg.register("one", _factory)  # the same object again: nothing happens
    with pytest.raises(UrlError, match=r"thing 'one' is already registered .*_factory.*replace=True"):
        reg.register("ONE", _other)
    reg.register("one", _other, replace=True)
    assert reg.get("one") is _other and reg.names() == ["one"] and "One" in reg
    assert reg.unregister("one") is _other and reg.get("one") is None and reg.names() == []
    assert reg.unregister("one") is None


def test_temporarily_puts_back_what_was_there() -> None:
    reg: Registry[Any] = Registry("thing")
    with reg.temporarily("a", _factory):
        assert reg.get("a") is _factory
    assert reg.get("a") is None
    reg.register("b", _factory)
    with reg.temporarily("b", _other):
        assert reg.get("b") is _other
    assert reg.get("b") is _factory


def test_entry_points_load_on_first_use_and_a_broken_one_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [EntryPoint("good", "tests.core.test_registry:_factory", "kvmrpa.test_group"),
           EntryPoint("bad", "tests.core.no_such_module:x", "kvmrpa.test_group")]
    monkeypatch.setattr("kvmrpa._registry.entry_points",
                        lambda group: [e for e in eps if e.group == group])
    reg: Registry[Any] = Registry("test scheme", "kvmrpa.test_group", error=UrlError)
    assert reg.names() == ["bad", "good"]  # listed, not loaded
    assert reg.get("good") is _factory
    with pytest.raises(UrlError, match=r"test scheme 'bad': entry point 'tests.core.no_such_module:x' "
                                       r"\(group kvmrpa.test_group\) cannot be loaded"):
        reg.get("bad")
    with pytest.raises(UrlError, match="already registered"):
        reg.register("good", _other)


def test_sources_and_drivers_share_the_rules() -> None:
    assert "sim" in registered_schemes() and "sim" in driver_schemes()
    for register, registry in ((register_source, SOURCES), (register_driver, DRIVERS)):
        with registry.temporarily("regtest", _factory):
            with pytest.raises(UrlError, match="already registered"):
                register("regtest", _other)
            register("regtest", _factory)  # the same factory: fine
        assert "regtest" not in registry
        with pytest.raises(UrlError, match="invalid URL scheme"):
            register("bad scheme", _factory)


def test_pool_counts_users_and_refuses_a_release_too_many() -> None:
    pool: RefPool[object] = RefPool("thing", error=UrlError)
    made: list[object] = []

    def create() -> object:
        made.append(object())
        return made[-1]

    a = pool.acquire("k", create)
    assert pool.acquire("k", create) is a and len(made) == 1 and pool.refs(a) == 2
    assert pool.release(a) == ("k", 1) and pool.release(a) == ("k", 0)
    with pytest.raises(UrlError, match="released more often than opened"):
        pool.release(a)
    assert pool.refcounts() == {"k": 0} and pool.discard("k", a) is a and pool.objects() == []


def test_open_source_and_open_driver_as_context_managers() -> None:
    url = "pattern://counter?width=64&height=48&fps=30"
    with open_source(url) as src:
        assert get_hub().refs(src) == 1
        with open_source(url) as again:
            assert again is src and get_hub().refs(src) == 2
        assert get_hub().refs(src) == 1
    assert get_hub().refs(src) == 0  # released (it may linger), not stopped by the block
    with use_driver("dryrun://regtest") as drv:
        assert driver_hub().refs(drv) == 1
        assert driver_hub().refcounts() == {"dryrun://regtest": 1}
    assert driver_hub().refs(drv) == 0
    with open_driver("dryrun://regtest") as drv:
        assert driver_hub().refs(drv) == 1
    assert driver_hub().refs(drv) == 0


def test_both_hubs_name_the_same_operations_the_same_way() -> None:
    ops = {"open", "release", "use", "refs", "refcounts", "close"}
    assert ops <= set(dir(get_hub())) and ops <= set(dir(driver_hub()))
