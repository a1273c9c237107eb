"""RoboDesk's button tasks under VP² settings, as gymnasium envs.

- ``vidit/RoboDesk-v0`` (:class:`RoboDeskEnv`): one desk, ``task`` in ``push_red``, ``push_green``,
  ``push_blue`` (or ``None``). Every task starts from the same seeded states, so a first frame cannot
  tell the task: only a demo can. ``task`` only scores: it sets ``info["success"]``, the reward and the
  goal image; ``info["task_success"]`` holds every button's latched press whatever ``task`` is, and
  ``task=None`` runs the step budget scoring nothing.
- ``vidit/PushRed-v0`` (:class:`PushRedEnv`): ``push_red`` alone with its own 60 instances, as VP²
  benchmarks it (unchanged since our MPC results).

Both:

- Franka Panda, 5-d action in [-1, 1]: end-effector xyz delta (x0.01 m per repeat), wrist, gripper;
  action_repeat 50, rendered once per control step (RoboDesk's IK + physics run per repeat).
- Observation: 64x64x3 uint8, made as VP² does: a 120 px render, crop box (16.75, 25, 105, 88.75),
  LANCZOS resize to 64.
- ``info["success"]``: the task's button has been pressed (its light joint qpos < -0.00453, VP²'s
  rule) at any repeat so far; reward is 1 on the step it first happens. ``info["distance"]``: end
  effector to that button (m; NaN without a task), a graded measure of progress.
- Episodes last 15 control steps (16 frames, one VidIT clip). ``reset(options={"instance": i})``
  starts task instance ``i`` (0-29: the VP² benchmark set, 30-59: held out) and puts its goal image
  (the task's) in ``info["goal"]``; any other reset draws a fresh start state from the seed.
"""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before dm_control / mujoco are imported

from dataclasses import dataclass
from importlib import resources

import gymnasium as gym
import numpy as np
from PIL import Image

from envs import import_quietly
from envs.actions import check_box_action

TASKS = ("push_red", "push_green", "push_blue")
INSTANCES_FILE = "push_red_instances.npz"
DESK_INSTANCES_FILE = "robodesk_instances.npz"
N_BENCHMARK = 30
SUCCESS_QPOS = -0.00453
_ARM_HOME = np.array([-0.30, -0.4, 0.28, -2.5, 0.13, 1.87, 0.91, 0.01, 0.01])


@dataclass(frozen=True)
class RenderConfig:
    """Camera and quality. The defaults keep RoboDesk's look (36 dB PSNR to its own renderer) at
    about half the software-GL cost: 1024 px shadow maps instead of 4096, no floor reflection and a
    120x120 offscreen buffer instead of 640x480. ``shadow_size=4096, reflection=True`` is exact."""
    size: int = 120
    crop_box: tuple[float, float, float, float] = (16.75, 25.0, 105.0, 88.75)
    out_size: int = 64
    distance: float = 1.8
    azimuth: float = 90.0
    elevation: float = -60.0
    lookat: tuple[float, float, float] = (0.0, 0.535, 1.1)
    shadow_size: int = 1024
    reflection: bool = False
    msaa: int = 4


LIGHT_BOX = (slice(2, 9), slice(4, 11))  # the red light's pixels in a 64x64 frame (fixed camera)
LIGHT_THRESHOLD = 20.0  # mean red-minus-green there: unlit <= 1.7, lit ~ 90 on our recorded datasets


def red_light_lit(frames: np.ndarray) -> np.ndarray:
    """Whether each 64x64 frame ``[..., 64, 64, 3]`` shows the red light on (the button held down).

    A pixel probe, for real and imagined frames alike; ``info["success"]`` stays True after a press,
    the light only while the button is down.
    """
    box = np.asarray(frames)[..., LIGHT_BOX[0], LIGHT_BOX[1], :].astype(np.float32)
    return (box[..., 0] - box[..., 1]).mean(axis=(-2, -1)) > LIGHT_THRESHOLD


def _load_robodesk():
    try:
        return import_quietly("robodesk")
    except ImportError as e:
        raise ImportError(f"vidit/PushRed-v0 needs RoboDesk ({e}); install it with: pip install 'vidit[robodesk]'") from None


def load_instances(name: str = INSTANCES_FILE) -> dict[str, np.ndarray]:
    """Shipped task instances: ``seeds``, ``qpos`` (initial states) and ``goals`` (64x64 images; for
    the multi-task file ``[instance, task]`` in :data:`TASKS` order)."""
    with resources.files("envs").joinpath("data", name).open("rb") as f:
        data = np.load(f)
        return {k: data[k] for k in data.files}


def button_of(task: str) -> str:
    """``"push_green"`` -> ``"green"``."""
    return task.removeprefix("push_")


class RoboDeskEnv(gym.Env):
    """RoboDesk's desk scored on one button task (or none); see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    instances_file = DESK_INSTANCES_FILE

    def __init__(self, task: str | None = "push_red", render_mode: str | None = "rgb_array",
                 render: RenderConfig = RenderConfig(), render_every_repeat: bool = False):
        if task is not None and task not in TASKS:
            raise ValueError(f"unknown RoboDesk task {task!r}; known: {', '.join(TASKS)} (or None)")
        robodesk = _load_robodesk()
        self.task = task
        self.render_mode = render_mode
        self._cfg = render
        # Rendering after each of the 50 repeats (as a wrapper around RoboDesk(action_repeat=1) does)
        # changes nothing the agent sees; it exists to measure what rendering once saves.
        self._render_every_repeat = render_every_repeat
        self.action_repeat = 50
        # reward="dense" makes RoboDesk ask for a task reward after every repeat; that hook latches every
        # button's press (VP²'s success rule checks each repeat) and returns 0: reward is ours.
        self._desk = robodesk.RoboDesk(task="push_red", reward="dense", image_size=render.out_size,
                                       action_repeat=1 if render_every_repeat else self.action_repeat)
        self._desk.render = self._render_image  # RoboDesk's own render calls the removed PIL.Image.ANTIALIAS
        self._desk._get_task_reward = self._latch_presses
        self.task_success = dict.fromkeys(TASKS, False)
        vis = self._desk.physics.model.vis
        vis.quality.shadowsize, vis.quality.offsamples = render.shadow_size, render.msaa
        vis.global_.offwidth = vis.global_.offheight = render.size
        self._camera = None
        self.action_space = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)
        self.observation_space = gym.spaces.Box(0, 255, (render.out_size, render.out_size, 3), np.uint8)
        self._instances: dict[str, np.ndarray] | None = None
        self._obs: np.ndarray | None = None
        self.goal: np.ndarray | None = None
        self.instance: int | None = None

    # -- physics -----------------------------------------------------------------------------
    @property
    def physics(self):
        return self._desk.physics

    def sample_start(self, rng: np.random.Generator) -> np.ndarray:
        """A random start state (qpos): objects and arm placed at random around RoboDesk's defaults."""
        p = self.physics
        p.reset()
        q = p.named.data.qpos
        q["drawer_joint"] -= 0.10 * rng.random()
        q["slide_joint"] += 0.20 * rng.random()
        q["flat_block"][:2] += (0.3 * rng.random(), 0.07 * rng.random())
        q["ball"][:2] += (0.48 * rng.random(), 0.08 * rng.random())
        q["upright_block"][:2] += (0.3 * rng.random() + 0.05, 0.05 * rng.random())
        low, high = p.model.actuator_ctrlrange[:9].T
        p.data.qpos[:9] = _ARM_HOME + 0.15 * rng.uniform(low, high)
        return p.data.qpos.copy()

    def start_from(self, qpos: np.ndarray) -> np.ndarray:
        """Start an episode from the state ``qpos`` at rest; returns the first observation."""
        p, desk = self.physics, self._desk
        p.reset()
        p.data.qpos[:] = qpos
        p.data.qvel[:] = 0
        p.forward()
        desk.physics_copy.data.qpos[:] = p.data.qpos[:]
        desk.num_steps = 0
        self.task_success = dict.fromkeys(TASKS, False)
        for name in ("ball", "upright_block", "flat_block"):
            desk.original_pos[name] = p.named.data.xpos[name].copy()
        self._steps = 0
        self._obs = self._render_image()
        return self._obs

    def button_down(self, task: str) -> bool:
        """Whether ``task``'s button is held down now."""
        return bool(self.physics.named.data.qpos[f"{button_of(task)}_light"][0] < SUCCESS_QPOS)

    def button_position(self, task: str) -> np.ndarray:
        return self.physics.named.data.xpos[f"{button_of(task)}_button"].copy()

    def _latch_presses(self, *_) -> float:
        for task in TASKS:
            self.task_success[task] = self.task_success[task] or self.button_down(task)
        return 0.0

    @property
    def success(self) -> bool:
        """The task's latched success (False without a task)."""
        return self.task is not None and self.task_success[self.task]

    @property
    def pressed(self) -> bool:
        """The task's button is held down now."""
        return self.task is not None and self.button_down(self.task)

    @property
    def end_effector(self) -> np.ndarray:
        return self.physics.named.data.site_xpos["end_effector"].copy()

    @property
    def button(self) -> np.ndarray:
        """The task's button position."""
        return self.button_position(self.task)

    def get_state(self) -> np.ndarray:
        """The full simulator state plus episode counters, for :meth:`set_state` on a copy of this env."""
        import mujoco
        m, d, spec = self.physics.model.ptr, self.physics.data.ptr, mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(m, spec))
        mujoco.mj_getState(m, d, state, spec)
        latched = [float(self.task_success[t]) for t in TASKS]
        return np.concatenate([state, latched, [float(self._steps)]])

    def set_state(self, state: np.ndarray, render: bool = True) -> None:
        """Restore a :meth:`get_state`; ``render=False`` skips rendering the restored frame (the next
        ``step`` renders anyway)."""
        import mujoco
        k = len(TASKS) + 1
        mujoco.mj_setState(self.physics.model.ptr, self.physics.data.ptr, np.asarray(state[:-k], np.float64),
                           mujoco.mjtState.mjSTATE_INTEGRATION)
        self.physics.forward()
        self._desk.physics_copy.data.qpos[:] = self.physics.data.qpos[:]
        self.task_success = {t: bool(v) for t, v in zip(TASKS, state[-k:-1])}
        self._steps = int(state[-1])
        if render:
            self._obs = self._render_image()

    # -- rendering ---------------------------------------------------------------------------
    def _render_image(self, *_, **__) -> np.ndarray:
        cfg = self._cfg
        if self._camera is None:
            self._camera = self._make_camera()
        image = self._camera.render()
        image = Image.fromarray(image).crop(cfg.crop_box).resize((cfg.out_size, cfg.out_size), Image.LANCZOS)
        return np.asarray(image)

    def _make_camera(self):
        import mujoco
        from dm_control.mujoco import Camera
        cfg = self._cfg
        try:
            camera = Camera(physics=self.physics, height=cfg.size, width=cfg.size, camera_id=-1)
        except Exception as e:  # noqa: BLE001 - any GL failure becomes one actionable line
            backend = os.environ.get("MUJOCO_GL")
            raise RuntimeError(f"MuJoCo cannot render with MUJOCO_GL={backend} ({type(e).__name__}: {e}); "
                               "install EGL (apt-get install libegl1 libgl1-mesa-dri) or set MUJOCO_GL=osmesa") from None
        cam = camera._render_camera  # dm_control exposes the free camera only this way
        cam.distance, cam.azimuth, cam.elevation = cfg.distance, cfg.azimuth, cfg.elevation
        cam.lookat[:] = cfg.lookat
        camera._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = int(cfg.reflection)
        return camera

    def render(self) -> np.ndarray | None:
        return None if self.render_mode != "rgb_array" else self._obs

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        info: dict = {}
        self.instance = options.get("instance")
        if self.instance is not None:
            if self._instances is None:
                self._instances = load_instances(self.instances_file)
            n = len(self._instances["seeds"])
            if not isinstance(self.instance, (int, np.integer)) or not 0 <= self.instance < n:
                raise ValueError(f"instance must be an int in [0, {n}), got {self.instance!r}")
            qpos = self._instances["qpos"][self.instance]
            self.goal = self._goal(self._instances["goals"][self.instance])
            if self.goal is not None:
                info["goal"] = self.goal
        else:
            qpos, self.goal = self.sample_start(self.np_random), None
        self.start_from(qpos)
        info.update(success=False, instance=-1 if self.instance is None else int(self.instance),
                    task_success=dict(self.task_success))
        return self._obs, info

    def _goal(self, goals: np.ndarray) -> np.ndarray | None:
        """This task's goal image from an instance's ``[task, H, W, 3]`` goals."""
        return None if self.task is None else goals[TASKS.index(self.task)]

    def step(self, action):
        action = check_box_action(action, self.action_space)
        desk, before = self._desk, self.success
        if self._render_every_repeat:
            obs = [desk.step(action) for _ in range(self.action_repeat)][-1][0]
        else:
            obs = desk.step(action)[0]  # 50 repeats of IK + physics, one render
        self._steps += 1
        self._obs = obs["image"]
        distance = np.nan if self.task is None else float(np.linalg.norm(self.button - self.end_effector))
        info = {"success": self.success, "instance": -1 if self.instance is None else int(self.instance),
                "distance": distance, "task_success": dict(self.task_success)}
        return self._obs, float(self.success and not before), False, False, info

    def close(self):
        if self._camera is not None:
            self._camera._scene.free()
            self._camera = None


class PushRedEnv(RoboDeskEnv):
    """``vidit/PushRed-v0``: the push_red task with its own shipped instances (goal images ``[H, W, 3]``)."""

    instances_file = INSTANCES_FILE

    def __init__(self, render_mode: str | None = "rgb_array", render: RenderConfig = RenderConfig(),
                 render_every_repeat: bool = False):
        super().__init__("push_red", render_mode, render, render_every_repeat)

    def _goal(self, goals: np.ndarray) -> np.ndarray:
        return goals
