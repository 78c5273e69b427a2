"""A succeeded BatchResult whose message is built when first read.

The results stream hands out hundreds of thousands of results a minute and most callers
read a field or two of each (``custom_id``, ``type``): building the five attrs objects of
a message up front was most of the cost of a typed result. A message of the common shape
(text blocks, plain usage) is checked up front, so building it later cannot fail: a bad
line is still refused where it is read, naming its custom_id. To its users the object is
a :class:`~claudebatch.models.BatchResult` in every way: equal to one with the same
fields, printed as one, pickled and copied as one, and ``attrs.evolve`` gives one.
"""

from __future__ import annotations

from typing import Any, Dict

from . import _serde
from .models import BatchResult, ResultType, SucceededResult

_RESULT_SLOT: Any = BatchResult.__dict__["result"]
_SET_CUSTOM_ID = BatchResult.__dict__["custom_id"].__set__
_SET_PARSED = BatchResult.__dict__["parsed"].__set__
_new = object.__new__


class LazyBatchResult(BatchResult):
    """A succeeded result holding its message as JSON until ``result`` is first read."""

    __slots__ = ("_message",)
    _message: Dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Called with fields (attrs.evolve, copies): a plain, eager BatchResult.
        return BatchResult(*args, **kwargs)

    @property
    def result(self) -> ResultType:
        try:
            return _RESULT_SLOT.__get__(self, BatchResult)  # type: ignore[no-any-return]
        except AttributeError:
            pass
        try:
            message = self._message
        except AttributeError:  # another thread built it a moment ago
            return _RESULT_SLOT.__get__(self, BatchResult)  # type: ignore[no-any-return]
        built = SucceededResult(_serde.structure_message(message))
        _RESULT_SLOT.__set__(self, built)
        try:
            _DROP_MESSAGE(self)  # built: the JSON is not held any longer
        except AttributeError:
            pass  # another thread built it too, and dropped it
        return built

    @property
    def type(self) -> str:
        return "succeeded"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BatchResult):
            return NotImplemented
        return (self.custom_id, self.result) == (other.custom_id, other.result)

    __hash__ = BatchResult.__hash__

    def __repr__(self) -> str:
        return repr(self._eager())

    def __reduce__(self) -> Any:
        return (BatchResult, (self.custom_id, self.result, self.parsed))

    def _eager(self) -> BatchResult:
        return BatchResult(self.custom_id, self.result, self.parsed)


_SET_MESSAGE = LazyBatchResult.__dict__["_message"].__set__
_DROP_MESSAGE = LazyBatchResult.__dict__["_message"].__delete__


def structure_result(value: Dict[str, Any]) -> BatchResult:
    """One results line to a BatchResult: a succeeded one of the common shape builds its
    message when first read; any other is built now by :func:`_serde.structure_result`."""
    result = value["result"]
    if type(result) is dict and result.get("type") == "succeeded":
        message = result.get("message")
        if plain_message(message):
            made: Any = _new(LazyBatchResult)
            _SET_CUSTOM_ID(made, value["custom_id"])
            _SET_PARSED(made, value.get("parsed"))
            _SET_MESSAGE(made, message)
            return made  # type: ignore[no-any-return]
    return _serde.structure_result(value)


def plain_message(message: Any) -> bool:
    """True when ``message`` is a JSON object that builds into a Message without error:
    an ``id``, a ``model``, content of text blocks only, usage an object (or nothing) with
    no ``server_tool_use``."""
    if type(message) is not dict or "id" not in message or "model" not in message:
        return False
    content = message.get("content")
    if type(content) is not list:
        return False
    for block in content:
        if type(block) is not dict or block.get("type") != "text" or "text" not in block:
            return False
    usage = message.get("usage")
    if usage:
        if type(usage) is not dict or usage.get("server_tool_use") is not None:
            return False
        creation = usage.get("cache_creation")
        if creation is not None and type(creation) is not dict:
            return False
    return True
