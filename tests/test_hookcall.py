"""Per-result hooks called without pluggy's machinery (#19) are called as pluggy calls
them: the same implementations, order, arguments and errors; pluggy still makes the call
when a wrapper implements the hook or hook calls are traced."""

from __future__ import annotations

from typing import Any, Generator, List

import pluggy
import pytest

from claudebatch import hookimpl, hookspecs
from claudebatch._hookcall import direct_caller


def _manager(*plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("claudebatch")
    pm.add_hookspecs(hookspecs)
    for plugin in plugins:
        pm.register(plugin)
    return pm


def _plugins(seen: List[Any]) -> List[object]:
    class Plain:
        @hookimpl
        def on_result(self, result: Any, line: bytes) -> None:
            seen.append(("plain", result, line))

    class First:
        @hookimpl(tryfirst=True)
        def on_result(self, raw: Any) -> str:
            seen.append(("first", raw))
            return "ignored"

    class Last:
        @hookimpl(trylast=True)
        def on_result(self, context: Any, batch: Any) -> None:
            seen.append(("last", context, batch))

    class Other:
        @hookimpl
        def on_result(self) -> None:
            seen.append(("other",))

    return [Plain(), Last(), First(), Other()]


def _call(hook: Any) -> None:
    hook(result="R", raw={"r": 1}, line=b"L", context="C", batch="B")


def test_the_direct_call_calls_what_pluggy_calls_in_its_order() -> None:
    by_pluggy: List[Any] = []
    _call(_manager(*_plugins(by_pluggy)).hook.on_result)
    direct: List[Any] = []
    caller = _manager(*_plugins(direct)).hook.on_result
    call = direct_caller(caller)
    assert call is not caller
    _call(call)
    assert direct == by_pluggy
    assert [entry[0] for entry in direct] == ["first", "other", "plain", "last"]


def test_an_error_stops_the_call_as_pluggy_s_does() -> None:
    seen: List[Any] = []

    class Boom:
        @hookimpl
        def on_result(self) -> None:
            raise ValueError("boom")

    for make in (lambda c: c, direct_caller):
        seen.clear()
        plugins = _plugins(seen)
        pm = _manager(plugins[0], Boom(), plugins[1])  # Boom runs before Plain
        with pytest.raises(ValueError, match="boom"):
            _call(make(pm.hook.on_result))
        assert [entry[0] for entry in seen] == []


def test_pluggy_makes_the_call_for_a_wrapper_or_when_calls_are_traced() -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def on_result(self) -> Generator[None, None, None]:
            yield

    pm = _manager(Wrapper(), *_plugins([]))
    assert direct_caller(pm.hook.on_result) is pm.hook.on_result
    traced = _manager(*_plugins([]))
    traced.add_hookcall_monitoring(lambda *a: None, lambda *a: None)
    assert direct_caller(traced.hook.on_result) is traced.hook.on_result


def test_plugins_registered_or_unregistered_after_the_caller_is_made_are_called_as_now() -> None:
    """A caller made once per batch (or per ``client.results()`` stream) must not keep
    calling a plugin unregistered since, nor skip one registered since:
    ``client.plugin_manager`` is public, and a plugin may leave after a few results."""
    seen: List[Any] = []
    plain, last, first, other = _plugins(seen)
    pm = _manager(plain, last)
    call = direct_caller(pm.hook.on_result)
    pm.unregister(plain)
    pm.register(first)
    pm.register(other)
    _call(call)
    direct = list(seen)
    seen.clear()
    _call(pm.hook.on_result)
    assert direct == seen
    assert [entry[0] for entry in direct] == ["first", "other", "last"]


def test_hook_calls_traced_after_the_caller_is_made_are_traced() -> None:
    traced: List[str] = []
    pm = _manager(*_plugins([]))
    call = direct_caller(pm.hook.on_result)
    undo = pm.add_hookcall_monitoring(lambda name, *a: traced.append(name),
                                      lambda *a: None)
    _call(call)
    assert traced == ["on_result"]
    undo()
    _call(call)
    assert traced == ["on_result"]
