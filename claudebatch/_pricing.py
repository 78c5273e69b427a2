"""Prices of the model catalog: the packaged data (``catalog.json``), plus the user's own.

Prices are per million tokens in USD, as ``Decimal``. A model id resolves by
exact id or alias first; failing that, a dated variant (``<known name>-YYYYMMDD``
or ``<known name>@YYYYMMDD``) takes the price of the longest known name it
starts with, so a new snapshot of a known model is priced without a table
update, while a new model (``claude-opus-4-9``) is not silently priced as an
old one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import attrs

from .errors import ConfigurationError

MILLION = Decimal(1_000_000)
_DATE = re.compile(r"\d{8}(?![0-9A-Za-z])")
_DATED = re.compile(r"^(.+)[-@]\d{8}$")

#: What ``pricing=`` accepts: a JSON or CSV file path, or a mapping.
PricingSource = Union[str, "os.PathLike[str]", Mapping[str, Any]]


def to_decimal(value: Any, what: str) -> Decimal:
    """A price or multiplier as Decimal; floats go through ``str`` so 0.8 stays 0.8."""
    if isinstance(value, bool):
        raise ConfigurationError(f"pricing: {what} must be a number, got {value!r}")
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ConfigurationError(f"pricing: {what} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ConfigurationError(f"pricing: {what} must be a number >= 0, got {value!r}")
    return number


@attrs.frozen
class CacheMultipliers:
    """Prompt-cache prices as multiples of the model's base input price."""

    write_5m: Decimal = Decimal("1.25")
    write_1h: Decimal = Decimal(2)
    read: Decimal = Decimal("0.1")

    def updated(self, values: Optional[Mapping[str, Any]], where: str) -> CacheMultipliers:
        if not values:
            return self
        unknown = set(values) - {"write_5m", "write_1h", "read"}
        if unknown:
            raise ConfigurationError(
                f"pricing: {where} cache_multipliers has unknown keys {sorted(unknown)} "
                "(known: write_5m, write_1h, read)")
        return attrs.evolve(self, **{k: to_decimal(v, f"{where} cache_multipliers.{k}")
                                     for k, v in values.items()})


@attrs.frozen
class ModelPrice:
    """One model's list prices (USD per million tokens) and its cache multipliers."""

    model: str
    input: Decimal
    output: Decimal
    cache: CacheMultipliers = CacheMultipliers()
    aliases: Tuple[str, ...] = ()
    name: str = ""
    retired: bool = False

    @property
    def names(self) -> Tuple[str, ...]:
        return (self.model, *self.aliases)

    _rates: Dict[str, Decimal] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        base = self.input / MILLION
        object.__setattr__(self, "_rates", {
            "input": base,
            "cache_write_5m": base * self.cache.write_5m,
            "cache_write_1h": base * self.cache.write_1h,
            "cache_read": base * self.cache.read,
            "output": self.output / MILLION,
        })

    @property
    def rates(self) -> Dict[str, Decimal]:
        """USD per token of each usage component (standard, non-batch price); read only."""
        return self._rates

    def per_token(self) -> Dict[str, Decimal]:
        """A copy of :attr:`rates`."""
        return dict(self._rates)


@attrs.frozen
class PricingTable:
    """Every priced model, the batch discount and the web-search fee.

    ``batch_multiplier`` (0.5) applies to every token component, cache writes and
    reads included; it applies to web searches only if
    ``web_search_batch_discount`` is set (Anthropic's pricing page states the
    batch discount for tokens; web search is a separate per-search fee).
    """

    as_of: str
    models: Tuple[ModelPrice, ...]
    batch_multiplier: Decimal = Decimal("0.5")
    web_search_per_1000: Decimal = Decimal(10)
    web_search_batch_discount: bool = False
    sources: Tuple[str, ...] = ()
    _by_name: Dict[str, ModelPrice] = attrs.field(init=False, repr=False, eq=False)
    _by_base: Dict[str, ModelPrice] = attrs.field(init=False, repr=False, eq=False)
    _resolved: Dict[str, Optional[ModelPrice]] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        by_name: Dict[str, ModelPrice] = {}
        for price in self.models:
            for name in price.names:
                by_name[name] = price
        # Known dated ids without their date (claude-sonnet-4-20250514 -> claude-sonnet-4).
        by_base: Dict[str, ModelPrice] = {}
        for name, price in by_name.items():
            match = _DATED.match(name)
            if match:
                by_base.setdefault(match.group(1), price)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_by_base", by_base)
        object.__setattr__(self, "_resolved", {})

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None

    @property
    def web_search_per_request(self) -> Decimal:
        return self.web_search_per_1000 / 1000

    def lookup(self, model: str) -> Optional[ModelPrice]:
        """The price of ``model``: exact id or alias, else the longest known dated prefix."""
        if model in self._resolved:
            return self._resolved[model]
        found = self._resolve(model)
        if len(self._resolved) < 10_000:
            self._resolved[model] = found
        return found

    def _resolve(self, model: str) -> Optional[ModelPrice]:
        exact = self._by_name.get(model)
        if exact is not None:
            return exact
        best: Optional[ModelPrice] = None
        best_length = -1
        for index, char in enumerate(model):
            if char not in "-@" or not _DATE.match(model, index + 1):
                continue
            prefix = model[:index]
            found = self._by_name.get(prefix) or self._by_base.get(prefix)
            if found is not None and len(prefix) > best_length:
                best, best_length = found, len(prefix)
        return best

    def with_overrides(self, source: PricingSource) -> PricingTable:
        """This table with the models (and settings) of ``source`` added or replaced.

        Overriding any name of a packaged model (its id or an alias) replaces
        that model's price under all of its names.
        """
        data, where = _read_source(source)
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"pricing: {where} must hold a JSON object of models")
        settings = _settings(data, where)
        defaults = _defaults(data, where) if "models" in data else None
        overrides = _parse_models(_models_section(data), where, defaults)
        models: List[ModelPrice] = list(self.models)
        for new in overrides:
            replaced = {p.model for p in models if set(p.names) & set(new.names)}
            kept_aliases: List[str] = []
            for old in models:
                if old.model in replaced:
                    kept_aliases.extend(n for n in old.names if n not in new.names)
            models = [p for p in models if p.model not in replaced]
            models.append(attrs.evolve(new, aliases=(*new.aliases, *kept_aliases)))
        return attrs.evolve(self, models=tuple(models), sources=(*self.sources, where),
                            **settings)


def packaged_table() -> PricingTable:
    """The prices shipped with claudebatch (``claudebatch/catalog.json``), dated and sourced."""
    text = resources.files("claudebatch").joinpath("catalog.json").read_text("utf-8")
    data = json.loads(text, parse_float=Decimal)
    settings = _settings(data, "catalog.json")
    models = _parse_models(data["models"], "catalog.json", _defaults(data, "catalog.json"))
    return PricingTable(models=tuple(models), sources=("packaged catalog.json",), **settings)


def load_pricing(source: Optional[PricingSource] = None) -> PricingTable:
    """The packaged table, with ``source`` (a JSON/CSV file or a mapping) layered on top."""
    table = packaged_table()
    return table if source is None else table.with_overrides(source)


# --- reading ----------------------------------------------------------------------------

def _read_source(source: PricingSource) -> Tuple[Any, str]:
    if isinstance(source, Mapping):
        return source, "pricing mapping"
    path = os.fspath(source)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"pricing: cannot read {path}: {exc.strerror}") from None
    if path.lower().endswith(".csv"):
        return {"models": _csv_models(text, path)}, path
    try:
        return json.loads(text, parse_float=Decimal), path
    except ValueError as exc:
        raise ConfigurationError(
            f"pricing: {path} is not valid JSON ({exc}); a .csv file is read as CSV") from None


def _csv_models(text: str, path: str) -> Dict[str, Dict[str, Any]]:
    """CSV columns: model, input, output, and optionally aliases (space separated),
    name, write_5m, write_1h, read (cache multipliers)."""
    reader = csv.DictReader(io.StringIO(text))
    fields = set(reader.fieldnames or ())
    missing = {"model", "input", "output"} - fields
    if missing:
        raise ConfigurationError(f"pricing: {path} needs the columns model, input, output "
                                 f"(missing: {', '.join(sorted(missing))})")
    models: Dict[str, Dict[str, Any]] = {}
    for number, row in enumerate(reader, start=2):
        model = (row.get("model") or "").strip()
        if not model or model.startswith("#"):
            continue
        entry: Dict[str, Any] = {"input": (row.get("input") or "").strip(),
                                 "output": (row.get("output") or "").strip(),
                                 "where": f"{path} line {number}"}
        if (row.get("aliases") or "").strip():
            entry["aliases"] = row["aliases"].split()
        if (row.get("name") or "").strip():
            entry["name"] = row["name"].strip()
        multipliers = {k: row[k].strip() for k in ("write_5m", "write_1h", "read")
                       if (row.get(k) or "").strip()}
        if multipliers:
            entry["cache_multipliers"] = multipliers
        models[model] = entry
    return models


def _models_section(data: Any) -> Mapping[str, Any]:
    """``{"models": {...}}`` (the packaged format) or a bare ``{model: price}`` mapping."""
    if not isinstance(data, Mapping):
        raise ConfigurationError("pricing: expected an object of models")
    models = data.get("models", data)
    if not isinstance(models, Mapping):
        raise ConfigurationError("pricing: 'models' must be an object of model id -> price")
    return models


def _defaults(data: Mapping[str, Any], where: str) -> CacheMultipliers:
    return CacheMultipliers().updated(data.get("cache_multipliers"), where)


def _settings(data: Any, where: str) -> Dict[str, Any]:
    if not isinstance(data, Mapping) or "models" not in data:
        return {}
    settings: Dict[str, Any] = {}
    if "as_of" in data:
        settings["as_of"] = str(data["as_of"])
    if "batch_multiplier" in data:
        settings["batch_multiplier"] = to_decimal(data["batch_multiplier"],
                                                  f"{where} batch_multiplier")
    if "web_search_per_1000" in data:
        settings["web_search_per_1000"] = to_decimal(data["web_search_per_1000"],
                                                     f"{where} web_search_per_1000")
    if "web_search_batch_discount" in data:
        settings["web_search_batch_discount"] = bool(data["web_search_batch_discount"])
    return settings


def _parse_models(models: Mapping[str, Any], where: str,
                  defaults: Optional[CacheMultipliers] = None) -> List[ModelPrice]:
    base = defaults or CacheMultipliers()
    parsed: List[ModelPrice] = []
    for model, entry in models.items():
        here = entry.get("where", f"{where} model {model!r}") if isinstance(entry, Mapping) \
            else f"{where} model {model!r}"
        if not isinstance(model, str) or not model:
            raise ConfigurationError(f"pricing: {where}: model ids must be non-empty strings")
        if not isinstance(entry, Mapping) or "input" not in entry or "output" not in entry:
            raise ConfigurationError(
                f"pricing: {here} needs input and output prices (USD per million tokens), "
                f"e.g. {{\"input\": 3, \"output\": 15}}")
        aliases = entry.get("aliases", ())
        if isinstance(aliases, str) or not isinstance(aliases, Iterable):
            raise ConfigurationError(f"pricing: {here} aliases must be a list of ids")
        parsed.append(ModelPrice(
            model=model,
            input=to_decimal(entry["input"], f"{here} input"),
            output=to_decimal(entry["output"], f"{here} output"),
            cache=base.updated(entry.get("cache_multipliers"), here),
            aliases=tuple(str(a) for a in aliases),
            name=str(entry.get("name", "")),
            retired=bool(entry.get("retired", False))))
    return parsed
