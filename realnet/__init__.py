"""The real TCP backend: non-blocking sockets driven by ``selectors`` on an event loop."""

from peerlab.realnet.loop import EventLoop
from peerlab.realnet.network import TcpNetwork
from peerlab.realnet.transport import TcpLimits, TcpTransport

__all__ = ["EventLoop", "TcpLimits", "TcpNetwork", "TcpTransport"]
