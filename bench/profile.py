"""Summarise a py-spy collapsed-stack profile written by `bench/run.py --profile DIR`.

    uv run python bench/profile.py bench/results/profile/status.txt [--top 40] [--focus app/]

Prints the functions with the largest share of samples, inclusive (the function and what it called)
and exclusive (the function itself), so the largest cost of a request is named, not guessed.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _name(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['func']} ({file})"


def summarise(path: Path, top: int, focus: str | None) -> str:
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    total = 0
    for raw in path.read_text().splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(f) for f in stack.split(";")[1:]]  # the first is the process
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        exclusive[frames[-1]] += count
    lines = [f"{path}: {total:,} samples"]
    for title, counter in (("inclusive", inclusive), ("exclusive", exclusive)):
        lines.append(f"\n{title}:")
        shown = 0
        for name, count in counter.most_common():
            if focus and focus not in name:
                continue
            lines.append(f"  {100 * count / max(total, 1):5.1f} %  {name}")
            shown += 1
            if shown >= top:
                break
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--focus", default=None, help="only frames whose name contains this text")
    args = parser.parse_args()
    print(summarise(args.profile, args.top, args.focus))


if __name__ == "__main__":
    main()
