"""The diff writes only what changed, detects reps' edits, and treats blank as nothing."""

from __future__ import annotations

from schema.records import Stream
from sync.writeback import diff_record, plan_changes


def test_unchanged_values_produce_no_write() -> None:
    desired = {"overlap_count": "2", "overlap_partners": "Acme (customer)"}
    assert diff_record(desired, desired, desired) == []


def test_only_changed_fields_are_written() -> None:
    desired = {"overlap_count": "3", "overlap_partners": "Acme (customer)"}
    crm = {"overlap_count": "2", "overlap_partners": "Acme (customer)"}
    changes = diff_record(desired, crm, crm)
    assert [(c.field, c.crm, c.new, c.manual_edit) for c in changes] == [
        ("overlap_count", "2", "3", False)]


def test_zero_and_false_equal_a_blank_field() -> None:
    desired = {"overlap_count": "0", "partner_influenced": "false", "overlap_partners": None}
    assert diff_record(desired, {}, {}) == []
    # …but an account that had overlaps is written back to 0.
    changes = diff_record(desired, {"overlap_count": "2"}, {"overlap_count": "2"})
    assert [(c.field, c.new) for c in changes] == [("overlap_count", "0")]


def test_a_reps_edit_is_detected_and_overwritten() -> None:
    desired = {"overlap_partners": "Acme (customer)"}
    written = {"overlap_partners": "Acme (customer)"}
    crm = {"overlap_partners": "my own notes"}
    (change,) = diff_record(desired, written, crm)
    assert change.manual_edit and change.crm == "my own notes" and change.new == written[
        "overlap_partners"]


def test_unknown_crm_values_fall_back_to_the_last_written() -> None:
    assert diff_record({"overlap_count": "2"}, {"overlap_count": "2"}, None) == []
    (change,) = diff_record({"overlap_count": "3"}, {"overlap_count": "2"}, None)
    assert not change.manual_edit


def test_plan_keeps_python_values_for_the_writer() -> None:
    change = plan_changes("salesforce", Stream.ACCOUNTS, "001", {"overlap_count": 3,
                          "overlap_partners": "A"}, {"overlap_count": "3",
                          "overlap_partners": "A"}, {}, {"overlap_partners": "A"})
    assert change is not None
    assert dict(change.values) == {"overlap_count": 3}
