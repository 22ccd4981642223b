"""Reading ROS 2 bags (sqlite3 or MCAP) without ROS, through the pure-Python ``rosbags`` library.

Messages come back as rosbags dataclasses, which the shared conversion code (ros/convert.py, ros/observation.py)
accepts exactly like rclpy messages.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


class BagError(ValueError):
    """The bag cannot be read or lacks what evaluation needs; the message says which file/topic."""


def interface_msg_dirs() -> list:
    """Where xwam_interfaces' .msg files are: installed share/ directories, then the source tree."""
    roots = [Path(sys.prefix)] + [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    dirs = [r / "share" / "xwam_interfaces" / "msg" for r in roots]
    dirs.append(Path(__file__).resolve().parents[3] / "xwam_interfaces" / "msg")
    return [d for d in dirs if d.is_dir()]


def make_typestore():
    """Kilted typestore plus xwam_interfaces' messages, registered from their .msg text."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    for d in interface_msg_dirs()[:1]:
        types = {}
        for f in sorted(d.glob("*.msg")):
            types.update(get_types_from_msg(f.read_text(), f"xwam_interfaces/msg/{f.stem}"))
        ts.register(types)
    return ts


def deserialize(typestore, raw, typename: str):
    """CDR bytes -> rosbags message, tolerating trailing bytes after a complete payload.

    rosbags rejects more than 3 trailing bytes, but Fast DDS (rclpy's serialize_message, hence ``ros2 bag record``
    with Fast DDS and our recorder) over-reports the serialized length of messages holding empty float64 sequences
    (JointState without efforts, trajectory points without accelerations): the payload decodes completely and is
    followed by unused buffer bytes. A truncated payload still fails inside the decoder.
    """
    from rosbags.serde import SerdeError

    try:
        return typestore.deserialize_cdr(raw, typename)
    except SerdeError as exc:
        if "size mismatch" not in str(exc):
            raise
        msgdef = typestore.get_msgdef(typename)
        func = msgdef.deserialize_cdr_le if bool(raw[1]) else msgdef.deserialize_cdr_be
        msg, _ = func(raw[4:], 0, msgdef.cls, typestore)
        return msg


def bag_topics(path) -> dict:
    """topic -> message type of a bag."""
    r = open_reader(path)
    try:
        return {c.topic: c.msgtype for c in r.connections}
    finally:
        r.close()


def open_reader(path):
    from rosbags.highlevel import AnyReader

    p = Path(path)
    if not p.exists():
        raise BagError(f"{p}: no such bag")
    try:
        r = AnyReader([p], default_typestore=make_typestore())
        r.open()
    except Exception as exc:  # rosbags raises several reader errors for truncated/corrupt files
        raise BagError(f"{p}: cannot open bag ({type(exc).__name__}: {exc})") from exc
    return r


def iter_messages(path, topics, required=()):
    """Yield (topic, log_time_ns, message) for ``topics`` in log-time order.

    Missing required topics raise BagError listing what the bag has; a message that cannot be deserialised (unknown
    type, corrupt chunk) raises BagError naming the topic and time, after everything before it was yielded.
    """
    r = open_reader(path)
    try:
        have = {c.topic: c for c in r.connections}
        missing = [t for t in required if t not in have]
        if missing:
            raise BagError(f"{path}: missing topics {missing}; the bag has {sorted(have)}")
        conns = [have[t] for t in topics if t in have]
        try:
            for conn, t_ns, raw in r.messages(connections=conns):
                try:
                    msg = deserialize(r.typestore, raw, conn.msgtype)
                except Exception as exc:
                    raise BagError(f"{path}: cannot deserialise {conn.topic} ({conn.msgtype}) at {t_ns} ns: "
                                   f"{type(exc).__name__}: {exc}") from exc
                yield conn.topic, t_ns, msg
        except BagError:
            raise
        except Exception as exc:
            raise BagError(f"{path}: bag is truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    finally:
        r.close()
