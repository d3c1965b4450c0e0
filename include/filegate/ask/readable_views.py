"""The documented read-only views Ask may query: their names, columns and meaning.

One description serves three readers: the guard (the allow-list of views and columns), the LLM (its prompt) and
the docs. `ask.files` is fixed (migration 0008); `ask.sales` is derived from the transactions feed's contract (its
aggregate's dimensions and measures), renamed to business words: the date dimension is `day`, `seller_id` is
`seller`, `product_id` is `product`; measures keep their names.
"""

from __future__ import annotations

from dataclasses import dataclass

from filegate.reporting.transactions import TransactionsTable

SCHEMA = "ask"
FEEDS_SETTING = "filegate.ask_feeds"  # transaction-local: the feeds the asking user may read, comma-separated

FILE_COLUMNS: dict[str, str] = {
    "id": "the file's id in the status store",
    "feed": "the feed the file belongs to (e.g. orders, marketplace)",
    "name": "the file's name",
    "source": "how it arrived: ftp, sftp, s3, upload",
    "status": "pending, downloaded, queued, processing, processed, failed, quarantined or duplicate",
    "day": "the day it arrived (date)",
    "created_at": "when Filegate registered it (timestamptz)",
    "finished_at": "when it reached its final status (timestamptz, null while in progress)",
    "size_bytes": "its size in bytes",
    "attempts": "how many times it was processed",
    "error": "why it failed or was quarantined",
    "rows_total": "rows read (null until checked)",
    "rows_valid": "rows that passed the contract",
    "rows_rejected": "rows rejected by the contract",
}
SALES_MEANINGS = {
    "day": "the sales day (date)",
    "seller": "the seller's id, e.g. S0001",
    "product": "the product's id, e.g. P00001",
    "category": "the product category",
    "units": "units sold (sum of quantities)",
    "revenue": "revenue (sum of quantity * unit price, exact decimal)",
    "transactions": "completed transactions",
    "average_price": "mean unit price of the day's transactions; weight by transactions when combining days",
}


@dataclass(frozen=True)
class View:
    name: str  # without the schema
    description: str
    columns: dict[str, str]  # column → meaning
    feed: str  # whose read permission the view needs ("*": filtered per feed inside the view)
    source: dict[str, str] | None = None  # view column → source column, for views Ask creates itself

    @property
    def qualified(self) -> str:
        return f"{SCHEMA}.{self.name}"


FILES = View("files", "one row per file Filegate has registered, of the feeds you may read", FILE_COLUMNS, "*")


def sales_view(table: TransactionsTable) -> View:
    """ask.sales over the feed's aggregated table: one row per seller, product and day."""
    source: dict[str, str] = {}
    for dimension in table.dimensions:
        name = "day" if dimension == table.date_column else dimension.removesuffix("_id")
        source[name] = dimension
    for measure in table.measures:
        source[measure.name] = measure.name
    columns = {name: SALES_MEANINGS.get(name, f"{table.feed} column {column}") for name, column in source.items()}
    return View("sales", f"the {table.feed} feed's sales aggregated per "
                         f"{', '.join(c for c in source if c in {s for s in source if source[s] in table.dimensions})}",
                columns, table.feed, source)


@dataclass(frozen=True)
class Catalog:
    views: tuple[View, ...]

    @classmethod
    def of(cls, sales: TransactionsTable | None) -> Catalog:
        return cls((FILES,) + ((sales_view(sales),) if sales is not None else ()))

    def view(self, name: str) -> View | None:
        return next((v for v in self.views if v.name == name), None)

    def describe(self) -> str:
        """The views as a reader (a person or an LLM) needs them: name, meaning, columns."""
        lines = []
        for view in self.views:
            lines.append(f"{view.qualified}: {view.description}")
            lines += [f"  - {column}: {meaning}" for column, meaning in view.columns.items()]
        return "\n".join(lines)
