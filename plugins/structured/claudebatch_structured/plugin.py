"""StructuredOutput: every answer of a job checked against a schema, typed, repaired.

How it rides the job, on the public hooks only:

* ``before_pass`` (``before_submit`` for a single ``create``): every request without an
  output format gets ``output_config.format`` (the API's structured outputs, a JSON
  schema: no beta needed);
* ``annotate_result``: each success is checked (:mod:`.check`); its output line gets
  ``"parsed"`` (the JSON value) or ``"structured_error"`` (class, message, path), and
  ``result.parsed`` is the typed value (an attrs instance, a pydantic model, or JSON);
* ``on_result``: counts, and remembers each request's latest failure and its pass;
* ``resubmit_requests`` (a wrapper, inside the job store's record of the decision): the
  repairable failures of a pass join what other plugins send again, truncated ones with
  a larger ``max_tokens`` within the model's limit, for up to ``repair_passes`` passes;
* ``job_summary``: parsed, invalid by class, repaired; what still fails is in
  :attr:`StructuredOutput.failures`, never silently dropped or kept as parsed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from typing import Any, Dict, Generator, Iterable, List, Optional, Set, Union

import attrs

from claudebatch import (
    Annotation,
    BatchResult,
    CallContext,
    Column,
    JobContext,
    JobPlan,
    JobReport,
    PendingBatch,
    Request,
    hookimpl,
)
from claudebatch.apirules import output_format
from claudebatch.catalog import max_output_tokens
from claudebatch.limits import MAX_PASSES, json_bytes

from .check import REPAIRABLE, TRUNCATED, Checked, Problem, check
from .schemas import Shape, shape_of

logger = logging.getLogger("claudebatch.structured")

#: The most repair passes a job runs (the core stops asking after MAX_PASSES in all).
MAX_REPAIR_PASSES = MAX_PASSES - 1


@attrs.frozen
class Failure:
    """A request whose last answer is not a value of the schema."""

    custom_id: str
    problem: Problem
    attempts: int

    def to_dict(self) -> Dict[str, Any]:
        return {**self.problem.to_dict(), "attempts": self.attempts}


class StructuredOutput:
    """Asks every request of a job for JSON of ``schema`` and checks every answer.

    ``schema``: a JSON Schema dict, an attrs class or a pydantic model.
    ``repair_passes``: extra passes for answers that are not JSON, break the schema or
    were cut at ``max_tokens`` (0: only report them; at most 9).

    After a job: ``parsed`` (answers that are values of the schema), ``invalid``
    (latest failures by class), ``repaired`` (requests that failed, then parsed), and
    ``failures`` (custom_id -> :class:`Failure`) for every request whose last answer
    failed. ``value(result)`` gives the typed value of a result read back later.
    """

    def __init__(self, schema: Any, *, repair_passes: int = 1) -> None:
        if isinstance(repair_passes, bool) or not isinstance(repair_passes, int) \
                or not 0 <= repair_passes <= MAX_REPAIR_PASSES:
            raise ValueError(f"repair_passes must be an integer from 0 to "
                             f"{MAX_REPAIR_PASSES}, got {repair_passes!r}")
        self.shape: Shape = shape_of(schema)
        self._field_names: Optional[List[str]] = None  # the table's columns, once known
        self.repair_passes = repair_passes
        self._format = {"type": "json_schema", "schema": self.shape.sent}
        self._job: Optional[JobContext] = None
        self._reset()

    def __repr__(self) -> str:
        return f"StructuredOutput({self.shape.kind} schema, repair_passes={self.repair_passes})"

    def _reset(self) -> None:
        self._latest: Dict[str, tuple[int, Problem]] = {}  # custom_id -> (pass, failure)
        self._attempts: Counter[str] = Counter()
        self._failed_once: Set[str] = set()
        self._good: Set[str] = set()
        self._own_format: Set[str] = set()  # requests asking for their own output format
        self.repair_passes_run = 0

    # --- figures ------------------------------------------------------------------

    @property
    def parsed(self) -> int:
        return len(self._good)

    @property
    def repaired(self) -> int:
        return len(self._good & self._failed_once)

    @property
    def invalid(self) -> Dict[str, int]:
        return dict(Counter(problem.kind for _, problem in self._latest.values()))

    @property
    def failures(self) -> Dict[str, Failure]:
        return {custom_id: Failure(custom_id, problem, self._attempts[custom_id])
                for custom_id, (_, problem) in self._latest.items()}

    def value(self, result: BatchResult) -> Any:
        """The typed value of a result (one read back from an output file too), or None."""
        checked = check(result, self.shape)
        return checked.typed if checked is not None and checked.problem is None else None

    # --- the requests -------------------------------------------------------------

    def with_format(self, request: Request) -> Request:
        """``request`` asking for this schema, unless it asks for an output format already."""
        params = request.params
        asked = output_format(params)
        if asked is not None:
            if asked != self._format:
                self._own_format.add(request.custom_id)  # its own, not this plugin's
            return request
        config = params.get("output_config")
        base = dict(config) if isinstance(config, dict) else {}
        return Request(request.custom_id,
                       {**params, "output_config": {**base, "format": self._format}})

    @hookimpl
    def on_job_start(self, context: JobContext) -> None:
        self._job = context
        self._reset()
        context.on_planned(self._planned)
        # every request gains its output format: the job cuts its batches with that room
        added = json_bytes({"output_config": {"format": self._format}})
        context.reserve_bytes(len(added))
        # a job resumed with another schema would judge old answers by it: refused
        context.declare_option("structured.schema", hashlib.sha256(added).hexdigest()[:16])

    def _planned(self, request: Request) -> None:
        self._attempts[request.custom_id] += 1

    @hookimpl
    def before_pass(self, batches: List[PendingBatch], context: JobContext) -> None:
        for pending in batches:
            pending.transform(self.with_format)

    @hookimpl
    def before_submit(self, requests: PendingBatch, context: CallContext) -> None:
        if not isinstance(context, JobContext):  # a single create: no before_pass
            requests.transform(self.with_format)

    # --- the answers --------------------------------------------------------------

    @hookimpl
    def annotate_result(self, result: BatchResult) -> Optional[Annotation]:
        if result.custom_id in self._own_format:
            return None  # it asked for a format of its own: not this schema's to judge
        checked = check(result, self.shape)
        if checked is None:
            return None
        if checked.problem is not None:
            return Annotation({"structured_error": checked.problem.to_dict()}, owns=_OWNED,
                              usable=False)
        return Annotation({"parsed": checked.value}, checked.typed, owns=_OWNED)

    @hookimpl
    def on_result(self, result: BatchResult, line: bytes, context: CallContext) -> None:
        if not isinstance(context, JobContext) or context is not self._job:
            return
        custom_id = result.custom_id
        if result.type != "succeeded" or custom_id in self._own_format:
            return  # errored, expired, canceled: the retry plugin's to judge
        if _ERROR_FIELD not in line:  # parsed (its value may be null)
            self._good.add(custom_id)
            self._latest.pop(custom_id, None)
            return
        problem = _problem_of(line, result, self.shape)
        self._good.discard(custom_id)
        self._failed_once.add(custom_id)
        self._latest[custom_id] = (context.pass_number, problem)

    # --- repair -------------------------------------------------------------------

    @hookimpl(wrapper=True, trylast=True, specname="resubmit_requests")
    def add_repairs(self, pass_number: int, context: JobContext
                    ) -> Generator[None, Optional[Iterable[Any]], Optional[Iterable[Any]]]:
        """The repairs of this pass, added to what the other plugins send again."""
        chosen = yield
        if context is not self._job:
            return chosen
        repairs = self._repairs(pass_number, context)
        if not repairs:
            return chosen
        others = list(chosen or ())
        taken = {_custom_id(item) for item in others}
        added = [r for r in repairs if r.custom_id not in taken]
        return others + added if added else chosen

    def _repairs(self, pass_number: int, context: JobContext) -> List[Request]:
        broken = {custom_id: problem for custom_id, (seen, problem) in self._latest.items()
                  if seen == pass_number and problem.kind in REPAIRABLE}
        if not broken:
            return []
        if pass_number > self.repair_passes:
            logger.info("job %s: %d answer(s) of pass %d still fail the schema; no repair "
                        "passes left (repair_passes=%d)", context.name, len(broken),
                        pass_number, self.repair_passes)
            return []
        repairs = []
        for request in context.find_requests(list(broken)):
            if broken[request.custom_id].kind == TRUNCATED:
                grown = _more_tokens(request)
                if grown is None:
                    continue  # at the model's limit already: more of the same would not fit
                request = grown
            # with its format now, so a budget weighs the pass as it will be sent
            repairs.append(self.with_format(request))
        kinds = Counter(broken[r.custom_id].kind for r in repairs)
        logger.info("job %s: repairing %d answer(s) of pass %d (%s)", context.name,
                    len(repairs), pass_number,
                    ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        self.repair_passes_run = max(self.repair_passes_run, pass_number)
        return repairs

    # --- the report ---------------------------------------------------------------

    @hookimpl
    def job_summary(self, report: Union[JobReport, JobPlan], context: JobContext
                    ) -> Optional[Dict[str, Any]]:
        if not isinstance(report, JobReport) or context is not self._job:
            return None
        invalid = self.invalid
        shown = f"{sum(invalid.values())} (" + ", ".join(
            f"{kind} {n}" for kind, n in sorted(invalid.items())) + ")" if invalid else "0"
        return {"structured": {"parsed": self.parsed, "invalid": shown,
                               "repaired": self.repaired,
                               "repair_passes": self.repair_passes_run}}

    @hookimpl
    def table_columns(self) -> List[Column]:
        """One column per top-level field of the schema (an object's properties)."""
        return [Column(name, kind) for name, kind in _fields(self.shape.json_schema)]

    @hookimpl
    def table_values(self, value: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        parsed = value.get("parsed") if isinstance(value, dict) else None
        if not isinstance(parsed, dict):
            return None  # not parsed (an error, a structured_error): the cells stay empty
        names = self._field_names
        if names is None:
            names = self._field_names = [n for n, _ in _fields(self.shape.json_schema)]
        return {name: parsed.get(name) for name in names}


_KINDS = {"string": "string", "integer": "int", "number": "float", "boolean": "bool"}


def _fields(schema: Dict[str, Any]) -> List[tuple[str, str]]:
    """``(name, column kind)`` of each top-level property of an object schema."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    fields = []
    for name, spec in properties.items():
        kind = "json"
        if isinstance(spec, dict):
            types = spec.get("type")
            if isinstance(types, list):
                types = [t for t in types if t != "null"]
                types = types[0] if len(types) == 1 else None
            kind = _KINDS.get(types, "json") if isinstance(types, str) else "json"
        fields.append((str(name), kind))
    return fields


#: The fields this plugin writes into a line; a line read back loses them first.
_OWNED = ("parsed", "structured_error")
#: The error field as it stands at a line's top level (inside a JSON string, its quotes
#: would be escaped, so an answer's text cannot hold these bytes).
_ERROR_FIELD = b'"structured_error":'


def _problem_of(line: bytes, result: BatchResult, shape: Shape) -> Problem:
    """The failure a line was annotated with (checked again if it was not)."""
    try:
        field = json.loads(line).get("structured_error")
    except ValueError:
        field = None
    if field is not None:
        return Problem.from_dict(field)
    checked: Optional[Checked] = check(result, shape)
    if checked is not None and checked.problem is not None:
        return checked.problem
    return Problem("schema_violation", "no parsed value")


def _more_tokens(request: Request) -> Optional[Request]:
    """``request`` with twice its ``max_tokens``, within the model's limit; None at it."""
    params = request.params
    current = params.get("max_tokens")
    model = params.get("model")
    if not isinstance(current, int) or not isinstance(model, str):
        return None
    most = max_output_tokens(model)
    if current >= most:
        return None
    return Request(request.custom_id, {**params, "max_tokens": min(most, current * 2)})


def _custom_id(item: Any) -> Any:
    return item.custom_id if isinstance(item, Request) else \
        item.get("custom_id") if isinstance(item, dict) else None
