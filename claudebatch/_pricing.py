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
import datetime as dt
import functools
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
class LongPrompt:
    """A higher price for every token of a request whose prompt (input plus cache reads
    and writes) is longer than ``above`` tokens (Claude Haiku 5.5: 100,000)."""

    above: int
    input: Decimal
    output: Decimal


@attrs.frozen
class EarlierPrice:
    """A price that was in force up to and including ``until`` (an ISO date, UTC)."""

    until: str
    input: Decimal
    output: Decimal
    cache: Optional[CacheMultipliers] = None
    source: str = ""


@attrs.frozen
class ModelPrice:
    """One model's list prices (USD per million tokens) and its cache multipliers.

    ``earlier`` holds the prices in force before the current one, oldest first;
    :meth:`at` gives the price of a given day. ``source``, ``released`` and
    ``retires`` say where the figures come from and when the model lives.
    """

    model: str
    input: Decimal
    output: Decimal
    cache: CacheMultipliers = CacheMultipliers()
    aliases: Tuple[str, ...] = ()
    name: str = ""
    retired: bool = False
    long_prompt: Optional[LongPrompt] = None
    earlier: Tuple[EarlierPrice, ...] = ()
    source: str = ""
    released: str = ""
    retires: str = ""

    @property
    def names(self) -> Tuple[str, ...]:
        return (self.model, *self.aliases)

    _rates: Dict[str, Decimal] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_rates", _rates(self.input, self.output, self.cache))

    @property
    def rates(self) -> Dict[str, Decimal]:
        """USD per token of each usage component (standard, non-batch price); read only."""
        return self._rates

    def per_token(self) -> Dict[str, Decimal]:
        """A copy of :attr:`rates`."""
        return dict(self._rates)

    def rates_for_prompt(self, prompt_tokens: int) -> Dict[str, Decimal]:
        """:attr:`rates`, or the long-prompt rates when ``prompt_tokens`` is over the tier."""
        tier = self.long_prompt
        if tier is None or prompt_tokens <= tier.above:
            return self._rates
        return _rates(tier.input, tier.output, self.cache)

    def at(self, day: Union[str, dt.date, dt.datetime, None]) -> ModelPrice:
        """The price in force on ``day``: a date, a datetime (its UTC date; a naive one is
        taken as UTC, as the API's times are) or an ISO date or datetime string; None:
        today's price. A string that is neither is a ValueError."""
        if day is None or not self.earlier:
            return self
        if isinstance(day, str):
            try:
                day = dt.datetime.fromisoformat(day.replace("Z", "+00:00")) if len(day) > 10 \
                    else dt.date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"a price's day must be an ISO date or datetime, got "
                                 f"{day!r}") from None
        if isinstance(day, dt.datetime):
            day = day.astimezone(dt.timezone.utc).date() if day.tzinfo else day.date()
        if not isinstance(day, dt.date):
            raise ValueError(f"a price's day must be a date, got {day!r}")
        text = day.isoformat()
        for old in self.earlier:
            if text <= old.until:
                return attrs.evolve(self, input=old.input, output=old.output,
                                    cache=old.cache or self.cache, earlier=(),
                                    source=old.source or self.source)
        return self


def _rates(input_price: Decimal, output_price: Decimal, cache: CacheMultipliers
           ) -> Dict[str, Decimal]:
    base = input_price / MILLION
    return {
        "input": base,
        "cache_write_5m": base * cache.write_5m,
        "cache_write_1h": base * cache.write_1h,
        "cache_read": base * cache.read,
        "output": output_price / MILLION,
    }


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
    #: Multipliers on every token price by where inference ran (``usage.inference_geo``).
    geo_multipliers: Mapping[str, Decimal] = attrs.field(
        factory=lambda: {"global": Decimal(1), "us": Decimal("1.1")})
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

    def lookup(self, model: str, at: Union[str, dt.date, dt.datetime, None] = None
               ) -> Optional[ModelPrice]:
        """The price of ``model``: exact id or alias, else the longest known dated prefix;
        with ``at``, the price in force then (a batch is priced as of its ``created_at``)."""
        if model in self._resolved:
            found = self._resolved[model]
        else:
            found = self._resolve(model)
            if len(self._resolved) < 10_000:
                self._resolved[model] = found
        return found.at(at) if found is not None and at is not None else found

    def geo_multiplier(self, geo: Optional[str]) -> Decimal:
        """The price multiplier where inference ran (1 when unsaid or unknown)."""
        return self.geo_multipliers.get(geo, Decimal(1)) if geo else Decimal(1)

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


@functools.lru_cache(maxsize=1)
def packaged_table() -> PricingTable:
    """The prices shipped with claudebatch (``claudebatch/catalog.json``), dated and sourced.

    Read once: the table is immutable (``with_overrides`` makes a new one)."""
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
    geo = data.get("inference_geo")
    if geo is not None:
        multipliers = geo.get("multipliers") if isinstance(geo, Mapping) else None
        if not isinstance(multipliers, Mapping):
            raise ConfigurationError(f"pricing: {where} inference_geo needs 'multipliers', "
                                     "e.g. {\"multipliers\": {\"global\": 1, \"us\": 1.1}}")
        settings["geo_multipliers"] = {
            str(k): to_decimal(v, f"{where} inference_geo.multipliers.{k}")
            for k, v in multipliers.items()}
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
        cache = base.updated(entry.get("cache_multipliers"), here)
        parsed.append(ModelPrice(
            model=model,
            input=to_decimal(entry["input"], f"{here} input"),
            output=to_decimal(entry["output"], f"{here} output"),
            cache=cache,
            aliases=tuple(str(a) for a in aliases),
            name=str(entry.get("name", "")),
            retired=bool(entry.get("retired", False)),
            long_prompt=_long_prompt(entry.get("long_prompt"), here),
            earlier=_earlier(entry.get("earlier"), here, cache),
            source=str(entry.get("source", "")),
            released=_date(entry.get("released"), f"{here} released"),
            retires=_date(entry.get("retires"), f"{here} retires")))
    return parsed


def _date(value: Any, what: str, required: bool = False) -> str:
    if value is None and not required:
        return ""
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ConfigurationError(
            f"pricing: {what} must be a date as YYYY-MM-DD, got {value!r}") from None


def _long_prompt(value: Any, here: str) -> Optional[LongPrompt]:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not {"above", "input", "output"} <= set(value):
        raise ConfigurationError(f"pricing: {here} long_prompt needs above, input and output, "
                                 "e.g. {\"above\": 100000, \"input\": 0.5, \"output\": 2.5}")
    above = value["above"]
    if isinstance(above, bool) or not isinstance(above, int) or above < 0:
        raise ConfigurationError(f"pricing: {here} long_prompt.above must be a whole number "
                                 f"of tokens, got {above!r}")
    return LongPrompt(above, to_decimal(value["input"], f"{here} long_prompt.input"),
                      to_decimal(value["output"], f"{here} long_prompt.output"))


def _earlier(value: Any, here: str, cache: CacheMultipliers) -> Tuple[EarlierPrice, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"pricing: {here} earlier must be a list of "
                                 "{\"until\": date, \"input\": ..., \"output\": ...}")
    prices: List[EarlierPrice] = []
    for number, old in enumerate(value):
        where = f"{here} earlier[{number}]"
        if not isinstance(old, Mapping) or not {"until", "input", "output"} <= set(old):
            raise ConfigurationError(f"pricing: {where} needs until, input and output")
        prices.append(EarlierPrice(
            _date(old["until"], f"{where} until", required=True),
            to_decimal(old["input"], f"{where} input"),
            to_decimal(old["output"], f"{where} output"),
            cache.updated(old.get("cache_multipliers"), where)
            if old.get("cache_multipliers") else None,
            str(old.get("source", ""))))
    prices.sort(key=lambda p: p.until)
    return tuple(prices)
