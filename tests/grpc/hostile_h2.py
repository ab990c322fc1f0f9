#!/usr/bin/python3
"""A hostile HTTP/2 client for the transport's regression tests.

Speaks raw HTTP/2 (Debian's python3-h2) to a PeerEdgeService on 127.0.0.1
and prints one JSON object with what it observed, for the calling test to
check. Every wait has a deadline; the script never hangs.

  hostile_h2.py PORT rapid-reset COUNT [distinct]
                                         HEADERS+RST_STREAM pairs until COUNT
                                         or the edge closes the connection
                                         (distinct: a new peer_id each)
  hostile_h2.py PORT metadata BYTES      one AsyncOperations call with BYTES
                                         of extra metadata: its outcome
  hostile_h2.py PORT call PATH           one call with an empty body: its
                                         grpc-status
  hostile_h2.py PORT garbage HEX         one AsyncOperations call sending the
                                         message bytes HEX: its outcome
  hostile_h2.py PORT idle SECONDS        an HTTP/2 connection that opens no
                                         stream: is it closed, and when
  hostile_h2.py PORT silent SECONDS      a TCP connection that sends nothing
"""

import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

SERVICE = "/giggityflix_grpc_peer.PeerEdgeService/AsyncOperations"


def headers(path, extra=(), peer_id="hostile-peer"):
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("peer_id", peer_id),
    ] + list(extra)


class Client:
    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        # Let the server send whatever it wants: nothing here is held back by
        # this client's flow control.
        self.conn.update_settings({h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 24})
        self.closed = False
        self.goaway = None
        self.send_timeouts = 0
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.settimeout(10)
                self.sock.sendall(data)
            except socket.timeout:
                # The server stopped reading: not a close, and not the
                # outcome the tests look for.
                self.send_timeouts += 1
            except OSError:
                self.closed = True

    def pump(self, deadline):
        """Reads and handles what arrives until `deadline`; returns events."""
        events = []
        while not self.closed and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            try:
                got = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                self.closed = True
                break
            for event in got:
                if isinstance(event, h2.events.ConnectionTerminated):
                    self.goaway = event.error_code
                events.append(event)
            self.flush()
            if events:
                break
        return events


def rapid_reset(port, count, distinct=False):
    client = Client(port, 10)
    sent = 0
    stream_id = 1
    start = time.monotonic()
    while sent < count and not client.closed and time.monotonic() - start < 30:
        try:
            peer_id = "hostile-%d" % stream_id if distinct else "hostile-peer"
            client.conn.send_headers(stream_id, headers(SERVICE, peer_id=peer_id))
            client.conn.reset_stream(stream_id)
        except h2.exceptions.ProtocolError:
            client.closed = True
            break
        stream_id += 2
        sent += 1
        if sent % 50 == 0:
            client.flush()
            client.pump(time.monotonic() + 0.001)
    client.flush()
    # Whatever the server does about it, it does within a few seconds.
    deadline = time.monotonic() + 10
    while not client.closed and time.monotonic() < deadline:
        client.pump(deadline)
    return {"sent": sent, "closed": client.closed, "send_timeouts": client.send_timeouts,
            "goaway": None if client.goaway is None else int(client.goaway)}


def call(port, path, extra=(), message=None):
    client = Client(port, 10)
    try:
        client.conn.send_headers(1, headers(path, extra), end_stream=message is None)
        if message is not None:
            # gRPC framing: uncompressed, 4-byte big-endian length.
            frame = b"\x00" + len(message).to_bytes(4, "big") + message
            client.conn.send_data(1, frame, end_stream=False)
    except h2.exceptions.ProtocolError as error:
        return {"error": str(error)}
    client.flush()
    result = {"grpc_status": None, "reset": None, "closed": False, "goaway": None,
              "grpc_message": None}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not client.closed:
        for event in client.pump(deadline):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                for name, value in event.headers:
                    if name == "grpc-status":
                        result["grpc_status"] = int(value)
                    if name == "grpc-message":
                        result["grpc_message"] = value
            elif isinstance(event, h2.events.StreamReset):
                result["reset"] = int(event.error_code)
            if isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset,
                                  h2.events.ConnectionTerminated)):
                deadline = 0
    result["closed"] = client.closed
    result["goaway"] = None if client.goaway is None else int(client.goaway)
    return result


def metadata(port, size):
    chunk = 8 * 1024
    extra = [("x-big-%d" % i, "a" * chunk) for i in range(size // chunk)]
    return call(port, SERVICE, extra)


def idle(port, seconds):
    client = Client(port, 10)
    start = time.monotonic()
    deadline = start + seconds
    while not client.closed and time.monotonic() < deadline:
        client.pump(deadline)
    return {"closed": client.closed, "after_seconds": round(time.monotonic() - start, 3),
            "goaway": None if client.goaway is None else int(client.goaway)}


def silent(port, seconds):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < seconds:
        sock.settimeout(max(0.01, seconds - (time.monotonic() - start)))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not data:
            closed = True
            break
    return {"closed": closed, "after_seconds": round(time.monotonic() - start, 3)}


def main():
    port, mode, arg = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if mode == "rapid-reset":
        result = rapid_reset(port, int(arg), len(sys.argv) > 4 and sys.argv[4] == "distinct")
    elif mode == "metadata":
        result = metadata(port, int(arg))
    elif mode == "garbage":
        result = call(port, SERVICE, (), bytes.fromhex(arg))
    elif mode == "call":
        result = call(port, arg)
    elif mode == "idle":
        result = idle(port, float(arg))
    elif mode == "silent":
        result = silent(port, float(arg))
    else:
        raise SystemExit("unknown mode " + mode)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
