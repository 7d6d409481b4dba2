"""Turn a folder of videos into a training root: one folder of SIZE×SIZE frames per video.

    python scripts/prepare_frames.py my_videos/ data/my_root [--size 300] [--overwrite]

writes `data/my_root/<video name>/00000.png, 00001.png, ...` (the layout of the released
DAVIS/Videvo 300×300 sets; frames are resized with bicubic filtering, aspect ratio not kept).
Files that are not videos are skipped with a warning; a video that fails to decode part-way is
reported and left out (nothing half-written), the others go on, and the exit status is 1.
Each video folder appears only when complete, so an interrupted run can simply be restarted:
finished videos are skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from tcvc.io import FrameFolderWriter, VideoError, VideoReader, natural_key


def output_names(files: list[Path]) -> dict[Path, str]:
    """Folder name per video: its stem, or stem_suffix where two videos share a stem."""
    stems = [file.stem for file in files]
    return {
        file: file.stem if stems.count(file.stem) == 1 else f"{file.stem}_{file.suffix.lstrip('.')}"
        for file in files
    }


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    image = Image.fromarray(frame).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image)


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)  # keeps progress bars intact


def prepare(
    input_dir: str | Path, output_root: str | Path, *, size: int = 300, overwrite: bool = False
) -> tuple[list[str], list[str]]:
    """Write `output_root/<name>/00000.png ...` for every video in `input_dir` (not recursive).

    Returns (names written, error messages of videos that failed part-way). Raises VideoError
    for a missing or empty input folder, an output root that is a file, or when the folder holds
    no video at all.
    """
    input_dir, output_root = Path(input_dir), Path(output_root)
    if not input_dir.is_dir():
        problem = "no such folder" if not input_dir.exists() else "not a folder"
        raise VideoError(f"{input_dir}: {problem} (give the folder that holds the videos)")
    if output_root.exists() and not output_root.is_dir():
        raise VideoError(f"{output_root}: exists and is not a folder")
    try:
        files = [p for p in input_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    except OSError as error:
        reason = error.strerror or error
        raise VideoError(f"{input_dir}: cannot list the folder: {reason}") from error
    if not files:
        raise VideoError(f"{input_dir}: holds no files")
    files.sort(key=lambda p: natural_key(p.name))
    written: list[str] = []
    failed: list[str] = []
    existing = 0
    for file, name in output_names(files).items():
        target = output_root / name
        if target.is_dir() and any(target.iterdir()) and not overwrite:
            _say(f"warning: skipping {file}: {target} already exists (--overwrite redoes it)")
            existing += 1
            continue
        try:
            reader = VideoReader(file)
        except VideoError as error:
            _say(f"warning: skipping {error}")
            continue
        with reader:
            try:
                with FrameFolderWriter(target, overwrite=overwrite) as writer:
                    for frame in tqdm(reader, total=len(reader), desc=name, unit="frame"):
                        writer.write(_resize(frame, size))
            except VideoError as error:
                _say(f"error: {error}")
                failed.append(str(error))
                continue
        written.append(name)
    if not written and not failed and not existing:
        raise VideoError(f"{input_dir}: holds no readable video ({len(files)} file(s) skipped)")
    return written, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Turn a folder of videos into a training root of SIZE×SIZE frame folders."
    )
    parser.add_argument("input_dir", type=Path, help="folder that holds the video files")
    parser.add_argument("output_root", type=Path, help="training root to write (created)")
    parser.add_argument("--size", type=int, default=300, help="frame side in pixels (300)")
    parser.add_argument("--overwrite", action="store_true", help="redo videos already there")
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error(f"--size must be positive, got {args.size}")
    try:
        written, failed = prepare(
            args.input_dir, args.output_root, size=args.size, overwrite=args.overwrite
        )
    except VideoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (finished videos are kept; run again to go on)", file=sys.stderr)
        return 130
    _say(f"wrote {len(written)} video(s) to {args.output_root}")
    if failed:
        _say(f"{len(failed)} video(s) failed; see the errors above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
