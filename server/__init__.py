"""The transcription server: FastAPI over the Whisper engine (DESIGN.md §4)."""
