"""A search as the app's widgets describe it: query, filters, results per page, pages shown.

The app binds its widgets to the URL (Streamlit's ``bind="query-params"``), so this module only
turns their values into one validated object; :meth:`SearchParams.from_inputs` raises a
:class:`~refarch.errors.FieldValidationError` naming the input that is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from refarch.errors import FieldValidationError

#: Results per page the app offers.
TOP_K_CHOICES: Final = (5, 10, 20, 50)
DEFAULT_TOP_K: Final = 10
#: "More results" stops here: the index is asked for at most this many at once.
MAX_RESULTS: Final = 500
#: Longest query accepted (characters); the model truncates long text anyway.
MAX_QUERY_LENGTH: Final = 1_000


def _price(field: str, label: str, value: Any) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise FieldValidationError(field, f"{label} {value!r} is not a number") from None
    if not price.is_finite() or price < 0:
        raise FieldValidationError(field, f"{label} must be a number of at least 0")
    return price


def _shown(price: Decimal) -> str:
    """``10.0`` as ``10``, ``12.50`` as ``12.5``: how a person writes a price bound."""
    return format(price.normalize(), "f")


@dataclass(frozen=True, slots=True)
class SearchParams:
    """What the user asked for: query text, filters, page size and how many pages are shown."""

    query: str
    categories: tuple[str, ...] = ()
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    top_k: int = DEFAULT_TOP_K
    pages: int = 1

    @classmethod
    def from_inputs(
        cls,
        *,
        query: str,
        categories: Iterable[str] = (),
        price_min: Any = None,
        price_max: Any = None,
        top_k: int = DEFAULT_TOP_K,
        pages: int = 1,
    ) -> SearchParams:
        """Validate widget values; raises FieldValidationError (``query``, ``price_min``, ...)."""
        text = (query or "").strip()
        if not text:
            raise FieldValidationError("query", "Type something to search for")
        if len(text) > MAX_QUERY_LENGTH:
            raise FieldValidationError(
                "query", f"The query is {len(text):,} characters; at most {MAX_QUERY_LENGTH:,}"
            )
        low = _price("price_min", "Min price", price_min)
        high = _price("price_max", "Max price", price_max)
        if low is not None and high is not None and low > high:
            raise FieldValidationError(
                "price_max",
                f"Max price {_shown(high)} is below min price {_shown(low)}: no product can match",
            )
        if top_k not in TOP_K_CHOICES:
            choices = ", ".join(str(c) for c in TOP_K_CHOICES)
            raise FieldValidationError("top_k", f"Results per page must be one of {choices}")
        if pages < 1:
            raise FieldValidationError("pages", "pages must be at least 1")
        return cls(
            query=text,
            categories=tuple(dict.fromkeys(c.strip() for c in categories if c and c.strip())),
            price_min=low,
            price_max=high,
            top_k=top_k,
            pages=min(pages, max(1, MAX_RESULTS // top_k)),
        )

    @property
    def limit(self) -> int:
        """How many results to fetch: ``top_k`` for every page shown, capped."""
        return min(self.top_k * self.pages, MAX_RESULTS)

    @property
    def can_show_more(self) -> bool:
        """Whether "more results" may ask for another page."""
        return self.limit < MAX_RESULTS
