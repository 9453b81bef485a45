"""kafka.errors: kafka-python's exception classes, with the same names, bases and codes."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidConfigError


class KafkaError(RuntimeError):
    retriable = False
    invalid_metadata = False  # whether metadata should be refreshed on error

    def __str__(self) -> str:
        if not self.args:
            return self.__class__.__name__
        return f"{self.__class__.__name__}: {super().__str__()}"

    def __eq__(self, other: object) -> bool:
        return self.__class__ == other.__class__ and self.args == getattr(other, "args", None)

    __hash__ = RuntimeError.__hash__


class RetriableError(KafkaError):
    retriable = True


class InvalidMetadataError(RetriableError):
    invalid_metadata = True


class IllegalStateError(KafkaError):
    pass


class IllegalArgumentError(KafkaError):
    pass


class NoBrokersAvailable(KafkaError):
    retriable = True
    invalid_metadata = True


class NodeNotReadyError(RetriableError):
    pass


class KafkaProtocolError(KafkaError):
    retriable = True


class Cancelled(RetriableError):
    pass


class TooManyInFlightRequests(RetriableError):
    pass


class StaleMetadata(InvalidMetadataError):
    pass


class MetadataEmptyBrokerList(RetriableError):
    pass


class UnrecognizedBrokerVersion(KafkaError):
    pass


class IncompatibleBrokerVersion(KafkaError):
    pass


class CommitFailedError(KafkaError):
    def __init__(self, *args: Any) -> None:
        if not args:
            args = ("Commit cannot be completed since the group has already"
                    " rebalanced and assigned the partitions to another member.",)
        super().__init__(*args)


class KafkaConfigurationError(KafkaError):
    pass


class KafkaTimeoutError(RetriableError):
    pass


class KafkaConnectionError(InvalidMetadataError):
    pass


class UnsupportedCodecError(KafkaError):
    pass


class NoOffsetForPartitionError(KafkaError):
    pass


class ConfigError(KafkaConfigurationError, InvalidConfigError):
    """A config the in-process clients refuse: kafka-python's KafkaConfigurationError and
    eventlog's InvalidConfigError. Nothing was created."""

    def __str__(self) -> str:
        return f"KafkaConfigurationError: {Exception.__str__(self)}"


class BrokerResponseError(KafkaError):
    errno: int | None = None
    message: str | None = None
    description: str | None = None

    def __str__(self) -> str:
        return f"[Error {self.errno}] {super().__str__()}"


# (errno, class name, message, bases)
_BROKER_ERRORS: tuple[tuple[int, str, str, tuple[type, ...]], ...] = (
    (-1, "UnknownError", "UNKNOWN", ()),
    (0, "NoError", "NO_ERROR", ()),
    (1, "OffsetOutOfRangeError", "OFFSET_OUT_OF_RANGE", ()),
    (2, "CorruptRecordError", "CORRUPT_MESSAGE", (RetriableError,)),
    (3, "UnknownTopicOrPartitionError", "UNKNOWN_TOPIC_OR_PARTITION", (InvalidMetadataError,)),
    (4, "InvalidFetchRequestError", "INVALID_FETCH_SIZE", ()),
    (5, "LeaderNotAvailableError", "LEADER_NOT_AVAILABLE", (InvalidMetadataError,)),
    (6, "NotLeaderForPartitionError", "NOT_LEADER_FOR_PARTITION", (InvalidMetadataError,)),
    (7, "RequestTimedOutError", "REQUEST_TIMED_OUT", (RetriableError,)),
    (8, "BrokerNotAvailableError", "BROKER_NOT_AVAILABLE", ()),
    (9, "ReplicaNotAvailableError", "REPLICA_NOT_AVAILABLE", (InvalidMetadataError,)),
    (10, "MessageSizeTooLargeError", "MESSAGE_SIZE_TOO_LARGE", ()),
    (12, "OffsetMetadataTooLargeError", "OFFSET_METADATA_TOO_LARGE", ()),
    (15, "CoordinatorNotAvailableError", "COORDINATOR_NOT_AVAILABLE", (RetriableError,)),
    (16, "NotCoordinatorError", "NOT_COORDINATOR", (RetriableError,)),
    (17, "InvalidTopicError", "INVALID_TOPIC", ()),
    (18, "RecordListTooLargeError", "RECORD_LIST_TOO_LARGE", ()),
    (22, "IllegalGenerationError", "ILLEGAL_GENERATION", ()),
    (24, "InvalidGroupIdError", "INVALID_GROUP_ID", ()),
    (25, "UnknownMemberIdError", "UNKNOWN_MEMBER_ID", ()),
    (26, "InvalidSessionTimeoutError", "INVALID_SESSION_TIMEOUT", ()),
    (27, "RebalanceInProgressError", "REBALANCE_IN_PROGRESS", ()),
    (32, "InvalidTimestampError", "INVALID_TIMESTAMP", ()),
    (35, "UnsupportedVersionError", "UNSUPPORTED_VERSION", ()),
    (36, "TopicAlreadyExistsError", "TOPIC_ALREADY_EXISTS", ()),
    (37, "InvalidPartitionsError", "INVALID_PARTITIONS", ()),
    (38, "InvalidReplicationFactorError", "INVALID_REPLICATION_FACTOR", ()),
    (39, "InvalidReplicationAssignmentError", "INVALID_REPLICA_ASSIGNMENT", ()),
    (40, "InvalidConfigurationError", "INVALID_CONFIG", ()),
    (42, "InvalidRequestError", "INVALID_REQUEST", ()),
    (45, "OutOfOrderSequenceNumberError", "OUT_OF_ORDER_SEQUENCE_NUMBER", ()),
    (47, "InvalidProducerEpochError", "INVALID_PRODUCER_EPOCH", ()),
    (56, "KafkaStorageError", "KAFKA_STORAGE_ERROR", (InvalidMetadataError,)),
    (68, "NonEmptyGroupError", "NON_EMPTY_GROUP", ()),
    (69, "GroupIdNotFoundError", "GROUP_ID_NOT_FOUND", ()),
    (82, "FencedInstanceIdError", "FENCED_INSTANCE_ID", ()),
)

kafka_errors: dict[int, type[BrokerResponseError]] = {}
for _errno, _name, _message, _bases in _BROKER_ERRORS:
    _cls = type(_name, (*_bases, BrokerResponseError),
                {"errno": _errno, "message": _message, "description": _message,
                 "__module__": __name__})
    globals()[_name] = _cls
    kafka_errors[_errno] = _cls


def for_code(error_code: int) -> type[BrokerResponseError]:
    """The BrokerResponseError class of a Kafka error code."""
    if error_code in kafka_errors:
        return kafka_errors[error_code]
    unknown = kafka_errors[-1]
    return type("UnrecognizedBrokerError", (unknown,), {"errno": error_code})

