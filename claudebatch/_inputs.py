"""Validate batch requests before anything is sent.

The service refuses a whole batch for one bad custom_id, and a job may hold
millions of rows: so every problem is gathered (the first ones in full, then a
count) and reported together, each naming where it is.

Beyond the fields the service checks up front, a request must be JSON the API
can read: no NaN or Infinity, integers within signed 64 bits, strings that are
valid UTF-8 (no lone UTF-16 surrogates), nesting no deeper than
:data:`MAX_JSON_DEPTH`. Python's ``json`` lets all of these through (or fails
with a traceback), so they are checked here, where the problem can be named.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from typing import IO, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from . import _json
from ._compactset import DigestTable
from .apirules import (
    BETA_ONLY_PARAMS,
    DEFAULT_API_VERSION,
    SAMPLING_PARAMS,
    is_known_model,
    request_needs,
    version_problems,
)
from .catalog import family
from .errors import ValidationError
from .limits import (
    BATCH_REFUSED_PARAMS,
    CUSTOM_ID_PATTERN,
    MAX_BATCH_BYTES,
    MAX_REQUESTS_PER_BATCH,
    MIN_MAX_TOKENS,
)
from .models import Request

#: The service's limits for one batch.
# CUSTOM_ID_PATTERN is used with ``fullmatch``: with ``match`` and ``$``, "abc\n" would
# pass (``$`` matches before a trailing newline).

#: How many problems an error lists in full before it only counts the rest.
MAX_LISTED_PROBLEMS = 20

#: The deepest nesting of objects and arrays a request may have, counting the request
#: object itself as level 1 (its ``params`` are level 2). A Messages request needs a
#: handful of levels, and a tool's input schema rarely a few dozen; 256 leaves room for
#: any real one while staying well below CPython's recursion limit (1,000), at which
#: ``json.loads`` and ``json.dumps`` fail with RecursionError: when reading the input,
#: when serializing the body, and when the job reads its spooled requests back.
MAX_JSON_DEPTH = 256

#: The integers the API's JSON carries: signed 64-bit.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: A JSONL file is read at most this much at a time: a line longer than a batch can hold
#: is measured and refused without ever being held (or parsed) whole.
READ_CHUNK_BYTES = 1024 * 1024
#: With orjson, JSONL is read and checked this much at a time: large enough that each
#: check is one pass over many lines, small enough that the pieces cost little memory.
CHUNK_READ_BYTES = 256 * 1024

_ID_CHARACTER = re.compile(r"[a-zA-Z0-9_-]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NO_NAN = "the API's JSON has no NaN or Infinity"


_UNSEEN = object()
_DIGEST_MASK = 2**64 - 1
_ODD_WHERE = 2**32 - 1  # a DigestTable number: this ``where`` is kept whole
_MAX_WHERE_NUMBER = 10**9  # a "where" number kept as a number (below 2**32 - 1)
#: Params a request usually lacks: refused in a batch, or needing a beta, an API
#: version or a model's support. A request with one is checked closely.
_UNUSUAL_PARAMS = frozenset({*BATCH_REFUSED_PARAMS, *BETA_ONLY_PARAMS, *SAMPLING_PARAMS,
                             "inference_geo"})


_REQUEST_NEW = object.__new__
_SET_REQUEST_ID = Request.__dict__["custom_id"].__set__
_SET_REQUEST_PARAMS = Request.__dict__["params"].__set__


def _request(custom_id: str, params: Dict[str, Any]) -> Request:
    """``Request(custom_id, params)`` as attrs makes it, without the frozen class's
    ``__init__`` (0.42 -> 0.28 µs, once per planned request). Request has no validators
    or converters to skip (a test holds that)."""
    made = _REQUEST_NEW(Request)
    _SET_REQUEST_ID(made, custom_id)
    _SET_REQUEST_PARAMS(made, params)
    return made


def _plain_id(custom_id: str) -> bool:
    """``[a-zA-Z0-9_-]{1,64}`` in full: the pattern holds the length too."""
    return CUSTOM_ID_PATTERN.fullmatch(custom_id) is not None


def _where(head: str, number: int) -> str:
    """A row's ``where`` from :func:`iter_source_numbered`'s parts (``head`` whole for -1)."""
    return head if number < 0 else f"{head} {number}"


def describe_custom_id_problem(custom_id: Any) -> Optional[str]:
    """Why ``custom_id`` is refused, or None when it is fine."""
    if not isinstance(custom_id, str):
        return f"custom_id must be a string, got {_type_name(custom_id)}"
    if not 1 <= len(custom_id) <= 64:
        return f"custom_id must be 1 to 64 characters, got {len(custom_id)}"
    if not CUSTOM_ID_PATTERN.fullmatch(custom_id):
        bad = sorted({c for c in custom_id if not _ID_CHARACTER.fullmatch(c)})
        found = ", ".join(repr(c) for c in bad)  # repr: a newline shows as '\n'
        return f"custom_id may only hold letters, digits, '_' and '-' (found {found})"
    return None


def describe_params_problems(params: Any) -> List[str]:
    """What a batch refuses in one request's ``params`` (the checks the service makes up front)."""
    if type(params) is not dict and not isinstance(params, Mapping):  # dict: skip the ABC check
        return [f"params must be an object, got {_type_name(params)}"]
    problems = []
    model = params.get("model")
    if not isinstance(model, str) or not model:
        problems.append("params.model is missing (a model id such as 'claude-sonnet-4-5')")
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) \
            or max_tokens < MIN_MAX_TOKENS:
        # the spec allows 0 (a cache pre-warm), but a batch refuses it
        problems.append(f"params.max_tokens must be an integer >= {MIN_MAX_TOKENS} in a "
                        f"batch, got {max_tokens!r}")
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append("params.messages must be a non-empty list")
    if params.get("stream") is True:
        problems.append("params.stream must not be true: batch requests cannot stream")
    for name in BATCH_REFUSED_PARAMS:
        if name in params:
            problems.append(f"params.{name} is refused inside a batch (the service answers "
                            "a validation error); drop it")
    return problems


# --- JSON the API can read ----------------------------------------------------

class _BadNumber:
    """Stands in, while a refused line is parsed again to name the field, for a number
    that Python's json reads but the API's JSON has no form for."""

    __slots__ = ("problem", "text")

    def __init__(self, text: str, problem: str):
        self.text = text
        self.problem = problem

    def __repr__(self) -> str:
        return self.text


class _HugeInt(int):
    """Stands in for an integer literal too long for ``int()`` (over 4,300 digits)."""

    digits: int

    def __repr__(self) -> str:
        return f"a {self.digits:,}-digit integer"


_PathNode = Union[str, Tuple[Any, Any, bool]]  # a root name, or (parent, key, is_index)


def _format_path(node: _PathNode, max_parts: int = 12) -> str:
    parts: List[str] = []
    while isinstance(node, tuple):
        node, key, is_index = node
        if is_index:
            parts.append(f"[{key}]")
        elif isinstance(key, str) and _IDENTIFIER.fullmatch(key):
            parts.append(f".{key}")
        else:
            parts.append(f"[{key!r}]")
    parts.append(str(node))
    parts.reverse()
    if len(parts) > max_parts:  # nested too deeply: the start and the end say enough
        parts = [*parts[:max_parts - 3], "...", *parts[-2:]]
    return "".join(parts)


def _type_name(value: Any) -> str:
    return "a number" if isinstance(value, _BadNumber) else type(value).__name__


def _int_text(value: int) -> str:
    # str() of a huge int is slow, and past 4,300 digits refused (CVE-2020-10735)
    return str(value) if value.bit_length() <= 200 else f"a {value.bit_length():,}-bit integer"


def _surrogate_problem(text: str) -> Optional[str]:
    try:
        text.encode("utf-8")  # C speed: several times faster than a regex search
    except UnicodeEncodeError as exc:
        return (f"holds a lone UTF-16 surrogate \\u{ord(text[exc.start]):04x}; "
                "the API's JSON must be valid UTF-8")
    return None


def _leaf_problem(value: Any) -> Optional[str]:
    """Why a value that is not a dict or list (or a subclass) cannot go out, or None."""
    if isinstance(value, str):
        return _surrogate_problem(value)
    if isinstance(value, _HugeInt):
        return (f"is a {value.digits:,}-digit integer, outside the signed 64-bit integer "
                "range the API accepts")
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return None
        return f"is {_int_text(value)}, outside the signed 64-bit integer range the API accepts"
    if isinstance(value, float):
        if value - value == 0.0:  # finite; NaN and +-inf give NaN
            return None
        text = "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
        return f"is {text}: {_NO_NAN}"
    if isinstance(value, _BadNumber):
        return value.problem
    return f"is a {type(value).__name__}, which JSON has no form for"


def _key_problem(key: Any) -> Optional[str]:
    if isinstance(key, str):
        problem = _surrogate_problem(key)
        return f"has a key {key!r} that {problem}" if problem else None
    if key is None or isinstance(key, (int, float)):
        return None  # json.dumps writes these as strings
    return f"has a key of type {type(key).__name__}: JSON object keys are strings"


def describe_json_problem(value: Any, path: str = "params", level: int = 2) -> Optional[str]:
    """The first thing in ``value`` the API's JSON cannot carry, as ``"<path> <why>"``; or None.

    That is: NaN or infinite floats, integers outside signed 64 bits, strings holding a
    lone UTF-16 surrogate (they cannot be encoded as UTF-8), nesting deeper than
    :data:`MAX_JSON_DEPTH` (``level`` is that of ``value`` itself; a request's params are
    at level 2) or a reference cycle, and types ``json.dumps`` has no form for.
    One pass, no recursion; a str costs nothing unless it is not ASCII.
    """
    if type(value) is not dict and not isinstance(value, (Mapping, list, tuple)):
        leaf = _leaf_problem(value)
        return f"{path} {leaf}" if leaf else None
    low, high, limit = INT64_MIN, INT64_MAX, MAX_JSON_DEPTH
    stack: List[Tuple[Any, int, _PathNode]] = [(value, level, path)]
    pop, push = stack.pop, stack.append
    while stack:
        container, depth, where = pop()
        if depth > limit:
            return (f"{_format_path(where)} is nested too deeply: more than {limit} "
                    "levels of objects and arrays (or it holds itself)")
        pairs: Iterable[Tuple[Any, Any]]
        if isinstance(container, (list, tuple)):
            pairs, is_index = enumerate(container), True
        else:  # a dict, or the Mapping at the top
            pairs, is_index = container.items(), False
            for key in container:
                if type(key) is not str or not key.isascii():
                    key_problem = _key_problem(key)
                    if key_problem:
                        return f"{_format_path(where)} {key_problem}"
        for key, item in pairs:
            kind = type(item)
            # the common cases by exact type, cheapest first; anything else gets a closer look
            if kind is str:
                if item.isascii():
                    continue
            elif kind is dict or kind is list:
                push((item, depth + 1, (where, key, is_index)))
                continue
            elif kind is int:
                if low <= item <= high:
                    continue
            elif kind is float:
                if item - item == 0.0:  # finite (NaN and +-inf give NaN)
                    continue
            elif item is None or kind is bool:
                continue
            elif isinstance(item, (dict, list, tuple)):
                push((item, depth + 1, (where, key, is_index)))
                continue
            problem = _leaf_problem(item)
            if problem:
                return f"{_format_path((where, key, is_index))} {problem}"
    return None


class _NotApiJson(Exception):
    """Raised from the JSON decoder's hooks: a number the API's JSON has no form for."""


def _strict_int(text: str) -> int:
    if len(text) < 19:  # at most 18 digits: always within 64 bits
        return int(text)
    if len(text) <= 20:  # JSON has no leading zeros: 21+ characters are out of range
        value = int(text)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    raise _NotApiJson


def _strict_float(text: str) -> float:
    value = float(text)
    if value - value == 0.0:
        return value
    raise _NotApiJson  # such as 1e400, which float() makes infinite


def _refuse_constant(text: str) -> Any:
    raise _NotApiJson  # NaN, Infinity, -Infinity


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"a {len(text):,}-character number"


def _lenient_int(text: str) -> int:
    if len(text) <= 4000:
        return int(text)  # out of range or not, describe_json_problem names it
    huge = _HugeInt(INT64_MIN - 1 if text[0] == "-" else INT64_MAX + 1)  # out of range too
    huge.digits = len(text.lstrip("-"))
    return huge


def _lenient_float(text: str) -> Any:
    value = float(text)
    if value - value == 0.0:
        return value
    return _BadNumber(_short(text), f"is {_short(text)}, too large for a 64-bit float "
                                    "(it would become Infinity)")


def _lenient_constant(text: str) -> Any:
    return _BadNumber(text, f"is {text}: {_NO_NAN}")


#: Reads a line, raising _NotApiJson at the first number the API could not take. Ints
#: and floats in prompts are rare (max_tokens, temperature): the hooks cost little.
_STRICT = json.JSONDecoder(parse_int=_strict_int, parse_float=_strict_float,
                           parse_constant=_refuse_constant)
#: Reads a refused line again, with stand-ins for the bad numbers, to name their fields.
_LENIENT = json.JSONDecoder(parse_int=_lenient_int, parse_float=_lenient_float,
                            parse_constant=_lenient_constant)


# --- the validator --------------------------------------------------------------

class RequestValidator:
    """Checks requests one at a time, remembering custom_ids to catch duplicates.

    ``check`` returns the normalized :class:`Request`, or None and records why.
    """

    def __init__(self, max_listed: int = MAX_LISTED_PROBLEMS, *,
                 api_version: str = DEFAULT_API_VERSION, betas: Iterable[str] = ()):
        self.max_listed = max_listed
        self.api_version = api_version
        self.betas = frozenset(betas)
        #: Betas the requests need that ``betas`` lacks, where the mapping is known.
        self.added_betas: set[str] = set()
        self.problems: List[str] = []
        self.problem_count = 0
        #: False when the source guarantees unique custom_ids (rows): no index is kept.
        self.track_ids = True
        # custom_ids seen, as 64-bit hashes in flat arrays (12 bytes each, not ~170), each
        # with the number its ``where`` ends with: "data.jsonl line 7" is kept as 7
        self._seen = DigestTable()
        self._where_head: Optional[str] = None  # "data.jsonl line", the same for every row
        self._odd_where: Dict[int, str] = {}  # a ``where`` of another shape, kept whole
        # what a model's max_tokens may be with no beta (None: anything; an unknown model)
        self._plain_max: Dict[str, Optional[int]] = {}

    def add_problem(self, where: str, what: str) -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_listed:
            self.problems.append(f"{where}: {what}")

    def check(self, item: Any, where: str) -> Optional[Request]:
        if type(item) is dict and len(item) == 2 and "params" in item and "custom_id" in item:
            custom_id: Any = item["custom_id"]  # the shape of almost every line
            params: Any = item["params"]
        elif isinstance(item, SourceProblem):
            self.add_problem(where, item.message)
            return None
        elif isinstance(item, Request):
            custom_id = item.custom_id
            params = item.params
        elif type(item) is dict or isinstance(item, Mapping):
            extra = set(item) - {"custom_id", "params"}
            if extra:
                names = ", ".join(sorted(map(str, extra)))  # str: a dict's keys may be anything
                self.add_problem(where, f"unknown field(s) {names}: "
                                        "a request holds only custom_id and params")
                return None
            if "params" not in item:
                self.add_problem(where, "params is missing")
                return None
            custom_id, params = item.get("custom_id"), item["params"]
        else:
            self.add_problem(where, "a request must be a Request or an object with "
                                    f"custom_id and params, got {_type_name(item)}")
            return None

        if type(custom_id) is str and type(params) is dict and _plain_id(custom_id) \
                and self._plain(params, type(where) is CheckedWhere):  # the common case
            if self.track_ids:
                first = self._first_of(custom_id, where)
                if first is not None:
                    self.add_problem(f"{where} (custom_id {custom_id!r})",
                                     f"custom_id duplicates {first}")
                    return None
            if isinstance(item, Request):
                return item
            return _request(custom_id, params)
        return self._check_closely(item, custom_id, params, where)

    def _plain(self, params: Dict[str, Any], read_clean: bool) -> bool:
        """True when ``params`` is certainly fine: what a request usually is. Anything
        else is checked closely, which names every problem. ``read_clean``: read from a
        line known to hold only JSON the API takes."""
        model = params.get("model")
        max_tokens = params.get("max_tokens")
        messages = params.get("messages")
        if type(model) is not str or not model or type(max_tokens) is not int \
                or max_tokens < MIN_MAX_TOKENS or type(messages) is not list or not messages \
                or params.get("stream") is True:
            return False
        if not _UNUSUAL_PARAMS.isdisjoint(params):  # refused in a batch, a beta, a version
            return False
        for message in messages:  # blocks a version refuses (only in content lists)
            if type(message) is not dict or type(message.get("content")) is not str:
                if version_problems({"messages": messages}, self.api_version):
                    return False
                break
        if not read_clean and describe_json_problem(params) is not None:
            return False
        most = self._plain_max.get(model, _UNSEEN)
        if most is _UNSEEN:
            found = family(model) if is_known_model(model) else None
            most = self._plain_max[model] = None if found is None else found.max_output
        return most is None or max_tokens <= most  # type: ignore[operator]

    def check_numbered(self, item: Any, head: str, number: int, clean: bool
                       ) -> Optional[Request]:
        """:meth:`check` for the item at ``f"{head} {number}"`` (at ``head`` when
        ``number`` is -1), a string built only when a problem names it; ``clean`` as a
        :class:`CheckedWhere` says (see :func:`iter_source_numbered`)."""
        if type(item) is dict and len(item) == 2 and "params" in item and "custom_id" in item:
            custom_id: Any = item["custom_id"]
            params: Any = item["params"]
            if type(custom_id) is str and type(params) is dict and _plain_id(custom_id) \
                    and self._plain(params, clean):  # the common case, as in check
                if self.track_ids:
                    first = self._first_at(custom_id, head, number)
                    if first is not None:
                        self.add_problem(f"{_where(head, number)} (custom_id {custom_id!r})",
                                         f"custom_id duplicates {first}")
                        return None
                return _request(custom_id, params)
        where = _where(head, number)
        return self.check(item, CheckedWhere(where) if clean else where)

    def _first_of(self, custom_id: str, where: str) -> Optional[str]:
        """Where ``custom_id`` was seen first, or None (and it is remembered here)."""
        head, _, tail = where.rpartition(" ")
        if tail.isascii() and tail.isdigit() and len(tail) < 10:
            return self._first_at(custom_id, head, int(tail))
        return self._first_at(custom_id, where, -1)

    def _first_at(self, custom_id: str, head: str, number: int) -> Optional[str]:
        """:meth:`_first_of` for ``f"{head} {number}"``, or for ``head`` alone when
        ``number`` is -1."""
        digest = str.__hash__(custom_id) & _DIGEST_MASK  # a subclass's __hash__ is not asked
        if head == self._where_head and 0 <= number < _MAX_WHERE_NUMBER:
            pass
        elif self._where_head is None and 0 <= number < _MAX_WHERE_NUMBER:
            self._where_head = head
        else:  # not "<head> <number>": kept whole (no source of the core's makes these)
            self._odd_where.setdefault(digest, head if number < 0 else f"{head} {number}")
            number = _ODD_WHERE
        first = self._seen.add(digest, number)
        if first is None:
            return None
        if first == _ODD_WHERE:
            return self._odd_where.get(digest, "an earlier request")
        return f"{self._where_head} {first}"

    def _check_closely(self, item: Any, custom_id: Any, params: Any, where: str
                       ) -> Optional[Request]:
        label = f"{where} (custom_id {custom_id!r})" if isinstance(custom_id, str) else where
        ok = True
        id_problem = describe_custom_id_problem(custom_id)
        if id_problem:
            self.add_problem(label, id_problem)
            ok = False
        elif self.track_ids:
            first = self._first_of(custom_id, where)
            if first is not None:
                self.add_problem(label, f"custom_id duplicates {first}")
                ok = False
        for problem in describe_params_problems(params):
            self.add_problem(label, problem)
            ok = False
        if type(params) is dict or isinstance(params, Mapping):
            for field, why in version_problems(params, self.api_version):
                self.add_problem(label, f"params.{field}: {why}")
                ok = False
            json_problem = describe_json_problem(params)
            if json_problem:
                self.add_problem(label, json_problem)
                ok = False
            if ok:  # the limits that depend on the model and the betas
                needs = request_needs(params, self.betas)
                for field, why in needs.problems:
                    self.add_problem(label, f"params.{field}: {why}")
                    ok = False
                if ok:
                    self.added_betas.update(needs.add)
        if not ok:
            return None
        if isinstance(item, Request):
            return item if isinstance(params, dict) else Request(custom_id, dict(params))
        return Request(custom_id, params if type(params) is dict else dict(params))

    def raise_if_problems(self, summary: str) -> None:
        if self.problem_count:
            noun = "problem" if self.problem_count == 1 else "problems"
            raise ValidationError(f"{summary}: {self.problem_count} {noun}",
                                  self.problems, total=self.problem_count)


def validate_batch(source: Any, validator: Optional[RequestValidator] = None
                   ) -> List[Request]:
    """Validate the requests of one ``create`` call; raise one error naming every problem.

    ``source`` is an iterable of Requests or dicts, or the path of a JSONL file;
    ``validator`` carries the API version and betas to check against.
    """
    validator = validator if validator is not None else RequestValidator()
    requests = []
    count = 0
    for where, item in iter_source(source):
        count += 1
        request = validator.check(item, where)
        if request is not None:
            requests.append(request)
    if count == 0:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "requests"
        validator.add_problem(name, "a batch needs at least one request")
    elif count > MAX_REQUESTS_PER_BATCH:
        validator.add_problem("requests", f"a batch holds at most {MAX_REQUESTS_PER_BATCH:,} "
                                          f"requests, got {count:,} (client.run() splits them)")
    validator.raise_if_problems("the batch was not sent")
    return requests


class SourceProblem:
    """A row that could not even be read (bad JSON): carried to the validator to report."""

    def __init__(self, message: str):
        self.message = message


# --- reading ------------------------------------------------------------------

def iter_source(source: Any, *, max_line_bytes: int = MAX_BATCH_BYTES
                ) -> Iterable[tuple[str, Any]]:
    """``(where, item)`` for each row of a JSONL path or an iterable of requests.

    ``where`` names the row for error messages: ``data.jsonl line 7`` or
    ``request 6``. A line that is not JSON comes through as a SourceProblem, so
    every bad line is reported, not just the first; so does a line longer than
    ``max_line_bytes`` (the most a batch body can hold), which is never read whole.
    """
    for head, number, item, clean in iter_source_numbered(source,
                                                          max_line_bytes=max_line_bytes):
        where = f"{head} {number}"
        yield (CheckedWhere(where) if clean else where), item


def iter_source_numbered(source: Any, *, max_line_bytes: int = MAX_BATCH_BYTES
                         ) -> Iterator[Tuple[str, int, Any, bool]]:
    """:func:`iter_source` as ``(head, number, item, clean)``: ``where`` is
    ``f"{head} {number}"``, built only when a problem names it, and ``clean`` says what a
    :class:`CheckedWhere` says (the planner's hot path, see
    :meth:`RequestValidator.check_numbered`)."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if "://" in path and not path.startswith("file://"):  # an fsspec URL
            from ._fs import open_input

            with open_input(path) as handle:
                yield from _read_jsonl(handle, f"{path} line", max_line_bytes)
            return
        path = path[7:] if path.startswith("file://") else path
        try:
            handle = open(path, "rb")
        except OSError as exc:
            raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            yield from _read_jsonl(handle, f"{path} line", max_line_bytes)
    else:
        for index, item in enumerate(source):
            yield "request", index, item, False


def iter_jsonl_lines(handle: IO[bytes], path: str, max_line_bytes: int = MAX_BATCH_BYTES
                     ) -> Iterator[Tuple[str, Any]]:
    """``(where, value)`` for each line of an open JSONL file named ``path``; ``where`` is
    a :class:`CheckedWhere` for a line read clean."""
    for head, number, value, clean in _read_jsonl(handle, f"{path} line", max_line_bytes):
        where = f"{head} {number}"
        yield (CheckedWhere(where) if clean else where), value


def _read_jsonl(handle: IO[bytes], head: str, max_line_bytes: int
                ) -> Iterator[Tuple[str, int, Any, bool]]:
    """``(head, line number, value, clean)`` for each line of an open JSONL file, where
    ``head`` is ``"<path> line"`` (as :func:`iter_source_numbered` gives them).

    With orjson, the file is read a chunk at a time and each chunk is checked once for
    what would need the strict reading (:func:`_clean_chunk`); without it, or for a chunk
    that holds such a line, each line is read as :func:`_read_line` reads it.
    """
    if _json.fast_loads is None:
        yield from _read_jsonl_by_line(handle, head, max_line_bytes)
        return
    loads = _json.fast_loads
    read = handle.read
    size = min(CHUNK_READ_BYTES, READ_CHUNK_BYTES)
    number = 0
    tail = b""
    while True:
        chunk = read(size)
        if not chunk:
            break
        data = tail + chunk if tail else chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:] if cut else data
        if cut:
            body = data[:cut] if cut < len(data) else data
            lines = body.split(b"\n")
            lines.pop()  # after the last line end
            if b"\r" in body:
                lines = [line.rstrip(b"\r") for line in lines]
            clean = _clean_chunk(body, lines)
            for line in lines:
                number += 1
                length = len(line)
                if length > max_line_bytes:
                    yield head, number, _too_long(length, max_line_bytes), False
                elif not line or line.isspace():
                    continue  # a blank line is skipped, not an error
                elif clean:
                    try:
                        value = loads(line)
                    except ValueError:
                        yield (head, number, *_read_line(line))  # read strictly: its reason, named
                    else:
                        yield head, number, value, True
                else:
                    yield (head, number, *_read_line(line))
        if len(tail) >= READ_CHUNK_BYTES:  # a line longer than a chunk: never held whole
            number += 1
            whole, length = _read_long_line(handle, tail, max_line_bytes)
            tail = b""
            if whole is None or length > max_line_bytes:
                yield head, number, _too_long(length, max_line_bytes), False
            elif whole and not whole.isspace():
                yield (head, number, *_read_line(whole))
    tail = tail.rstrip(b"\r")  # the last line, without a line end
    if tail:
        number += 1
        if len(tail) > max_line_bytes:
            yield head, number, _too_long(len(tail), max_line_bytes), False
        elif not tail.isspace():
            yield (head, number, *_read_line(tail))


def _too_long(length: int, max_line_bytes: int) -> SourceProblem:
    return SourceProblem(f"the line is {length:,} bytes; a batch body holds at most "
                         f"{max_line_bytes:,}")


def _clean_chunk(body: bytes, lines: List[bytes]) -> bool:
    """True when every line of ``body`` is clean as :func:`_read_line` decides it, shown
    by a few passes over the whole chunk instead of several per line: no line long enough
    to be walked, no 19-digit run, no float written otherwise, and no line with more than
    :data:`_CLEAN_DEPTH` brackets (so none nested deeper)."""
    if not lines or max(map(len, lines)) > _WALK_ABOVE:
        return False
    if _needs_strict(body.translate(_SHAPE)):
        return False
    brackets = body.translate(None, _NOT_BRACKETS)
    return max(map(len, brackets.split(b"\n"))) <= _CLEAN_DEPTH


def _read_jsonl_by_line(handle: IO[bytes], head: str, max_line_bytes: int
                        ) -> Iterator[Tuple[str, int, Any, bool]]:
    """:func:`_read_jsonl` a line at a time (the standard library's path)."""
    readline = handle.readline
    number = 0
    while True:
        line = readline(READ_CHUNK_BYTES)  # bounded: a huge line is never read whole
        if not line:
            return
        number += 1
        whole: Optional[bytes]
        if len(line) < READ_CHUNK_BYTES or line.endswith(b"\n"):
            whole = line.rstrip(b"\r\n")  # the whole line: the fast path
            length = len(whole)
        else:
            whole, length = _read_long_line(handle, line, max_line_bytes)
        if whole is None or length > max_line_bytes:
            yield head, number, _too_long(length, max_line_bytes), False
            continue
        line = whole
        if not line or line.isspace():
            continue  # a blank line is skipped, not an error
        yield (head, number, *_read_line(line))


class CheckedWhere(str):
    """A ``where`` whose line was read as JSON the API can take: no number it refuses, no
    lone surrogate, no deeper nesting than it allows. The validator skips that walk.
    Nor does it hold a float that orjson writes otherwise than json (see
    :mod:`claudebatch._json`): the planner serializes it with orjson directly."""

    __slots__ = ()


#: A line's shape, to see in C speed what its JSON may hold: digits become "0", brackets
#: "{", "e" and "E" "e"; "." and "-" stay; everything else becomes a space.
_SHAPE = bytes(ord("0") if 48 <= c <= 57 else ord("{") if c in b"{[" else
               ord("e") if c in b"eE" else c if c in b".-" else 32 for c in range(256))
#: Floats json writes otherwise than orjson, in a shape: below 1e-4 written out, or with
#: a negative exponent. (Also words such as "3e-mails": they only lose the fast path.)
_ODD_FLOATS = (b"0.0000", b"0e-")
#: 19 digits in a row: perhaps an integer past 64 bits (orjson reads one past 64 bits
#: unsigned as a float, silently), or one inside a string: read strictly then.
_LONG_NUMBER = b"0" * 19
#: orjson writes at most 254 levels of objects and arrays (the API takes
#: :data:`MAX_JSON_DEPTH`): a line nested deeper is not clean, so json writes it.
_CLEAN_DEPTH = min(MAX_JSON_DEPTH, 254)
#: Every byte but brackets and the line end: deleted, a chunk's lines show how many
#: brackets each holds (at least its depth).
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"{[]}\n")


def _needs_strict(shape: bytes) -> bool:
    """Whether text of this :data:`_SHAPE` may hold a number orjson reads or writes
    otherwise than json: a 19-digit run, or a float below 1e-4 (``e-``, the cheaper
    search, first)."""
    return _LONG_NUMBER in shape or _ODD_FLOATS[0] in shape \
        or (b"e-" in shape and _ODD_FLOATS[1] in shape)


#: Lines longer than this are checked by walking what orjson read (few values, much
#: text) rather than by their shape (a pass over every byte).
_WALK_ABOVE = 64 * 1024


def _read_line(line: bytes) -> Tuple[Any, bool]:
    """One JSONL line's value (or a SourceProblem), and whether it is known clean (see
    :class:`CheckedWhere`). orjson reads it when installed and nothing in the line
    needs the strict reading, which names what the API refuses."""
    if len(line) > _WALK_ABOVE and _json.fast_loads is not None:
        try:
            value = _json.fast_loads(line)
        except ValueError:
            pass  # read strictly: its reason, named
        else:
            if _plainly_api_json(value):
                return value, True
        return _parse_line_strictly(line)[0], False
    shape = line.translate(_SHAPE)
    plain = shape.count(b"{") <= _CLEAN_DEPTH and not _needs_strict(shape)
    if plain and _json.fast_loads is not None:
        try:
            return _json.fast_loads(line), True  # it refuses NaN and lone surrogates
        except ValueError:
            pass  # read strictly: its reason, named
    value, strict = _parse_line_strictly(line)
    return value, plain and strict and b"\\u" not in line


def _plainly_api_json(value: Any) -> bool:
    """True when orjson's reading of a line is what the strict reader would give and holds
    nothing the API refuses: no integer past 64 bits (orjson gives a float for one past
    64 bits unsigned: a float that large is read again strictly), nesting within
    :data:`_CLEAN_DEPTH` (what orjson writes), no float orjson writes otherwise than
    json (below 1e-4). orjson refuses NaN and lone surrogates itself."""
    if type(value) is not dict and type(value) is not list:
        return False  # not a request at all: the strict reading and the validator say so
    stack: List[Tuple[Any, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > _CLEAN_DEPTH:
            return False
        for item in (container.values() if type(container) is dict else container):
            kind = type(item)
            if kind is dict or kind is list:
                stack.append((item, depth + 1))
            elif kind is int:
                if not INT64_MIN <= item <= INT64_MAX:
                    return False
            elif kind is float and (not 1e-4 <= abs(item) < 2.0**63 and item != 0.0):
                return False  # past 64 bits (perhaps an integer), or written otherwise
    return True


def _parse_line_strictly(line: bytes) -> Tuple[Any, bool]:
    """``(value, True)``, or ``(value with stand-ins for the numbers the API refuses,
    False)``, or ``(SourceProblem, False)``: numbers the API cannot take are caught as
    they are parsed; the line is then read again with stand-ins for them, so the
    validator can name their fields."""
    bom = 3 if line.startswith(codecs.BOM_UTF8) else 0  # json.loads(bytes) skipped it
    try:
        text = line[bom:].decode("utf-8") if bom else line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return SourceProblem(f"not valid UTF-8: byte 0x{line[bom + exc.start]:02x} at byte "
                             f"{bom + exc.start + 1} of the line; the API's JSON must be "
                             "valid UTF-8"), False
    try:
        try:
            return _STRICT.decode(text), True
        except _NotApiJson:
            return _LENIENT.decode(text), False
    except RecursionError:
        return SourceProblem(f"nested too deeply: more than {MAX_JSON_DEPTH} levels of "
                             "objects and arrays"), False
    except ValueError as exc:
        detail = (f"{exc.msg} (column {exc.colno})"
                  if isinstance(exc, json.JSONDecodeError) else str(exc))
        return SourceProblem(f"not valid JSON: {detail}"), False


def _read_long_line(handle: IO[bytes], first: bytes, max_line_bytes: int
                    ) -> Tuple[Optional[bytes], int]:
    """The rest of a line longer than one chunk: ``(line, length)``, or ``(None, length)``
    when it is over ``max_line_bytes``. A seekable file is scanned to the line's end
    without keeping what was read, then read again if the line fits; from a pipe the
    line is kept while it may still fit."""
    seekable = handle.seekable()
    start = handle.tell() - len(first) if seekable else 0
    pieces: Optional[List[bytes]] = None if seekable else [first]
    length = len(first)
    tail = first[-2:]
    while True:
        chunk = handle.readline(READ_CHUNK_BYTES)
        length += len(chunk)
        tail = (tail + chunk)[-2:] if len(chunk) < 2 else chunk[-2:]
        if pieces is not None:
            if length <= max_line_bytes + 2:  # + 2: the line end
                pieces.append(chunk)
            else:
                pieces = None  # too long: only the length matters now
        if len(chunk) < READ_CHUNK_BYTES or chunk.endswith(b"\n"):
            break
    if tail.endswith(b"\n"):
        length -= 2 if tail == b"\r\n" else 1
    if length > max_line_bytes:
        return None, length
    if seekable:
        end = handle.tell()
        handle.seek(start)
        data = handle.read(end - start)
    else:
        assert pieces is not None
        data = b"".join(pieces)
    line = data.rstrip(b"\r\n")
    return line, len(line)
