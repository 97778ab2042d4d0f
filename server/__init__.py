"""The transcription server: FastAPI over the Whisper engine (docs/design.md §4)."""
