"""The shmq exception hierarchy.

Every exception shmq raises is a shmq.Error. Attaching fails with the C++ shmq::error
codes (``errc``); data calls fail with the C++ statuses a call cannot return as a value
(``status``). The message is the one C++ what() gives.
"""

import enum


class Errc(enum.IntEnum):
    """shmq::errc: why a segment or endpoint could not be created or attached."""

    NOT_FOUND = 1
    ALREADY_EXISTS = 2
    PERMISSION_DENIED = 3
    INVALID_NAME = 4
    INVALID_ARGUMENT = 5
    NOT_SHMQ = 6
    VERSION_MISMATCH = 7
    ABI_MISMATCH = 8
    KIND_MISMATCH = 9
    OPTIONS_MISMATCH = 10
    TRUNCATED = 11
    CORRUPT = 12
    NOT_READY = 13
    ROLE_TAKEN = 14
    LIMIT_REACHED = 15
    SYSTEM_ERROR = 16
    ABANDONED = 17
    IO_FAILED = 18


class Status(enum.IntEnum):
    """shmq::status: the outcome of a data call."""

    OK = 0
    EMPTY = 1
    FULL = 2
    TIMED_OUT = 3
    CLOSED = 4
    PRODUCER_GONE = 5
    TOO_LARGE = 6
    BUSY = 7
    CORRUPT = 8
    IO_ERROR = 9


class Error(Exception):
    """Base of every shmq exception. ``errc`` or ``status`` says which (the other is None)."""

    errc = None
    status = None


# Attaching (shmq::error).
class NotFoundError(Error, FileNotFoundError): errc = Errc.NOT_FOUND
class AlreadyExistsError(Error, FileExistsError): errc = Errc.ALREADY_EXISTS
class PermissionDeniedError(Error, PermissionError): errc = Errc.PERMISSION_DENIED
class InvalidNameError(Error, ValueError): errc = Errc.INVALID_NAME
class InvalidArgumentError(Error, ValueError): errc = Errc.INVALID_ARGUMENT
class NotShmqError(Error): errc = Errc.NOT_SHMQ
class VersionMismatchError(Error): errc = Errc.VERSION_MISMATCH
class AbiMismatchError(Error): errc = Errc.ABI_MISMATCH
class KindMismatchError(Error): errc = Errc.KIND_MISMATCH
class OptionsMismatchError(Error): errc = Errc.OPTIONS_MISMATCH
class TruncatedError(Error): errc = Errc.TRUNCATED
class NotReadyError(Error): errc = Errc.NOT_READY
class RoleTakenError(Error): errc = Errc.ROLE_TAKEN
class LimitReachedError(Error): errc = Errc.LIMIT_REACHED
class SystemCallError(Error, OSError): errc = Errc.SYSTEM_ERROR
class AbandonedError(Error): errc = Errc.ABANDONED


class CorruptError(Error):
    """The segment holds something impossible (at attach: errc; later: status)."""


class _AttachCorruptError(CorruptError): errc = Errc.CORRUPT
class _StatusCorruptError(CorruptError): status = Status.CORRUPT


class StorageError(Error, OSError):
    """A file channel's flush to stable storage failed: nothing since the last good flush
    is known to be durable, for good (at attach: errc IO_FAILED; later: status IO_ERROR)."""


class _AttachStorageError(StorageError): errc = Errc.IO_FAILED
class _StatusStorageError(StorageError): status = Status.IO_ERROR


# Data calls (shmq::status).
class TimedOutError(Error, TimeoutError): status = Status.TIMED_OUT
class ClosedError(Error, EOFError): status = Status.CLOSED
class ProducerGoneError(Error): status = Status.PRODUCER_GONE
class TooLargeError(Error, ValueError): status = Status.TOO_LARGE
class BusyError(Error): status = Status.BUSY


BY_ERRC = {c.errc: c for c in Error.__subclasses__() if c.errc is not None}
BY_ERRC[Errc.CORRUPT] = _AttachCorruptError
BY_ERRC[Errc.IO_FAILED] = _AttachStorageError
BY_STATUS = {c.status: c for c in Error.__subclasses__() if c.status is not None}
BY_STATUS[Status.CORRUPT] = _StatusCorruptError
BY_STATUS[Status.IO_ERROR] = _StatusStorageError
for _c in (*BY_ERRC.values(), *BY_STATUS.values()):
    _c.__module__ = "shmq"
Error.__module__ = CorruptError.__module__ = StorageError.__module__ = "shmq"
