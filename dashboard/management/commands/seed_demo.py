"""``manage.py seed_demo --rows N``: make sure the demo has at least N orders.

It tops up: with M orders already there it inserts N - M more, and with
M >= N it does nothing but one COUNT, so ``make run`` can call it on every
start. Rows go in with ``executemany`` in batches, one transaction per batch
(an interrupted seed keeps what it wrote, and a batch lock is short enough
for the server and the worker to read in between). Model instances and
``bulk_create`` are skipped on purpose: building a million model objects
costs more than the inserts. Values are prepared with the connection's own
adapters, so the rows are exactly what the ORM would have written, on SQLite
and PostgreSQL alike. The next batch is generated in a thread while the
current one is inserted, which nearly halves the time.
"""

from __future__ import annotations

import datetime
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from dashboard.models import Customer, Order
from streams.management.progress import ProgressBar

BATCH_SIZE = 20_000
SQLITE_CACHE_KIB = 256 * 1024
CUSTOMERS = 1_000
COUNTRIES = ["FR", "DE", "GB", "US", "ES", "IT", "NL", "SE", "JP", "BR", "CA", "IN"]
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Linus", "Guido", "Radia", "Frances"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Torvalds", "Allen"]
NOTES = [
    "",
    "Leave at the door.",
    'Gift wrap, please: "Happy birthday!"',
    "Call before delivery,\nthe bell is broken.",
    "Fragile; handle with care.",
    "Ünïcödé is fine too: café, naïve, 東京.",
]
CHANNELS = ["web", "mobile", "phone", "partner"]
STATUSES = [status.value for status in Order.Status]
EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
SPAN_SECONDS = 2 * 365 * 24 * 3600
ORDER_COLUMNS = [
    "uuid",
    "reference",
    "customer",
    "status",
    "quantity",
    "amount",
    "note",
    "placed_on",
    "is_gift",
    "metadata",
    "created_at",
    "updated_at",
]


def prep(field_name: str, db: BaseDatabaseWrapper) -> Callable[[Any], Any]:
    """The model field's own conversion to a database value, for ``executemany``."""
    field = Order._meta.get_field(field_name)
    assert isinstance(field, Field)
    return partial(field.get_db_prep_save, connection=db)


class OrderRows:
    """Random but plausible order rows, as database values in ``ORDER_COLUMNS`` order.

    Pure Python with no database access, so it runs in a thread while the
    previous batch is inserted (sqlite3 and psycopg release the GIL while the
    database works).
    """

    def __init__(self, db: BaseDatabaseWrapper, customer_ids: Sequence[int]) -> None:
        self.customer_ids = customer_ids
        self.rng = random.Random()
        self.prep_uuid = prep("uuid", db)
        self.prep_amount = prep("amount", db)
        self.prep_date = prep("placed_on", db)
        self.prep_json = prep("metadata", db)
        self.prep_datetime = prep("created_at", db)

    def batch(self, start: int, count: int) -> list[tuple[Any, ...]]:
        return [self.row(n) for n in range(start, start + count)]

    def row(self, n: int) -> tuple[Any, ...]:
        rng = self.rng
        created = EPOCH + datetime.timedelta(
            seconds=rng.randrange(SPAN_SECONDS), microseconds=rng.randrange(1_000_000)
        )
        updated = created + datetime.timedelta(seconds=rng.randrange(30 * 24 * 3600))
        quantity = rng.randint(1, 20)
        unit_cents = rng.randint(99, 99_999)
        metadata = {
            "channel": rng.choice(CHANNELS),
            "items": [{"sku": f"SKU-{rng.randrange(10_000):05d}", "qty": quantity}],
            "coupon": None if rng.random() < 0.8 else f"SAVE{rng.randrange(5, 50, 5)}",
        }
        return (
            self.prep_uuid(uuid.UUID(int=rng.getrandbits(128), version=4)),
            f"ORD-{n + 1:08d}",
            rng.choice(self.customer_ids),
            rng.choice(STATUSES),
            quantity,
            self.prep_amount(Decimal(quantity * unit_cents).scaleb(-2)),
            rng.choice(NOTES),
            self.prep_date(created.date()),
            rng.random() < 0.1,
            self.prep_json(metadata),
            self.prep_datetime(created),
            self.prep_datetime(updated),
        )


class Command(BaseCommand):
    help = "Top the demo orders up to --rows (does nothing when there are enough)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=1_000_000, help="orders wanted in total")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args: Any, rows: int, batch_size: int, **options: Any) -> None:
        if rows < 0 or batch_size < 1:
            raise CommandError("--rows must be at least 0 and --batch-size at least 1.")
        existing = Order.objects.count()
        missing = rows - existing
        if missing <= 0:
            self.stdout.write(f"seed_demo: {existing:,} orders already, nothing to do.")
            return
        db = connections[DEFAULT_DB_ALIAS]
        if db.vendor == "sqlite":
            with db.cursor() as cursor:
                # Keep the indexes' pages (the random UUIDs touch all of them) in
                # memory for this connection: about 2x faster at 1M rows.
                cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        maker = OrderRows(db, self.ensure_customers())
        insert = insert_statement(db)
        bar = ProgressBar(missing, self.stderr, label="seeding orders")
        sizes = list(batches(missing, batch_size))
        starts = [existing + sum(sizes[:i]) for i in range(len(sizes))]
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Generate batch i + 1 while batch i is being inserted.
            pending = pool.submit(maker.batch, starts[0], sizes[0])
            for i, size in enumerate(sizes):
                values = pending.result()
                if i + 1 < len(sizes):
                    pending = pool.submit(maker.batch, starts[i + 1], sizes[i + 1])
                with transaction.atomic(), db.cursor() as cursor:
                    cursor.executemany(insert, values)
                bar.update(size)
        bar.close()
        self.stdout.write(f"seed_demo: inserted {missing:,} orders, {rows:,} in total.")

    def ensure_customers(self) -> list[int]:
        ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
        if ids:
            return ids
        rng = random.Random(1)
        Customer.objects.bulk_create(
            Customer(
                name=f"{rng.choice(FIRST)} {rng.choice(LAST)} {n}",
                email=f"customer{n}@example.com",
                country=rng.choice(COUNTRIES),
                created_at=EPOCH - datetime.timedelta(days=rng.randrange(1, 900)),
            )
            for n in range(1, CUSTOMERS + 1)
        )
        return list(Customer.objects.order_by("pk").values_list("pk", flat=True))


def insert_statement(db: BaseDatabaseWrapper) -> str:
    quote = db.ops.quote_name
    columns = [quote(Order._meta.get_field(name).column or name) for name in ORDER_COLUMNS]  # type: ignore[union-attr]
    return (
        f"INSERT INTO {quote(Order._meta.db_table)} ({', '.join(columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )


def batches(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size
