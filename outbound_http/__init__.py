"""Outbound HTTP shared by the server's URL input and the webhook sender: one wall-clock deadline
over DNS, connect, TLS, headers and body (``outbound_http.deadline``). Kept out of
``transcript_contracts`` so the contracts stay pure (pydantic only, no HTTP client)."""
