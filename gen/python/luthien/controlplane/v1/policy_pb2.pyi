from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luthien.controlplane.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

CLIENT_FORMAT_ANTHROPIC_MESSAGES: ClientFormat
CLIENT_FORMAT_OPENAI_CHAT: ClientFormat
CLIENT_FORMAT_UNSPECIFIED: ClientFormat
DESCRIPTOR: _descriptor.FileDescriptor

class ActivePolicy(_message.Message):
    __slots__ = ["activated_at", "changed_by", "policy", "revision"]
    ACTIVATED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    activated_at: _timestamp_pb2.Timestamp
    changed_by: str
    policy: PolicyConfig
    revision: str
    def __init__(self, policy: _Optional[_Union[PolicyConfig, _Mapping]] = ..., revision: _Optional[str] = ..., activated_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., changed_by: _Optional[str] = ...) -> None: ...

class ApplyRequestPoliciesRequest(_message.Message):
    __slots__ = ["body", "call_id", "format", "metadata"]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    call_id: str
    format: ClientFormat
    metadata: RequestMetadata
    def __init__(self, call_id: _Optional[str] = ..., format: _Optional[_Union[ClientFormat, str]] = ..., body: _Optional[bytes] = ..., metadata: _Optional[_Union[RequestMetadata, _Mapping]] = ...) -> None: ...

class ApplyRequestPoliciesResponse(_message.Message):
    __slots__ = ["inspect_response", "policy_revision", "reject", "respond"]
    CONTINUE_FIELD_NUMBER: _ClassVar[int]
    INSPECT_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    RESPOND_FIELD_NUMBER: _ClassVar[int]
    inspect_response: bool
    policy_revision: str
    reject: Reject
    respond: Respond
    def __init__(self, respond: _Optional[_Union[Respond, _Mapping]] = ..., reject: _Optional[_Union[Reject, _Mapping]] = ..., policy_revision: _Optional[str] = ..., inspect_response: bool = ..., **kwargs) -> None: ...

class ApplyResponsePolicyRequest(_message.Message):
    __slots__ = ["call_id", "format", "metadata", "policy_revision", "request", "response"]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    format: ClientFormat
    metadata: RequestMetadata
    policy_revision: str
    request: bytes
    response: _events_pb2.Message
    def __init__(self, call_id: _Optional[str] = ..., format: _Optional[_Union[ClientFormat, str]] = ..., request: _Optional[bytes] = ..., metadata: _Optional[_Union[RequestMetadata, _Mapping]] = ..., policy_revision: _Optional[str] = ..., response: _Optional[_Union[_events_pb2.Message, _Mapping]] = ...) -> None: ...

class ApplyResponsePolicyResponse(_message.Message):
    __slots__ = ["response"]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _events_pb2.Message
    def __init__(self, response: _Optional[_Union[_events_pb2.Message, _Mapping]] = ...) -> None: ...

class Continue(_message.Message):
    __slots__ = ["body"]
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    def __init__(self, body: _Optional[bytes] = ...) -> None: ...

class DryRunEvent(_message.Message):
    __slots__ = ["payload_json", "type"]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    payload_json: str
    type: str
    def __init__(self, type: _Optional[str] = ..., payload_json: _Optional[str] = ...) -> None: ...

class DryRunPolicyRequest(_message.Message):
    __slots__ = ["format", "proposed", "request_json", "response_json"]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_JSON_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_JSON_FIELD_NUMBER: _ClassVar[int]
    format: ClientFormat
    proposed: PolicyConfig
    request_json: str
    response_json: str
    def __init__(self, proposed: _Optional[_Union[PolicyConfig, _Mapping]] = ..., format: _Optional[_Union[ClientFormat, str]] = ..., request_json: _Optional[str] = ..., response_json: _Optional[str] = ...) -> None: ...

class DryRunPolicyResponse(_message.Message):
    __slots__ = ["active", "proposed"]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_FIELD_NUMBER: _ClassVar[int]
    active: DryRunResult
    proposed: DryRunResult
    def __init__(self, active: _Optional[_Union[DryRunResult, _Mapping]] = ..., proposed: _Optional[_Union[DryRunResult, _Mapping]] = ...) -> None: ...

class DryRunResult(_message.Message):
    __slots__ = ["error", "events", "forward_request_json", "policy", "reject", "request_changed", "respond_json", "response_changed", "response_json", "revision"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    FORWARD_REQUEST_JSON_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CHANGED_FIELD_NUMBER: _ClassVar[int]
    RESPOND_JSON_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_JSON_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    error: str
    events: _containers.RepeatedCompositeFieldContainer[DryRunEvent]
    forward_request_json: str
    policy: PolicyConfig
    reject: Reject
    request_changed: bool
    respond_json: str
    response_changed: bool
    response_json: str
    revision: str
    def __init__(self, policy: _Optional[_Union[PolicyConfig, _Mapping]] = ..., revision: _Optional[str] = ..., forward_request_json: _Optional[str] = ..., respond_json: _Optional[str] = ..., reject: _Optional[_Union[Reject, _Mapping]] = ..., request_changed: bool = ..., response_json: _Optional[str] = ..., response_changed: bool = ..., events: _Optional[_Iterable[_Union[DryRunEvent, _Mapping]]] = ..., error: _Optional[str] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetPolicyResponse(_message.Message):
    __slots__ = ["active"]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    active: ActivePolicy
    def __init__(self, active: _Optional[_Union[ActivePolicy, _Mapping]] = ...) -> None: ...

class ListPolicyHistoryRequest(_message.Message):
    __slots__ = ["page_size"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    def __init__(self, page_size: _Optional[int] = ...) -> None: ...

class ListPolicyHistoryResponse(_message.Message):
    __slots__ = ["entries"]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ActivePolicy]
    def __init__(self, entries: _Optional[_Iterable[_Union[ActivePolicy, _Mapping]]] = ...) -> None: ...

class ListPolicyTypesRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListPolicyTypesResponse(_message.Message):
    __slots__ = ["types"]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedCompositeFieldContainer[PolicyType]
    def __init__(self, types: _Optional[_Iterable[_Union[PolicyType, _Mapping]]] = ...) -> None: ...

class PolicyConfig(_message.Message):
    __slots__ = ["config"]
    CLASS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _struct_pb2.Struct
    def __init__(self, config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., **kwargs) -> None: ...

class PolicyType(_message.Message):
    __slots__ = ["aliases", "config_schema_json", "description"]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CLASS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.RepeatedScalarFieldContainer[str]
    config_schema_json: str
    description: str
    def __init__(self, description: _Optional[str] = ..., config_schema_json: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., **kwargs) -> None: ...

class Reject(_message.Message):
    __slots__ = ["error_type", "http_status", "message"]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    error_type: str
    http_status: int
    message: str
    def __init__(self, http_status: _Optional[int] = ..., error_type: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RequestMetadata(_message.Message):
    __slots__ = ["credential_sha256", "headers", "model", "session_id", "stream", "user_id"]
    class HeadersEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CREDENTIAL_SHA256_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    credential_sha256: str
    headers: _containers.ScalarMap[str, str]
    model: str
    session_id: str
    stream: bool
    user_id: str
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., model: _Optional[str] = ..., stream: bool = ..., headers: _Optional[_Mapping[str, str]] = ..., credential_sha256: _Optional[str] = ...) -> None: ...

class Respond(_message.Message):
    __slots__ = ["message"]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _events_pb2.Message
    def __init__(self, message: _Optional[_Union[_events_pb2.Message, _Mapping]] = ...) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ["policy"]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: PolicyConfig
    def __init__(self, policy: _Optional[_Union[PolicyConfig, _Mapping]] = ...) -> None: ...

class SetPolicyResponse(_message.Message):
    __slots__ = ["active"]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    active: ActivePolicy
    def __init__(self, active: _Optional[_Union[ActivePolicy, _Mapping]] = ...) -> None: ...

class StreamChunkPolicyRequest(_message.Message):
    __slots__ = ["end", "event", "start"]
    END_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    end: StreamEnd
    event: _events_pb2.StreamEvent
    start: StreamStart
    def __init__(self, start: _Optional[_Union[StreamStart, _Mapping]] = ..., event: _Optional[_Union[_events_pb2.StreamEvent, _Mapping]] = ..., end: _Optional[_Union[StreamEnd, _Mapping]] = ...) -> None: ...

class StreamChunkPolicyResponse(_message.Message):
    __slots__ = ["end_stream", "outputs"]
    END_STREAM_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    end_stream: bool
    outputs: _containers.RepeatedCompositeFieldContainer[StreamOutput]
    def __init__(self, outputs: _Optional[_Iterable[_Union[StreamOutput, _Mapping]]] = ..., end_stream: bool = ...) -> None: ...

class StreamEnd(_message.Message):
    __slots__ = ["upstream_error"]
    UPSTREAM_ERROR_FIELD_NUMBER: _ClassVar[int]
    upstream_error: str
    def __init__(self, upstream_error: _Optional[str] = ...) -> None: ...

class StreamOutput(_message.Message):
    __slots__ = ["event", "passthrough_seq"]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PASSTHROUGH_SEQ_FIELD_NUMBER: _ClassVar[int]
    event: _events_pb2.StreamEvent
    passthrough_seq: int
    def __init__(self, passthrough_seq: _Optional[int] = ..., event: _Optional[_Union[_events_pb2.StreamEvent, _Mapping]] = ...) -> None: ...

class StreamStart(_message.Message):
    __slots__ = ["call_id", "format", "metadata", "policy_revision", "request"]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    format: ClientFormat
    metadata: RequestMetadata
    policy_revision: str
    request: bytes
    def __init__(self, call_id: _Optional[str] = ..., format: _Optional[_Union[ClientFormat, str]] = ..., request: _Optional[bytes] = ..., metadata: _Optional[_Union[RequestMetadata, _Mapping]] = ..., policy_revision: _Optional[str] = ...) -> None: ...

class ClientFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
