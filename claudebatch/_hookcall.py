"""Calling a per-result hook's implementations without pluggy's machinery.

``on_result`` and ``keep_answer`` run once per result line: with four plugins, pluggy's
generic call (argument lists, the result list, wrapper bookkeeping) cost more than some
plugins' own work. When no implementation is a wrapper and nothing traces or monitors
hook calls, calling each implementation in pluggy's order with the arguments it names is
the same call; otherwise pluggy makes it. A caller is made once per batch (or per
``client.results()`` stream), so it checks at each call that the implementations and the
monitoring are still those it saw: a plugin registered or unregistered since (through the
public ``client.plugin_manager``), or tracing turned on, sends the call back to pluggy.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Dict, List, Sequence, Tuple

_multicall: Any
try:
    from pluggy._callers import _multicall
except ImportError:  # pragma: no cover - a pluggy that moved it: pluggy calls every hook
    _multicall = None


def direct_caller(caller: Any) -> Callable[..., None]:
    """A function taking the hook's keyword arguments that calls its implementations as
    pluggy would (last registered first; ``tryfirst``/``trylast`` as ordered), ignoring
    what they return; ``caller`` itself when pluggy must make the call."""
    live = getattr(caller, "_hookimpls", None)  # pluggy's own list, changed in place
    manager: Any = getattr(getattr(caller, "_hookexec", None), "__self__", None)
    if _multicall is None or type(live) is not list \
            or getattr(manager, "_inner_hookexec", None) is not _multicall:
        return caller  # type: ignore[no-any-return]
    impls: Sequence[Any] = list(live)
    if any(impl.hookwrapper or impl.wrapper for impl in impls):
        return caller  # type: ignore[no-any-return]
    calls: List[Tuple[Callable[..., Any], Callable[[Dict[str, Any]], Tuple[Any, ...]]]] = [
        (impl.function, _arguments(tuple(impl.argnames))) for impl in reversed(impls)]

    def call(**kwargs: Any) -> None:
        if live != impls or manager._inner_hookexec is not _multicall:
            caller(**kwargs)  # plugins came or went, or calls are traced: pluggy calls
            return
        for function, arguments in calls:
            function(*arguments(kwargs))

    return call


def _arguments(names: Tuple[str, ...]) -> Callable[[Dict[str, Any]], Tuple[Any, ...]]:
    """The arguments an implementation names, in its order, out of the call's keywords
    (one C call for two or more, where a comprehension cost a microsecond)."""
    if len(names) >= 2:
        return operator.itemgetter(*names)
    if len(names) == 1:
        name = names[0]
        return lambda kwargs: (kwargs[name],)
    return lambda kwargs: ()
