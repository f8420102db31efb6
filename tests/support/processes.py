"""What the kernel says about real processes: children, process groups, who accepted a socket.

Read from /proc, so tests of ``serve --workers`` see the real worker
processes without the server exposing anything for them.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...


def alive(pid: int) -> bool:
    """Running, i.e. neither gone nor a zombie waiting to be reaped."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return sorted(found)


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return []
    return [part.decode() for part in raw.split(b"\0") if part]


def in_process_group(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


def _hex_address(host: str, port: int) -> str:
    packed = socket.inet_aton(host)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def _connections() -> dict[tuple[str, str], list[str]]:
    """/proc/net/tcp rows by (local, remote) address, as the kernel prints them."""
    rows = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        rows[fields[1], fields[2]] = fields
    return rows


def _server_side(client: socket.socket, rows: dict[tuple[str, str], list[str]]) -> list[str] | None:
    return rows.get((_hex_address(*client.getpeername()), _hex_address(*client.getsockname())))


def server_side_queue(client: socket.socket) -> int | None:
    """Bytes the kernel holds in the server's send queue for this connection (``tx_queue``)."""
    fields = _server_side(client, _connections())
    return int(fields[4].split(":")[0], 16) if fields is not None else None


def socket_owners(clients: list[socket.socket], candidates: list[int]) -> list[int | None]:
    """For each open loopback connection, which of ``candidates`` holds its accepted end."""
    rows = _connections()
    owner_of_inode: dict[str, int] = {}
    for pid in candidates:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:
                continue
            if target.startswith("socket:["):
                owner_of_inode[target[8:-1]] = pid
    owners: list[int | None] = []
    for client in clients:
        fields = _server_side(client, rows)
        owners.append(owner_of_inode.get(fields[9]) if fields is not None else None)
    return owners
