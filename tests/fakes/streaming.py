"""Writing event stream frames the awkward way real networks deliver them.

Decoders must cope with several frames in one read and one frame spread over several reads,
so the fake produces both on purpose, in a fixed pattern that tests can rely on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

# A pause between the halves of a split frame, long enough for them to reach the client as
# separate reads on loopback.
SPLIT_PAUSE = 0.002


@dataclass(frozen=True)
class Write:
    data: bytes
    # True when this write finishes a frame begun by the previous write.
    continues_frame: bool = False


def _cut_point(frame: bytes, nth_split: int) -> int:
    # Rotate where frames are cut: inside the prelude, inside the headers, mid-payload.
    return (5, 14, len(frame) // 2)[nth_split % 3]


def plan_writes(frames: Sequence[bytes]) -> list[Write]:
    """Group frames into writes with the cycle: whole frame, two frames at once, split frame."""
    writes: list[Write] = []
    i = 0
    step = 0
    splits = 0
    while i < len(frames):
        mode = step % 3
        if mode == 1 and i + 1 < len(frames):
            writes.append(Write(frames[i] + frames[i + 1]))
            i += 2
        elif mode == 2:
            cut = _cut_point(frames[i], splits)
            splits += 1
            writes.append(Write(frames[i][:cut]))
            writes.append(Write(frames[i][cut:], continues_frame=True))
            i += 1
        else:
            writes.append(Write(frames[i]))
            i += 1
        step += 1
    return writes


async def send_frames(resp: web.StreamResponse, frames: Sequence[bytes], delay: float) -> None:
    """Write frames per :func:`plan_writes`, sleeping ``delay`` between separate writes."""
    for n, write in enumerate(plan_writes(frames)):
        if write.continues_frame:
            await asyncio.sleep(SPLIT_PAUSE)
        elif n and delay > 0:
            await asyncio.sleep(delay)
        await resp.write(write.data)
