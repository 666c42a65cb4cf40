from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from luthien.controlplane.v1 import events_pb2 as _events_pb2
from luthien.controlplane.v1 import policy_pb2 as _policy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallEvent(_message.Message):
    __slots__ = ["call_id", "event_type", "payload", "payload_json", "session_id", "time"]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    event_type: str
    payload: _struct_pb2.Struct
    payload_json: bytes
    session_id: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, call_id: _Optional[str] = ..., session_id: _Optional[str] = ..., event_type: _Optional[str] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., payload_json: _Optional[bytes] = ...) -> None: ...

class CallRecord(_message.Message):
    __slots__ = ["events", "final_response", "request_unchanged", "response_unchanged", "summary"]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    FINAL_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[CallEvent]
    final_response: _events_pb2.Message
    request_unchanged: bool
    response_unchanged: bool
    summary: CallSummary
    def __init__(self, summary: _Optional[_Union[CallSummary, _Mapping]] = ..., events: _Optional[_Iterable[_Union[CallEvent, _Mapping]]] = ..., final_response: _Optional[_Union[_events_pb2.Message, _Mapping]] = ..., request_unchanged: bool = ..., response_unchanged: bool = ...) -> None: ...

class CallSummary(_message.Message):
    __slots__ = ["call_id", "duration_ms", "error", "finished_at", "format", "intervened", "model", "policy_revision", "session_id", "started_at", "status", "stream", "ttft_ms", "upstream", "usage", "user_id"]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    INTERVENED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    duration_ms: float
    error: str
    finished_at: _timestamp_pb2.Timestamp
    format: _policy_pb2.ClientFormat
    intervened: bool
    model: str
    policy_revision: str
    session_id: str
    started_at: _timestamp_pb2.Timestamp
    status: int
    stream: bool
    ttft_ms: float
    upstream: str
    usage: _events_pb2.Usage
    user_id: str
    def __init__(self, call_id: _Optional[str] = ..., session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., model: _Optional[str] = ..., format: _Optional[_Union[_policy_pb2.ClientFormat, str]] = ..., upstream: _Optional[str] = ..., status: _Optional[int] = ..., stream: bool = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ttft_ms: _Optional[float] = ..., duration_ms: _Optional[float] = ..., usage: _Optional[_Union[_events_pb2.Usage, _Mapping]] = ..., intervened: bool = ..., policy_revision: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class GetCallDiffRequest(_message.Message):
    __slots__ = ["call_id"]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    def __init__(self, call_id: _Optional[str] = ...) -> None: ...

class GetCallDiffResponse(_message.Message):
    __slots__ = ["call_id", "request", "response"]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    request: JSONDiff
    response: JSONDiff
    def __init__(self, call_id: _Optional[str] = ..., request: _Optional[_Union[JSONDiff, _Mapping]] = ..., response: _Optional[_Union[JSONDiff, _Mapping]] = ...) -> None: ...

class GetCallRequest(_message.Message):
    __slots__ = ["call_id"]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    def __init__(self, call_id: _Optional[str] = ...) -> None: ...

class GetCallResponse(_message.Message):
    __slots__ = ["call", "events"]
    CALL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    call: CallSummary
    events: _containers.RepeatedCompositeFieldContainer[CallEvent]
    def __init__(self, call: _Optional[_Union[CallSummary, _Mapping]] = ..., events: _Optional[_Iterable[_Union[CallEvent, _Mapping]]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ["session_id"]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetSessionResponse(_message.Message):
    __slots__ = ["session", "turns"]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    session: SessionSummary
    turns: _containers.RepeatedCompositeFieldContainer[SessionTurn]
    def __init__(self, session: _Optional[_Union[SessionSummary, _Mapping]] = ..., turns: _Optional[_Iterable[_Union[SessionTurn, _Mapping]]] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ["activity_dropped", "cache_hits", "cache_misses", "events_dropped", "events_written", "queue_depth", "store", "write_errors"]
    ACTIVITY_DROPPED_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    EVENTS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    WRITE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    activity_dropped: int
    cache_hits: int
    cache_misses: int
    events_dropped: int
    events_written: int
    queue_depth: int
    store: str
    write_errors: int
    def __init__(self, events_written: _Optional[int] = ..., events_dropped: _Optional[int] = ..., queue_depth: _Optional[int] = ..., write_errors: _Optional[int] = ..., cache_hits: _Optional[int] = ..., cache_misses: _Optional[int] = ..., activity_dropped: _Optional[int] = ..., store: _Optional[str] = ...) -> None: ...

class JSONChange(_message.Message):
    __slots__ = ["after", "before", "op", "path"]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    after: _struct_pb2.Value
    before: _struct_pb2.Value
    op: str
    path: str
    def __init__(self, path: _Optional[str] = ..., op: _Optional[str] = ..., before: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., after: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class JSONDiff(_message.Message):
    __slots__ = ["changed", "changes", "final", "original"]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    changes: _containers.RepeatedCompositeFieldContainer[JSONChange]
    final: _struct_pb2.Struct
    original: _struct_pb2.Struct
    def __init__(self, original: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., final: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., changed: bool = ..., changes: _Optional[_Iterable[_Union[JSONChange, _Mapping]]] = ...) -> None: ...

class ListCallsRequest(_message.Message):
    __slots__ = ["intervened_only", "model", "page_size", "page_token", "session_id", "since", "status", "until"]
    INTERVENED_ONLY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    intervened_only: bool
    model: str
    page_size: int
    page_token: str
    session_id: str
    since: _timestamp_pb2.Timestamp
    status: int
    until: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., model: _Optional[str] = ..., status: _Optional[int] = ..., intervened_only: bool = ..., since: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCallsResponse(_message.Message):
    __slots__ = ["calls", "next_page_token"]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[CallSummary]
    next_page_token: str
    def __init__(self, calls: _Optional[_Iterable[_Union[CallSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ["page_size", "page_token"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ["next_page_token", "sessions"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    sessions: _containers.RepeatedCompositeFieldContainer[SessionSummary]
    def __init__(self, sessions: _Optional[_Iterable[_Union[SessionSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SearchCallsRequest(_message.Message):
    __slots__ = ["page_size", "query"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    query: str
    def __init__(self, query: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class SearchCallsResponse(_message.Message):
    __slots__ = ["hits"]
    HITS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[SearchHit]
    def __init__(self, hits: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ["call", "snippet"]
    CALL_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    call: CallSummary
    snippet: str
    def __init__(self, call: _Optional[_Union[CallSummary, _Mapping]] = ..., snippet: _Optional[str] = ...) -> None: ...

class SessionSummary(_message.Message):
    __slots__ = ["first_activity", "interventions", "last_activity", "models", "preview", "session_id", "turns"]
    FIRST_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    INTERVENTIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    first_activity: _timestamp_pb2.Timestamp
    interventions: int
    last_activity: _timestamp_pb2.Timestamp
    models: _containers.RepeatedScalarFieldContainer[str]
    preview: str
    session_id: str
    turns: int
    def __init__(self, session_id: _Optional[str] = ..., turns: _Optional[int] = ..., interventions: _Optional[int] = ..., models: _Optional[_Iterable[str]] = ..., first_activity: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_activity: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., preview: _Optional[str] = ...) -> None: ...

class SessionTurn(_message.Message):
    __slots__ = ["call", "policy_events", "request", "response"]
    CALL_FIELD_NUMBER: _ClassVar[int]
    POLICY_EVENTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    call: CallSummary
    policy_events: _containers.RepeatedCompositeFieldContainer[CallEvent]
    request: _struct_pb2.Struct
    response: _struct_pb2.Struct
    def __init__(self, call: _Optional[_Union[CallSummary, _Mapping]] = ..., request: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., response: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., policy_events: _Optional[_Iterable[_Union[CallEvent, _Mapping]]] = ...) -> None: ...

class StreamActivityRequest(_message.Message):
    __slots__ = ["call_id", "event_type_prefixes", "payload_as_json", "session_id"]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_AS_JSON_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    event_type_prefixes: _containers.RepeatedScalarFieldContainer[str]
    payload_as_json: bool
    session_id: str
    def __init__(self, call_id: _Optional[str] = ..., session_id: _Optional[str] = ..., event_type_prefixes: _Optional[_Iterable[str]] = ..., payload_as_json: bool = ...) -> None: ...

class StreamActivityResponse(_message.Message):
    __slots__ = ["dropped", "event"]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    dropped: int
    event: CallEvent
    def __init__(self, event: _Optional[_Union[CallEvent, _Mapping]] = ..., dropped: _Optional[int] = ...) -> None: ...
