"""The imagined 4D future of the policy node, in its own thread: the action path never waits for it.

The action path hands every ``imagine_every``-th chunk (the PolicyResult, the observation it came from) to a
newest-only slot and goes on; this thread finishes the video from that result with
``XWAMPolicy.continue_imagination`` and publishes clouds, images, the EE path and the bundled ImaginedFuture. It
computes only when someone subscribes to an ``~/imagined/*`` topic or ``imagine_always`` is set.

Sharing the model: ``continue_imagination`` works on its own deep copy of the result's denoising state (latents and
schedulers) and the transformer keeps no state between calls, so both threads share its weights without a lock.
The video codec is not thread-safe, so this thread uses ``policy.for_imagination()``: its own copy of the codec
(the VAE's weights twice in memory, small next to the transformer), and no lock the action path could wait on. With
``inference_process`` the model and this copy live in the inference process (robot/policy_process.py), which
imagines in a thread of its own; this thread then only waits for the result and publishes it.

They do share the compute. So that imagining slows the chunks down less, this thread runs at a lower CPU priority
(``imagination_nice``, Linux nice of the thread and of the torch worker threads it starts; at the default 5 the
scheduler gives the action thread about three quarters of a contended core); an imagination takes longer instead,
and on a machine loaded by other processes a high value can starve it. On a GPU both share the device;
``imagine_every`` trades imagination rate for action latency, and ``max_inference_time`` still rejects slow chunks.
"""
from __future__ import annotations

import os
import threading
import time
import traceback
from collections import deque

from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ..robot.convert import depth_to_image_msg, rgb_to_image_msg
from ..robot.extrinsics import camera_extrinsics
from ..robot.sync import LatestSlot
from .policy_msgs import ee_path_markers, ee_pose_msg, fused_cloud_msg, time_msg

try:
    from xwam_interfaces.msg import ImaginedFuture
except ImportError:  # the interfaces are optional; standard topics still work
    ImaginedFuture = None


class ImaginationPublisher:
    def __init__(self, node, policy, get_config, qos, counters):
        self.node, self.policy, self._cfg, self.counters = node, policy.for_imagination(), get_config, counters
        cfg = get_config()
        self.cloud_pub = node.create_publisher(PointCloud2, "~/imagined/points", qos)
        self.path_pub = node.create_publisher(MarkerArray, "~/imagined/ee_path", qos)
        self.image_pubs = {c.name: (node.create_publisher(Image, f"~/imagined/{c.name}/rgb", qos),
                                    node.create_publisher(Image, f"~/imagined/{c.name}/depth", qos))
                           for c in cfg.cameras}
        self.future_pub = node.create_publisher(ImaginedFuture, "~/imagined/future", qos) if ImaginedFuture else None
        self.last_error = ""
        self.latency = {"imagine": deque(maxlen=100), "imagine_model": deque(maxlen=100)}
        self._offered = 0
        self._slot = LatestSlot()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="xwam_imagination", daemon=True)
        self._thread.start()

    def _publishers(self) -> list:
        pubs = [self.cloud_pub, self.path_pub] + [p for pair in self.image_pubs.values() for p in pair]
        return pubs + ([self.future_pub] if self.future_pub is not None else [])

    def wanted(self) -> bool:
        cfg = self._cfg()
        return cfg.imagine and (cfg.imagine_always or any(p.get_subscription_count() for p in self._publishers()))

    def offer(self, res, built, obs_t: float, calibration: dict) -> None:
        """Called by the action path after every chunk; returns at once."""
        cfg = self._cfg()
        self._offered += 1
        if not cfg.imagine or (self._offered - 1) % cfg.imagine_every:
            return
        if not self.wanted():
            self.counters["imagination_skipped_no_subscriber"] += 1
            return
        self._slot.put((res, built, obs_t, calibration))

    @property
    def overwritten(self) -> int:
        return self._slot.overwritten

    def _run(self) -> None:
        try:  # Linux: the nice value is per thread (and inherited by threads started from here)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._cfg().imagination_nice)
        except (AttributeError, OSError) as exc:
            self.node.get_logger().warning(f"imagination thread keeps normal priority: {exc}")
        self._slot.serve(lambda: self._running, self._imagine, self._failed)

    def _failed(self, exc: Exception) -> None:  # an imagination failure never stops the node (nor the action path)
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.node.get_logger().error(f"imagination failed: {self.last_error}", throttle_duration_sec=5.0)
        self.node.get_logger().debug(traceback.format_exc())

    def _imagine(self, res, built, obs_t: float, calibration: dict) -> None:
        cfg, mc = self._cfg(), self.policy.config
        t0 = time.perf_counter()
        imag = self.policy.continue_imagination(res)
        self.latency["imagine_model"].append(time.perf_counter() - t0)
        frame_dt = mc.actions_per_frame / cfg.control_rate
        Ks = [f.K for f in built.frames]
        ee_model = cfg.state_source == "ee_pose"
        clouds, rgb_msgs, depth_msgs = [], [], []
        for f in range(1, mc.num_frames):
            stamp = obs_t + f * frame_dt
            exts = camera_extrinsics(cfg.cameras, imag.states[f] if ee_model else None, calibration)
            cloud = fused_cloud_msg(imag.depth[:, f], imag.rgb[:, f], Ks, exts, stamp, cfg.base_frame,
                                    *mc.depth_bounds(), cfg.cloud_voxel, cfg.cloud_stride)
            self.cloud_pub.publish(cloud)
            clouds.append(cloud)
            for v, cam in enumerate(cfg.cameras):
                h = Header(stamp=time_msg(stamp), frame_id=cam.frame_id)
                rgb_msgs.append(rgb_to_image_msg(imag.rgb[v, f], h, Image))
                depth_msgs.append(depth_to_image_msg(imag.depth[v, f], h, Image))
                self.image_pubs[cam.name][0].publish(rgb_msgs[-1])
                self.image_pubs[cam.name][1].publish(depth_msgs[-1])
        if ee_model:
            self.path_pub.publish(ee_path_markers(imag.states, obs_t, cfg.base_frame))
        if self.future_pub is not None:
            header = Header(stamp=time_msg(obs_t), frame_id=cfg.base_frame)
            fut = ImaginedFuture(header=header, clouds=clouds, rgb=rgb_msgs, depth=depth_msgs,
                                 view_names=[c.name for c in cfg.cameras], num_views=len(cfg.cameras),
                                 video_steps=int(imag.video_steps), latency=float(imag.latency))
            fut.ee_path.header = header
            if ee_model:
                fut.ee_path.poses = [ee_pose_msg(s) for s in imag.states]
            self.future_pub.publish(fut)
        self.latency["imagine"].append(time.perf_counter() - t0)
        self.counters["imaginations"] += 1

    def warm_up(self, res) -> None:
        self.policy.continue_imagination(res)

    def stop(self) -> None:
        self._running = False
        self._slot.put(None)
        self._thread.join(timeout=5.0)
