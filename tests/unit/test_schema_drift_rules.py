"""Schema drift classification (filegate.schema_drift): what changed between a feed's schema and a file's."""

from __future__ import annotations

import pytest

from filegate.schema_drift import (
    Drift,
    SchemaColumn,
    compact_profile,
    diff,
    fingerprint,
    frozen_reason,
    same_profile,
    similar_names,
    type_change,
    verdict,
)


def cols(*spec: str, declared: bool = False) -> list[dict]:
    """'name:type' or 'name:type?' (nullable)."""
    out = []
    for item in spec:
        name, kind = item.split(":")
        out.append({"name": name, "type": kind.rstrip("?"), "nullable": kind.endswith("?"), "declared": declared})
    return out


def kinds(drift: Drift) -> list[tuple[str, str]]:
    return [(c.kind, c.column) for c in drift.changes]


BASE = cols("order_id:int", "customer:string", "amount:float", "ordered_on:date")


def test_the_same_schema_is_no_drift() -> None:
    drift = diff(BASE, [dict(c) for c in BASE], from_version=3)
    assert not drift and drift.changes == [] and drift.summary == "no schema change"
    assert verdict("freeze", drift) == "same"


def test_an_added_column_is_reported_with_its_position_and_type() -> None:
    drift = diff(BASE, BASE[:2] + cols("channel:string?") + BASE[2:], from_version=1)
    assert kinds(drift) == [("added", "channel")]
    [change] = drift.changes
    assert change.detail == {"type": "string", "nullable": True, "position": 3}
    assert drift.summary == "1 schema change from version 1: column channel added at position 3 (string, nullable)"


def test_a_removed_column_is_reported() -> None:
    drift = diff(BASE, BASE[:3])
    assert kinds(drift) == [("removed", "ordered_on")]
    assert drift.changes[0].message == "column ordered_on removed (date)"


def test_a_renamed_looking_column_by_similar_name_at_the_same_position_and_type() -> None:
    renamed = [BASE[0], BASE[1], {**BASE[2], "name": "amount_eur"}, BASE[3]]
    drift = diff(BASE, renamed)
    assert kinds(drift) == [("renamed", "amount_eur")]
    assert drift.changes[0].detail == {"from": "amount", "evidence": "similar name", "position": 3}
    assert "amount renamed to amount_eur?" in drift.summary


def test_case_and_separators_make_a_similar_name() -> None:
    assert similar_names("OrderID", "order_id") and similar_names("ordered_on", "orderd_on")
    assert not similar_names("amount", "customer") and not similar_names("", "x")


def test_a_rename_with_an_unrelated_name_is_recognised_by_its_values() -> None:
    old_profile = {"amount": {"count": 100, "nulls": 0, "distinct": 97, "min": 1.5, "max": 990.0}}
    new_profile = {"total": {"count": 120, "nulls": 0, "distinct": 101, "min": 1.5, "max": 990.0}}
    renamed = [BASE[0], BASE[1], {**BASE[2], "name": "total"}, BASE[3]]
    drift = diff(BASE, renamed, current_profile=old_profile, file_profile=new_profile)
    assert kinds(drift) == [("renamed", "total")]
    assert drift.changes[0].detail["evidence"] == "same values"
    # Other values: an unrelated column was dropped and another added in its place.
    other = {"total": {"count": 120, "nulls": 0, "distinct": 3, "min": 0.0, "max": 2.0}}
    assert kinds(diff(BASE, renamed, current_profile=old_profile, file_profile=other)) == [
        ("removed", "amount"), ("added", "total")]


def test_a_rename_needs_the_same_position_and_type() -> None:
    moved = [BASE[0], {**BASE[2], "name": "amount_eur"}, BASE[1], BASE[3]]
    assert ("renamed", "amount_eur") not in kinds(diff(BASE, moved))
    retyped = [BASE[0], BASE[1], {**BASE[2], "name": "amount_eur", "type": "string"}, BASE[3]]
    assert kinds(diff(BASE, retyped)) == [("removed", "amount"), ("added", "amount_eur")]


def test_a_renamed_column_that_also_changed_type_nullability_is_reported_as_both() -> None:
    renamed = [BASE[0], {**BASE[1], "name": "customer_name", "nullable": True}, BASE[2], BASE[3]]
    assert kinds(diff(BASE, renamed)) == [("renamed", "customer_name"), ("nullable", "customer_name")]


@pytest.mark.parametrize(("old", "new", "kind"), [
    ("int", "float", "widened"), ("int", "decimal", "widened"), ("date", "datetime", "widened"),
    ("bool", "string", "widened"), ("float", "int", "narrowed"), ("string", "date", "narrowed"),
    ("datetime", "date", "narrowed"), ("int", "date", "retyped"), ("bool", "int", "retyped"), ("int", "int", None),
])
def test_type_changes_are_widened_narrowed_or_retyped(old: str, new: str, kind: str | None) -> None:
    assert type_change(old, new) == kind


def test_a_widened_and_a_narrowed_column_in_one_file() -> None:
    changed = [{**BASE[0], "type": "float"}, BASE[1], BASE[2], {**BASE[3], "type": "string"}]
    drift = diff(BASE, changed, from_version=2)
    assert kinds(drift) == [("widened", "order_id"), ("widened", "ordered_on")]
    back = diff(changed, BASE)
    assert kinds(back) == [("narrowed", "order_id"), ("narrowed", "ordered_on")]
    assert back.changes[0].message == "column order_id type narrowed: float → int"


def test_nullability_changes_both_ways() -> None:
    nullable = [BASE[0], {**BASE[1], "nullable": True}, BASE[2], BASE[3]]
    assert kinds(diff(BASE, nullable)) == [("nullable", "customer")]
    assert kinds(diff(nullable, BASE)) == [("required", "customer")]


def test_reordered_columns_name_the_fewest_that_moved() -> None:
    reordered = [BASE[0], BASE[2], BASE[3], BASE[1]]
    drift = diff(BASE, reordered)
    assert kinds(drift) == [("reordered", "customer")]
    assert drift.changes[0].detail == {"columns": ["customer"], "moved": 1,
                                       "order": ["order_id", "amount", "ordered_on", "customer"]}
    assert "customer 2→4" in drift.changes[0].message


def test_a_wide_shuffled_file_is_classified_quickly_and_its_texts_stay_short() -> None:
    """A file may have up to format.max_columns columns (2,000 by default, 100,000 at most): every step is
    linear or n log n, and messages name a few columns, not all."""
    import random
    import time

    wide = [{"name": f"c{n}", "type": "int", "nullable": False} for n in range(20_000)]
    shuffled = list(wide)
    random.Random(1).shuffle(shuffled)
    started = time.perf_counter()
    drift = diff(wide, [*shuffled[:-1], {"name": "extra", "type": "string", "nullable": True}])
    assert time.perf_counter() - started < 5  # the first, quadratic version took many minutes
    assert [c.kind for c in drift.changes] == ["removed", "added", "reordered"]
    reorder = drift.changes[-1]
    assert reorder.detail["moved"] > 18_000 and len(reorder.detail["columns"]) == 200 and "order" not in reorder.detail
    assert reorder.message.count("→") == 10 and len(drift.summary) < 2_000
    renamed_all = [{**c, "name": c["name"] + "_x"} for c in wide]
    everything = diff(wide, renamed_all)
    assert len(everything.changes) == 20_000 and everything.summary.endswith("; and 19980 more")


def test_an_added_column_alone_is_not_a_reorder() -> None:
    assert kinds(diff(BASE, cols("first:int") + BASE)) == [("added", "first")]
    assert kinds(diff(BASE, BASE[1:])) == [("removed", "order_id")]


def test_contract_made_changes_are_reported_but_never_frozen() -> None:
    declared = cols("order_id:int", "amount:float", declared=True)
    edited = cols("order_id:int", "amount:decimal?", declared=True)
    drift = diff(declared, edited, from_version=4)
    assert kinds(drift) == [("narrowed", "amount"), ("nullable", "amount")]
    assert all(c.by_contract for c in drift.changes) and drift.from_file == []
    assert verdict("freeze", drift) == "evolve"
    # An extra column the file brings is the file's change, even on a declared feed.
    with_extra = edited + cols("note:string?")
    assert verdict("freeze", diff(declared, with_extra)) == "freeze"


def test_inferred_type_changes_are_the_files() -> None:
    drift = diff(cols("n:int"), cols("n:float"))
    assert drift.from_file == drift.changes
    assert [verdict(p, drift) for p in ("evolve", "warn", "freeze")] == ["evolve", "warn", "freeze"]


def test_an_unknown_policy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown schema_drift policy 'strict'; one of evolve, warn, freeze"):
        verdict("strict", diff(cols("n:int"), cols("m:int")))


def test_fingerprint_follows_names_order_types_and_nullability_only() -> None:
    base = fingerprint(BASE)
    assert fingerprint([dict(c, declared=True) for c in BASE]) == base
    assert fingerprint([SchemaColumn.from_dict(c) for c in BASE]) == base
    assert fingerprint(list(reversed(BASE))) != base
    assert fingerprint([{**BASE[0], "nullable": True}, *BASE[1:]]) != base
    assert fingerprint([{**BASE[0], "type": "float"}, *BASE[1:]]) != base


def test_same_profile_needs_close_counts_and_the_same_range_or_top_values() -> None:
    a = {"count": 10, "nulls": 0, "distinct": 3, "top_values": [{"value": "x"}, {"value": "y"}, {"value": "z"}]}
    assert same_profile(a, {**a, "distinct": 3, "top_values": [{"value": "x"}, {"value": "y"}]})
    assert not same_profile(a, {**a, "top_values": [{"value": "q"}]})
    assert not same_profile(a, {**a, "nulls": 5})
    assert not same_profile(a, None) and not same_profile({"distinct": 3}, {"distinct": 3})


def test_compact_profile_keeps_what_rename_detection_reads() -> None:
    stats = {"amount": {"type": "double", "count": 3, "nulls": 0, "distinct": 3, "min": 1, "max": 9, "mean": 4.2}}
    assert compact_profile(stats) == {"amount": {"count": 3, "nulls": 0, "distinct": 3, "min": 1, "max": 9}}
    # A PDF's "statistics" are page counts, not columns.
    assert compact_profile({"pages_total": 3, "parts": {"summary": 1}}) == {"parts": {}}
    long = {"name": {"count": 1, "distinct": 1, "min": "x" * 500, "top_values": [{"value": "y" * 500, "count": 9}]}}
    assert compact_profile(long) == {"name": {"count": 1, "distinct": 1, "min": "x" * 64,
                                              "top_values": [{"value": "y" * 64}]}}


def test_the_frozen_reason_names_the_policy_the_diff_and_the_way_out() -> None:
    reason = frozen_reason("orders", diff(BASE, BASE[:3], from_version=2))
    assert reason.startswith("schema drift refused (feed orders has schema_drift: freeze): 1 schema change from "
                             "version 2: column ordered_on removed (date)")
    assert "reprocess the file" in reason


def test_as_dict_is_what_the_summary_json_and_the_page_show() -> None:
    drift = diff(BASE, BASE[:2] + cols("channel:string"), from_version=1)
    assert drift.as_dict() == {
        "from_version": 1, "summary": drift.summary, "kinds": ["added", "removed"],
        "changes": [
            {"kind": "removed", "column": "amount", "message": "column amount removed (float)",
             "type": "float", "position": 3},
            {"kind": "removed", "column": "ordered_on", "message": "column ordered_on removed (date)",
             "type": "date", "position": 4},
            {"kind": "added", "column": "channel", "message": "column channel added at position 3 (string)",
             "type": "string", "nullable": False, "position": 3},
        ],
    }
