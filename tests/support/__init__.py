"""What the tests share, one module per concern.

``personas`` (users, clients, session cookies), ``wait`` (``wait_until`` and
its async twin), ``sse`` (the one SSE reader), ``asgi`` (the app in-process
through ``ApplicationCommunicator``), ``live`` (a real server process),
``export_worker`` (a real task worker), ``services`` (private PostgreSQL and
Redis), ``http_body`` (raw chunked bodies), ``browser`` (headless Chromium),
``demo_orders`` (rows with every awkward value).
"""
