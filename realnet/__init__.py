"""The real TCP backend: non-blocking sockets driven by ``selectors`` on an event loop."""

from realnet.loop import EventLoop
from realnet.network import TcpNetwork
from realnet.transport import TcpLimits, TcpTransport

__all__ = ["EventLoop", "TcpLimits", "TcpNetwork", "TcpTransport"]
