#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz (see peer_message_fuzzer.cc for the
script format). Protobuf is encoded by hand: no protobuf module needed."""
import json
import os

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, value):
    if isinstance(value, bool) or isinstance(value, int):
        return varint(num << 3) + varint(int(value))
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def msg(*fields):
    return b"".join(field(n, v) for n, v in fields)


def op(case, peer=0):
    for o in range(256):
        if o % 6 == case and (o // 8) % 3 == peer:
            return o
    raise ValueError


def step(case, payload=b"", peer=0):
    if isinstance(payload, str):
        payload = payload.encode()
    assert len(payload) < 256
    return bytes([op(case, peer), len(payload)]) + payload


SEND, KEEPALIVE, COMMAND, CLOSE, CONNECT, ADVANCE = range(6)

hash_response = msg((1, "r1"), (3, msg((1, "c1"), (2, msg((1, "sha256"), (2, "ab"))), (3, True))))
delete_response = msg((1, "r2"), (2, msg((1, "c2"), (2, False), (3, 1))))
catalog = msg((1, "r3"), (4, msg((1, "c1"), (1, "c2"))))
offer = msg((1, "r4"), (5, msg((1, msg((1, "movies/a.mkv"), (2, 123456))))))
sdp_offer = msg((1, "r5"), (6, msg((1, "w1"), (3, msg((1, "s1"), (2, "v=0"))))))
ice = msg((1, "r6"), (6, msg((1, "w2"), (4, msg((1, "s1"), (2, "candidate:1"), (3, "0"), (4, 0))))))
session_response = msg((1, "r7"), (6, msg((1, "w3"), (2, msg((1, "c1"), (2, "s1"), (3, True))))))


def command(**fields):
    return json.dumps(fields, separators=(",", ":"))


peer_seeds = {
    "messages": [step(KEEPALIVE, "k1"), step(SEND, hash_response), step(SEND, delete_response),
                 step(SEND, catalog), step(SEND, offer, peer=1), step(CLOSE)],
    "commands": [step(KEEPALIVE, "", peer=0),
                 step(COMMAND, command(type="file_hash", peer_id="peer-0", catalog_id="c1",
                                       hash_types=["sha256"])),
                 step(COMMAND, command(type="file_delete", peer_id="peer-0", catalog_ids=["c1"])),
                 step(COMMAND, command(type="file_remap", peer_id="peer-0", old_catalog_id="a",
                                       new_catalog_id="b")),
                 step(COMMAND, command(type="screenshot", peer_id="peer-0", catalog_id="c1",
                                       quantity=2, upload_token="t", upload_endpoint="http://u")),
                 step(COMMAND, command(type="file_hash", peer_id="peer-2", catalog_id="c1")),
                 step(COMMAND, "{not json"),
                 step(COMMAND, command(type="disconnect", peer_id="peer-0", reason="bye"))],
    "webrtc": [step(SEND, sdp_offer), step(SEND, ice), step(SEND, session_response),
               step(COMMAND, command(type="webrtc", peer_id="peer-0",
                                     webrtc={"requestId": "w9",
                                             "sdpAnswer": {"sessionId": "s1", "sdp": "v=0"}})),
               step(COMMAND, command(type="webrtc_reply", peer_id="peer-0", request_id="w1",
                                     webrtc={"streamSessionResponse": {"sessionId": "s1",
                                                                       "success": True}}))],
    "admission": [step(CONNECT, "peer-0"), step(CONNECT, "bad id"), step(CONNECT, ""),
                  step(CONNECT, "x" * 129), step(KEEPALIVE, "k", peer=1),
                  step(CONNECT, "peer-1"), step(ADVANCE, bytes([200])), step(KEEPALIVE, "late", peer=1)],
    "offers": [step(SEND, offer),
               step(COMMAND, command(type="batch_file_offer_response", peer_id="peer-0",
                                     request_id="r4",
                                     files=[{"relative_path": "movies/a.mkv", "catalog_id": "c9"}])),
               step(COMMAND, command(type="catalog_announcement", peer_id="peer-0")),
               step(SEND, catalog), step(ADVANCE, bytes([30])), step(CLOSE)],
}

command_seeds = {
    "file_hash": command(type="file_hash", peer_id="peer-1", request_id="r1", catalog_id="c1",
                         hash_types=["sha256", "md5"]),
    "file_delete": command(type="file_delete", peer_id="peer-1", catalog_ids=["a", "b"]),
    "file_remap": command(type="file_remap", peer_id="peer-1", old_catalog_id="a",
                          new_catalog_id="b"),
    "screenshot": command(type="screenshot", peer_id="peer-1", catalog_id="c", quantity=3,
                          upload_token="tok", upload_endpoint="https://upload"),
    "catalog": command(type="catalog_announcement", peer_id="peer-1"),
    "offer_response": command(type="batch_file_offer_response", peer_id="peer-1",
                              request_id="r2",
                              files=[{"relative_path": "a.mkv", "catalog_id": "c1"}]),
    "webrtc": command(type="webrtc", peer_id="peer-1",
                      webrtc={"requestId": "w", "streamSessionRequest":
                              {"catalogId": "c", "sessionId": "s", "maxBitrateKbps": 800}}),
    "webrtc_reply": command(type="webrtc_reply", peer_id="peer-1", request_id="w",
                            webrtc={"sdpOffer": {"sessionId": "s", "sdp": "v=0"}}),
    "disconnect": command(type="disconnect", peer_id="peer-1", reason="maintenance"),
    "unknown_fields": command(type="file_delete", peer_id="p", catalog_ids=[], extra={"a": [1]}),
    "wrong_type": command(type="file_delete", peer_id="p", catalog_ids=7),
    "unknown_type": command(type="reboot", peer_id="p"),
    "not_object": "[1,2,3]",
    "not_json": "{\"type\":",
    "repeated_name": '{"type":"file_hash","peer_id":"p","catalog_id":"a","catalog_id":"b"}',
    "numbers": '{"type":"screenshot","peer_id":"p","catalog_id":"c","quantity":2.0e0,'
               '"extra":[123456789012345678901234567890,-9223372036854775809,1e-400]}',
    "escapes": '{"type":"disconnect","peer_id":"p","reason":"\\ud83d\\ude00\\u0000\\"\\/"}',
}

for name, steps in peer_seeds.items():
    with open(os.path.join(HERE, "peer_message", name), "wb") as f:
        f.write(b"".join(steps))
for name, value in command_seeds.items():
    with open(os.path.join(HERE, "command_decoder", name + ".json"), "w") as f:
        f.write(value)
