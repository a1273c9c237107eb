from fractions import Fraction

import av
import numpy as np
import pytest

from envs import video


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse) if mse > 0 else np.inf


def smooth_frames(t=12, h=64, w=64, seed=0):
    """Frames with structure (gradients + moving squares), like env renders, not white noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        frames[i, ..., 0] = (xx * 255 // w + 10 * i) % 256
        frames[i, ..., 1] = yy * 255 // h
        frames[i, ..., 2] = 120
        x, y = rng.integers(0, w - 10), rng.integers(0, h - 10)
        frames[i, y:y + 8, x:x + 8] = (230, 20, 20)
    return frames


def test_mp4_round_trip_psnr(tmp_path):
    frames = smooth_frames()
    path = video.write(tmp_path / "a.mp4", frames, fps=10)
    back, fps = video.read(path, with_fps=True)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert fps == pytest.approx(10)
    assert psnr(back, frames) > 35  # stated fidelity of the default crf 12, yuv444p
    assert not list(tmp_path.glob(".*")), "temp file left behind"


def _write_other(path, frames, codec, pix_fmt, rate=25):
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=Fraction(rate))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())


@pytest.mark.parametrize("name,codec,pix_fmt", [("a.webm", "libvpx-vp9", "yuv420p"),
                                                ("a.avi", "mpeg4", "yuv420p"),
                                                ("a.mkv", "libx264", "yuv420p")])
def test_read_any_container_and_size(tmp_path, name, codec, pix_fmt):
    frames = smooth_frames(t=8, h=96, w=160)
    _write_other(tmp_path / name, frames, codec, pix_fmt)
    out, fps = video.read(tmp_path / name, size=64, with_fps=True)
    assert out.shape == (8, 64, 64, 3)
    assert fps == pytest.approx(25)


def test_resize_center_crop_keeps_center():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, 50:150] = 255  # the central square is white, the sides black
    out = video.resize_center_crop(frame, 32)
    assert out.shape == (32, 32, 3)
    assert out[2:-2, 2:-2].min() > 200


def test_bad_videos_name_the_file(tmp_path):
    with pytest.raises(video.VideoError, match="missing.mp4: no such video file"):
        video.read(tmp_path / "missing.mp4")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with pytest.raises(video.VideoError, match="corrupt.mp4"):
        video.read(corrupt)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(video.VideoError, match="empty.mp4"):
        video.read(empty)


def test_write_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        video.write(tmp_path / "x.mp4", np.zeros((0, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        video.write(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.float32))
    assert not (tmp_path / "x.mp4").exists()


def test_zero_frame_video_is_an_error(tmp_path):
    path = tmp_path / "zero.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
    with pytest.raises(video.VideoError, match="zero.mp4"):
        video.read(path)
