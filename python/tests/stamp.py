"""Test messages that prove their own integrity: an 8-byte sequence number, an 8-byte
checksum (blake2b of the sequence number and the payload), a payload made from the
sequence number. Loss, duplication, reordering and torn reads all show up."""

import hashlib
import struct


def make(seq, size=64):
    payload = (seq.to_bytes(8, "little") * (size // 8 + 1))[: size - 16]
    digest = hashlib.blake2b(seq.to_bytes(8, "little") + payload, digest_size=8).digest()
    return struct.pack("<Q", seq) + digest + payload


def check(buf):
    b = bytes(buf)
    seq = struct.unpack_from("<Q", b)[0]
    payload = b[16:]
    if hashlib.blake2b(b[:8] + payload, digest_size=8).digest() != b[8:16]:
        raise AssertionError(f"bad checksum at seq {seq}")
    return seq
