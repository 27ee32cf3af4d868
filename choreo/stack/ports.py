"""Port helpers: find free ones, check a port is free or answering, on 127.0.0.1 only."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port the kernel just considered free (there is a small race until it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, avoid: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """`count` distinct free ports, none of them in `avoid` (ports already promised elsewhere).

    The kernel may hand the same ephemeral port out twice in a row once its socket is closed,
    so distinctness has to be enforced here.
    """
    ports: set[int] = set()
    while len(ports) < count:
        port = free_port()
        if port not in avoid:
            ports.add(port)
    return sorted(ports)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def port_answers(port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on the port."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False
