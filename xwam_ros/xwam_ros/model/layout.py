"""The end-effector layout of X-WAM's state and action vectors: ``StateLayout``, the one place that knows it.

Per arm, the state holds 8 values and an end-effector-delta action 7 (X-WAM's convention, the official data's too):

    state   x y z (m, base frame) | quaternion w x y z (w >= 0) | gripper
    action  dx dy dz (m)          | axis-angle rx ry rz (base)  | gripper (a change or a command)

Arms follow each other: the xwam-5b preset's 16-value state is [arm 0 | arm 1], its 14-value actions likewise. A
one-arm robot on a two-arm model fills arm 0's slots and leaves the rest zero (``pad``), as the official data pads
single-arm robots (the training masks leave the padding out of the loss).

Everything here returns numpy views where it can, so writing through ``position(out)[:] = p`` works.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATE_PER_ARM = 8
ACTION_PER_ARM = 7
# inside one arm's state
POSITION, QUATERNION, GRIPPER = slice(0, 3), slice(3, 7), 7
# inside one arm's action
DELTA_POSITION, DELTA_ROTATION, DELTA_GRIPPER = slice(0, 3), slice(3, 6), 6
STATE_NAMES = ("x", "y", "z", "qw", "qx", "qy", "qz", "gripper")
ACTION_NAMES = ("dx", "dy", "dz", "rx", "ry", "rz", "gripper")


def arm_state_from(position, quaternion_wxyz, gripper) -> np.ndarray:
    """One arm's state [..., 8] from its parts (the inverse of ``position`` / ``quaternion`` / ``gripper``)."""
    return np.concatenate([np.asarray(position), np.asarray(quaternion_wxyz), np.asarray(gripper)[..., None]], -1)


def _whole_arms(size: int, per_arm: int, what: str, vector: str, values: str) -> int:
    """The number of arms of a vector of ``size`` values, ``per_arm`` each; a clear error when it is not whole."""
    n = int(size)
    if n <= 0 or n % per_arm:
        raise ValueError(f"{what} is {size}, not a whole number of arms: the {vector} has {per_arm} values per arm "
                         f"({values})")
    return n // per_arm


@dataclass(frozen=True)
class StateLayout:
    """``arms`` end-effector arms, 8 state and 7 action values each (see the module docstring)."""

    arms: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.arms, bool) or not isinstance(self.arms, int) or self.arms < 1:
            raise ValueError(f"StateLayout.arms must be a positive int, got {self.arms!r}")

    # --- construction ------------------------------------------------------------------------------------------------
    @classmethod
    def from_state_dim(cls, state_dim: int, what: str = "state_dim") -> "StateLayout":
        """The layout of a state vector of ``state_dim`` values; ``what`` names the vector in the error."""
        return cls(_whole_arms(state_dim, STATE_PER_ARM, what, "end-effector state",
                               "x y z, quaternion w x y z, gripper"))

    @classmethod
    def from_action_dim(cls, action_dim: int, what: str = "action_dim") -> "StateLayout":
        """The layout of an end-effector-delta action vector of ``action_dim`` values."""
        return cls(_whole_arms(action_dim, ACTION_PER_ARM, what, "end-effector-delta action",
                               "dx dy dz, axis-angle rx ry rz, gripper"))

    @classmethod
    def of(cls, config) -> "StateLayout":
        """The layout of a model config (an XWAMConfig with end-effector actions); checks its action_dim too."""
        if config.action_space != "ee_delta":
            raise ValueError(f"action_space {config.action_space!r} has no end-effector layout (the state is the "
                             "robot's joint positions)")
        layout = cls.from_state_dim(config.state_dim)
        if config.action_dim != layout.action_size:
            raise ValueError(f"action_dim is {config.action_dim} but state_dim {config.state_dim} means {layout} "
                             f"with {layout.action_size} end-effector-delta actions ({ACTION_PER_ARM} per arm)")
        return layout

    # --- sizes and names ---------------------------------------------------------------------------------------------
    @property
    def state_size(self) -> int:
        return STATE_PER_ARM * self.arms

    @property
    def action_size(self) -> int:
        return ACTION_PER_ARM * self.arms

    def state_names(self) -> tuple:
        """Dataset column names: the plain names for one arm, ``arm<i>_<name>`` for more."""
        return self._names(STATE_NAMES)

    def action_names(self) -> tuple:
        return self._names(ACTION_NAMES)

    def quaternion_indices(self) -> tuple:
        """Indices of every arm's quaternion in the state (already in [-1, 1]: normalisation passes them through)."""
        return tuple(STATE_PER_ARM * a + i for a in range(self.arms) for i in range(QUATERNION.start, QUATERNION.stop))

    # --- reading and writing states ----------------------------------------------------------------------------------
    def arm_state(self, state, arm: int = 0) -> np.ndarray:
        """Arm ``arm``'s 8 values of ``state`` [..., state_size] (a view)."""
        s = self._check(state, self.state_size, "state")
        o = STATE_PER_ARM * self._arm(arm)
        return s[..., o:o + STATE_PER_ARM]

    def position(self, state, arm: int = 0) -> np.ndarray:
        return self.arm_state(state, arm)[..., POSITION]

    def quaternion(self, state, arm: int = 0) -> np.ndarray:
        """wxyz."""
        return self.arm_state(state, arm)[..., QUATERNION]

    def pose(self, state, arm: int = 0) -> np.ndarray:
        """[..., 7]: position then quaternion wxyz (the gripper left out)."""
        return self.arm_state(state, arm)[..., :GRIPPER]

    def gripper(self, state, arm: int = 0) -> np.ndarray:
        return self.arm_state(state, arm)[..., GRIPPER]

    def split(self, state) -> list:
        """Per-arm views [..., 8] of ``state``."""
        return [self.arm_state(state, a) for a in range(self.arms)]

    def join(self, arm_states) -> np.ndarray:
        """The inverse of ``split``: one [..., 8] per arm -> [..., state_size]."""
        parts = list(arm_states)
        if len(parts) != self.arms:
            raise ValueError(f"{self} joins {self.arms} arm states, got {len(parts)}")
        return np.concatenate([self._check(p, STATE_PER_ARM, "arm state") for p in parts], -1)

    def pad(self, state) -> np.ndarray:
        """A state of fewer (or as many) arms in this layout's first arm slots, zeros after (same dtype)."""
        s = np.asarray(state)
        robot = StateLayout.from_state_dim(s.shape[-1], "the robot's end-effector state size")
        if robot.arms > self.arms:
            raise ValueError(f"the robot's state has {robot.arms} arms ({s.shape[-1]} values), {self} takes "
                             f"{self.arms}")
        out = np.zeros(s.shape[:-1] + (self.state_size,), s.dtype)
        out[..., :robot.state_size] = s
        return out

    # --- reading actions ---------------------------------------------------------------------------------------------
    def arm_action(self, actions, arm: int = 0) -> np.ndarray:
        """Arm ``arm``'s 7 values of ``actions`` [..., action_size] (a view)."""
        a = self._check(actions, self.action_size, "actions")
        o = ACTION_PER_ARM * self._arm(arm)
        return a[..., o:o + ACTION_PER_ARM]

    def require_one_arm(self, what: str) -> None:
        """Fail early where a code path drives exactly one arm (IK, the Cartesian axes, the simulated robots)."""
        if self.arms != 1:
            raise ValueError(f"{what} supports one arm ({STATE_PER_ARM}-value state); this state layout has "
                             f"{self.arms} arms ({self.state_size} values)")

    # --- helpers -----------------------------------------------------------------------------------------------------
    def _arm(self, arm: int) -> int:
        if not 0 <= arm < self.arms:
            raise IndexError(f"arm {arm} out of range for {self}")
        return arm

    def _check(self, x, size: int, what: str) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[-1] != size:
            raise ValueError(f"{what} must end in {size} values for {self}, got shape {x.shape}")
        return x

    def _names(self, names) -> tuple:
        if self.arms == 1:
            return tuple(names)
        return tuple(f"arm{a}_{n}" for a in range(self.arms) for n in names)


ONE_ARM = StateLayout(1)  # the layout of every one-arm robot path (IK, Cartesian axes, simulators, gantry)


def one_arm(state, what: str) -> StateLayout:
    """ONE_ARM, after checking that ``state`` [..., size] is one arm's; ``what`` (the one-arm code path) is named in
    the error otherwise, with the layout the state has."""
    StateLayout.from_state_dim(np.shape(state)[-1], f"{what}: the state size").require_one_arm(what)
    return ONE_ARM
