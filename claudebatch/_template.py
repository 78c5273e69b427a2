"""A prompt template: Jinja2, sandboxed, strict about names, rendered once per row.

Sandboxed (``ImmutableSandboxedEnvironment``): a template from a shared folder
cannot reach Python's internals or change the row. A name the row lacks is an
error naming the row and the name, never a silent empty string. A missing value
(None: an empty Parquet cell, NaN in pandas) renders as nothing. Columns whose
names are not identifiers are reached as ``row["review text"]``.
"""

from __future__ import annotations

import re
from typing import Any, List, Mapping, Optional, Tuple

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import ValidationError


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


#: The most a template's ``*`` may repeat text or a list, in items: far beyond any prompt
#: (a batch body holds 256 MB), far below what would exhaust memory one row at a time.
MAX_REPEAT = 10_000_000


#: The most bits an integer a template computes may have (``**``, ``*``).
MAX_INT_BITS = 100_000
_HUGE_WIDTH = re.compile(r"\d{8,}")  # a width of 10 million or more in a format string


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, also refusing what would take the memory or the time of
    the machine in one expression: ``"x" * 10**9``, ``2 ** 10**9``, ``"x"|center(10**9)``,
    ``"{:>999999999}".format(x)``. (A loop that doubles a string each turn is not caught:
    a template is code, trusted with the machine it runs on.)"""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) \
                        and len(seq) * times > MAX_REPEAT:
                    raise SecurityError(f"repeating {len(seq):,} items {times:,} times makes "
                                        f"more than {MAX_REPEAT:,}")
            if _int(left) and _int(right) \
                    and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError("the product is too large a number")
        elif operator == "**" and _int(left) and _int(right) and abs(left) > 1 and right > 0 \
                and left.bit_length() * right > MAX_INT_BITS:
            raise SecurityError("the power is too large a number")
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = getattr(value, "__self__", "")

        def checked(*args: Any, **kwargs: Any) -> Any:
            if isinstance(text, str) and _HUGE_WIDTH.search(text):
                raise SecurityError("a format with a width of 10 million or more")
            return wrapped(*args, **kwargs)

        return checked


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounded(name: str, original: Any) -> Any:
    """A filter whose numeric arguments (widths, counts) stay below :data:`MAX_REPEAT`."""
    def bounded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[1:], *kwargs.values()):
            if _int(value) and abs(value) > MAX_REPEAT:
                raise SecurityError(f"the {name} filter with {value:,}")
        return original(*args, **kwargs)

    for attribute in ("jinja_pass_arg",):  # how Jinja marks a filter taking the environment
        if hasattr(original, attribute):
            setattr(bounded, attribute, getattr(original, attribute))
    return bounded


_ENVIRONMENT = _Sandbox(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
    finalize=_blank_none)
for _name in ("center", "indent", "format", "wordwrap", "truncate"):
    _ENVIRONMENT.filters[_name] = _bounded(_name, _ENVIRONMENT.filters[_name])
_ENVIRONMENT.globals.pop("lipsum", None)  # placeholder text: never a prompt, and unbounded
_GLOBALS = dict(_ENVIRONMENT.globals)


class Template:
    """A compiled template; ``render(row)`` gives the text or a problem to report."""

    def __init__(self, text: str, *, name: str = "the template") -> None:
        self.text = text
        self.name = name
        try:
            self._compiled = _ENVIRONMENT.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            raise ValidationError(f"{name} line {exc.lineno}: {exc.message}") from None

    def render(self, row: Mapping[str, Any]) -> Tuple[Optional[str], Optional[str]]:
        """``(text, None)``, or ``(None, why)`` when this row cannot fill the template."""
        # Its own context, shared with nothing: the environment's globals (range, dict...)
        # put in by hand, and no copy of them per row (it halves the cost of a render).
        values = {**_GLOBALS, **row}
        values.setdefault("row", row)
        compiled = self._compiled
        try:
            return "".join(compiled.root_render_func(
                compiled.new_context(values, shared=True))), None
        except jinja2.UndefinedError as exc:
            return None, (f"{self.name} uses {_undefined_name(exc)}, which this row does not "
                          f"have (its columns: {_columns(row)})")
        except SecurityError as exc:
            return None, f"{self.name} did something the sandbox refuses: {exc}"
        except jinja2.TemplateError as exc:
            return None, f"{self.name} failed on this row: {exc}"
        except Exception as exc:  # a filter or an operator on this row's values
            return None, f"{self.name} failed on this row: {type(exc).__name__}: {exc}"


def _undefined_name(exc: jinja2.UndefinedError) -> str:
    message = str(exc.message or "")
    if message.endswith(" is undefined"):
        return message[:-len(" is undefined")]
    return message


def _columns(row: Mapping[str, Any]) -> str:
    names: List[str] = [str(name) for name in row]
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return shown or "none"
