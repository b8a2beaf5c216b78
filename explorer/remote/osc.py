"""The OSC server: off unless asked for (`--osc PORT`), on 127.0.0.1 unless another address is named.

    handle = explorer.remote.live.start_osc_server(controller, 9000)        # /explorer/truncation/psi 0.7 and every other address
    ...
    handle.close()

One thread receives the datagrams in order (a knob's stream of values arrives as sent) and hands each message to
the controller's Remote (explorer.remote.live), which posts the change to the controller's thread. A packet that is
not OSC, an unknown address or a value the state refuses gets one error log line and changes nothing.
"""
from __future__ import annotations

import logging
import threading

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_packet import OscPacket, ParseError
from pythonosc.osc_server import BlockingOSCUDPServer


log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"        # the loopback: a remote control on another machine must be asked for by address
SHUTDOWN_POLL_S = 0.05            # how long close() may wait for the receiving thread to notice


class OscError(Exception):
    """The server cannot start (port taken, address not on this machine); one line."""


class _Dispatcher(Dispatcher):
    """Every message goes to the Remote, whatever its address; a packet that does not parse is logged."""

    def __init__(self, on_message):
        super().__init__()
        self.on_message = on_message

    def call_handlers_for_packet(self, data: bytes, client_address) -> list:
        try:
            packet = OscPacket(data)
        except ParseError as error:
            log.error("OSC packet from %s:%s refused: %s", *client_address[:2], error)
            return []
        for timed in packet.messages:
            self.on_message(timed.message.address, timed.message.params)
        return []


class OscServer:
    """A running server; `port` is the port it got (ask for 0 to get a free one), `close()` stops it."""

    def __init__(self, remote, port: int, host: str = DEFAULT_HOST):
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise OscError(f"OSC port must be a whole number from 0 to 65535, not {port!r}")
        self.remote = remote
        try:
            self.server = BlockingOSCUDPServer((host, port), _Dispatcher(remote.dispatch))
        except OSError as error:
            raise OscError(f"OSC: cannot listen on {host}:{port}: {error.strerror or error}")
        self.host, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs=dict(poll_interval=SHUTDOWN_POLL_S),
                                       name=f"osc:{self.port}", daemon=True)
        self.thread.start()
        log.info("OSC server listening on %s:%d", self.host, self.port)

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join()
        self.server.server_close()

    def __enter__(self) -> OscServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
