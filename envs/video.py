"""Video IO: read any video PyAV decodes into uint8 frames, write mp4s, resize + center-crop.

All video files of the toolkit go through here: episode recordings, demos, side-by-side outputs.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from vidit.files import atomic_path


class VideoError(ValueError):
    """A video file that is missing, unreadable or empty; the message names the file."""


def resize_center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to ``size`` (LANCZOS) and center-crop to ``size x size``.

    ``frames``: uint8 ``[T, H, W, 3]`` or ``[H, W, 3]``.
    """
    single = frames.ndim == 3
    batch = frames[None] if single else frames
    h, w = batch.shape[1:3]
    if (h, w) == (size, size):
        return frames
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (nh - size) // 2, (nw - size) // 2
    out = np.stack([
        np.asarray(Image.fromarray(f).resize((nw, nh), Image.LANCZOS))[top:top + size, left:left + size]
        for f in batch])
    return out[0] if single else out


def read(path: str | os.PathLike, size: int | None = None, with_fps: bool = False):
    """Decode every frame of ``path`` to uint8 ``[T, H, W, 3]`` RGB, optionally resized + center-cropped.

    Raises :class:`VideoError` naming the file if it is missing, corrupt or has no frames.
    With ``with_fps`` returns ``(frames, fps)``.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except VideoError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise VideoError(f"{path}: cannot decode video ({type(e).__name__}: {e})") from None
    if not frames:
        raise VideoError(f"{path}: video has 0 frames")
    out = np.stack(frames)
    if size is not None:
        out = resize_center_crop(out, size)
    return (out, fps) if with_fps else out


def write(path: str | os.PathLike, frames: np.ndarray, fps: float = 10.0, crf: int = 12) -> Path:
    """Write uint8 ``[T, H, W, 3]`` frames to an H.264 mp4, atomically (temp file + rename).

    Full-resolution chroma (yuv444p) keeps small, saturated details (the red button) intact; ``crf``
    trades size for fidelity (0 is lossless).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be uint8 [T>0, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    path = Path(path)
    h, w = frames.shape[1:3]
    with atomic_path(path, suffix=".mp4") as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = w + w % 2, h + h % 2
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for f in frames:
            if f.shape[:2] != (stream.height, stream.width):
                f = np.pad(f, ((0, stream.height - h), (0, stream.width - w), (0, 0)), mode="edge")
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        container.mux(stream.encode())
    return path

