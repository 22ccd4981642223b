"""Scripted experts for the simulated tasks: phase machines that output absolute EE targets for SimEnv.

Each step the expert picks a small Cartesian move (a P-controller on position, capped in speed, plus tilt and yaw
corrections) and returns ``current pose + move``; under the absolute OSC controller that is the same command as
robosuite's delta mode with ``goal_update_mode="achieved"``, so the recorded motions look like teleoperation.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
from transforms3d.quaternions import quat2mat

from ..model.layout import ONE_ARM

POS_SCALE, ROT_SCALE = 0.05, 0.5  # metres / radians per unit command (robosuite's Panda OSC output range)


def _wrap(a: float, period: float) -> float:
    return (a + period / 2) % period - period / 2


def _yaw(R: np.ndarray) -> float:
    return float(np.arctan2(R[1, 0], R[0, 0]))


class LiftExpert:
    """approach above the object -> descend -> close -> lift; retries when the object does not come along."""

    def __init__(self, obj: str = "cube", max_speed: float = 0.5, hover: float = 0.08, lift_height: float = 0.15,
                 close_steps: int = 12, noise: float = 0.0, max_retries: int = 2, seed: int = 0):
        self.obj, self.max_speed, self.hover, self.lift_height = obj, max_speed, hover, lift_height
        self.close_steps, self.noise, self.max_retries = close_steps, noise, max_retries
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        self.phase, self.t_phase, self.retries, self.lift_goal = "approach", 0, 0, None

    def _move(self, eef, goal, speed=None) -> np.ndarray:
        speed = self.max_speed if speed is None else speed
        d = 0.6 * (goal - eef) / POS_SCALE
        n = np.abs(d).max()
        return d * speed / n if n > speed else d

    def _orientation(self, R: np.ndarray, obj_quat_xyzw: np.ndarray) -> tuple[np.ndarray, float]:
        """Keep the gripper pointing down and its fingers across the cube (the nearest of the 4 symmetric yaws)."""
        cube_yaw = _yaw(Rotation.from_quat(obj_quat_xyzw).as_matrix())
        yaw_err = min((_wrap(cube_yaw + k * np.pi / 2 - _yaw(R), 2 * np.pi) for k in range(4)), key=abs)
        tilt = np.cross(R[:, 2], [0.0, 0.0, -1.0])
        return np.clip(np.array([tilt[0], tilt[1], yaw_err]) / ROT_SCALE * 0.8, -0.5, 0.5), yaw_err

    def command(self, state: np.ndarray, objects: dict) -> np.ndarray:
        """Robosuite-style delta command in [-1, 1]^7 (dxyz, drot, grip)."""
        eef, R = ONE_ARM.position(state).astype(np.float64), quat2mat(ONE_ARM.quaternion(state))
        pose = objects[self.obj]
        cube = pose[:3]
        a = np.zeros(7)
        a[3:6], yaw_err = self._orientation(R, pose[3:7])
        self.t_phase += 1
        if self.phase == "approach":
            goal = cube + [0, 0, self.hover]
            a[:3], a[6] = self._move(eef, goal), -1
            if np.linalg.norm(goal - eef) < 0.01 and abs(yaw_err) < 0.1:
                self.phase, self.t_phase = "descend", 0
        elif self.phase == "descend":
            goal = cube + [0, 0, -0.005]
            a[:3], a[6] = self._move(eef, goal, 0.3), -1
            if np.linalg.norm(goal - eef) < 0.008 or self.t_phase > 40:
                self.phase, self.t_phase = "close", 0
        elif self.phase == "close":
            a[:3], a[6] = self._move(eef, cube + [0, 0, -0.005], 0.1), 1
            if self.t_phase >= self.close_steps:
                self.phase, self.t_phase, self.lift_goal = "lift", 0, eef + [0, 0, self.lift_height]
        else:  # lift; start over if the object stayed on the table
            a[:3], a[6] = self._move(eef, self.lift_goal, 0.4), 1
            if eef[2] - cube[2] > 0.05 and self.t_phase > 5 and self.retries < self.max_retries:
                self.phase, self.t_phase = "approach", 0
                self.retries += 1
        if self.noise > 0:
            a[:6] += self.rng.normal(0.0, self.noise, 6)
        return np.clip(a, -1, 1)

    def __call__(self, state: np.ndarray, objects: dict) -> np.ndarray:
        """Absolute EE target [xyz, rotvec, grip] for SimEnv.step."""
        return command_to_target(state, self.command(state, objects))


class StackExpert(LiftExpert):
    """Lift cube A, carry it over cube B, lower it until it rests 4 mm above B's top, release and back off."""

    def __init__(self, **kw):
        super().__init__(obj="cubeA", **kw)
        self.grasp_offset = None

    def _orientation(self, R, obj_quat_xyzw):
        """Of the 4 symmetric yaws, the one whose fingers (EE y) are across the A -> B line: the open fingers then
        never sweep cube B, which can be only 5 cm away."""
        cube_yaw = _yaw(Rotation.from_quat(obj_quat_xyzw).as_matrix())
        errs = [_wrap(cube_yaw + k * np.pi / 2 - _yaw(R), 2 * np.pi) for k in range(4)]
        d = self._b[:2] - self._a[:2]
        d = d / (np.linalg.norm(d) + 1e-9)
        cur = _yaw(R)
        yaw_err = min(errs, key=lambda e: abs(np.dot([-np.sin(cur + e), np.cos(cur + e)], d)) + 0.2 * abs(e))
        tilt = np.cross(R[:, 2], [0.0, 0.0, -1.0])
        return np.clip(np.array([tilt[0], tilt[1], yaw_err]) / ROT_SCALE * 0.8, -0.5, 0.5), yaw_err

    def command(self, state, objects):
        self._a, self._b = objects["cubeA"][:3], objects["cubeB"][:3]
        if self.phase in ("approach", "descend", "close"):
            a = super().command(state, objects)
            if self.phase == "lift":  # the grasp just closed: carry instead of lifting in place
                self.phase, self.t_phase = "carry_up", 0
                self.grasp_offset = ONE_ARM.position(state) - self._a
            return a
        eef, R = ONE_ARM.position(state).astype(np.float64), quat2mat(ONE_ARM.quaternion(state))
        a = np.zeros(7)
        a[3:6], yaw_err = self._orientation(R, objects["cubeA"][3:7])
        a[6] = 1
        self.t_phase += 1
        above_b = self._b + self.grasp_offset
        if self.phase in ("carry_up", "carry") and np.linalg.norm(eef - self._a) > 0.05:
            self.phase, self.t_phase = "approach", 0  # dropped it: start over
        elif self.phase == "carry_up":
            a[:3] = self._move(eef, np.array([eef[0], eef[1], self._b[2] + 0.12]), 0.4)
            if eef[2] > self._b[2] + 0.11:
                self.phase, self.t_phase = "carry", 0
        elif self.phase == "carry":
            a[:3] = self._move(eef, np.array([above_b[0], above_b[1], self._b[2] + 0.12]), 0.4)
            if np.linalg.norm(self._a[:2] - self._b[:2]) < 0.006 and abs(yaw_err) < 0.1:
                self.phase, self.t_phase = "lower", 0
        elif self.phase == "lower":
            a[:3] = self._move(eef, above_b + [0, 0, 0.049], 0.25)
            if self._a[2] - self._b[2] < 0.049 or self.t_phase > 60:
                self.phase, self.t_phase = "release", 0
        elif self.phase == "release":
            a[6] = -1
            if self.t_phase >= 8:
                self.phase, self.t_phase = "retreat", 0
        else:  # retreat
            a[:3], a[6] = self._move(eef, np.array([eef[0], eef[1], self._b[2] + 0.15]), 0.4), -1
        if self.noise > 0:
            a[:6] += self.rng.normal(0.0, self.noise, 6)
        return np.clip(a, -1, 1)


EXPERTS = {"Lift": LiftExpert, "Stack": StackExpert}


def make_expert(task: str, **kw):
    if task not in EXPERTS:
        raise ValueError(f"no scripted expert for task {task!r}; have {sorted(EXPERTS)}")
    return EXPERTS[task](**kw)


def command_to_target(state: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A delta command applied to the measured pose: position + 5 cm/unit, rotation left-multiplied, 0.5 rad/unit."""
    R = Rotation.from_rotvec(a[3:6] * ROT_SCALE) * Rotation.from_quat(ONE_ARM.quaternion(state), scalar_first=True)
    return np.concatenate([ONE_ARM.position(state) + a[:3] * POS_SCALE, R.as_rotvec(), [a[6]]])
