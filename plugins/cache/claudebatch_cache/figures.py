"""What the plugin predicted when it placed breakpoints, and what the usage reported."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional

import attrs

#: The summary shows money to a millionth of a dollar (the attribute keeps it exact).
MICRO_USD = Decimal("0.000001")


@attrs.define
class Predicted:
    """Decided before sending, from the requests alone (also what a dry run shows)."""

    requests: int = 0
    requests_marked: int = 0
    breakpoints_added: int = 0
    groups: int = 0
    #: Tokens up to the deepest added breakpoint, summed over the marked requests:
    #: what each would write or read, were every request to hit.
    cacheable_tokens: int = 0
    #: Of those, what could be read rather than written: every request of a group but
    #: its first (all of them when a primer or an earlier batch wrote the prefix).
    read_tokens: int = 0
    #: Why requests got no breakpoint: user-marked, full, too-short, not-shared, ...
    unmarked: Counter[str] = attrs.field(factory=Counter)
    #: Batches left unmarked because the breakpoints would push the body past 256 MB.
    batches_too_large: int = 0
    primers: int = 0


@attrs.define
class Observed:
    """Summed from the usage of each succeeded result (primers counted apart)."""

    results: int = 0
    input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    requests_with_reads: int = 0
    requests_with_writes: int = 0
    output_tokens: int = 0
    #: model -> [read, write 5m, write 1h] tokens, for pricing the saving.
    by_model: Dict[str, List[int]] = attrs.field(factory=dict)
    #: model -> [input, write 5m, write 1h, read, output] tokens (what primers cost).
    all_by_model: Dict[str, List[int]] = attrs.field(factory=dict)

    def add(self, model: str, usage: Any) -> None:
        """Add one result's usage (a typed ``Usage``)."""
        written = usage.cache_creation_input_tokens or 0
        breakdown = usage.cache_creation
        if breakdown is not None:
            w1h, w5m = breakdown.ephemeral_1h_input_tokens, breakdown.ephemeral_5m_input_tokens
        else:
            w1h, w5m = 0, written
        self._add(model, usage.cache_read_input_tokens or 0, written, w5m, w1h,
                  usage.input_tokens or 0, usage.output_tokens or 0)

    def add_raw(self, model: str, usage: Mapping[str, Any]) -> None:
        """:meth:`add` for the usage object as the result line holds it: the same sums as
        the typed ``Usage`` built from it, without building it."""
        written = usage.get("cache_creation_input_tokens") or 0
        breakdown = usage.get("cache_creation")
        if breakdown is not None:
            w1h = breakdown.get("ephemeral_1h_input_tokens") or 0
            w5m = breakdown.get("ephemeral_5m_input_tokens") or 0
        else:
            w1h, w5m = 0, written
        self._add(model, usage.get("cache_read_input_tokens") or 0, written, w5m, w1h,
                  usage.get("input_tokens") or 0, usage.get("output_tokens") or 0)

    def _add(self, model: str, read: int, written: int, w5m: int, w1h: int, inputs: int,
             outputs: int) -> None:
        """Once per result: plain locals, no loop."""
        self.results += 1
        self.input_tokens += inputs
        self.output_tokens += outputs
        self.cache_read_tokens += read
        self.cache_write_tokens += written
        self.cache_write_5m_tokens += w5m
        self.cache_write_1h_tokens += w1h
        if read > 0:
            self.requests_with_reads += 1
        if written > 0:
            self.requests_with_writes += 1
        if read or written:
            row = self.by_model.get(model)
            if row is None:
                row = self.by_model[model] = [0, 0, 0]
            row[0] += read
            row[1] += w5m
            row[2] += w1h
        full = self.all_by_model.get(model)
        if full is None:
            full = self.all_by_model[model] = [0, 0, 0, 0, 0]
        full[0] += inputs
        full[1] += w5m
        full[2] += w1h
        full[3] += read
        full[4] += outputs

    @property
    def hit_rate(self) -> Optional[float]:
        """Share of the tokens that went through the cache which were read, not written."""
        total = self.cache_read_tokens + self.cache_write_tokens
        return self.cache_read_tokens / total if total else None

    @property
    def cached_input_share(self) -> Optional[float]:
        """Share of all prompt tokens that were served from the cache."""
        total = self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
        return self.cache_read_tokens / total if total else None


def summary(predicted: Predicted, observed: Optional[Observed],
            saved_usd: Optional[Decimal], primer: Optional[Observed]) -> Dict[str, Any]:
    """The ``{"cache": ...}`` section of a JobReport or JobPlan: short keys, plain values."""
    out: Dict[str, Any] = {
        "requests_marked": predicted.requests_marked,
        "groups": predicted.groups,
        "breakpoints_added": predicted.breakpoints_added,
        "cacheable_tokens_predicted": predicted.cacheable_tokens,
        "read_tokens_predicted": predicted.read_tokens,
    }
    for reason, count in sorted(predicted.unmarked.items()):
        out[f"unmarked_{reason.replace('-', '_')}"] = count
    if predicted.batches_too_large:
        out["batches_too_large"] = predicted.batches_too_large
    if predicted.primers:
        out["primers"] = predicted.primers
    if observed is not None:
        out["cache_write_tokens"] = observed.cache_write_tokens
        out["cache_read_tokens"] = observed.cache_read_tokens
        out["requests_with_reads"] = observed.requests_with_reads
        rate = observed.hit_rate
        out["hit_rate"] = None if rate is None else round(rate, 4)
        if saved_usd is not None:
            out["saved_usd"] = saved_usd.quantize(MICRO_USD)
        if primer is not None and primer.results:
            out["primer_write_tokens"] = primer.cache_write_tokens
    return out
