"""The decode memory gate: large decodes wait for room, one larger than the budget runs alone."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

from imgclust.sources import decode
from imgclust.sources.decode import _MemoryGate, decode_image


def test_gate_admits_small_work_together_and_large_work_alone():
    gate = _MemoryGate(100)
    a = gate.acquire(40)
    b = gate.acquire(40)  # fits beside a
    assert gate.used == 80
    order: list[str] = []

    def big():
        n = gate.acquire(1000)  # more than the budget: capped, waits until nothing is held
        order.append("big in")
        assert gate.used == n == 100
        gate.release(n)

    t = threading.Thread(target=big)
    t.start()
    time.sleep(0.1)
    assert order == []  # still waiting: 80 bytes are held
    gate.release(a)
    time.sleep(0.1)
    assert order == []  # 40 still held
    gate.release(b)
    t.join(5)
    assert order == ["big in"] and gate.used == 0


@pytest.mark.parametrize("kind", ["ok", "corrupt"])
def test_decode_gives_its_memory_back(tmp_path, kind, monkeypatch):
    gate = _MemoryGate(1 << 30)
    monkeypatch.setattr(decode, "_GATE", gate)
    p = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8)).save(p)
    if kind == "corrupt":  # the decoder fails inside load(), while the gate is held
        from PIL import ImageFile

        def broken(self):
            raise OSError("broken data stream")

        monkeypatch.setattr(ImageFile.ImageFile, "load", broken)
    seen: list[int] = []
    real = gate.acquire
    monkeypatch.setattr(gate, "acquire", lambda n: seen.append(n) or real(n))
    try:
        decode_image(str(p), "a.png")
    except decode.DecodeError:
        assert kind == "corrupt"
    assert seen and seen[0] >= 300 * 400 * 4  # the decoded size times the format's factor
    assert gate.used == 0
