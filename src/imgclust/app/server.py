"""``imgclust serve``: the labelling app on uvicorn, bound to loopback unless told otherwise."""
from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Callable

from imgclust.errors import ConfigError, ImgclustError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this computer only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a one-line :class:`ImgclustError` when refused."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} must be between 0 and 65535")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host!r}: not an address of this computer ({exc})") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ImgclustError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def serve(run_dir: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          say: Callable[[str], None] = print, warn: Callable[[str], None] = print) -> None:
    """Serve the labelling app of ``run_dir`` until interrupted.

    The run directory is opened (and refused with a one-line error) before the port is bound;
    the port is bound before the URL is printed.
    """
    import uvicorn

    from imgclust.app.web import LOOPBACK, create_app

    if not 0 <= port <= 65535:  # a usage error: before the run directory is read
        raise ConfigError(f"--port {port} must be between 0 and 65535")
    if is_loopback(host):
        hosts: list[str] = [*LOOPBACK, host]
    elif host in ("0.0.0.0", "::", ""):
        hosts = ["*"]
    else:
        hosts = [host, *LOOPBACK]
    app = create_app(run_dir, allowed_hosts=hosts)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    if not is_loopback(host):
        warn(f"warning: --host {host} makes the app reachable from other computers; anyone "
             "who can reach it and open a page can change the labels")
    say(f"serving {Path(run_dir)} at {url_of(host, port)} (Ctrl-C to stop)")
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
