"""Payloads for end-to-end datagram tests, and a short account of how a received list
differs from the one sent (a list of 60 KB payloads is useless as a diff)."""
import hashlib

__all__ = ["pattern", "mismatch"]


def pattern(n: int, seed: bytes) -> bytes:
    """``n`` bytes repeating a 128 KiB block drawn from ``seed`` (no loop compresses it)."""
    block = hashlib.sha256(seed).digest() * 4096
    return (block * (n // len(block) + 1))[:n]


def mismatch(got: list, want: list) -> str:
    """What differs between ``got`` and ``want`` (lists of bytes), in a few lines: the
    first position that differs, then which payloads are missing, extra, duplicated or
    merely out of order."""
    if got == want:
        return "identical"

    def name(data):
        return f"{len(data)} B {hashlib.sha256(data).hexdigest()[:8]}"

    lines = [f"got {len(got)} datagrams, want {len(want)}"]
    first = next((k for k, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
    lines.append(f"first difference at #{first}: got "
                 f"{name(got[first]) if first < len(got) else 'nothing'}, want "
                 f"{name(want[first]) if first < len(want) else 'nothing'}")
    missing = [(k, name(w)) for k, w in enumerate(want) if w not in got]
    extra = [(k, name(g)) for k, g in enumerate(got) if g not in want]
    dups = sorted({name(g) for g in got if g in want and got.count(g) > want.count(g)})
    if missing:
        lines.append(f"missing (position sent, payload): {missing[:10]}")
    if extra:
        lines.append(f"never sent (position received, payload): {extra[:10]}")
    if dups:
        lines.append(f"received more often than sent: {dups[:10]}")
    if not (missing or extra or dups):
        order = [want.index(g) for g in got]
        lines.append(f"all arrived, out of order: sent positions in arrival order {order}")
    return "\n".join(lines)
