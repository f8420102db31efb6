"""Listening sockets for ``manage.py serve --workers N``: bound once, served by every worker.

The supervisor binds and listens on one socket and every worker process
inherits it (``pass_fds``) and hands it to Twisted as an ``fd:`` endpoint.
Measured against ``SO_REUSEPORT`` (each worker binds its own socket and the
kernel hashes connections between them) with ``bench/serve_workers.py``
(docs/benchmarks.md, "serve --workers"), the two are even: 1,000 connections
at once split 507/493 (shared) and 500/500 (reuseport) over two workers at
the same p50/p99, and a worker SIGKILLed mid-burst cost 478 and 522 of them
(Twisted accepts eagerly, so a worker dies holding its share either way).
The shared socket wins on the rest: the port stays bound and queueing while
a lone worker restarts, a bind error is reported once by the parent, and no
other process of the same user can join the port as ``SO_REUSEPORT`` allows.
"""

from __future__ import annotations

import os
import socket


def bind(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one), inheritable.

    ``SO_REUSEADDR`` as Twisted sets it, so a restart does not wait for the
    previous run's ``TIME_WAIT`` connections.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def fd_endpoint(fileno: int) -> str:
    """The Twisted endpoint string that serves the inherited listening socket ``fileno``.

    Twisted adopts a duplicate and closes ``fileno`` itself, so the caller
    must not close it again. Its ``fd:`` endpoint parser (twisted/plugins/
    fd_endpoint.py) cannot name an address family other than its default,
    IPv4, so an IPv6 socket is refused here rather than failing in Twisted.
    """
    probe = socket.socket(fileno=os.dup(fileno))  # only to learn the address family
    try:
        family = probe.family
    finally:
        probe.close()
    if family != socket.AF_INET:
        raise ValueError("worker processes serve IPv4 sockets only (use an IPv4 --host)")
    return f"fd:fileno={fileno}"


def display_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"
