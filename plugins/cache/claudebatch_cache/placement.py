"""Where the breakpoints go: count shared prefixes, choose per request, rewrite a copy.

:class:`PrefixCounts` is the only thing kept from the counting pass over a batch: for
each prefix key long enough to cache, how many requests share it. :func:`choose`
decides one request's breakpoints from those counts, and :func:`apply` returns new
params with them, leaving the caller's dicts untouched.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Set, Tuple

from .prompt import Prompt, analyse, is_string_at, short_and_unmarked

#: The API accepts at most this many cache_control blocks per request, the caller's
#: own and the top-level (automatic) one included.
MAX_BREAKPOINTS = 4
TTLS = ("5m", "1h")
#: Cache writes cost this much of base input; reads cost 0.1.
WRITE_MULTIPLIER = {"5m": 1.25, "1h": 2.0}
READ_MULTIPLIER = 0.1
#: Past this many tracked prefixes, those seen only once are forgotten (memory bound).
MAX_TRACKED_PREFIXES = 2_000_000


def break_even_group(ttl: str) -> int:
    """The fewest requests sharing a prefix for a breakpoint to pay off: one write and
    ``n - 1`` reads must cost less than ``n`` uncached prefixes (5m: 2, 1h: 3)."""
    n = 2
    while WRITE_MULTIPLIER[ttl] + READ_MULTIPLIER * (n - 1) >= n:
        n += 1
    return n


class PrefixCounts:
    """How many requests share each cacheable prefix, by key. Nothing else is kept."""

    def __init__(self, limit: int = MAX_TRACKED_PREFIXES) -> None:
        self.counts: Dict[int, int] = {}
        self.limit = limit

    def add(self, prompt: Prompt, min_tokens: int) -> None:
        counts = self.counts
        for b in prompt.boundaries:
            if b.markable and b.tokens >= min_tokens:
                counts[b.key] = counts.get(b.key, 0) + 1
        if len(counts) > self.limit:
            self.counts = {k: v for k, v in counts.items() if v > 1}

    def get(self, key: int) -> int:
        return self.counts.get(key, 0)


class Mark(NamedTuple):
    at: int  # boundary index in the prompt
    ttl: str


class Choice(NamedTuple):
    """What :func:`choose` decided for one request."""

    marks: List[Mark]  # deepest first
    reason: str  # "marked", "user-marked", "full", "too-short", "not-shared", "invalid-ttls"


class Rules(NamedTuple):
    ttl: str
    override: bool
    min_group: int
    min_tokens: Callable[[str], int]


def choose(prompt: Prompt, counts: PrefixCounts, warm: Mapping[int, Any], rules: Rules
           ) -> Choice:
    """The breakpoints to add to one request.

    The deepest prefix this request shares with at least ``min_group`` requests (or
    that an earlier batch already cached: ``warm``) and that reaches the model's
    minimum gets a breakpoint; then, going shallower, each prefix shared by strictly
    more requests than the last one marked (where groups branch), while breakpoints
    remain under the API's limit of 4.
    """
    own = prompt.user_breakpoints()
    reason = _fixed_reason(prompt, own, rules)
    if reason is not None:
        return Choice([], reason)
    slots = MAX_BREAKPOINTS - len(own)
    bounds = prompt.boundaries
    minimum = rules.min_tokens(prompt.model)
    automatic = -1  # the block automatic caching (top-level cache_control) will mark
    if prompt.top_level_ttl is not None:
        automatic = max((i for i, b in enumerate(bounds) if b.markable), default=-1)
    picked: List[Mark] = []
    sharers = 0
    for index in range(len(bounds) - 1, -1, -1):
        b = bounds[index]
        if b.tokens < minimum:
            break  # shallower prefixes are shorter still
        if not b.markable or b.ttl is not None or index == automatic:
            continue
        count = counts.get(b.key)
        if b.key in warm:
            count = max(count, rules.min_group)
        if count < rules.min_group or count <= sharers:
            continue
        picked.append(Mark(index, _ttl_at(index, own, rules.ttl)))
        sharers = count
        if len(picked) == slots:
            break
    if picked:
        return Choice(picked, "marked")
    return Choice([], "not-shared")


def fixed_reason(prompt: Prompt, rules: Rules) -> Optional[str]:
    """Why this request gets no breakpoint whatever the other requests share ("too-short",
    "user-marked", "full", "invalid-ttls"); None when that depends on them. What
    :func:`choose` decides first, so a pass can settle such requests when it counts."""
    return _fixed_reason(prompt, prompt.user_breakpoints(), rules)


def _fixed_reason(prompt: Prompt, own: List[Tuple[float, str]], rules: Rules
                  ) -> Optional[str]:
    if own and not rules.override:
        return "user-marked"
    if MAX_BREAKPOINTS - len(own) <= 0:
        return "full"
    if not _valid_order(own):
        return "invalid-ttls"  # the API will refuse it anyway; add nothing
    bounds = prompt.boundaries  # the deepest prefix is the longest: tokens only grow
    if not bounds or bounds[-1].tokens < rules.min_tokens(prompt.model):
        return "too-short"
    return None


def _valid_order(own: List[Any]) -> bool:
    """The API's rule: no 1-hour breakpoint after a 5-minute one."""
    if not own:
        return True
    seen_5m = False
    for _, ttl in sorted(own, key=lambda p: p[0]):
        if ttl == "5m":
            seen_5m = True
        elif seen_5m:
            return False
    return True


def _ttl_at(index: int, own: List[Any], wanted: str) -> str:
    """``wanted``, unless the caller's breakpoints force the other TTL at ``index``:
    a 5-minute one before it makes it 5m, a 1-hour one after it makes it 1h."""
    if not own:
        return wanted
    if any(pos < index and ttl == "5m" for pos, ttl in own):
        return "5m"
    if any(pos > index and ttl == "1h" for pos, ttl in own):
        return "1h"
    return wanted


def cache_control(ttl: str) -> Dict[str, str]:
    return {"type": "ephemeral", "ttl": ttl}


#: Bytes one breakpoint adds to the serialized request, and a string turned into a list.
MARK_BYTES = len(b',"cache_control":{"type":"ephemeral","ttl":"1h"}')
LIST_BYTES = len(b'[{"type":"text","text":}]')


def added_bytes(prompt: Prompt, choice: Choice, params: Dict[str, Any]) -> int:
    """How much longer the request's JSON body gets with these marks."""
    extra = 0
    for mark in choice.marks:
        extra += MARK_BYTES
        location = prompt.boundaries[mark.at].location
        if is_string_at(params, location):
            extra += LIST_BYTES
    return extra


def apply(params: Dict[str, Any], prompt: Prompt, marks: List[Mark]) -> Dict[str, Any]:
    """New params with ``cache_control`` on the marked blocks.

    Each container on the way to a marked block is copied before it changes (params,
    the tools/system/messages list, the message, the block), so nothing the caller
    holds is modified; untouched parts are shared, not copied.
    """
    if not marks:
        return params
    new = dict(params)
    copied: Set[Any] = set()

    def own_list(holder: Dict[str, Any], field: str, tag: Any) -> List[Any]:
        if tag not in copied:
            holder[field] = list(holder[field])
            copied.add(tag)
        value: List[Any] = holder[field]
        return value

    for mark in marks:
        location = prompt.boundaries[mark.at].location
        marker = cache_control(mark.ttl)
        section = location[0]
        if section == "tools":
            tools = own_list(new, "tools", "tools")
            tools[location[1]] = {**tools[location[1]], "cache_control": marker}
        elif section == "system":
            if isinstance(new["system"], str):
                new["system"] = [{"type": "text", "text": new["system"]}]
                copied.add("system")
            system = own_list(new, "system", "system")
            system[location[1]] = {**system[location[1]], "cache_control": marker}
        else:
            m, b = location[1], location[2]
            messages = own_list(new, "messages", "messages")
            if ("message", m) not in copied:
                messages[m] = dict(messages[m])
                copied.add(("message", m))
            message = messages[m]
            if isinstance(message["content"], str):
                message["content"] = [{"type": "text", "text": message["content"]}]
                copied.add(("content", m))
            content = own_list(message, "content", ("content", m))
            content[b] = {**content[b], "cache_control": marker}
    return new


def triage(params: Dict[str, Any], rules: Rules) -> Tuple[Optional[Prompt], Optional[str]]:
    """One request's analysed prompt and its :func:`fixed_reason`, cheapest test first: a
    prompt too short to cache and unmarked is "too-short" without being analysed (the
    prompt is then None)."""
    if short_and_unmarked(params, rules.min_tokens(str(params.get("model", "")))):
        return None, "too-short"
    prompt = analyse(params)
    return prompt, fixed_reason(prompt, rules)


def plan_request(params: Dict[str, Any], counts: PrefixCounts, warm: Mapping[int, Any],
                 rules: Rules) -> Tuple[Optional[Prompt], Choice]:
    """Analyse one request and decide its breakpoints (the plan and the transform agree).
    The prompt is None when the cheap test found it too short (then there are no marks)."""
    if short_and_unmarked(params, rules.min_tokens(str(params.get("model", "")))):
        return None, Choice([], "too-short")
    prompt = analyse(params)
    return prompt, choose(prompt, counts, warm, rules)
