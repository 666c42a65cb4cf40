from luthien.controlplane.v1 import events_pb2 as _events_pb2
from luthien.controlplane.v1 import history_pb2 as _history_pb2
from luthien.controlplane.v1 import policy_pb2 as _policy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
INSPECT_NONE: Inspect
INSPECT_RESPONSE: Inspect
INSPECT_STREAM: Inspect
INSPECT_UNSPECIFIED: Inspect

class CallDecision(_message.Message):
    __slots__ = ["cached", "inspect", "reject", "respond", "wants_response"]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    CONTINUE_FIELD_NUMBER: _ClassVar[int]
    INSPECT_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    RESPOND_FIELD_NUMBER: _ClassVar[int]
    WANTS_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    cached: bool
    inspect: Inspect
    reject: _policy_pb2.Reject
    respond: _policy_pb2.Respond
    wants_response: bool
    def __init__(self, respond: _Optional[_Union[_policy_pb2.Respond, _Mapping]] = ..., reject: _Optional[_Union[_policy_pb2.Reject, _Mapping]] = ..., inspect: _Optional[_Union[Inspect, str]] = ..., wants_response: bool = ..., cached: bool = ..., **kwargs) -> None: ...

class CallDone(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class CallEnd(_message.Message):
    __slots__ = ["http_status", "record", "response", "upstream_error"]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_ERROR_FIELD_NUMBER: _ClassVar[int]
    http_status: int
    record: _history_pb2.CallRecord
    response: _events_pb2.Message
    upstream_error: str
    def __init__(self, http_status: _Optional[int] = ..., upstream_error: _Optional[str] = ..., response: _Optional[_Union[_events_pb2.Message, _Mapping]] = ..., record: _Optional[_Union[_history_pb2.CallRecord, _Mapping]] = ...) -> None: ...

class CallEvents(_message.Message):
    __slots__ = ["events"]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_events_pb2.StreamEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_events_pb2.StreamEvent, _Mapping]]] = ...) -> None: ...

class CallFailure(_message.Message):
    __slots__ = ["message"]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class CallRequest(_message.Message):
    __slots__ = ["end", "events", "response", "start", "stream_end"]
    END_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    STREAM_END_FIELD_NUMBER: _ClassVar[int]
    end: CallEnd
    events: CallEvents
    response: _events_pb2.Message
    start: CallStart
    stream_end: _policy_pb2.StreamEnd
    def __init__(self, start: _Optional[_Union[CallStart, _Mapping]] = ..., response: _Optional[_Union[_events_pb2.Message, _Mapping]] = ..., events: _Optional[_Union[CallEvents, _Mapping]] = ..., end: _Optional[_Union[CallEnd, _Mapping]] = ..., stream_end: _Optional[_Union[_policy_pb2.StreamEnd, _Mapping]] = ...) -> None: ...

class CallResponse(_message.Message):
    __slots__ = ["decision", "done", "failure", "outputs", "response"]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    decision: CallDecision
    done: CallDone
    failure: CallFailure
    outputs: _policy_pb2.StreamChunkPolicyResponse
    response: _policy_pb2.ApplyResponsePolicyResponse
    def __init__(self, decision: _Optional[_Union[CallDecision, _Mapping]] = ..., response: _Optional[_Union[_policy_pb2.ApplyResponsePolicyResponse, _Mapping]] = ..., outputs: _Optional[_Union[_policy_pb2.StreamChunkPolicyResponse, _Mapping]] = ..., done: _Optional[_Union[CallDone, _Mapping]] = ..., failure: _Optional[_Union[CallFailure, _Mapping]] = ...) -> None: ...

class CallStart(_message.Message):
    __slots__ = ["body", "call_id", "format", "metadata", "stream"]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    call_id: str
    format: _policy_pb2.ClientFormat
    metadata: _policy_pb2.RequestMetadata
    stream: bool
    def __init__(self, call_id: _Optional[str] = ..., format: _Optional[_Union[_policy_pb2.ClientFormat, str]] = ..., body: _Optional[bytes] = ..., metadata: _Optional[_Union[_policy_pb2.RequestMetadata, _Mapping]] = ..., stream: bool = ...) -> None: ...

class WatchProcessingRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class WatchProcessingResponse(_message.Message):
    __slots__ = ["cache", "policy_revision", "request", "response"]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    cache: bool
    policy_revision: str
    request: bool
    response: bool
    def __init__(self, policy_revision: _Optional[str] = ..., request: bool = ..., response: bool = ..., cache: bool = ...) -> None: ...

class Inspect(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
