"""The demo's orders, generated and inserted fast enough to seed 1,000,000 in seconds.

``seed_orders(count)`` tops the orders up to ``count`` (with M already there it
inserts ``count - M``; with enough it does one COUNT) and reports progress
through a callback, so a management command, a terminal bar or a tracked job
can all drive it.

Design choices, each measured (docs/benchmarks.md, "Demo seeding"):

- **SQLite generates the rows itself** (``SqliteOrderSelect``): one
  ``INSERT ... SELECT`` per batch over a temp table of row numbers, a
  subquery drawing each row's pseudo-random integers by integer hashing of
  its number. No row passes through Python, so nothing is converted or bound
  per value; the statement runs in C with the GIL released. The values are
  the ones Django itself writes (UUID as 32 hex digits, datetimes as naive
  UTC ``YYYY-MM-DD HH:MM:SS.ffffff``, decimals as numbers, JSON as
  ``json.dumps`` text); the tests read every field back through the ORM.
- **PostgreSQL the same** (``PostgresOrderSelect``), over ``generate_series``,
  in its own types: faster than COPY of rows built in Python, and the
  seeding process itself does next to nothing.
- **Other backends: rows built in Python** (``OrderRows``, mostly from small
  precomputed tables), 100-row multi-row INSERTs, the next batch built in a
  thread meanwhile.
- **Deterministic from a seed, row by row.** Row ``n``'s values depend only on
  ``seed`` and ``n`` (SQL: hashes of ``n``; Python: random numbers drawn per
  fixed block of rows), so a top-up gives the same rows a single seed of
  that size would have.
- **Rows in time order.** Order ``n`` is placed in its own slot of about 63 s
  after 2024-01-01 (1,000,000 orders span two years), and its UUID is a
  version 7 UUID of that instant: every index but the customer's and the
  status's then grows at its end instead of at random pages.
- **One transaction per ``batch`` rows**: an interrupted seed keeps what it
  committed, and the write lock is held for a fraction of a second at a
  time, so the server and the worker keep working while the demo seeds in
  the background.
- **SQLite's first seed builds the secondary indexes once, at the end**
  (``indexes_set_aside``): 40 % less CPU than maintaining them row by row,
  with the database file mapped into memory while they are built.
- **SQLite's checks and fsyncs off on the seed's connection while it seeds**
  (``sqlite_pragmas``): the metadata's JSON check and the customer foreign
  key (the values are valid by construction), and the checkpoints' fsyncs
  (one full checkpoint at the end instead, which SQLite fsyncs). Every setting is restored
  after; the tests compare them.
"""

from __future__ import annotations

import datetime
import gc
import json
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any, Protocol

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from dashboard.models import Customer, Order

DEFAULT_SEED = 2024
BATCH = 50_000
ROWS_PER_STATEMENT = 100  # other backends' multi-row INSERT: 1,200 parameters
BLOCK = 10_000  # rows drawn from one random generator; fixes which rows a seed gives
SQLITE_CACHE_KIB = 64 * 1024
SQLITE_INDEX_BUILD_MMAP = 2**31  # bytes of the database file mapped while building indexes
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
POOL = 16_384

EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
EPOCH_MS = int(EPOCH.timestamp() * 1000)
STEP_SECONDS = 2 * 365 * 24 * 3600 // 1_000_000  # 63 s: 1,000,000 orders span two years
JITTERS = range(STEP_SECONDS)
UPDATE_DELAYS = range(30 * 24 * 3600)
HMS = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(24 * 3600)]

# The database columns, in the order of a row's values.
ORDER_COLUMNS = [
    "uuid",
    "reference",
    "customer_id",
    "placed_on",
    "created_at",
    "updated_at",
    "status",
    "quantity",
    "amount",
    "note",
    "is_gift",
    "metadata",
]

Row = tuple[Any, ...]
ProgressCallback = Callable[[int, int], object]


class RowWriter(Protocol):
    """Writes one batch of rows inside the current transaction."""

    def __call__(self, rows: list[Row]) -> None: ...


def seed_orders(
    count: int,
    *,
    batch: int = BATCH,
    seed: int = DEFAULT_SEED,
    on_progress: ProgressCallback | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """Top the demo orders up to ``count``; return how many were inserted.

    ``on_progress(done, total)`` is called with ``done=0`` before the first
    batch and after each committed one (``total`` is the number of rows this
    call inserts); never when nothing is missing.
    Customers are created on the first run (``CUSTOMERS`` of them) and reused.
    """
    if count < 0 or batch < 1:
        raise ValueError(f"count must be >= 0 and batch >= 1, got {count=} and {batch=}.")
    db = connections[using]
    restore_set_aside_indexes(db)
    existing = Order.objects.using(using).count()
    missing = count - existing
    if missing <= 0:
        return 0
    customer_ids = ensure_customers(using)
    if on_progress is not None:
        on_progress(0, missing)
    if db.vendor == "sqlite":
        write_batch = sqlite_batches(db, customer_ids, seed=seed)
    elif db.vendor == "postgresql":
        write_batch = postgres_batches(db, customer_ids, seed=seed)
    else:
        write_batch = python_batches(db, customer_ids, seed=seed)
    done = 0
    with indexes_set_aside(db, first_seed=existing == 0), write_batch as write:
        start = existing
        sizes = list(batches(missing, batch))
        for size, following in zip(sizes, [*sizes[1:], 0], strict=True):
            with transaction.atomic(using=using):
                write(start, size, following)
            start += size
            done += size
            if on_progress is not None:
                on_progress(done, missing)
    return missing


@contextmanager
def indexes_set_aside(db: BaseDatabaseWrapper, *, first_seed: bool) -> Iterator[None]:
    """SQLite's first seed: drop the orders' secondary indexes, build them again after.

    Building an index over the finished table (one sort) costs less than
    keeping four indexes up to date row by row: about 40 % of the insert's
    CPU. Only on the first seed, so no one's data ever waits on it. The
    statements are SQLite's own (``sqlite_master``), so the schema comes back
    byte for byte; they are kept in a file beside the database until rebuilt,
    so a seed killed outright (SIGKILL) has them rebuilt by the next one.
    """
    pending = set_aside_file(db)
    if not first_seed or pending is None:
        yield
        return
    table = Order._meta.db_table
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s"
            " AND sql IS NOT NULL",  # the UNIQUE constraint's index has no SQL: it stays
            [table],
        )
        indexes = cursor.fetchall()
    pending.write_text(json.dumps([sql for _, sql in indexes]))
    with transaction.atomic(using=db.alias), db.cursor() as cursor:
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {db.ops.quote_name(name)}")
    try:
        yield
    finally:
        restore_set_aside_indexes(db)


def restore_set_aside_indexes(db: BaseDatabaseWrapper) -> None:
    """Build the indexes a first seed set aside, if any are still waiting."""
    pending = set_aside_file(db)
    if pending is None or not pending.exists():
        return
    statements: list[str] = json.loads(pending.read_text())
    # Each index is one scan of the table (4 scans of 390 MB for 1,000,000 orders):
    # mapped into memory, its pages are not copied from the OS on every read
    # (0.13 µs a row less, docs/benchmarks.md). The sort is done in memory
    # within the cache's size.
    settings = {"cache_size": -SQLITE_CACHE_KIB, "mmap_size": SQLITE_INDEX_BUILD_MMAP}
    with (
        sqlite_settings(db, settings),
        transaction.atomic(using=db.alias),
        db.cursor() as cursor,
    ):
        for sql in statements:
            cursor.execute(sql.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
    pending.unlink()


@contextmanager
def sqlite_settings(db: BaseDatabaseWrapper, settings: dict[str, int]) -> Iterator[None]:
    """These ``PRAGMA`` settings of ``db``'s connection for the block, the previous ones after."""
    previous = {}
    with db.cursor() as cursor:
        for name, value in settings.items():
            cursor.execute(f"PRAGMA {name}")
            previous[name] = int(cursor.fetchone()[0])
            cursor.execute(f"PRAGMA {name} = {value}")
    try:
        yield
    finally:
        with db.cursor() as cursor:
            for name, value in previous.items():
                cursor.execute(f"PRAGMA {name} = {value}")


def set_aside_file(db: BaseDatabaseWrapper) -> Path | None:
    """Where a first seed keeps the index statements it dropped (SQLite files only)."""
    name = str(db.settings_dict["NAME"])
    if db.vendor != "sqlite" or name == ":memory:" or "mode=memory" in name:
        return None
    return Path(f"{name}.seed-indexes.json")


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: millions of fresh tuples trigger it
    over and over (about 15 % of the seed's time), and they hold no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def ensure_customers(using: str = DEFAULT_DB_ALIAS) -> list[int]:
    """The customers' primary keys, creating the demo's customers when there are none."""
    customers = Customer.objects.using(using).order_by("pk")
    ids = list(customers.values_list("pk", flat=True))
    if ids:
        return ids
    rng = random.Random(1)
    Customer.objects.using(using).bulk_create(
        Customer(
            name=f"{rng.choice(FIRST)} {rng.choice(LAST)} {n}",
            email=f"customer{n}@example.com",
            country=rng.choice(COUNTRIES),
            created_at=EPOCH - datetime.timedelta(days=rng.randrange(1, 900)),
        )
        for n in range(1, CUSTOMERS + 1)
    )
    return list(customers.values_list("pk", flat=True))


class OrderRows:
    """Order rows as database values, in ``ORDER_COLUMNS`` order; pure Python, no database.

    The rows of backends other than SQLite and PostgreSQL, which compute
    their own (``SqliteOrderSelect``, ``PostgresOrderSelect``).

    ``batch(start, count)`` gives rows ``start`` to ``start + count - 1`` (0-based;
    row ``n`` is reference ``ORD-{n + 1}``), about 2 µs a row. What is unique or
    ordered per row (UUID, reference, times) is made per row; the rest (status,
    quantity, amount, note, gift, metadata) is drawn per row from ``POOL``
    combinations made once per seed, which is what keeps it cheap.
    """

    def __init__(self, customer_ids: Sequence[int], *, seed: int, timestamp_suffix: str) -> None:
        self.customer_ids = list(customer_ids)
        self.seed = seed
        rng = random.Random(seed)
        self.combos = [combination(rng) for _ in range(POOL)]
        # Sub-second parts and UUID random bits (version 7: 12 bits, the variant, 62 bits).
        self.fractions = [f".{rng.randrange(1_000_000):06d}{timestamp_suffix}" for _ in range(POOL)]
        self.uuid_tails = [
            f"{rng.getrandbits(12):03x}{8 + rng.getrandbits(2):x}{rng.getrandbits(60):015x}"
            for _ in range(POOL)
        ]
        self.days: list[str] = []

    def batch(self, start: int, count: int) -> list[Row]:
        rows: list[Row] = []
        for block in range(start // BLOCK, (start + count - 1) // BLOCK + 1):
            block_start = block * BLOCK
            lo = max(start, block_start) - block_start
            hi = min(start + count, block_start + BLOCK) - block_start
            rows.extend(self.block(block)[lo:hi])
        return rows

    def block(self, block: int) -> list[Row]:
        """The ``BLOCK`` rows of one block, drawn from the block's own generator."""
        rng = random.Random(self.seed * 1_000_003 + block)
        k = BLOCK
        first = block * BLOCK
        # Order n is placed in its own STEP_SECONDS slot: times and UUIDs ascend.
        slots = range(first * STEP_SECONDS, (first + k) * STEP_SECONDS, STEP_SECONDS)
        placed = [s + j for s, j in zip(slots, rng.choices(JITTERS, k=k), strict=True)]
        changed = [s + w for s, w in zip(placed, rng.choices(UPDATE_DELAYS, k=k), strict=True)]
        self.extend_days(max(changed))
        days, hms = self.days, HMS
        fractions = self.fractions
        return [
            (uuid, reference, customer, day, created, updated, *combo)
            for uuid, reference, customer, day, created, updated, combo in zip(
                [
                    f"{EPOCH_MS + s * 1000:012x}7{tail}"
                    for s, tail in zip(placed, rng.choices(self.uuid_tails, k=k), strict=True)
                ],
                map("ORD-%08d".__mod__, range(first + 1, first + k + 1)),
                rng.choices(self.customer_ids, k=k),
                [days[s // 86_400] for s in placed],
                [
                    f"{days[s // 86_400]} {hms[s % 86_400]}{f}"
                    for s, f in zip(placed, rng.choices(fractions, k=k), strict=True)
                ],
                [
                    f"{days[s // 86_400]} {hms[s % 86_400]}{f}"
                    for s, f in zip(changed, rng.choices(fractions, k=k), strict=True)
                ],
                rng.choices(self.combos, k=k),
                strict=True,
            )
        ]

    def extend_days(self, until: int) -> None:
        """Precompute the ISO dates up to the day holding second ``until`` after EPOCH."""
        epoch = EPOCH.date()
        while len(self.days) <= until // 86_400:
            self.days.append((epoch + datetime.timedelta(days=len(self.days))).isoformat())


def combination(rng: random.Random) -> tuple[str, int, str, str, bool, str]:
    """(status, quantity, amount, note, is_gift, metadata) as the database stores them."""
    quantity = rng.randint(1, 20)
    cents = quantity * rng.randint(99, 99_999)
    metadata = {
        "channel": rng.choice(CHANNELS),
        "items": [{"sku": f"SKU-{rng.randrange(10_000):05d}", "qty": quantity}],
        "coupon": None if rng.random() < 0.8 else f"SAVE{rng.randrange(5, 50, 5)}",
    }
    return (
        rng.choice(STATUSES),
        quantity,
        f"{cents // 100}.{cents % 100:02d}",
        rng.choice(NOTES),
        rng.random() < 0.1,
        json.dumps(metadata),
    )


# write(start, count, following): rows start to start + count - 1, in the
# current transaction; the next call (if following > 0) asks for the next
# ``following`` rows.
BatchWriter = Callable[[int, int, int], None]


@contextmanager
def python_batches(
    db: BaseDatabaseWrapper, customer_ids: Sequence[int], *, seed: int
) -> Iterator[BatchWriter]:
    """Rows built in Python (``OrderRows``), written by multi-row INSERTs.

    Backends other than SQLite and PostgreSQL: the next batch is generated in
    a thread while the database takes the current one.
    """
    rows = OrderRows(customer_ids, seed=seed, timestamp_suffix=timestamp_suffix(db))
    write_rows = row_writer(db)
    with no_cyclic_gc(), ThreadPoolExecutor(1, thread_name_prefix="seed-rows") as pool:
        pending: dict[tuple[int, int], Future[list[Row]]] = {}

        def write(start: int, count: int, following: int) -> None:
            job = pending.pop((start, count), None) or pool.submit(rows.batch, start, count)
            values = job.result()
            if following:
                pending[start + count, following] = pool.submit(
                    rows.batch, start + count, following
                )
            write_rows(values)

        yield write
        for job in pending.values():
            job.cancel()


@contextmanager
def postgres_batches(
    db: BaseDatabaseWrapper, customer_ids: Sequence[int], *, seed: int
) -> Iterator[BatchWriter]:
    """PostgreSQL generates the rows itself: one ``INSERT ... SELECT`` per batch."""
    select = PostgresOrderSelect(customer_ids, seed=seed)
    table = db.ops.quote_name(Order._meta.db_table)
    columns = ", ".join(db.ops.quote_name(column) for column in ORDER_COLUMNS)

    def write(start: int, count: int, following: int) -> None:
        with db.cursor() as cursor:
            # No parameters: the driver leaves the text (and its % operators) alone.
            cursor.execute(select.insert(table, columns, start, count))

    yield write


@contextmanager
def sqlite_batches(
    db: BaseDatabaseWrapper, customer_ids: Sequence[int], *, seed: int
) -> Iterator[BatchWriter]:
    """SQLite generates the rows itself: one ``INSERT ... SELECT`` per batch.

    No row passes through Python: ``SqliteOrderSelect`` computes every
    column from the row number in SQL, and the statement runs in C from the
    first row to the last with the GIL released.
    """
    select = SqliteOrderSelect(customer_ids, seed=seed)
    table = db.ops.quote_name(Order._meta.db_table)
    columns = ", ".join(db.ops.quote_name(column) for column in ORDER_COLUMNS)

    def write(start: int, count: int, following: int) -> None:
        with db.cursor() as cursor:
            for statement in select.number(count):
                cursor.execute(statement)
            # No parameters: Django passes the text to SQLite untouched (printf's %).
            cursor.execute(select.insert(table, columns, start, count))
            if cursor.rowcount != count:  # e.g. numbers lost with a rolled-back batch
                raise RuntimeError(f"inserted {cursor.rowcount} orders instead of {count}")

    # The customer ids are read from the customers' table: checking each order's
    # costs a lookup, 0.3 µs a row. Off for this connection while it seeds (a
    # no-op if a transaction is open: SQLite refuses it there; Django's own
    # loaddata does the same).
    with db.constraint_checks_disabled(), sqlite_pragmas(db, select):
        yield write


@contextmanager
def sqlite_pragmas(db: BaseDatabaseWrapper, select: SqliteOrderSelect) -> Iterator[None]:
    """The seed's connection settings, and ``select``'s temp tables, while it seeds."""
    settings = {
        # This connection's page cache: the indexes' hot pages stay in memory.
        "cache_size": -SQLITE_CACHE_KIB,
        # The metadata's JSON_VALID check costs 10 % of the insert; the JSON is
        # one fixed template of integers and fixed strings, valid by construction
        # (the tests read it back). This connection only, and only while seeding.
        "ignore_check_constraints": 1,
    }
    # SQLite refuses it inside a transaction; and only a WAL database is made
    # durable again by the checkpoint below.
    unsynced = not db.in_atomic_block and journal_mode(db) == "wal"
    if unsynced:
        # No fsync at the checkpoints while seeding: 64 of them made 0.8 s of
        # waiting for 1,000,000 rows, 15 % of the seed, and the WAL's pages went
        # to the disk once per batch. Readers see the same; a crash of the
        # process loses nothing committed, a crash of the machine mid-seed may
        # corrupt the file (docs/benchmarks.md). Once done, one full checkpoint
        # with the connection's own setting back puts all of it on the disk.
        settings["synchronous"] = 0
    try:
        with sqlite_settings(db, settings):
            try:
                with db.cursor() as cursor:
                    for statement in select.setup():
                        cursor.execute(statement)
                yield
            finally:
                with db.cursor() as cursor:
                    for statement in select.teardown():
                        cursor.execute(statement)
    finally:
        if unsynced:
            checkpoint(db)


def journal_mode(db: BaseDatabaseWrapper) -> str:
    with db.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        return str(cursor.fetchone()[0]).lower()


def checkpoint(db: BaseDatabaseWrapper) -> None:
    """Copy the WAL into the database file and fsync it, through SQLite itself.

    Never by opening the files from Python to fsync them: closing any
    descriptor of a database file drops every POSIX lock this process holds
    on it, SQLite's included, and other connections then see a "disk I/O
    error" or worse (sqlite.org/howtocorrupt.html, 2.2). It did: the test
    suite's other connections failed after a seed test.
    """
    with db.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(FULL)")


HASH_MODULUS = 2_147_483_647  # 2**31 - 1, a prime: every product below stays under 2**62
HASH_MULTIPLIER = 2_654_435_761
SECONDS_PER_UPDATE_WINDOW = 30 * 24 * 3600
COUPONS = [f"SAVE{value}" for value in range(5, 50, 5)]
# Row n's draws from one hash: status, quantity, note, gift, channel, coupon?, coupon.
MIX = [len(STATUSES), 20, len(NOTES), 10, len(CHANNELS), 5, len(COUPONS)]


class OrderDraws:
    """Each row's pseudo-random integers as SQL over its number: the part both databases share.

    ``draw(k, n)`` is ``x = (n * A + c_k) % P`` then ``x * x % P``, ``c_k``
    taken from ``seed``: row ``n`` depends on ``seed`` and ``n`` only. Every
    product stays below 2**62, so no 64-bit integer overflows (SQLite would
    turn it into a float, PostgreSQL raise).
    """

    def __init__(self, customer_ids: Sequence[int], *, seed: int) -> None:
        rng = random.Random(seed)
        self.offsets = [rng.randrange(HASH_MODULUS) for _ in range(9)]
        self.customer_ids = sorted(customer_ids)
        first = self.customer_ids[0]
        self.contiguous = self.customer_ids == list(range(first, first + len(customer_ids)))

    def draw(self, k: int, n: str) -> str:
        x = f"(({n}) * {HASH_MULTIPLIER} + {self.offsets[k]}) % {HASH_MODULUS}"
        return f"({x}) * ({x}) % {HASH_MODULUS}"

    def created(self, n: str) -> str:
        """Microseconds after EPOCH: the row's slot, then any instant in it."""
        return (
            f"({n}) * {STEP_SECONDS * 1_000_000} + {self.draw(0, n)} % {STEP_SECONDS * 1_000_000}"
        )

    def changed(self, n: str) -> str:
        """Microseconds after creation, up to 30 days."""
        return (
            f"{self.draw(1, n)} % {SECONDS_PER_UPDATE_WINDOW} * 1000000"
            f" + {self.draw(2, n)} % 1000000"
        )


class PostgresOrderSelect(OrderDraws):
    """PostgreSQL's rows from their numbers: one ``INSERT ... SELECT`` over ``generate_series``.

    The same draws as SQLite's (``OFFSET 0`` keeps the subquery apart, so
    each is computed once a row), the values as PostgreSQL's own types:
    ``uuid``, ``timestamptz``, ``date``, ``numeric``, ``boolean``, ``jsonb``.
    Faster than COPY of rows built in Python (1.2-1.5x, docs/benchmarks.md), and
    the seeding process's own CPU is next to none.
    """

    def insert(self, table: str, columns: str, start: int, count: int) -> str:
        draws = ", ".join(f"{self.draw(k, 'n')} AS {name}" for k, name in enumerate(DRAWS, start=3))
        epoch = "timestamp '2024-01-01 00:00:00'"  # EPOCH, naive: ::date needs no time zone
        customers = f"(ARRAY[{', '.join(map(str, self.customer_ids))}])"
        quantity = "1 + mix / 6 % 20"
        metadata = (
            f"jsonb_build_object('channel', {pg_choice('mix / 7200 % 4', CHANNELS)},"
            " 'items', jsonb_build_array(jsonb_build_object("
            f"'sku', 'SKU-' || lpad((price / 99901 % 10000)::text, 5, '0'), 'qty', {quantity})),"
            " 'coupon', CASE WHEN mix / 28800 % 5 = 0"
            " THEN 'SAVE' || (5 + 5 * (mix / 144000 % 9)) END)"
        )
        values = [
            "(lpad(to_hex(" + str(EPOCH_MS) + " + created / 1000000 * 1000), 12, '0') || '7'"
            " || lpad(to_hex(u1 % 4096), 3, '0') || to_hex(8 + u1 / 4096 % 4)"
            " || lpad(to_hex(u2), 8, '0') || lpad(to_hex(u3 % 268435456), 7, '0'))::uuid",
            "'ORD-' || CASE WHEN n < 99999999 THEN lpad((n + 1)::text, 8, '0')"
            " ELSE (n + 1)::text END",
            f"{customers}[1 + customer % {len(self.customer_ids)}]",
            f"({epoch} + created * interval '1 microsecond')::date",
            f"({epoch} + created * interval '1 microsecond') AT TIME ZONE 'UTC'",
            f"({epoch} + (created + changed) * interval '1 microsecond') AT TIME ZONE 'UTC'",
            pg_choice("mix % 6", STATUSES),
            quantity,
            f"({quantity}) * (99 + price % 99901) / 100.0",
            pg_choice("mix / 120 % 6", NOTES),
            "mix / 720 % 10 = 0",
            metadata,
        ]
        return (
            f"INSERT INTO {table} ({columns}) SELECT {', '.join(values)} FROM ("
            f"SELECT n, {self.created('n')} AS created, {self.changed('n')} AS changed, {draws}"
            f" FROM generate_series({start}::bigint, {start + count - 1}::bigint) AS n"
            " OFFSET 0) AS r"
        )


DRAWS = ["u1", "u2", "u3", "customer", "mix", "price"]


def pg_choice(index: str, options: Sequence[str]) -> str:
    """``options[index]`` in PostgreSQL: a constant array, indexed from 1."""
    return f"(ARRAY[{', '.join(map(sql_string, options))}])[1 + {index}]"


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class SqliteOrderSelect(OrderDraws):
    """The SQL that computes order rows ``start`` to ``start + count - 1`` from their numbers.

    The rows are counted by a temp table of the numbers ``0`` to ``count - 1``
    (``ROWS``; a scan of it costs a fifth of a recursive CTE's counting) and,
    for each, a subquery draws a handful of pseudo-random integers:
    ``x = (n * A + c_k) % P`` then ``x * x % P``, ``c_k`` taken from ``seed``
    (one per draw), so row ``n`` depends on ``seed`` and ``n`` only, however
    the rows are split into batches. ``OFFSET 0`` keeps the subquery from being
    merged into the outer ``SELECT``, so each draw is computed once per row (a
    co-routine: no row is stored). The outer ``SELECT`` turns them into the
    values Django stores on SQLite (UUID as 32 hex digits, datetimes as naive
    UTC ``YYYY-MM-DD HH:MM:SS.ffffff``, decimals as numbers, JSON as
    ``json.dumps`` would write it). Orders are in time order with version 7
    UUIDs: order ``n`` is placed in its own ``STEP_SECONDS`` slot.
    """

    TEMP_CUSTOMERS = "streamboard_seed_customers"
    ROWS = "streamboard_seed_rows"

    def __init__(self, customer_ids: Sequence[int], *, seed: int) -> None:
        super().__init__(customer_ids, seed=seed)
        self.numbered = 0  # how many numbers temp.ROWS holds

    def setup(self) -> list[str]:
        """Statements to run once before the inserts: the numbers' table, the customers'
        if their ids are not one run."""
        self.numbered = 0
        statements = [
            f"DROP TABLE IF EXISTS temp.{self.ROWS}",
            f"CREATE TEMP TABLE {self.ROWS} (k INTEGER PRIMARY KEY)",
        ]
        if self.contiguous:
            return statements
        values = ", ".join(f"({k}, {pk})" for k, pk in enumerate(self.customer_ids))
        return [
            *statements,
            f"DROP TABLE IF EXISTS temp.{self.TEMP_CUSTOMERS}",
            f"CREATE TEMP TABLE {self.TEMP_CUSTOMERS} (k INTEGER PRIMARY KEY, id INTEGER)",
            f"INSERT INTO temp.{self.TEMP_CUSTOMERS} VALUES {values}",
        ]

    def teardown(self) -> list[str]:
        statements = [f"DROP TABLE IF EXISTS temp.{self.ROWS}"]
        if not self.contiguous:
            statements.append(f"DROP TABLE IF EXISTS temp.{self.TEMP_CUSTOMERS}")
        return statements

    def number(self, count: int) -> list[str]:
        """Statements that give temp.ROWS the numbers below ``count`` (none if it has them)."""
        if count <= self.numbered:
            return []
        first, self.numbered = self.numbered, count
        return [
            f"WITH RECURSIVE k(k) AS (SELECT {first} UNION ALL SELECT k + 1 FROM k"
            f" WHERE k < {count - 1}) INSERT INTO temp.{self.ROWS} SELECT k FROM k"
        ]

    def insert(self, table: str, columns: str, start: int, count: int) -> str:
        """The ``INSERT``; run ``number(count)``'s statements first.

        Two subqueries: the inner computes each draw's ``x``, the outer squares
        it (``x`` written once, not twice: 5 operations a draw instead of 8).
        Row ``n`` is ``start + k``, its ``start`` folded into the constants:
        ``(n * A + c) % P`` is ``(k * A + (start * A + c) % P) % P``.
        """
        p, a, step = HASH_MODULUS, HASH_MULTIPLIER, STEP_SECONDS * 1_000_000
        xs = ", ".join(
            f"(k * {a} + {(start * a + c) % p}) % {p} AS x{j}" for j, c in enumerate(self.offsets)
        )
        draw = [f"x{j} * x{j} % {p}" for j in range(len(self.offsets))]
        created = f"k * {step} + {start * step} + {draw[0]} % {step}"
        changed = f"{draw[1]} % {SECONDS_PER_UPDATE_WINDOW} * 1000000 + {draw[2]} % 1000000"
        draws = ", ".join(f"{draw[j]} AS {name}" for j, name in enumerate(DRAWS, start=3))
        # The creation's date and time, computed once: placed_on is its first 10 characters.
        created_text = f"datetime({int(EPOCH.timestamp())} + ({created}) / 1000000, 'unixepoch')"
        return (
            f"INSERT INTO {table} ({columns}) SELECT {', '.join(self.values())} FROM ("
            f"SELECT k + {start} AS i, {created} AS created, {changed} AS changed,"
            f" {created_text} AS created_text, {draws} FROM ("
            f"SELECT k, {xs} FROM temp.{self.ROWS} WHERE k < {count} LIMIT -1 OFFSET 0)"
            " LIMIT -1 OFFSET 0)"
        )

    def values(self) -> list[str]:
        """The columns' expressions, in ``ORDER_COLUMNS`` order, over the subquery's draws."""
        epoch = int(EPOCH.timestamp())
        status, quantity, note, gift, channel, has_coupon, coupon = mix_digits("mix")

        def fraction(micros: str) -> str:
            # A concatenation: half the cost of strftime() or printf().
            return f"'.' || substr({micros} % 1000000 + 1000000, 2)"

        if self.contiguous:
            customer = f"{self.customer_ids[0]} + customer % {len(self.customer_ids)}"
        else:
            customer = (
                f"(SELECT id FROM temp.{self.TEMP_CUSTOMERS}"
                f" WHERE k = customer % {len(self.customer_ids)})"
            )
        qty = f"1 + {quantity}"
        # json.dumps's text, its fixed parts folded into the CASEs' strings: three
        # concatenations cost less than one printf().
        channels = [f'{{"channel": "{c}", "items": [{{"sku": "SKU-' for c in CHANNELS]
        coupons = [f'}}], "coupon": {json.dumps(c)}}}' for c in COUPONS]
        metadata = (
            f"{choice(channel, channels)} || substr(price / 99901 % 10000 + 100000, 2)"
            f' || \'", "qty": \' || ({qty}) || CASE WHEN {has_coupon} = 0'
            f" THEN {choice(coupon, coupons)} ELSE '}}], \"coupon\": null}}' END"
        )
        return [
            # Version 7: 48 bits of milliseconds, 7, then the variant among 74 pseudo-random
            # bits, as two 64-bit halves (the second's top bit set: printf writes it unsigned).
            # (SQLite's bit operators share one precedence, hence the parentheses.)
            f"printf('%016x%016x', (({EPOCH_MS} + created / 1000000 * 1000) << 16)"
            " | 28672 | (u1 % 4096),"
            " (1 << 63) | ((u1 / 4096 % 4) << 60) | (u2 << 28) | (u3 % 268435456))",
            # ORD-%08d, cheaper than printf.
            "CASE WHEN i < 99999999 THEN 'ORD-' || substr(i + 100000001, 2)"
            " ELSE 'ORD-' || (i + 1) END",
            customer,
            "substr(created_text, 1, 10)",
            f"created_text || {fraction('created')}",
            f"datetime({epoch} + (created + changed) / 1000000, 'unixepoch')"
            f" || {fraction('(created + changed)')}",
            choice(status, STATUSES),
            qty,
            f"({qty}) * (99 + price % 99901) / 100.0",
            choice(note, NOTES),
            f"{gift} = 0",
            metadata,
        ]


def mix_digits(column: str) -> list[str]:
    """``column``'s digits in the mixed radix ``MIX``: independent small draws from one hash."""
    digits, place = [], 1
    for radix in MIX:
        digits.append(f"({column} / {place} % {radix})")
        place *= radix
    return digits


def choice(index: str, options: Sequence[str]) -> str:
    """``options[index]`` in SQL, the options as string literals."""
    whens = " ".join(f"WHEN {k} THEN {sql_string(option)}" for k, option in enumerate(options))
    return f"CASE {index} {whens} END"


def timestamp_suffix(db: BaseDatabaseWrapper) -> str:
    # SQLite stores naive UTC text; PostgreSQL parses text in the session's
    # time zone unless the offset is given.
    return "" if db.vendor == "sqlite" else "+00:00"


def row_writer(db: BaseDatabaseWrapper) -> RowWriter:
    table = db.ops.quote_name(Order._meta.db_table)
    columns = ", ".join(db.ops.quote_name(column) for column in ORDER_COLUMNS)
    return partial_insert(db, table, columns)


def partial_insert(db: BaseDatabaseWrapper, table: str, columns: str) -> RowWriter:
    width = len(ORDER_COLUMNS)
    group = "(" + ", ".join(["%s"] * width) + ")"

    def statement(rows: int) -> str:
        return f"INSERT INTO {table} ({columns}) VALUES {', '.join([group] * rows)}"

    full = statement(ROWS_PER_STATEMENT)

    def write(rows: list[Row]) -> None:
        whole = len(rows) - len(rows) % ROWS_PER_STATEMENT
        params = [
            tuple(chain.from_iterable(rows[i : i + ROWS_PER_STATEMENT]))
            for i in range(0, whole, ROWS_PER_STATEMENT)
        ]
        with db.cursor() as cursor:
            if params:
                cursor.executemany(full, params)
            if whole < len(rows):
                rest = rows[whole:]
                cursor.execute(statement(len(rest)), tuple(chain.from_iterable(rest)))

    return write


def batches(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size
