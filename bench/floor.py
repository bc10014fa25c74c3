"""The client's floor: what any uploader must spend to read a file and put its bytes on a loopback socket.

Why this exists: issue 15 asks the client to stay at or under 0.5 CPU-seconds per GiB. Two kernel copies
are unavoidable for a client that looks at the bytes (it must, for CRC-64): the file's pages into the
process, and the process's buffer into the socket. This program does only those two, in 8 MiB reads into
one reused buffer, to a sink that discards what it receives; the suite measures its CPU like any client's,
so the report shows how much of vodup's client time is the floor and how much is vodup's own.

    python floor.py sink              prints the port, discards everything sent to it, until killed
    python floor.py send FILE PORT    sends FILE to 127.0.0.1:PORT
"""

from __future__ import annotations

import socket
import sys

CHUNK = 8 << 20


def sink() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    buffer = bytearray(CHUNK)
    while True:
        conn, _ = listener.accept()
        with conn:
            while conn.recv_into(buffer):
                pass


def send(path: str, port: int) -> None:
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as file, socket.create_connection(("127.0.0.1", port)) as conn:
        while n := file.readinto(buffer):
            conn.sendall(view[:n])
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["sink"]:
        sink()
    elif sys.argv[1:2] == ["send"] and len(sys.argv) == 4:
        send(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
