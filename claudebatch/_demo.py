"""The demo dataset: support tickets to triage, sharing one long system prompt.

Deterministic for a seed, so a demo run is reproducible. The long shared
system prompt (about 5,000 tokens: past Haiku 4.5's 4,096-token minimum for a
cache prefix) is what makes prompt caching pay off at batch scale.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from .models import Request

DEMO_MODEL = "claude-haiku-4-5"

_PRODUCTS = ["the mobile app", "the billing portal", "the API", "the dashboard",
             "single sign-on", "the data export", "the desktop client", "webhooks"]
_PROBLEMS = [
    "keeps logging me out every few minutes",
    "charged my card twice this month",
    "returns a 500 error when I upload a file larger than 10 MB",
    "is very slow since the last update",
    "shows another customer's invoice",
    "does not send the confirmation email",
    "crashes when I open the settings page",
    "lost all my saved reports",
]
_TONES = ["", "This is the third time I write about this. ", "Thanks for the great product! ",
          "URGENT: our whole team is blocked. ", "Not a big deal, but "]

_POLICY = " ".join(
    f"Rule {i}: when a ticket mentions {topic}, weigh it as described in section {i} of the "
    "support handbook, consider the customer's plan, the number of affected users, whether "
    "data may be exposed, and whether a workaround exists, then record your reasoning briefly."
    for i, topic in enumerate(
        ["billing", "security", "data loss", "performance", "outages", "authentication",
         "integrations", "exports", "notifications", "mobile", "accessibility", "refunds",
         "compliance", "onboarding", "feature requests", "account deletion"] * 5, start=1))

SYSTEM_PROMPT = (
    "You are a support triage assistant for a software company. For each ticket, answer with "
    "a JSON object with the keys intent (one of: bug, billing, account, how_to, "
    "feature_request, security), urgency (low, normal, high, critical) and sentiment "
    "(negative, neutral, positive). Answer with the JSON object only.\n\n"
    "Triage policy:\n" + _POLICY
)


def support_tickets(count: int, *, seed: int = 7, model: str = DEMO_MODEL) -> Iterator[Request]:
    """``count`` triage requests, ``ticket-00000``..., all sharing SYSTEM_PROMPT."""
    from .models import Request

    rng = random.Random(seed)
    for i in range(count):
        text = (f"{rng.choice(_TONES)}Hello, {rng.choice(_PRODUCTS)} "
                f"{rng.choice(_PROBLEMS)}. Account #{rng.randint(1000, 99999)}.")
        yield Request(f"ticket-{i:05d}", {
            "model": model,
            "max_tokens": 128,
            "system": [{"type": "text", "text": SYSTEM_PROMPT}],
            "messages": [{"role": "user", "content": text}],
        })
