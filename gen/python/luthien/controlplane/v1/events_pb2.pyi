from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContentBlock(_message.Message):
    __slots__ = ["opaque", "text", "thinking", "tool_use"]
    OPAQUE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    opaque: OpaqueBlock
    text: TextBlock
    thinking: ThinkingBlock
    tool_use: ToolUseBlock
    def __init__(self, text: _Optional[_Union[TextBlock, _Mapping]] = ..., tool_use: _Optional[_Union[ToolUseBlock, _Mapping]] = ..., thinking: _Optional[_Union[ThinkingBlock, _Mapping]] = ..., opaque: _Optional[_Union[OpaqueBlock, _Mapping]] = ...) -> None: ...

class ContentBlockDelta(_message.Message):
    __slots__ = ["index", "input_json", "opaque", "signature", "text", "thinking"]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    OPAQUE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    index: int
    input_json: InputJSONDelta
    opaque: OpaqueDelta
    signature: SignatureDelta
    text: TextDelta
    thinking: ThinkingDelta
    def __init__(self, index: _Optional[int] = ..., text: _Optional[_Union[TextDelta, _Mapping]] = ..., input_json: _Optional[_Union[InputJSONDelta, _Mapping]] = ..., thinking: _Optional[_Union[ThinkingDelta, _Mapping]] = ..., signature: _Optional[_Union[SignatureDelta, _Mapping]] = ..., opaque: _Optional[_Union[OpaqueDelta, _Mapping]] = ...) -> None: ...

class ContentBlockStart(_message.Message):
    __slots__ = ["block", "index"]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    block: ContentBlock
    index: int
    def __init__(self, index: _Optional[int] = ..., block: _Optional[_Union[ContentBlock, _Mapping]] = ...) -> None: ...

class ContentBlockStop(_message.Message):
    __slots__ = ["index"]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: int
    def __init__(self, index: _Optional[int] = ...) -> None: ...

class InputJSONDelta(_message.Message):
    __slots__ = ["partial_json"]
    PARTIAL_JSON_FIELD_NUMBER: _ClassVar[int]
    partial_json: str
    def __init__(self, partial_json: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ["content", "id", "model", "stop_reason", "usage"]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    content: _containers.RepeatedCompositeFieldContainer[ContentBlock]
    id: str
    model: str
    stop_reason: str
    usage: Usage
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., content: _Optional[_Iterable[_Union[ContentBlock, _Mapping]]] = ..., stop_reason: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class MessageDelta(_message.Message):
    __slots__ = ["stop_reason", "stop_sequence", "usage"]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    stop_reason: str
    stop_sequence: str
    usage: Usage
    def __init__(self, stop_reason: _Optional[str] = ..., stop_sequence: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class MessageStart(_message.Message):
    __slots__ = ["id", "model", "usage"]
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    model: str
    usage: Usage
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class MessageStop(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class OpaqueBlock(_message.Message):
    __slots__ = ["json", "type"]
    JSON_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    json: bytes
    type: str
    def __init__(self, type: _Optional[str] = ..., json: _Optional[bytes] = ...) -> None: ...

class OpaqueDelta(_message.Message):
    __slots__ = ["json", "type"]
    JSON_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    json: bytes
    type: str
    def __init__(self, type: _Optional[str] = ..., json: _Optional[bytes] = ...) -> None: ...

class OpaqueEvent(_message.Message):
    __slots__ = ["json", "type"]
    JSON_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    json: bytes
    type: str
    def __init__(self, type: _Optional[str] = ..., json: _Optional[bytes] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SignatureDelta(_message.Message):
    __slots__ = ["signature"]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signature: str
    def __init__(self, signature: _Optional[str] = ...) -> None: ...

class StreamError(_message.Message):
    __slots__ = ["message", "type"]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    message: str
    type: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class StreamEvent(_message.Message):
    __slots__ = ["content_block_delta", "content_block_start", "content_block_stop", "error", "message_delta", "message_start", "message_stop", "opaque", "ping", "seq"]
    CONTENT_BLOCK_DELTA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_START_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_STOP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_DELTA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_START_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_STOP_FIELD_NUMBER: _ClassVar[int]
    OPAQUE_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    content_block_delta: ContentBlockDelta
    content_block_start: ContentBlockStart
    content_block_stop: ContentBlockStop
    error: StreamError
    message_delta: MessageDelta
    message_start: MessageStart
    message_stop: MessageStop
    opaque: OpaqueEvent
    ping: Ping
    seq: int
    def __init__(self, seq: _Optional[int] = ..., message_start: _Optional[_Union[MessageStart, _Mapping]] = ..., content_block_start: _Optional[_Union[ContentBlockStart, _Mapping]] = ..., content_block_delta: _Optional[_Union[ContentBlockDelta, _Mapping]] = ..., content_block_stop: _Optional[_Union[ContentBlockStop, _Mapping]] = ..., message_delta: _Optional[_Union[MessageDelta, _Mapping]] = ..., message_stop: _Optional[_Union[MessageStop, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ..., opaque: _Optional[_Union[OpaqueEvent, _Mapping]] = ...) -> None: ...

class TextBlock(_message.Message):
    __slots__ = ["text"]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class TextDelta(_message.Message):
    __slots__ = ["text"]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class ThinkingBlock(_message.Message):
    __slots__ = ["signature", "thinking"]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    signature: str
    thinking: str
    def __init__(self, thinking: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class ThinkingDelta(_message.Message):
    __slots__ = ["thinking"]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    thinking: str
    def __init__(self, thinking: _Optional[str] = ...) -> None: ...

class ToolUseBlock(_message.Message):
    __slots__ = ["id", "input_json", "name"]
    ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    input_json: bytes
    name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., input_json: _Optional[bytes] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ["cache_creation_input_tokens", "cache_read_input_tokens", "input_tokens", "output_tokens"]
    CACHE_CREATION_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    input_tokens: int
    output_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cache_creation_input_tokens: _Optional[int] = ..., cache_read_input_tokens: _Optional[int] = ...) -> None: ...
