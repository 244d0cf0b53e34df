"""Which requests a dashboard answers: those whose ``Host`` header names the address it serves.

A page from another site that a browser on this machine loads can send requests to 127.0.0.1 through a
DNS name of its own that resolves there (DNS rebinding); the browser then sends that name as ``Host``.
:class:`HostCheck` refuses every name but those of :func:`served_names` (the port is not checked:
Docker's port mapping and proxies change it) before the app sees the request.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any

from automl_noisy.errors import UserError

#: the names every dashboard answers to: this machine's loopback
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: a host name as a Host header or --allow-host may give it: no separators, no port
_NAME = r"[^\s:/\\\[\]@?#,%]+"
#: a Host header: a bracketed IPv6 address or a name, then an optional port
_HOST_HEADER = re.compile(rf"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>{_NAME}))(?::[0-9]{{0,5}})?", re.ASCII)


def normal_name(name: str) -> str:
    """A host name or address as the Host check compares them: lower case, without a trailing dot or an
    IPv6 zone, addresses in their canonical form (``0:0::1`` is ``::1``)."""
    name = name.strip().strip("[]").split("%")[0].lower().rstrip(".")
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        return name


def host_of(header: str) -> str | None:
    """The host name or address a ``Host`` header names (its port dropped, see :func:`normal_name`), or
    None when the header is not one."""
    match = _HOST_HEADER.fullmatch(header.strip())
    if match is None:
        return None
    if match["ipv6"] is not None:
        try:
            return ipaddress.IPv6Address(match["ipv6"]).compressed
        except ValueError:
            return None
    return normal_name(match["name"]) or None


def _interface_addresses() -> set[str]:
    """The addresses of this machine's network interfaces: each interface's IPv4 address and every
    IPv6 one (read from the kernel on Linux; none elsewhere)."""
    found: set[str] = set()
    try:
        import fcntl
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, interface in socket.if_nameindex():
                try:  # SIOCGIFADDR: the interface's IPv4 address
                    reply = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", interface.encode()[:15]))
                except OSError:  # an interface without one
                    continue
                found.add(socket.inet_ntoa(reply[20:24]))
    except (ImportError, OSError, AttributeError):
        pass
    try:
        with open("/proc/net/if_inet6") as lines:
            found |= {str(ipaddress.IPv6Address(bytes.fromhex(line.split()[0]))) for line in lines if line.strip()}
    except (OSError, ValueError, IndexError):
        pass
    return found


def _this_machine() -> set[str]:
    """This machine's host names and addresses (its interfaces', and those its host name resolves to)."""
    names = {socket.gethostname(), socket.getfqdn()} | _interface_addresses()
    try:
        names |= {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        pass
    return {normal_name(n) for n in names if n}


def served_names(host: str, allow: Iterable[str] = ()) -> frozenset[str]:
    """The names a dashboard bound to ``host`` answers to (``Host`` header, port not checked): the
    loopback names, plus ``host`` itself when it is another address or name, plus this machine's host
    names and addresses when ``host`` is every interface (0.0.0.0, ::), plus the ``allow`` names."""
    names = set(LOOPBACK_NAMES)
    try:
        everywhere = ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        everywhere = host == ""
    names |= _this_machine() if everywhere else {normal_name(host)}
    return frozenset(names | {normal_name(a) for a in allow})


def allowed_name(text: str) -> str:
    """``--allow-host`` NAME checked and in the form the Host check compares: a host name or address
    (an IPv6 one with or without brackets), without a scheme, a path or a port."""
    bare = text.strip()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    try:
        return ipaddress.ip_address(bare).compressed
    except ValueError:
        pass
    if not re.fullmatch(_NAME, bare, re.ASCII) or not bare.strip("."):
        raise UserError(f"--allow-host takes a host name or address such as proxy.example.org or 10.0.0.5, "
                        f"without a scheme, a path or a port (ports are not checked), got {text!r}")
    return normal_name(bare)


class HostCheck:
    """WSGI middleware: a request reaches ``app`` only when its ``Host`` header names one of ``names``
    (port not checked). Any other name gets 403 and a request without a ``Host`` header (HTTP/1.0)
    400, each with a one-line plain-text body; ``app`` is not called for them."""

    def __init__(self, app: Any, names: Iterable[str]) -> None:
        self.app = app
        self.names = frozenset(names)

    def __call__(self, environ: dict, start_response: Any) -> Any:
        header = environ.get("HTTP_HOST")
        if header is None:
            return self._refuse(start_response, "400 Bad Request",
                                "this dashboard answers only requests with a Host header")
        if host_of(header) not in self.names:
            return self._refuse(start_response, "403 Forbidden",
                                "this dashboard does not answer for the host name this request was sent to; "
                                "its operator can admit it with automl-noisy dashboard --allow-host NAME")
        return self.app(environ, start_response)

    @staticmethod
    def _refuse(start_response: Any, status: str, line: str) -> list[bytes]:
        body = (line + "\n").encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                                ("X-Content-Type-Options", "nosniff")])
        return [body]
