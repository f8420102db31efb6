"""Demo orders for export tests: one of every awkward value an export must carry."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

from dashboard.models import Customer, Order

UTC = datetime.UTC


def make_customer(name: str = "Ada Lovelace", country: str = "GB") -> Customer:
    return Customer.objects.create(
        name=name,
        email=f"{name.split()[0].lower()}@example.com",
        country=country,
        created_at=datetime.datetime(2023, 5, 1, 8, 30, tzinfo=UTC),
    )


AWKWARD: list[dict[str, Any]] = [
    {
        "note": 'Commas, "quotes",\nnewlines\r\nand tabs\t',
        "amount": Decimal("0.10"),
        "metadata": {"nested": {"list": [1, 2.5, True, None, "x"]}, "ünï": "東京"},
        "created_at": datetime.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
    },
    {
        "note": "",
        "amount": Decimal("-12.30"),
        "quantity": -5,
        "metadata": [],
        "is_gift": True,
        "created_at": datetime.datetime(2024, 1, 1, tzinfo=UTC),
    },
    {
        "note": "x" * 5000,
        "amount": Decimal("9999999999.99"),
        "quantity": 2**31 - 1,
        "metadata": "just a string",
        "status": Order.Status.REFUNDED,
    },
    {"amount": Decimal("0.00"), "quantity": 0, "metadata": 42, "note": "emoji 🎉 ok"},
    {"metadata": {"float": 0.1, "big": 2**63 - 1, "neg": -(2**63)}},
]


def make_order(customer: Customer, n: int = 1, **overrides: Any) -> Order:
    values: dict[str, Any] = {
        "reference": f"ORD-{n:08d}",
        "customer": customer,
        "status": Order.Status.PAID,
        "quantity": n,
        "amount": Decimal("19.99"),
        "note": f"order {n}",
        "placed_on": datetime.date(2024, 3, 1) + datetime.timedelta(days=n % 300),
        "is_gift": False,
        "metadata": {"n": n},
        "created_at": datetime.datetime(2024, 3, 1, 12, tzinfo=UTC) + datetime.timedelta(hours=n),
    }
    values.update(overrides)
    order = Order(**values)
    order.save()
    if "updated_at" in overrides:
        Order.objects.filter(pk=order.pk).update(updated_at=overrides["updated_at"])
        order.refresh_from_db()
    return order


def make_awkward_orders() -> list[Order]:
    customer = make_customer()
    other = make_customer("Grace Hopper", "US")
    orders = [
        make_order(customer if i % 2 else other, i + 1, **values)
        for i, values in enumerate(AWKWARD)
    ]
    orders.append(make_order(customer, 99, uuid=uuid.UUID("00000000-0000-4000-8000-000000000000")))
    return orders


def make_orders(count: int) -> list[Order]:
    """``count`` plain orders, inserted in one statement."""
    customer = make_customer()
    return Order.objects.bulk_create(
        Order(
            reference=f"ORD-{n:08d}",
            customer=customer,
            status=Order.Status.PAID if n % 3 else Order.Status.SHIPPED,
            quantity=n,
            amount=Decimal(n).scaleb(-2),
            note=f"order {n}",
            placed_on=datetime.date(2024, 3, 1),
            metadata={"n": n},
            created_at=datetime.datetime(2024, 3, 1, tzinfo=UTC) + datetime.timedelta(minutes=n),
        )
        for n in range(1, count + 1)
    )
