"""claudebatch-cost: exact batch cost from usage, estimates before submitting, a budget.

>>> from claudebatch import BatchClient
>>> from claudebatch_cost import CostTracker
>>> tracker = CostTracker(budget_usd="25")
>>> client = BatchClient(plugins=[tracker])            # doctest: +SKIP
>>> client.run("requests.jsonl", output="out.jsonl")   # doctest: +SKIP
>>> tracker.total_usd, tracker.standard_usd            # doctest: +SKIP
"""

from .costing import Charges, ResultCost, UsageCounts, price_result
from .errors import BudgetExceededError
from .estimate import EstimateCost, Estimator
from .pricing import CacheMultipliers, ModelPrice, PricingTable, load_pricing, packaged_table
from .totals import Totals
from .tracker import CostTracker

__version__ = "0.1.0"

__all__ = [
    "BudgetExceededError",
    "CacheMultipliers",
    "Charges",
    "CostTracker",
    "EstimateCost",
    "Estimator",
    "ModelPrice",
    "PricingTable",
    "ResultCost",
    "Totals",
    "UsageCounts",
    "__version__",
    "load_pricing",
    "packaged_table",
    "price_result",
]
