"""End-effector poses -> arm joint positions through the arm's URDF (pinocchio; no rclpy).

``UrdfIK`` solves a whole action chunk with damped least squares (Levenberg-Marquardt on the SE(3) log error, the
method of pinocchio's own IK example), projected onto the URDF's joint limits after every iteration. Step 0 is
seeded from the measured joints and every later step from the solution before it, so consecutive solutions stay on
one branch; a step that fails, or that jumps further than ``max_joint_jump`` from its predecessor, rejects the whole
chunk with ``IKError`` naming the step and the reason. Nothing is ever returned partially.

Frames: poses come in the policy's base frame (e.g. ``world``); ``base_pose`` is that frame -> the URDF root, and
``tip_offset`` is the URDF ``tip_frame`` -> the controlled point (e.g. the simulated Panda's grip site). Poses are
[x, y, z, qw, qx, qy, qz] throughout, as the model's state.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..model.layout import ONE_ARM
from .safety import ChunkRejected

IDENTITY_POSE = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
SEED_LIMIT_SLACK = 0.01  # rad: measured joints may sit this far past a limit (a position-controlled joint overshoots)


class IKError(ChunkRejected):
    """The chunk has no acceptable joint solution; the message names the step and the reason."""


@dataclass
class GripperMap:
    """How the model's gripper command (-1 open .. +1 closed) becomes one extra trajectory joint.

    The command maps linearly onto [open_position, closed_position] of ``joint`` (e.g. a Panda finger joint:
    0.04 m open, 0.0 m closed)."""

    joint: str
    open_position: float
    closed_position: float

    def validate(self) -> "GripperMap":
        if not self.joint:
            raise ValueError("GripperMap.joint must name the gripper joint")
        if not (np.isfinite(self.open_position) and np.isfinite(self.closed_position)):
            raise ValueError("GripperMap open/closed positions must be finite")
        if self.open_position == self.closed_position:
            raise ValueError("GripperMap open_position and closed_position must differ")
        return self

    def to_joint(self, command: np.ndarray) -> np.ndarray:
        c = (np.clip(command, -1.0, 1.0) + 1.0) / 2.0
        return self.open_position + c * (self.closed_position - self.open_position)

    def to_command(self, position: np.ndarray) -> np.ndarray:
        c = (np.asarray(position, np.float64) - self.open_position) / (self.closed_position - self.open_position)
        return np.clip(2.0 * c - 1.0, -1.0, 1.0)


@dataclass
class IKConfig:
    joint_names: list[str]  # the arm's joints, in trajectory order (every other URDF joint is locked)
    tip_frame: str  # URDF link/frame whose pose (times tip_offset) is the controlled end-effector pose
    tip_offset: list[float] = field(default_factory=lambda: list(IDENTITY_POSE))  # tip_frame -> EE [xyz, wxyz]
    base_pose: list[float] = field(default_factory=lambda: list(IDENTITY_POSE))  # policy base -> URDF root
    gripper: GripperMap | None = None  # None: the trajectory carries the arm joints only
    damping: float = 1e-4  # lambda^2 of the damped least-squares step (regularises near singularities)
    max_iterations: int = 200  # per step
    position_tolerance: float = 1e-4  # m, residual accepted as solved
    orientation_tolerance: float = 1e-3  # rad
    max_joint_jump: float = 0.5  # rad; a larger change of any joint between consecutive steps is a branch flip
    singular_value_min: float = 1e-3  # smallest Jacobian singular value below which a failure is "singular"
    max_iteration_step: float = 0.2  # rad; larger DLS steps are scaled down (keeps far seeds from diverging)

    def validate(self) -> "IKConfig":
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"IKConfig.joint_names must be non-empty and unique, got {self.joint_names}")
        if not self.tip_frame:
            raise ValueError("IKConfig.tip_frame must name a URDF frame")
        for name in ("tip_offset", "base_pose"):
            v = np.asarray(getattr(self, name), np.float64)
            if v.shape != (7,) or not np.all(np.isfinite(v)) or abs(np.linalg.norm(v[3:]) - 1.0) > 1e-6:
                raise ValueError(f"IKConfig.{name} must be [x, y, z, qw, qx, qy, qz] with a unit quaternion, got "
                                 f"{getattr(self, name)}")
        if self.gripper is not None:
            self.gripper.validate()
            if self.gripper.joint in self.joint_names:
                raise ValueError(f"IKConfig: gripper joint {self.gripper.joint!r} is also an arm joint")
        if not (self.damping > 0 and self.max_iterations >= 1 and self.position_tolerance > 0
                and self.orientation_tolerance > 0 and self.max_joint_jump > 0 and self.singular_value_min >= 0
                and self.max_iteration_step > 0):
            raise ValueError("IKConfig: damping, tolerances, max_joint_jump, max_iteration_step > 0, "
                             "max_iterations >= 1, singular_value_min >= 0")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "IKConfig":
        d = dict(d)
        if d.get("gripper") is not None and not isinstance(d["gripper"], GripperMap):
            d["gripper"] = GripperMap(**d["gripper"])
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"IKConfig: unknown keys {sorted(unknown)}")
        return cls(**d).validate()


def ik_config_from_params(p: dict) -> IKConfig:
    """IKConfig from the node's flat parameters (config/panda_joint.yaml): ``joint_names`` (the trajectory's, the
    gripper joint among them or not), ``gripper_joint``, ``ik_tip_frame``, ``ik_tip_offset``, ``ik_base_pose``,
    ``ik_gripper_open``, ``ik_gripper_closed``. The gripper joint, when in joint_names, must be the last one."""
    names, grip = list(p["joint_names"]), p.get("gripper_joint", "")
    gripper = None
    if grip and grip in names:
        if names[-1] != grip:
            raise ValueError(f"gripper_joint {grip!r} must be the last of joint_names {names}")
        names = names[:-1]
        gripper = GripperMap(grip, float(p["ik_gripper_open"]), float(p["ik_gripper_closed"]))
    return IKConfig(joint_names=names, tip_frame=p["ik_tip_frame"], tip_offset=list(p["ik_tip_offset"]),
                    base_pose=list(p["ik_base_pose"]), gripper=gripper).validate()


def _se3(pose) -> "pin.SE3":  # noqa: F821
    import pinocchio as pin
    p = np.asarray(pose, np.float64)
    return pin.SE3(pin.Quaternion(p[3], p[4], p[5], p[6]).normalized().matrix(), p[:3].copy())


def _pose(M) -> np.ndarray:
    import pinocchio as pin
    q = pin.Quaternion(M.rotation)  # coeffs() is x, y, z, w
    wxyz = np.array([q.w, q.x, q.y, q.z])
    return np.concatenate([M.translation, wxyz if wxyz[0] >= 0 else -wxyz])


class UrdfIK:
    """Forward and inverse kinematics of one arm described by a URDF string."""

    def __init__(self, urdf_xml: str, cfg: IKConfig):
        import pinocchio as pin
        self.cfg = cfg.validate()
        try:
            full = pin.buildModelFromXML(urdf_xml)
        except Exception as e:  # pinocchio raises a bare RuntimeError/ValueError on malformed XML
            raise ValueError(f"URDF could not be parsed: {e}") from e
        names = list(full.names)
        missing = [j for j in cfg.joint_names if j not in names]
        if missing:
            raise ValueError(f"IKConfig.joint_names {missing} are not joints of the URDF (it has {names[1:]})")
        for j in cfg.joint_names:
            if full.joints[full.getJointId(j)].nq != 1:
                raise ValueError(f"joint {j!r} is not a single-DoF joint")
        lock = [full.getJointId(n) for n in names[1:] if n not in cfg.joint_names]
        self.model = pin.buildReducedModel(full, lock, pin.neutral(full))
        if not self.model.existFrame(cfg.tip_frame):
            raise ValueError(f"IKConfig.tip_frame {cfg.tip_frame!r} is not a frame of the URDF")
        tip = self.model.frames[self.model.getFrameId(cfg.tip_frame)]
        self.tip_id = self.model.addFrame(pin.Frame("xwam_ik_tip", tip.parentJoint, tip.parentFrame,
                                                    tip.placement * _se3(cfg.tip_offset), pin.FrameType.OP_FRAME))
        self.data = self.model.createData()
        # configuration index of each arm joint, in the order of cfg.joint_names
        self.q_index = np.array([self.model.joints[self.model.getJointId(j)].idx_q for j in cfg.joint_names])
        self.lower = np.asarray(self.model.lowerPositionLimit)[self.q_index]
        self.upper = np.asarray(self.model.upperPositionLimit)[self.q_index]
        self.base = _se3(cfg.base_pose)
        self.base_inv = self.base.inverse()

    # --- names and sizes ---------------------------------------------------------------------------------------------
    @property
    def arm_joint_names(self) -> list[str]:
        return list(self.cfg.joint_names)

    @property
    def joint_names(self) -> list[str]:
        """The trajectory's joints: the arm's, then the gripper joint when one is mapped."""
        return self.arm_joint_names + ([self.cfg.gripper.joint] if self.cfg.gripper else [])

    # --- kinematics --------------------------------------------------------------------------------------------------
    def _q_model(self, q_arm: np.ndarray) -> np.ndarray:
        q = np.zeros(self.model.nq)
        q[self.q_index] = q_arm
        return q

    def _arm(self, q, what: str) -> np.ndarray:
        q = np.asarray(q, np.float64).reshape(-1)
        n = len(self.cfg.joint_names)
        if q.shape[0] not in (n, len(self.joint_names)):
            raise ValueError(f"{what} has {q.shape[0]} values; expected {n} arm joints {self.arm_joint_names}"
                             + (f" or {len(self.joint_names)} with the gripper" if self.cfg.gripper else ""))
        if not np.all(np.isfinite(q)):
            raise ValueError(f"{what} contains NaN or inf")
        return q[:n]

    def _tip(self, q_model: np.ndarray):
        import pinocchio as pin
        pin.forwardKinematics(self.model, self.data, q_model)
        return pin.updateFramePlacement(self.model, self.data, self.tip_id)

    def fk(self, q) -> np.ndarray:
        """Arm joints [J] (optionally followed by the gripper joint) -> EE pose [x, y, z, qw, qx, qy, qz] in the
        policy's base frame."""
        return _pose(self.base * self._tip(self._q_model(self._arm(q, "fk joints"))))

    def solve(self, pose, q_seed) -> np.ndarray:
        """One EE pose [7] (xyz, quat wxyz) -> arm joints [J], seeded from ``q_seed``; IKError if unsolved."""
        q, reason = self._solve_one(self.base_inv * _se3(pose), self._q_model(self._arm(q_seed, "q_seed")))
        if reason:
            raise IKError(f"IK failed: {reason}")
        return q[self.q_index]

    def solve_chunk(self, ee_poses, q_seed) -> np.ndarray:
        """[K, 8] EE poses (xyz, quat wxyz, gripper command) -> [K, len(joint_names)] joint positions.

        Step 0 starts from ``q_seed`` (the measured joints), step k from step k-1. Raises IKError naming the first
        step that is unreachable, singular, blocked by a joint limit, or a jump of more than max_joint_jump."""
        poses = np.asarray(ee_poses, np.float64)
        if poses.ndim != 2 or poses.shape[1] != ONE_ARM.state_size or len(poses) == 0:
            raise IKError(f"IK expects [K, {ONE_ARM.state_size}] poses of one arm (xyz, quat wxyz, gripper; "
                          f"StateLayout(arms=1)), got shape {poses.shape}")
        if not np.all(np.isfinite(poses)):
            raise IKError("IK input poses contain NaN or inf")
        prev = self._arm(q_seed, "q_seed")
        outside = (prev < self.lower - SEED_LIMIT_SLACK) | (prev > self.upper + SEED_LIMIT_SLACK)
        if np.any(outside):
            bad = [self.cfg.joint_names[i] for i in np.flatnonzero(outside)]
            raise IKError(f"IK seed (the measured joints) is outside the URDF joint limits on {bad}")
        q = self._q_model(np.clip(prev, self.lower, self.upper))
        out = np.empty((len(poses), len(self.joint_names)))
        for k, p in enumerate(poses):
            q, reason = self._solve_one(self.base_inv * _se3(ONE_ARM.pose(p)), q)
            if reason:
                raise IKError(f"IK failed at chunk step {k} of {len(poses)}: {reason}")
            arm = q[self.q_index]
            jump = np.abs(arm - prev)
            if np.max(jump) > self.cfg.max_joint_jump:
                j = int(np.argmax(jump))
                raise IKError(f"IK failed at chunk step {k} of {len(poses)}: discontinuity, joint "
                              f"{self.cfg.joint_names[j]} jumps {jump[j]:.3f} rad from the "
                              f"{'measured joints' if k == 0 else 'previous step'} "
                              f"(limit {self.cfg.max_joint_jump} rad; a branch flip)")
            out[k, : len(arm)] = arm
            prev = arm
        if self.cfg.gripper is not None:
            out[:, -1] = self.cfg.gripper.to_joint(ONE_ARM.gripper(poses))
        return out

    def _solve_one(self, target, q: np.ndarray) -> tuple[np.ndarray, str]:
        """Damped least squares from ``q`` towards ``target`` (URDF-root frame); -> (q, "" or why it failed)."""
        import pinocchio as pin
        m, cfg = self.model, self.cfg
        lo, hi = m.lowerPositionLimit, m.upperPositionLimit
        q = q.copy()
        for _ in range(cfg.max_iterations):
            err_M = self._tip(q).actInv(target)  # tip -> target, in the tip frame
            err = pin.log6(err_M).vector
            if np.linalg.norm(err_M.translation) < cfg.position_tolerance and \
                    np.linalg.norm(err[3:]) < cfg.orientation_tolerance:
                return q, ""
            J = pin.Jlog6(err_M.inverse()) @ pin.computeFrameJacobian(m, self.data, q, self.tip_id, pin.LOCAL)
            # J maps dq to the change of -err; solve (J J^T + lambda I) y = err, dq = J^T y
            dq = J.T @ np.linalg.solve(J @ J.T + cfg.damping * np.eye(6), err)
            dq *= min(1.0, cfg.max_iteration_step / max(np.max(np.abs(dq)), 1e-12))
            q = np.clip(pin.integrate(m, q, dq), lo, hi)
        return q, self._why(q, target)

    def _why(self, q: np.ndarray, target) -> str:
        import pinocchio as pin
        err_M = self._tip(q).actInv(target)
        pos, ang = np.linalg.norm(err_M.translation), np.linalg.norm(pin.log3(err_M.rotation))
        residual = f"residual {pos * 1e3:.1f} mm / {np.degrees(ang):.2f} deg"
        J = pin.computeFrameJacobian(self.model, self.data, q, self.tip_id, pin.LOCAL)[:, self.q_index]
        at_limit = [self.cfg.joint_names[i] for i in range(len(self.q_index))
                    if min(q[self.q_index[i]] - self.lower[i], self.upper[i] - q[self.q_index[i]]) < 1e-6]
        if at_limit:
            return f"joint limit: {at_limit} at their URDF limits, {residual}"
        if np.linalg.svd(J, compute_uv=False)[-1] < self.cfg.singular_value_min:
            return f"singular: the arm is at a kinematic singularity, {residual}"
        return f"unreachable: {residual} after {self.cfg.max_iterations} iterations"


def urdf_from_package(relative: str = "robots/panda_description/urdf/panda.urdf",
                      distribution: str = "example-robot-data") -> str:
    """The text of a URDF shipped by a pip package (by default example-robot-data's Panda)."""
    from importlib import metadata
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError as e:
        raise FileNotFoundError(f"pip package {distribution!r} is not installed (pip install {distribution})") from e
    for f in files:
        if str(f).replace("\\", "/").endswith(relative):
            return f.locate().read_text()
    raise FileNotFoundError(f"{relative} is not part of pip package {distribution!r}")
