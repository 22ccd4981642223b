"""The fused observed cloud (~/observed/points) in its own thread: the action path hands over the observation it
used and goes on; fusing three views and serialising the PointCloud2 never delays a chunk. Newest-only: while a
cloud is being built, later observations overwrite each other in the slot (a backlog of old clouds is worth nothing).
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import deque

from ..robot.extrinsics import camera_extrinsics
from ..robot.sync import LatestSlot
from .policy_msgs import fused_cloud_msg


class ObservedCloudPublisher:
    def __init__(self, node, publisher, get_config, get_model_config):
        self.node, self.pub, self._cfg, self._mc = node, publisher, get_config, get_model_config
        self.last_error = ""
        self.published = 0
        self.latency = deque(maxlen=100)  # seconds per cloud (fuse + publish)
        self._slot = LatestSlot()
        self._running = True
        self._thread = threading.Thread(target=self._slot.serve, name="xwam_observed_cloud", daemon=True,
                                        args=(lambda: self._running, self._publish, self._failed))
        self._thread.start()

    def offer(self, built, obs_t: float, calibration: dict) -> None:
        """Called by the action path; returns at once (skipped while nobody subscribes)."""
        if self.pub.get_subscription_count():
            self._slot.put((built, obs_t, calibration))

    def _publish(self, built, obs_t: float, calibration: dict) -> None:
        t0 = time.perf_counter()
        cfg, mc = self._cfg(), self._mc()
        state = built.obs.state if cfg.state_source == "ee_pose" else None
        exts = camera_extrinsics(cfg.cameras, state, calibration)
        self.pub.publish(fused_cloud_msg(built.obs.depth, built.obs.rgb, [f.K for f in built.frames], exts, obs_t,
                                         cfg.base_frame, *mc.depth_bounds(), cfg.cloud_voxel,
                                         cfg.cloud_stride))
        self.published += 1
        self.latency.append(time.perf_counter() - t0)

    def _failed(self, exc: Exception) -> None:  # informational output: reported, never stops the node
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.node.get_logger().error(f"observed cloud failed: {self.last_error}", throttle_duration_sec=5.0)
        self.node.get_logger().debug(traceback.format_exc())

    def stop(self) -> None:
        self._running = False
        self._slot.put(None)
        self._thread.join(timeout=5.0)
