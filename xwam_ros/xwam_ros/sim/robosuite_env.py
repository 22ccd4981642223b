"""robosuite's Panda manipulation tasks as an X-WAM robot: three RGB-D cameras, Cartesian pose targets, no ROS.

``control="cartesian"``: the arm runs robosuite's operational-space controller in *absolute* mode with world-frame
targets, so it behaves like a real arm under a Cartesian impedance controller: a target pose in, the measured pose
out. ``control="joint"``: robosuite's joint-position controller in absolute mode, as a joint_trajectory_controller
with a position interface: the seven Panda joint positions in (plus the gripper command), the joints and the pose
out. Everything is in the world frame (robosuite's Lift/Stack tables are axis-aligned with it); ``base_frame`` names
it for ROS.

Rendering on a CPU is dominated by triangle count, MSAA and the reflection pass (measured in docs/simulation.md),
so by default the arm is drawn with its collision meshes and those passes are off: ~25 ms per step for three
128x128 RGB-D cameras instead of ~200 ms. The robot, its dynamics and the task are unchanged.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..model.layout import ONE_ARM, arm_state_from

os.environ.setdefault("MUJOCO_GL", "egl")  # Mesa llvmpipe through EGL; osmesa is ~1.5x slower

# Lift's table top is at z = 0.8 m in the world; the wrist camera sees 4 cm - 0.4 m, the static ones up to ~4.5 m.
GRIP_OPEN_WIDTH = 0.08  # Panda finger separation when fully open (m)


@dataclass
class SimConfig:
    task: str = "Lift"  # "Lift" | "Stack"
    cameras: tuple = ("agentview", "sideview", "robot0_eye_in_hand")  # robosuite camera names
    view_names: tuple = ("agentview", "sideview", "eye_in_hand")  # our names, in the model's view order
    render_size: int = 128  # square renders; the model resizes (render cost does not depend on size)
    control_hz: float = 20.0
    horizon: int = 200  # control steps before an episode is cut
    placement: float = 0.05  # object xy is uniform in +-placement metres around the table centre
    render: str = "lowpoly"  # "lowpoly" | "fast" | "default"
    sideview_pull: float = 0.6  # move the side camera to this fraction of its distance to the table centre
    instruction: str = ""  # "" = the task's default instruction
    control: str = "cartesian"  # "cartesian" (OSC pose targets) | "joint" (joint-position targets)
    joint_kp: float = 150.0  # joint-position gain (1/s^2 through the mass matrix); the OSC's kp is 150 too

    def validate(self) -> "SimConfig":
        if self.control not in ("cartesian", "joint"):
            raise ValueError(f"SimConfig.control must be cartesian or joint, got {self.control!r}")
        if not 0 < self.joint_kp <= 300:  # robosuite's kp_limits
            raise ValueError(f"SimConfig.joint_kp must be in (0, 300], got {self.joint_kp}")
        if self.task not in INSTRUCTIONS:
            raise ValueError(f"SimConfig.task: {self.task!r} is not one of {sorted(INSTRUCTIONS)}")
        if len(self.cameras) != len(self.view_names) or not self.cameras:
            raise ValueError(f"SimConfig: {len(self.cameras)} cameras but {len(self.view_names)} view names")
        if self.render not in ("lowpoly", "fast", "default"):
            raise ValueError(f"SimConfig.render must be lowpoly, fast or default, got {self.render!r}")
        if not 0 < self.sideview_pull <= 1 or self.placement < 0 or self.render_size < 16 or self.horizon < 1:
            raise ValueError("SimConfig: sideview_pull in (0, 1], placement >= 0, render_size >= 16, horizon >= 1")
        return self

    @property
    def dt(self) -> float:
        return 1.0 / self.control_hz


INSTRUCTIONS = {"Lift": "lift the cube", "Stack": "stack the red cube on the green cube"}


@dataclass
class SimFrame:
    """One observation: per view RGB [H, W, 3] uint8, metric z-depth [H, W] float32, K [3, 3], camera->world [4, 4]."""

    t: int
    rgb: dict
    depth: dict
    K: dict
    T_world_cam: dict
    state: np.ndarray  # [8] one arm (StateLayout): EE xyz, quat wxyz, gripper in [-1 open, +1 closed]
    success: bool
    objects: dict  # task object poses (for experts and metrics only; the policy never sees them)


# --- rendering speed-ups ---------------------------------------------------------------------------------------------
_RENDER = {"mode": "lowpoly"}
_PATCHED = {"done": False}


def _install_render_patch() -> None:
    """Patch robosuite's render context once: MSAA off before the GL context exists, then the costly passes off."""
    if _PATCHED["done"]:
        return
    import mujoco
    import robosuite.utils.binding_utils as bu

    original = bu.MjRenderContext.__init__

    def init(self, sim, *args, **kwargs):
        m = sim.model._model
        mode = _RENDER["mode"]
        if mode != "default":
            m.vis.quality.offsamples = 0
        if mode == "lowpoly":  # group 1 is drawn; 3 is hidden
            for g in range(m.ngeom):
                name = m.geom(g).name
                if name.startswith("robot0_g") and name.endswith("_vis") and m.geom_group[g] == 1:
                    m.geom_group[g] = 3
                elif name.startswith("robot0_") and name.endswith("_collision") and m.geom_group[g] == 0:
                    m.geom_group[g] = 1
                    m.geom_rgba[g] = [0.92, 0.92, 0.92, 1.0]
                elif name == "fixed_mount0_pedestal_vis":
                    m.geom_group[g] = 3
        original(self, sim, *args, **kwargs)
        if mode != "default":
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                         mujoco.mjtRndFlag.mjRND_SKYBOX):
                self.scn.flags[flag] = 0

    bu.MjRenderContext.__init__ = init
    _PATCHED["done"] = True


def _quiet_robosuite() -> None:
    import logging
    logging.getLogger("robosuite").setLevel(logging.ERROR)
    try:
        from robosuite.utils.log_utils import ROBOSUITE_DEFAULT_LOGGER
        ROBOSUITE_DEFAULT_LOGGER.setLevel("ERROR")
    except ImportError:
        pass


def gripper_state(finger_qpos: np.ndarray) -> float:
    """Finger separation mapped to the gripper command's range: -1 fully open, +1 fully closed."""
    width = float(finger_qpos[0] - finger_qpos[1])
    return float(np.clip(1.0 - 2.0 * width / GRIP_OPEN_WIDTH, -1.0, 1.0))


def joint_controller_config(kp: float) -> dict:
    """robosuite's JOINT_POSITION part controller taking absolute joint positions (rad), critically damped."""
    return {"type": "JOINT_POSITION", "input_type": "absolute", "input_max": 1, "input_min": -1,
            "output_max": 0.05, "output_min": -0.05, "kp": kp, "damping_ratio": 1, "impedance_mode": "fixed",
            "kp_limits": [0, 300], "damping_ratio_limits": [0, 10], "qpos_limits": None, "interpolation": None,
            "ramp_ratio": 0.2, "gripper": {"type": "GRIP"}}


class SimEnv:
    """A seeded robosuite task stepped with absolute targets: [x, y, z, rotvec(3), grip] (control="cartesian") or
    [q1 .. q7, grip] (control="joint"); grip in [-1 open, +1 closed]."""

    def __init__(self, cfg: SimConfig | None = None, seed: int = 0):
        self.cfg = (cfg or SimConfig()).validate()
        _quiet_robosuite()
        import robosuite as suite
        import robosuite.macros as macros
        from robosuite import load_composite_controller_config
        from robosuite.utils.placement_samplers import UniformRandomSampler

        macros.IMAGE_CONVENTION = "opencv"  # row 0 = top of the image, as ROS images
        _install_render_patch()
        _RENDER["mode"] = self.cfg.render
        ctrl = load_composite_controller_config(robot="Panda")
        if self.cfg.control == "joint":
            ctrl["body_parts"]["right"] = joint_controller_config(self.cfg.joint_kp)
        else:
            arm = ctrl["body_parts"]["right"]
            arm["input_type"], arm["input_ref_frame"] = "absolute", "world"
        kw = {}
        if self.cfg.task == "Lift":  # wider placement than the default +-3 cm needs our own sampler
            p = self.cfg.placement
            kw["placement_initializer"] = UniformRandomSampler(
                name="ObjectSampler", x_range=[-p, p], y_range=[-p, p], rotation=None,
                ensure_object_boundary_in_range=False, ensure_valid_placement=True,
                reference_pos=(0, 0, 0.8), z_offset=0.01, rng=np.random.default_rng(seed))
        s = self.cfg.render_size
        self.env = suite.make(self.cfg.task, robots="Panda", controller_configs=ctrl, has_renderer=False,
                              has_offscreen_renderer=True, use_camera_obs=True, camera_names=list(self.cfg.cameras),
                              camera_heights=s, camera_widths=s, camera_depths=True,
                              control_freq=self.cfg.control_hz, horizon=self.cfg.horizon + 10, ignore_done=True,
                              reward_shaping=False, hard_reset=False, seed=seed, **kw)
        self._pull_sideview()
        self.instruction = self.cfg.instruction or INSTRUCTIONS[self.cfg.task]
        self.t = 0
        self._obs = None

    def _pull_sideview(self) -> None:
        """The stock side camera is so far away that the cube is ~3 px; bring it in along its own axis."""
        if "sideview" not in self.cfg.cameras:
            return
        m = self.env.sim.model
        cid = m.camera_name2id("sideview")
        centre = np.array([0.0, 0.0, 0.85])
        m.cam_pos[cid] = centre + self.cfg.sideview_pull * (m.cam_pos[cid] - centre)

    # --- episode ---------------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> SimFrame:
        if seed is not None:  # placement and cube size follow the env's numpy RNG
            self.env.rng = np.random.default_rng(seed)
            sampler = getattr(self.env, "placement_initializer", None)
            if sampler is not None:
                sampler.rng = self.env.rng
        self._obs = self.env.reset()
        self.t = 0
        return self.frame()

    @property
    def target_size(self) -> int:
        return 8 if self.cfg.control == "joint" else 7

    def step(self, target: np.ndarray) -> SimFrame:
        target = np.asarray(target, np.float64)
        if target.shape != (self.target_size,) or not np.all(np.isfinite(target)):
            what = "7 joints, grip" if self.cfg.control == "joint" else "xyz, rotvec, grip"
            raise ValueError(f"{self.cfg.control} target must be {self.target_size} finite numbers ({what}), "
                             f"got {target}")
        action = target.copy()
        action[-1] = np.clip(action[-1], -1, 1)
        self._obs, *_ = self.env.step(action)
        self.t += 1
        return self.frame()

    def hold_target(self) -> np.ndarray:
        """The target that keeps the arm where it is, with the gripper as it is."""
        from scipy.spatial.transform import Rotation
        s = self.state()
        grip = [np.sign(ONE_ARM.gripper(s)) or -1.0]
        if self.cfg.control == "joint":
            return np.concatenate([self.joint_positions(), grip])
        rotation = Rotation.from_quat(ONE_ARM.quaternion(s), scalar_first=True)
        return np.concatenate([ONE_ARM.position(s), rotation.as_rotvec(), grip])

    def joint_positions(self) -> np.ndarray:
        """The seven arm joints (rad), robosuite's robot0_joint1..7 = the URDF's panda_joint1..7."""
        return np.asarray(self._obs["robot0_joint_pos"], np.float64).copy()

    def finger_positions(self) -> np.ndarray:
        """The two finger joints (m): robosuite's signs, left finger +, right finger -; the URDF's are both +."""
        return np.asarray(self._obs["robot0_gripper_qpos"], np.float64).copy()

    def base_pose(self) -> np.ndarray:
        """World -> the arm's base (the URDF's panda_link0) as [x, y, z, qw, qx, qy, qz]."""
        d = self.env.sim.data._data
        bid = self.env.sim.model._model.body("robot0_base").id
        return np.concatenate([d.xpos[bid], d.xquat[bid]]).astype(np.float64)

    @property
    def done(self) -> bool:
        return self.t >= self.cfg.horizon

    def success(self) -> bool:
        return bool(self.env._check_success())

    # --- observation -----------------------------------------------------------------------------------------------
    def state(self) -> np.ndarray:
        o = self._obs
        # The grip-site frame (xyzw): the frame the OSC controller tracks, so targets and states agree. z = approach.
        q = o["robot0_eef_quat_site"]
        wxyz = np.array([q[3], q[0], q[1], q[2]])
        wxyz = -wxyz if wxyz[0] < 0 else wxyz
        return arm_state_from(o["robot0_eef_pos"], wxyz, gripper_state(o["robot0_gripper_qpos"])).astype(np.float32)

    def frame(self) -> SimFrame:
        from robosuite.utils.camera_utils import (get_camera_extrinsic_matrix, get_camera_intrinsic_matrix,
                                                  get_real_depth_map)
        o, sim, s = self._obs, self.env.sim, self.cfg.render_size
        rgb, depth, K, T = {}, {}, {}, {}
        for cam, view in zip(self.cfg.cameras, self.cfg.view_names):
            rgb[view] = np.ascontiguousarray(o[f"{cam}_image"])
            depth[view] = get_real_depth_map(sim, o[f"{cam}_depth"])[..., 0].astype(np.float32)
            K[view] = get_camera_intrinsic_matrix(sim, cam, s, s)
            T[view] = get_camera_extrinsic_matrix(sim, cam)  # OpenCV optical axes; the wrist camera moves
        objects = {k[:-4]: np.concatenate([o[k], o[k[:-4] + "_quat"]]) for k in o  # pos + quat xyzw
                   if k.endswith("_pos") and k[:-4] + "_quat" in o and not k.startswith("robot")}
        return SimFrame(self.t, rgb, depth, K, T, self.state(), self.success(), objects)

    def close(self) -> None:
        self.env.close()


def run_workers(fn, jobs: list) -> list:
    """``fn(job) -> list of rows`` over jobs, one spawned process per job (one simulator per core is the fastest
    layout: llvmpipe's own threads do not help), or inline for one job; rows of all jobs in one list."""
    if len(jobs) == 1:
        return list(fn(jobs[0]))
    import multiprocessing as mp
    with mp.get_context("spawn").Pool(len(jobs)) as pool:
        return [r for part in pool.map(fn, jobs) for r in part]
