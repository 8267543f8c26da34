import socket

from eventual.cli.dev import bind_socket


def test_the_listening_socket_is_tcp_so_responses_are_not_delayed() -> None:
    """asyncio turns Nagle's algorithm off only on sockets created as TCP; without that, every
    response on a kept-open connection waited ~40 ms for the client's delayed ACK."""
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
