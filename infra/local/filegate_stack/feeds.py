"""Which feeds exist: from the library's contracts, else from FILEGATE_FEEDS."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def discover_feeds(fallback: list[str] | None) -> list[str]:
    if fallback is not None:
        return list(fallback)
    try:
        from filegate.contracts import load_contracts

        return sorted({contract.name for contract in load_contracts()})
    except Exception as exc:  # the library is optional for the stack: fall back, but say why
        logger.warning("cannot load feed contracts (%s); set FILEGATE_FEEDS to name feeds", exc)
        return []
