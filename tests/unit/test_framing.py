"""The two stdin readers under pygls's message loop read the same messages from the same bytes: the
blocking one pygls drives through its thread pool, and the pipe the event loop watches itself."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from typing import Any

import pytest
from pygls.io_ import StdinAsyncReader, run_async

from fim_lsp.protocol import MAX_HEADER_READ, FramedInput, FramedPipe


class _Recorder:
    """The part of pygls's protocol its message loop calls: keeps each message's body as parsed."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def structure_message(self, data: dict[str, Any]) -> Any:
        return data

    def handle_message(self, message: Any) -> None:
        self.messages.append(message)


def _body(number: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": "m", "params": {"n": number}}).encode()


def _message(number: int) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(_body(number)), _body(number))


async def _read_blocking(data: bytes) -> list[Any]:
    recorder = _Recorder()
    reader = StdinAsyncReader(FramedInput(io.BytesIO(data)))  # type: ignore[arg-type]
    await run_async(stop_event=_never(), reader=reader, protocol=recorder)  # type: ignore[arg-type]
    return recorder.messages


async def _read_pipe(data: bytes) -> list[Any]:
    recorder = _Recorder()
    stream = asyncio.StreamReader(limit=MAX_HEADER_READ)
    # Fed in small pieces, as a pipe delivers them, so that lines and bodies straddle reads.
    for start in range(0, len(data), 7):
        stream.feed_data(data[start : start + 7])
    stream.feed_eof()
    await run_async(stop_event=_never(), reader=FramedPipe(stream), protocol=recorder)  # type: ignore[arg-type]
    return recorder.messages


def _never() -> threading.Event:
    return threading.Event()


#: Bytes on stdin, and the number of the last message a reader must get from them.
CASES = {
    "two messages": (_message(1) + _message(2), 2),
    "header spelled otherwise": (
        b"content-length:  %d \n\r\n%s" % (len(_body(1)), _body(1)) + _message(2),
        2,
    ),
    "length not a number, then a message": (b"Content-Length: abc\r\n\r\n{}" + _message(2), 2),
    "length shorter than the body, then a message": (b"Content-Length: 2\r\n\r\n{}}}}}" + _message(2), 2),
    "a line longer than the header limit, then a message": (b"x" * (MAX_HEADER_READ + 10) + _message(2), 2),
    "length over the limit, then a message": (b"Content-Length: 99999999999999\r\n\r\n{}" + _message(2), 2),
    "input ends inside a body": (_message(1) + b"Content-Length: 50\r\n\r\n{", 1),
}


@pytest.mark.parametrize(("data", "last"), CASES.values(), ids=CASES.keys())
async def test_both_readers_read_the_same_messages(data: bytes, last: int) -> None:
    pipe = await _read_pipe(data)
    assert pipe == await _read_blocking(data)
    assert [message["params"]["n"] for message in pipe if "params" in message][-1] == last


async def test_a_request_started_by_a_message_steps_before_the_next_message_is_handled() -> None:
    """pygls starts a request's handler as a task; its first step reads the document, so it must come
    before the change read after the request is applied, even when both arrived in one read."""
    seen_at_first_step: list[int] = []

    class _Starter(_Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.tasks: list[asyncio.Future[None]] = []

        def handle_message(self, message: Any) -> None:
            super().handle_message(message)
            handled = len(self.messages)

            async def handler() -> None:
                seen_at_first_step.append(len(self.messages) - handled)

            self.tasks.append(asyncio.ensure_future(handler()))

    recorder = _Starter()
    stream = asyncio.StreamReader(limit=MAX_HEADER_READ)
    stream.feed_data(b"".join(_message(number) for number in range(5)))
    stream.feed_eof()
    await run_async(stop_event=_never(), reader=FramedPipe(stream), protocol=recorder)  # type: ignore[arg-type]
    await asyncio.gather(*recorder.tasks)
    assert seen_at_first_step == [0] * 5
