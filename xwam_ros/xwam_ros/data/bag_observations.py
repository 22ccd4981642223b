"""A recorded bag -> the synchronised observations the live node would have built from it (same synchroniser, same
observation builder), with the recorded joint and end-effector tracks. Used by offline evaluation and the bag ->
dataset converter."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..robot.observation import BuiltObservation, ObservationError, build_observation, ee_state, joint_vector
from ..robot.observation import stamp_to_ns
from ..robot.state import assemble_state, gripper_map_for
from ..robot.sync import ApproxSynchronizer
from .bag_reader import BagError, iter_messages

IMAGE = "sensor_msgs/msg/Image"


@dataclass
class Step:
    built: BuiltObservation
    state: np.ndarray
    joints: np.ndarray
    t: float  # observation stamp (s)


@dataclass
class Replay:
    steps: list = field(default_factory=list)
    joint_t: list = field(default_factory=list)
    joint_q: list = field(default_factory=list)
    ee_t: list = field(default_factory=list)
    ee_pose: list = field(default_factory=list)  # [8] states
    errors: dict = field(default_factory=dict)
    first_error: str = ""
    partial: str = ""  # why the bag ended early, if it did
    last_stamp: dict = field(default_factory=dict)
    sync_stats: dict = field(default_factory=dict)

    def joints_at(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Recorded joint positions at ``times`` (linear interpolation) and a mask of times inside the recording."""
        jt, jq = np.asarray(self.joint_t), np.asarray(self.joint_q)
        inside = (times >= jt[0]) & (times <= jt[-1])
        return np.stack([np.interp(times, jt, jq[:, j]) for j in range(jq.shape[1])], 1), inside

    def ee_at(self, t: float) -> np.ndarray | None:
        if not self.ee_t:
            return None
        i = int(np.argmin(np.abs(np.asarray(self.ee_t) - t)))
        return self.ee_pose[i]


def replay_observations(bag, setup, model_hw, state_dim, instruction: str = "") -> Replay:
    """Rebuild every synchronised observation of ``bag`` exactly as the live node would."""
    keys = [f"{c.name}/{k}" for c in setup.cameras for k in ("color", "depth")]
    topic_key = {c.color_topic: f"{c.name}/color" for c in setup.cameras}
    topic_key.update({c.depth_topic: f"{c.name}/depth" for c in setup.cameras})
    info_cam = {c.info_topic: c.name for c in setup.cameras}
    sync = ApproxSynchronizer(keys, setup.sync_slop, setup.sync_queue_size)
    rep = Replay()
    infos, js, ee = {}, None, None
    instruction = instruction or setup.instruction
    topics = list(topic_key) + list(info_cam) + [setup.joint_state_topic, setup.ee_pose_topic,
                                                 "/xwam_policy/instruction"]
    required = list(topic_key) + [setup.joint_state_topic]
    try:
        for topic, _, msg in iter_messages(bag, topics, required=required):
            if topic in info_cam:
                infos[info_cam[topic]] = msg
            elif topic == setup.joint_state_topic:
                js = msg
                try:
                    rep.joint_q.append(joint_vector(msg, setup.joint_names))
                    rep.joint_t.append(stamp_to_ns(msg.header.stamp) * 1e-9)
                except ObservationError as exc:
                    _note(rep, "bad_joint_states", str(exc))
            elif topic == setup.ee_pose_topic:
                ee = msg
                rep.ee_t.append(stamp_to_ns(msg.header.stamp) * 1e-9)
                rep.ee_pose.append(ee_state(msg.pose, 0.0))
            elif topic == "/xwam_policy/instruction":
                instruction = msg.data
            else:
                if msg.__class__.__name__ != "Image" and not hasattr(msg, "encoding"):
                    raise BagError(f"{bag}: topic {topic} has type {type(msg).__name__}, expected {IMAGE}")
                stamp = stamp_to_ns(msg.header.stamp)
                rep.last_stamp[topic] = stamp * 1e-9
                synced = sync.add(topic_key[topic], stamp, msg)
                if synced is not None:
                    _add_step(rep, synced, infos, js, ee, setup, model_hw, state_dim, instruction)
    except BagError as exc:
        if not rep.steps:
            raise
        rep.partial = str(exc)  # keep what was rebuilt before the damage
    s = sync.stats
    rep.sync_stats = {"matched": s.matched, "dropped": s.dropped, "out_of_order": s.out_of_order}
    if not rep.steps:
        raise BagError(f"{bag}: no usable synchronised observation"
                       + (f"; first error: {rep.first_error}" if rep.first_error else
                          f" (per-topic last stamps: {rep.last_stamp})"))
    return rep


def _note(rep: Replay, kind: str, message: str) -> None:
    rep.errors[kind] = rep.errors.get(kind, 0) + 1
    rep.first_error = rep.first_error or message


def _add_step(rep, synced, infos, js, ee, setup, model_hw, state_dim, instruction) -> None:
    try:
        state, joints = assemble_state(setup, js, ee, gripper_map_for(setup))
        built = build_observation(synced, infos, state, instruction, [c.name for c in setup.cameras], model_hw,
                                  state_dim, setup.min_valid_depth)
    except ObservationError as exc:
        _note(rep, "bad_observation", str(exc))
        return
    rep.steps.append(Step(built, state, joints, built.stamp_ns * 1e-9))
