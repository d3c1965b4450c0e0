"""Schema drift: how one file's columns differ from its feed's current schema version, and what the feed's
policy does about it. Pure functions over plain data (no database, no Arrow), so the worker, Lambda, the status
store and the Filegate page all read the same verdict.

A schema is the file's columns in order, each `{name, type, nullable, declared}`: `type` is a contract type
(int, float, decimal, bool, date, datetime, string), declared by the contract or inferred from the file;
`declared` says which. Changes, in the order they are reported:

- `removed` / `added`: a column the current version has and the file lacks, or the reverse;
- `renamed`: a removed and an added column that look like one column renamed: the same position and type, and a
  similar name (`amount` → `amount_eur`, `OrderID` → `order_id`) or the same values profile (min, max, distinct
  count, top values of the file that introduced the version against this file's);
- `widened` / `narrowed` / `retyped`: a type change that keeps every value (int → float, date → datetime,
  anything → string), the reverse, or neither (int ↔ date);
- `nullable` / `required`: a column that may now be missing, or no longer is;
- `reordered`: the columns both have, in another order.

A type or nullability change of a column the contract declares, both before and after, was made by whoever edited
the contract, not by the file: it is reported (`by_contract`) but never frozen.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Literal

Policy = Literal["evolve", "warn", "freeze"]
POLICIES: tuple[str, ...] = ("evolve", "warn", "freeze")
DEFAULT_POLICY: Policy = "warn"
Verdict = Literal["same", "evolve", "warn", "freeze"]

# Every value of the narrower type reads as the wider one without loss. bool is not under int: inference calls
# a column bool only on words (true/no/…), which are not numbers.
_WIDER: dict[str, set[str]] = {
    "bool": {"string"},
    "int": {"decimal", "float", "string"},
    "decimal": {"float", "string"},
    "float": {"string"},
    "date": {"datetime", "string"},
    "datetime": {"string"},
    "string": set(),
}
NAME_SIMILARITY = 0.75  # difflib ratio of two normalized names that makes them "similar"
DISTINCT_TOLERANCE = 0.1  # distinct counts within 10% of each other count as the same profile
PROFILE_KEYS = ("count", "nulls", "distinct", "min", "max", "top_values")
MAX_LISTED = 10  # moved columns named in a reorder's message
MAX_DETAIL = 200  # moved columns (and the new order) kept in a reorder's detail
MAX_SUMMARY_CHANGES = 20  # changes spelled out in the one-line summary; the record keeps them all
PROFILE_TEXT_CHARS = 64  # kept of a text min, max or top value: enough to compare, small enough to travel


@dataclass(frozen=True)
class SchemaColumn:
    name: str
    type: str
    nullable: bool = True
    declared: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "nullable": self.nullable, "declared": self.declared}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchemaColumn:
        return cls(str(data["name"]), str(data.get("type") or "string"), bool(data.get("nullable", True)),
                   bool(data.get("declared", False)))


def columns_of(schema: Sequence[Mapping[str, Any] | SchemaColumn]) -> list[SchemaColumn]:
    return [c if isinstance(c, SchemaColumn) else SchemaColumn.from_dict(c) for c in schema]


def fingerprint(schema: Sequence[Mapping[str, Any] | SchemaColumn]) -> str:
    """One schema, one fingerprint: names, order, types and nullability (not where the types came from)."""
    canonical = json.dumps([[c.name, c.type, c.nullable] for c in columns_of(schema)], separators=(",", ":"),
                           ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _short(value: Any) -> Any:
    return value[:PROFILE_TEXT_CHARS] if isinstance(value, str) else value


def compact_profile(column_stats: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What rename detection compares, per column, out of the profiler's statistics (kept with each version,
    and sent to Lambda with it): counts, and texts cut to PROFILE_TEXT_CHARS. Entries that are not a column's
    statistics (a PDF's page counts) are left out."""
    out: dict[str, dict[str, Any]] = {}
    for name, stats in column_stats.items():
        if not isinstance(stats, Mapping):
            continue
        kept = {k: _short(stats[k]) for k in PROFILE_KEYS if k in stats and k != "top_values"}
        if stats.get("top_values"):
            kept["top_values"] = [{"value": _short(t.get("value"))} for t in stats["top_values"]]
        out[name] = kept
    return out


@dataclass(frozen=True)
class Change:
    kind: str
    column: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)
    by_contract: bool = False

    def as_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "column": self.column, "message": self.message, **self.detail}
        if self.by_contract:
            out["by_contract"] = True
        return out


@dataclass(frozen=True)
class Drift:
    """The file's schema against version `from_version` of the feed; no changes means no drift."""

    changes: list[Change]
    from_version: int | None = None

    def __bool__(self) -> bool:
        return bool(self.changes)

    @property
    def from_file(self) -> list[Change]:
        """The changes the file brought (a contract edit's own changes left out): what `freeze` refuses."""
        return [c for c in self.changes if not c.by_contract]

    @property
    def summary(self) -> str:
        """One line for a person: the file's status reason, an alert's summary, the page's heading."""
        if not self.changes:
            return "no schema change"
        against = f" from version {self.from_version}" if self.from_version is not None else ""
        count = len(self.changes)
        shown = "; ".join(c.message for c in self.changes[:MAX_SUMMARY_CHANGES])
        more = f"; and {count - MAX_SUMMARY_CHANGES} more" if count > MAX_SUMMARY_CHANGES else ""
        return f"{count} schema change{'s' if count > 1 else ''}{against}: {shown}{more}"

    def as_dict(self) -> dict[str, Any]:
        return {"from_version": self.from_version, "summary": self.summary,
                "kinds": sorted({c.kind for c in self.changes}),
                "changes": [c.as_dict() for c in self.changes]}


def type_change(old: str, new: str) -> str | None:
    """`widened`, `narrowed` or `retyped` (None when the type is the same)."""
    if old == new:
        return None
    if new in _WIDER.get(old, set()):
        return "widened"
    if old in _WIDER.get(new, set()):
        return "narrowed"
    return "retyped"


def _normal(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def similar_names(a: str, b: str) -> bool:
    """The same name but for case and separators, one inside the other, or close by difflib's ratio."""
    x, y = _normal(a), _normal(b)
    if not x or not y:
        return False
    if x == y or (min(len(x), len(y)) >= 3 and (x in y or y in x)):
        return True
    return SequenceMatcher(None, x, y).ratio() >= NAME_SIMILARITY


def _close(a: Any, b: Any) -> bool:
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return False
    return abs(a - b) <= DISTINCT_TOLERANCE * max(abs(a), abs(b), 1)


def same_profile(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """Two columns hold the same kind of values: close distinct counts and null shares, and the same min and
    max (or, without them, mostly the same top values)."""
    if not old or not new or not _close(old.get("distinct"), new.get("distinct")):
        return False
    null_shares = [p.get("nulls", 0) / p["count"] for p in (old, new) if p.get("count")]
    if len(null_shares) == 2 and abs(null_shares[0] - null_shares[1]) > 0.05:
        return False
    if "min" in old and "min" in new:
        return bool(old["min"] == new["min"] and old.get("max") == new.get("max"))
    tops = [{t.get("value") for t in p.get("top_values") or []} for p in (old, new)]
    if tops[0] and tops[1]:
        return len(tops[0] & tops[1]) >= max(len(tops[0]), len(tops[1])) / 2
    return False


def _renames(old: list[SchemaColumn], new: list[SchemaColumn], removed: list[str], added: list[str],
             old_profile: Mapping[str, Any], new_profile: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Removed name → (added name, why): same position, same type, and a similar name or values profile."""
    found: dict[str, tuple[str, str]] = {}
    gone, new_names = set(removed), set(added)
    for i, before in enumerate(old):
        if before.name not in gone or i >= len(new) or new[i].name not in new_names:
            continue
        after = new[i]
        if after.type != before.type:
            continue
        if similar_names(before.name, after.name):
            found[before.name] = (after.name, "similar name")
        elif same_profile(old_profile.get(before.name), new_profile.get(after.name)):
            found[before.name] = (after.name, "same values")
    return found


def _moved(old_order: list[str], new_order: list[str]) -> list[str]:
    """The fewest columns whose moving explains the new order: those outside a longest increasing run of old
    positions (both lists hold the same names, so this is their longest common subsequence, in O(n log n) even
    for the widest files)."""
    position = {name: i for i, name in enumerate(old_order)}
    sequence = [position[name] for name in new_order]
    tails: list[int] = []  # tails[k]: index in `sequence` of the smallest tail of an increasing run of length k+1
    previous = [-1] * len(sequence)
    for i, value in enumerate(sequence):
        k = _bisect(sequence, tails, value)
        if k > 0:
            previous[i] = tails[k - 1]
        if k == len(tails):
            tails.append(i)
        else:
            tails[k] = i
    kept: set[str] = set()
    i = tails[-1] if tails else -1
    while i >= 0:
        kept.add(new_order[i])
        i = previous[i]
    return [name for name in new_order if name not in kept]


def _bisect(sequence: list[int], tails: list[int], value: int) -> int:
    """Where `value` goes among the run tails (their values ascend)."""
    low, high = 0, len(tails)
    while low < high:
        middle = (low + high) // 2
        if sequence[tails[middle]] < value:
            low = middle + 1
        else:
            high = middle
    return low


def diff(current: Sequence[Mapping[str, Any] | SchemaColumn], file: Sequence[Mapping[str, Any] | SchemaColumn], *,
         from_version: int | None = None, current_profile: Mapping[str, Any] | None = None,
         file_profile: Mapping[str, Any] | None = None) -> Drift:
    """Every change from the feed's `current` schema to the `file`'s; profiles (compact_profile) let a rename
    be recognised by its values."""
    old, new = columns_of(current), columns_of(file)
    old_by, new_by = {c.name: c for c in old}, {c.name: c for c in new}
    old_at = {c.name: i for i, c in enumerate(old, start=1)}
    new_at = {c.name: i for i, c in enumerate(new, start=1)}
    removed = [c.name for c in old if c.name not in new_by]
    added = [c.name for c in new if c.name not in old_by]
    renames = _renames(old, new, removed, added, current_profile or {}, file_profile or {})
    renamed_to = {to for to, _ in renames.values()}
    changes: list[Change] = []
    for name in removed:
        if name not in renames:
            changes.append(Change("removed", name, f"column {name} removed ({old_by[name].type})",
                                  {"type": old_by[name].type, "position": old_at[name]}))
    for name in added:
        if name not in renamed_to:
            col = new_by[name]
            changes.append(Change("added", name, f"column {name} added at position {new_at[name]} "
                                                 f"({col.type}{', nullable' if col.nullable else ''})",
                                  {"type": col.type, "nullable": col.nullable, "position": new_at[name]}))
    for before, (after, why) in renames.items():
        changes.append(Change("renamed", after, f"column {before} renamed to {after}? ({why}, same position "
                                                f"{new_at[after]} and type {new_by[after].type})",
                              {"from": before, "evidence": why, "position": new_at[after]}))
    pairs = [(old_by[n], new_by[n]) for n in old_by if n in new_by]
    pairs += [(old_by[before], new_by[after]) for before, (after, _) in renames.items()]
    for before, after in pairs:
        contract_made = before.declared and after.declared
        kind = type_change(before.type, after.type)
        if kind:
            changes.append(Change(kind, after.name, f"column {after.name} type {kind}: {before.type} → {after.type}",
                                  {"from": before.type, "to": after.type}, by_contract=contract_made))
        if before.nullable != after.nullable:
            kind = "nullable" if after.nullable else "required"
            text = "now has missing values" if after.nullable else "no longer has missing values"
            changes.append(Change(kind, after.name, f"column {after.name} {text}",
                                  {"from": before.nullable, "to": after.nullable}, by_contract=contract_made))
    rename_of = {before: after for before, (after, _) in renames.items()}
    old_order = [rename_of.get(c.name, c.name) for c in old if c.name in new_by or c.name in rename_of]
    new_order = [c.name for c in new if c.name in old_by or c.name in renamed_to]
    if old_order != new_order:
        moved = _moved(old_order, new_order)
        old_rank = {name: i for i, name in enumerate(old_order, start=1)}
        new_rank = {name: i for i, name in enumerate(new_order, start=1)}
        where = ", ".join(f"{name} {old_rank[name]}→{new_rank[name]}" for name in moved[:MAX_LISTED])
        more = f" and {len(moved) - MAX_LISTED} more" if len(moved) > MAX_LISTED else ""
        detail: dict[str, Any] = {"columns": moved[:MAX_DETAIL], "moved": len(moved)}
        if len(new_order) <= MAX_DETAIL:
            detail["order"] = new_order
        changes.append(Change("reordered", ", ".join(moved[:MAX_LISTED]) + more,
                              f"columns reordered ({where}{more} among shared columns)", detail))
    return Drift(changes, from_version)


def verdict(policy: str, drift: Drift | None) -> Verdict:
    """What the feed does with the file: `same` (no drift), or its policy; `freeze` only for changes the file
    brought (a contract edit is evolved, whatever the policy)."""
    if drift is None or not drift:
        return "same"
    if policy == "freeze" and not drift.from_file:
        return "evolve"
    if policy not in POLICIES:
        raise ValueError(f"unknown schema_drift policy {policy!r}; one of {', '.join(POLICIES)}")
    return policy  # type: ignore[return-value]


def frozen_reason(feed: str, drift: Drift) -> str:
    """The quarantined file's reason: the diff, and what to do about it."""
    return (f"schema drift refused (feed {feed} has schema_drift: freeze): {drift.summary}. If the change is "
            "expected, set schema_drift to evolve or warn and reprocess the file")


__all__ = ["DEFAULT_POLICY", "POLICIES", "Change", "Drift", "Policy", "SchemaColumn", "columns_of",
           "compact_profile", "diff", "fingerprint", "frozen_reason", "same_profile", "similar_names",
           "type_change", "verdict"]
