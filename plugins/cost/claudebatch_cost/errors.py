"""The budget refusal."""

from __future__ import annotations

from decimal import Decimal

from claudebatch import ClaudeBatchError


class BudgetExceededError(ClaudeBatchError):
    """A job or batch was refused before sending: its worst-case estimate would pass the budget.

    ``estimate_usd`` is the refused work's worst-case batch cost, ``committed_usd``
    what was already spent or is in flight (worst case) through this tracker,
    ``budget_usd`` the budget.
    """

    def __init__(self, message: str, *, budget_usd: Decimal, estimate_usd: Decimal,
                 committed_usd: Decimal):
        self.budget_usd = budget_usd
        self.estimate_usd = estimate_usd
        self.committed_usd = committed_usd
        super().__init__(message)
