"""Feed contracts (YAML) and their loader."""

from __future__ import annotations

from filegate.contracts.loader import ContractError, get_contract, load_contract, load_contracts
from filegate.contracts.model import Column, Contract

__all__ = ["Column", "Contract", "ContractError", "get_contract", "load_contract", "load_contracts"]
