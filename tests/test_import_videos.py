"""``import_videos``: any folder of videos becomes an episode dataset; bad videos stop it in one line."""
import subprocess
import sys

import numpy as np

from envs import video
from envs.dataset import Clips, EpisodeDataset

CLI = [sys.executable, "-m", "envs.import_videos"]


def frames(t, h, w):
    rng = np.random.default_rng(t)
    return rng.integers(0, 255, (t, h, w, 3), dtype=np.uint8)


def test_import_resizes_and_sets_stride_from_fps(tmp_path):
    src = tmp_path / "src"
    video.write(src / "fast.mp4", frames(30, 90, 120), fps=30)  # 30 fps -> stride 3 at 10 fps
    video.write(src / "sub" / "slow.mp4", frames(12, 64, 64), fps=10)
    r = subprocess.run(CLI + [str(src), "--out", str(tmp_path / "ds")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = EpisodeDataset(tmp_path / "ds")
    assert [data.length(e) for e in data.episodes] == [9, 11]
    assert data.frames(0).shape == (10, 64, 64, 3)
    assert data.actions(0).shape == (9, 0)
    assert len(Clips(data, length=4, step=1)) == 7 + 9


def test_bad_video_exits_2_and_writes_nothing(tmp_path):
    src = tmp_path / "src"
    video.write(src / "good.mp4", frames(4, 64, 64), fps=10)
    (src / "broken.mp4").write_bytes(b"not a video at all")
    r = subprocess.run(CLI + [str(src), "--out", str(tmp_path / "ds")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]  # after the progress bar: one line naming the file and problem
    assert last.startswith("import_videos") and "broken.mp4: cannot decode video" in last
    assert not (tmp_path / "ds").exists()
    r = subprocess.run(CLI + [str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "ds")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().endswith("missing.mp4: no such video file")


def test_skip_bad_imports_the_rest_and_lists_what_it_skipped(tmp_path):
    src = tmp_path / "src"
    video.write(src / "a.mp4", frames(4, 64, 64), fps=10)
    (src / "broken.mp4").write_bytes(b"not a video at all")
    video.write(src / "z.mp4", frames(6, 64, 64), fps=10)
    r = subprocess.run(CLI + [str(src), "--out", str(tmp_path / "ds"), "--skip-bad"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stdout and "broken.mp4: cannot decode video" in r.stdout
    data = EpisodeDataset(tmp_path / "ds")
    assert [data.length(e) for e in data.episodes] == [3, 5]  # a.mp4 and z.mp4
    assert list(data.info["skipped"]) == [str(src / "broken.mp4")]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.mp4").write_bytes(b"junk")
    r = subprocess.run(CLI + [str(tmp_path / "bad"), "--out", str(tmp_path / "ds2"), "--skip-bad"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "none of the 1 video(s)" in r.stderr and not (tmp_path / "ds2").exists()
