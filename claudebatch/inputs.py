"""Validate batch requests before anything is sent.

The service refuses a whole batch for one bad custom_id, and a job may hold
millions of rows: so every problem is gathered (the first ones in full, then a
count) and reported together, each naming where it is.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional

from .errors import ValidationError
from .models import Request

#: The service's limits for one batch.
MAX_REQUESTS_PER_BATCH = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
CUSTOM_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

#: How many problems an error lists in full before it only counts the rest.
MAX_LISTED_PROBLEMS = 20


def describe_custom_id_problem(custom_id: Any) -> Optional[str]:
    """Why ``custom_id`` is refused, or None when it is fine."""
    if not isinstance(custom_id, str):
        return f"custom_id must be a string, got {type(custom_id).__name__}"
    if not 1 <= len(custom_id) <= 64:
        return f"custom_id must be 1 to 64 characters, got {len(custom_id)}"
    if not CUSTOM_ID_PATTERN.match(custom_id):
        bad = sorted({c for c in custom_id if not re.match(r"[a-zA-Z0-9_-]", c)})
        return f"custom_id may only hold letters, digits, '_' and '-' (found {''.join(bad)!r})"
    return None


def describe_params_problems(params: Any) -> List[str]:
    """What a batch refuses in one request's ``params`` (the checks the service makes up front)."""
    if not isinstance(params, Mapping):
        return [f"params must be an object, got {type(params).__name__}"]
    problems = []
    model = params.get("model")
    if not isinstance(model, str) or not model:
        problems.append("params.model is missing (a model id such as 'claude-sonnet-4-5')")
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
        # 0 is allowed: it pre-warms the prompt cache without generating (the API's spec)
        problems.append(f"params.max_tokens must be an integer >= 0, got {max_tokens!r}")
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append("params.messages must be a non-empty list")
    if params.get("stream") is True:
        problems.append("params.stream must not be true: batch requests cannot stream")
    return problems


class RequestValidator:
    """Checks requests one at a time, remembering custom_ids to catch duplicates.

    ``check`` returns the normalized :class:`Request`, or None and records why.
    """

    def __init__(self, max_listed: int = MAX_LISTED_PROBLEMS):
        self.max_listed = max_listed
        self.problems: List[str] = []
        self.problem_count = 0
        self._seen: Dict[str, str] = {}

    def add_problem(self, where: str, what: str) -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_listed:
            self.problems.append(f"{where}: {what}")

    def check(self, item: Any, where: str) -> Optional[Request]:
        if isinstance(item, SourceProblem):
            self.add_problem(where, item.message)
            return None
        if isinstance(item, Request):
            custom_id: Any = item.custom_id
            params: Any = item.params
        elif isinstance(item, Mapping):
            extra = sorted(set(item) - {"custom_id", "params"})
            if extra:
                self.add_problem(where, f"unknown field(s) {', '.join(extra)}: "
                                        "a request holds only custom_id and params")
                return None
            if "params" not in item:
                self.add_problem(where, "params is missing")
                return None
            custom_id, params = item.get("custom_id"), item["params"]
        else:
            self.add_problem(where, "a request must be a Request or an object with "
                                    f"custom_id and params, got {type(item).__name__}")
            return None

        label = f"{where} (custom_id {custom_id!r})" if isinstance(custom_id, str) else where
        ok = True
        id_problem = describe_custom_id_problem(custom_id)
        if id_problem:
            self.add_problem(label, id_problem)
            ok = False
        elif custom_id in self._seen:
            self.add_problem(label, f"custom_id duplicates {self._seen[custom_id]}")
            ok = False
        else:
            self._seen[custom_id] = where
        for problem in describe_params_problems(params):
            self.add_problem(label, problem)
            ok = False
        if not ok:
            return None
        return item if isinstance(item, Request) else Request(custom_id, dict(params))

    def raise_if_problems(self, summary: str) -> None:
        if self.problem_count:
            noun = "problem" if self.problem_count == 1 else "problems"
            raise ValidationError(f"{summary}: {self.problem_count} {noun}",
                                  self.problems, total=self.problem_count)


def validate_batch(source: Any) -> List[Request]:
    """Validate the requests of one ``create`` call; raise one error naming every problem.

    ``source`` is an iterable of Requests or dicts, or the path of a JSONL file.
    """
    validator = RequestValidator()
    requests = []
    count = 0
    for where, item in iter_source(source):
        count += 1
        request = validator.check(item, where)
        if request is not None:
            requests.append(request)
    if count == 0:
        validator.add_problem("requests", "a batch needs at least one request")
    elif count > MAX_REQUESTS_PER_BATCH:
        validator.add_problem("requests", f"a batch holds at most {MAX_REQUESTS_PER_BATCH:,} "
                                          f"requests, got {count:,} (client.run() splits them)")
    validator.raise_if_problems("the batch was not sent")
    return requests


class SourceProblem:
    """A row that could not even be read (bad JSON): carried to the validator to report."""

    def __init__(self, message: str):
        self.message = message


def iter_source(source: Any) -> Iterable[tuple[str, Any]]:
    """``(where, item)`` for each row of a JSONL path or an iterable of requests.

    ``where`` names the row for error messages: ``data.jsonl line 7`` or
    ``request 6``. A line that is not JSON comes through as a SourceProblem, so
    every bad line is reported, not just the first.
    """
    if isinstance(source, (str, os.PathLike)):
        yield from _iter_jsonl(os.fspath(source))
    else:
        for index, item in enumerate(source):
            yield f"request {index}", item


def _iter_jsonl(path: str) -> Iterable[tuple[str, Any]]:
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            where = f"{path} line {number}"
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                yield where, json.loads(line)
            except ValueError as exc:
                detail = (f"{exc.msg} (column {exc.colno})"
                          if isinstance(exc, json.JSONDecodeError) else str(exc))
                yield where, SourceProblem(f"not valid JSON: {detail}")
