"""``manage.py seed_demo``: tops up to --rows, valid rows, instant when already seeded."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import Customer, Order
from tests.support.terminal import TerminalIO


def seed(rows: int, **options: object) -> tuple[str, str]:
    out, err = io.StringIO(), TerminalIO()
    call_command("seed_demo", rows=rows, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_it_inserts_the_requested_rows_in_batches_with_progress(db: None) -> None:
    out, err = seed(2500, batch_size=1000)
    assert Order.objects.count() == 2500
    assert Customer.objects.count() == 1000
    assert "inserted 2,500 orders" in out
    assert "2,500/2,500 rows" in err
    assert "100%" in err


def test_seeded_rows_are_valid_model_instances(db: None) -> None:
    seed(200)
    for order in Order.objects.select_related("customer")[:200]:
        order.full_clean(exclude=["customer"])  # every value fits its field
        assert order.customer.country
        assert order.updated_at >= order.created_at
    assert Order.objects.values("uuid").distinct().count() == 200
    assert Order.objects.values("status").distinct().count() > 1


def test_it_tops_up_when_rows_exist(db: None) -> None:
    seed(300)
    out, _ = seed(500)
    assert Order.objects.count() == 500
    assert "inserted 200 orders, 500 in total" in out
    assert Customer.objects.count() == 1000  # customers are reused, not duplicated


def test_it_does_nothing_when_there_are_enough_rows(db: None) -> None:
    seed(100)
    first = list(Order.objects.values_list("pk", flat=True))
    out, err = seed(50)
    assert "100 orders already, nothing to do" in out
    assert err == ""
    assert list(Order.objects.values_list("pk", flat=True)) == first


def test_no_progress_is_drawn_when_stderr_is_not_a_terminal(db: None) -> None:
    err = io.StringIO()
    call_command("seed_demo", rows=300, batch_size=100, stdout=io.StringIO(), stderr=err)
    assert Order.objects.count() == 300
    assert err.getvalue() == ""


def test_a_negative_row_count_is_refused(db: None) -> None:
    with pytest.raises(CommandError):
        seed(-1)
