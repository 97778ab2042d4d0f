"""Request body cap (P18) as plain ASGI middleware, answering 413 in the API's JSON error shape.

Starlette's own limit answers plain text, and a limit raised inside ``receive`` reaches FastAPI's
form parser and surfaces as 400. Here the body is cut off (the app sees a disconnect) and whatever
the app then tries to send is replaced by the 413.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import PayloadTooLargeError, api_error_response


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLargeError(
            f"request body is over the {self.max_body_bytes}-byte limit (MAX_UPLOAD_BYTES)"
        )
        await api_error_response(error, {"Connection": "close"})(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_body_bytes:
                    await self._reject(scope, receive, send)
                    return

        seen = 0
        exceeded = False
        replied = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replied
            if not exceeded:
                await send(message)
                return
            if message["type"] == "http.response.start" and not replied:
                replied = True
                await self._reject(scope, receive, send)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # Only the cut-off body is ours to answer; any other failure goes on up.
            if not exceeded:
                raise
            if not replied:
                replied = True
                await self._reject(scope, receive, send)
