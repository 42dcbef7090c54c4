"""Run `fim-lsp` with an audit hook that records and refuses every attempt to use a network socket.

Used by the offline tests: the embedded engine must never open one. Unix sockets are allowed (asyncio's
event loop makes a socket pair to wake itself). Each attempt is appended to the file named by
FIM_LSP_SOCKET_LOG.
"""

import os
import socket
import sys

NETWORK_FAMILIES = {socket.AF_INET, socket.AF_INET6}


def refuse_network(event: str, args: tuple) -> None:
    if event == "socket.__new__":
        network = args[1] in NETWORK_FAMILIES
    elif event in ("socket.connect", "socket.bind"):
        network = not isinstance(args[1], (str, bytes))  # a Unix socket's address is a path
    else:
        return
    if network:
        with open(os.environ["FIM_LSP_SOCKET_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{event} {args[1:]!r}\n")
        raise PermissionError(f"fim-lsp tried to use a network socket: {event}")


def install() -> None:
    sys.addaudithook(refuse_network)


if __name__ == "__main__":
    install()  # before anything of fim-lsp is imported
    from fim_lsp.cli import main

    sys.exit(main())
