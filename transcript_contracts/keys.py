"""The object-key grammar of docs/design.md §2: parse and format every key the system uses.

Keys are restricted to ``[A-Za-z0-9/_.-]`` so that raw and percent-encoded event keys agree, and
anything outside the grammar is rejected with a reason, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

from transcript_contracts.errors import KeyGrammarError

AudioExt = Literal["wav", "flac", "mp3", "m4a", "ogg", "opus", "webm"]
TranscriptFormat = Literal["json", "txt", "srt", "vtt"]

AUDIO_EXTENSIONS: Final[tuple[str, ...]] = get_args(AudioExt)
TRANSCRIPT_FORMATS: Final[tuple[str, ...]] = get_args(TranscriptFormat)
MAX_KEY_BYTES: Final = 1024
# 100 000 chunks of 30 s is over 800 hours: far past any session, and it keeps the padded
# transcript names short. More than 9 digits (padding included) is rejected outright.
MAX_CHUNK_INDEX: Final = 99_999
MAX_INDEX_DIGITS: Final = 9

SESSION_ID_PATTERN: Final = r"[A-Za-z0-9_-]{1,64}"
_SESSION_ID_RE: Final = re.compile(rf"^{SESSION_ID_PATTERN}$")
_ALLOWED_RE: Final = re.compile(r"^[A-Za-z0-9/_.-]*$")
_PREFIX_RE: Final = re.compile(r"^(?:[A-Za-z0-9_.-]+/)*$")
_CHUNK_NAME_RE: Final = re.compile(r"^chunk-(?P<index>[0-9]+)\.(?P<ext>[A-Za-z0-9]+)$")
_TRANSCRIPT_NAME_RE: Final = re.compile(r"^chunk-(?P<index>[0-9]+)\.json$")
_SESSION_NAME_RE: Final = re.compile(r"^session\.(?P<fmt>[a-z]+)$")
_BUCKET_RE: Final = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class AudioChunkKey:
    session_id: str
    index: int
    ext: AudioExt
    key: str


@dataclass(frozen=True, slots=True)
class ManifestKey:
    session_id: str
    key: str


@dataclass(frozen=True, slots=True)
class ChunkTranscriptKey:
    session_id: str
    index: int
    key: str


@dataclass(frozen=True, slots=True)
class SessionTranscriptKey:
    session_id: str
    fmt: TranscriptFormat
    key: str


ParsedKey = AudioChunkKey | ManifestKey | ChunkTranscriptKey | SessionTranscriptKey


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def check_key_characters(key: str) -> None:
    """Reject keys that break the byte, character or path rules, whatever their shape."""
    if not isinstance(key, str):
        raise KeyGrammarError(repr(key), "key is not a string")
    if not key:
        raise KeyGrammarError(key, "key is empty")
    size = len(key.encode("utf-8", errors="surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise KeyGrammarError(key, f"key is {size} bytes, over the {MAX_KEY_BYTES}-byte limit")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise KeyGrammarError(key, "key contains control characters")
    if not key.isascii():
        raise KeyGrammarError(key, "key contains non-ASCII (unicode) characters")
    if not _ALLOWED_RE.match(key):
        bad = sorted({c for c in key if not _ALLOWED_RE.match(c)})
        raise KeyGrammarError(key, f"key contains characters outside [A-Za-z0-9/_.-]: {bad}")
    if key.startswith("/"):
        raise KeyGrammarError(key, "key starts with '/'")
    parts = key.split("/")
    if any(p in (".", "..") for p in parts):
        raise KeyGrammarError(key, "key contains a path traversal segment ('.' or '..')")
    if any(p == "" for p in parts):
        raise KeyGrammarError(key, "key contains an empty path segment ('//' or trailing '/')")


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not _SESSION_ID_RE.match(session_id):
        raise KeyGrammarError(
            str(session_id), f"session id must match {SESSION_ID_PATTERN}, got {session_id!r}"
        )
    return session_id


def check_index(index: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_CHUNK_INDEX:
        raise KeyGrammarError(
            str(index), f"chunk index must be 0..{MAX_CHUNK_INDEX}, got {index!r}"
        )
    return index


def check_bucket_name(bucket: str) -> str:
    """An S3 bucket name: 3-63 of a-z 0-9 . -, starting and ending with a letter or digit."""
    if not isinstance(bucket, str) or not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise KeyGrammarError(str(bucket), "must be a valid S3 bucket name (3-63 of a-z 0-9 . -)")
    return bucket


def check_prefix(prefix: str) -> str:
    """A prefix is empty or slash-terminated segments of [A-Za-z0-9_.-] with no traversal."""
    if not _PREFIX_RE.match(prefix):
        raise KeyGrammarError(
            prefix, "prefix must be '' or segments of [A-Za-z0-9_.-] each ending in '/'"
        )
    if any(p in (".", "..") for p in prefix.split("/")):
        raise KeyGrammarError(prefix, "prefix contains a path traversal segment")
    return prefix


def _parse_index(key: str, digits: str) -> int:
    if len(digits) > MAX_INDEX_DIGITS:
        raise KeyGrammarError(key, f"chunk index has more than {MAX_INDEX_DIGITS} digits")
    index = int(digits)
    if index > MAX_CHUNK_INDEX:
        raise KeyGrammarError(key, f"chunk index {index} is over {MAX_CHUNK_INDEX}")
    return index


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Where objects live: the audio and transcript prefixes (settings) and the names beneath."""

    audio_prefix: str = "audio/"
    transcript_prefix: str = "transcripts/"

    def __post_init__(self) -> None:
        check_prefix(self.audio_prefix)
        check_prefix(self.transcript_prefix)
        a, t = self.audio_prefix, self.transcript_prefix
        # Nested prefixes would make one object match both grammars (and transcript writes
        # would trigger the router on the audio prefix).
        if a.startswith(t) or t.startswith(a):
            raise KeyGrammarError(
                f"{a} | {t}", "audio and transcript prefixes must differ and not nest"
            )

    # -- formatting ------------------------------------------------------------------------

    def audio_chunk(self, session_id: str, index: int, ext: str, *, width: int = 4) -> str:
        check_session_id(session_id)
        check_index(index)
        if ext not in AUDIO_EXTENSIONS:
            raise KeyGrammarError(ext, f"extension must be one of {', '.join(AUDIO_EXTENSIONS)}")
        return f"{self.audio_prefix}{session_id}/chunk-{index:0{width}d}.{ext}"

    def manifest(self, session_id: str) -> str:
        return f"{self.audio_prefix}{check_session_id(session_id)}/manifest.json"

    def audio_session_prefix(self, session_id: str) -> str:
        return f"{self.audio_prefix}{check_session_id(session_id)}/"

    def chunk_transcript(self, session_id: str, index: int) -> str:
        check_session_id(session_id)
        return f"{self.transcript_prefix}{session_id}/chunk-{check_index(index):04d}.json"

    def transcript_session_prefix(self, session_id: str) -> str:
        return f"{self.transcript_prefix}{check_session_id(session_id)}/"

    def session_transcript(self, session_id: str, fmt: TranscriptFormat = "json") -> str:
        if fmt not in TRANSCRIPT_FORMATS:
            raise KeyGrammarError(fmt, f"format must be one of {', '.join(TRANSCRIPT_FORMATS)}")
        return f"{self.transcript_prefix}{check_session_id(session_id)}/session.{fmt}"

    def transcript_for(self, chunk: AudioChunkKey) -> str:
        return self.chunk_transcript(chunk.session_id, chunk.index)

    # -- parsing ---------------------------------------------------------------------------

    def parse(self, key: str) -> ParsedKey:
        """Parse any key of the grammar; raise KeyGrammarError with the reason otherwise."""
        check_key_characters(key)
        if key.startswith(self.audio_prefix):
            return self._parse_audio(key, key[len(self.audio_prefix) :])
        if key.startswith(self.transcript_prefix):
            return self._parse_transcript(key, key[len(self.transcript_prefix) :])
        raise KeyGrammarError(
            key,
            f"key is under neither the audio prefix {self.audio_prefix!r} "
            f"nor the transcript prefix {self.transcript_prefix!r}",
        )

    def parse_intake(self, key: str) -> AudioChunkKey | ManifestKey:
        """Parse a key the router acts on: an audio chunk or a session manifest."""
        parsed = self.parse(key)
        if isinstance(parsed, AudioChunkKey | ManifestKey):
            return parsed
        raise KeyGrammarError(key, "key is a transcript, not an audio chunk or manifest")

    def parse_audio_chunk(self, key: str) -> AudioChunkKey:
        parsed = self.parse(key)
        if isinstance(parsed, AudioChunkKey):
            return parsed
        raise KeyGrammarError(key, "key is not an audio chunk")

    def _split_session(self, key: str, rest: str) -> tuple[str, str]:
        parts = rest.split("/")
        if len(parts) != 2:
            raise KeyGrammarError(key, "expected {prefix}{session_id}/{name}")
        session_id, name = parts
        if not _SESSION_ID_RE.match(session_id):
            raise KeyGrammarError(key, f"session id {session_id!r} must match {SESSION_ID_PATTERN}")
        return session_id, name

    def _parse_audio(self, key: str, rest: str) -> AudioChunkKey | ManifestKey:
        session_id, name = self._split_session(key, rest)
        if name == "manifest.json":
            return ManifestKey(session_id=session_id, key=key)
        m = _CHUNK_NAME_RE.match(name)
        if not m:
            raise KeyGrammarError(key, "name must be chunk-{index}.{ext} or manifest.json")
        ext = m["ext"]
        if ext not in AUDIO_EXTENSIONS:
            raise KeyGrammarError(
                key, f"wrong extension {ext!r}: must be one of {', '.join(AUDIO_EXTENSIONS)}"
            )
        index = _parse_index(key, m["index"])
        return AudioChunkKey(session_id=session_id, index=index, ext=ext, key=key)  # type: ignore[arg-type]

    def _parse_transcript(self, key: str, rest: str) -> ChunkTranscriptKey | SessionTranscriptKey:
        session_id, name = self._split_session(key, rest)
        m = _SESSION_NAME_RE.match(name)
        if m:
            fmt = m["fmt"]
            if fmt not in TRANSCRIPT_FORMATS:
                raise KeyGrammarError(key, f"session transcript format {fmt!r} is not known")
            return SessionTranscriptKey(session_id=session_id, fmt=fmt, key=key)  # type: ignore[arg-type]
        m = _TRANSCRIPT_NAME_RE.match(name)
        if not m:
            raise KeyGrammarError(key, "name must be chunk-{index:04d}.json or session.{format}")
        index = _parse_index(key, m["index"])
        # One index, one transcript key: only the canonical padding is accepted.
        if m["index"] != f"{index:04d}":
            raise KeyGrammarError(key, f"chunk transcript index must be written as {index:04d}")
        return ChunkTranscriptKey(session_id=session_id, index=index, key=key)


def parse_s3_uri(uri: str) -> S3Location:
    """Parse ``s3://bucket/key`` where the key follows the character rules of the grammar."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise KeyGrammarError(str(uri), "S3 URI must start with 's3://'")
    bucket, sep, key = uri[len("s3://") :].partition("/")
    if not sep:
        raise KeyGrammarError(uri, f"invalid bucket name {bucket!r}")
    try:
        check_bucket_name(bucket)
    except KeyGrammarError:
        raise KeyGrammarError(uri, f"invalid bucket name {bucket!r}") from None
    check_key_characters(key)
    return S3Location(bucket=bucket, key=key)
