"""The model registry: Whisper checkpoints in S3, content-addressed, verified on every load.

- ``uri``: ``s3://BUCKET/models/NAME/`` (latest) and ``.../NAME/v-<hash>/`` (pinned); key layout.
- ``manifest``: every file's size and sha256, the model's name, languages, converter version.
- ``publish``: create-only upload of a prepared directory, then the ``latest.json`` pointer.
- ``fetch`` + ``cache``: download into MODEL_CACHE_DIR, verify, reuse a verified cache.
- ``resolve``: the one call the server and the worker make at start (``fetch_if_registry``).

How an operator uses it: docs/model-supply.md.
"""
