"""The policy in a child process of its own, behind the interface the node uses (no rclpy).

Why: the tiny model is bound by Python dispatch, not by arithmetic. In the node's process its inference thread holds
the interpreter lock most of the time, so the camera callbacks, the conversion and the publishers wait for it: on a
2-core host the ROS overhead was 34-36 ms p50 while the process never used more than ~1.05 cores
(bench/ros_latency.py). In a child process the model has its own interpreter lock and its own core.

``PolicyProcess`` answers like ``XWAMPolicy`` for what the node and the offline evaluator call: ``config``,
``predict_action_chunk``, ``continue_imagination``, ``for_imagination``, ``reset``. The child builds the policy with
the same ``load_policy`` (one home for how a configuration becomes a model). Observations and results cross a pipe
(64x64 views: kilobytes); a result's resumable denoising state stays in the child and the result carries a handle to
it, so ``continue_imagination`` runs there too, in a second thread at the configured lower priority (imagination
never delays a chunk more than it does in one process). The newest ``KEEP_RESULTS`` results stay resumable.

Failures: an exception in the child is raised in the caller (the same type when it pickles); a child that dies
(killed, out of memory) is reported by the call that was waiting, and the next call starts a new one. The child
exits on its own when the node's process goes away (its pipes close).
"""
from __future__ import annotations

import multiprocessing
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

KEEP_RESULTS = 4  # the imagination slot is newest-only: older results are never asked for
START_TIMEOUT_S = 300.0  # importing torch and loading a large checkpoint from a slow disk


class PolicyProcessError(RuntimeError):
    """The inference process died or could not start; the message says how."""


@dataclass(frozen=True)
class ResultHandle:
    """Stands for a PolicyResult's resumable state, which stays in the child (``generation``: which child)."""
    number: int
    generation: int = 0


# --- the child ------------------------------------------------------------------------------------------------------
def _reply(conn, fn) -> None:
    try:
        out = ("ok", fn())
    except Exception as exc:  # noqa: BLE001 -- every failure goes back to the caller, the child keeps serving
        out = ("error", exc)
    try:
        conn.send(out)
    except Exception as exc:  # an exception that does not pickle: send its text
        conn.send(("error", RuntimeError(f"{type(out[1]).__name__}: {out[1]} ({exc})")))


def _serve_imagination(conn, policy, results: OrderedDict, lock, nice: int) -> None:
    try:  # Linux: per thread, inherited by the torch threads it starts
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass

    def imagine(number):
        with lock:
            res = results.get(number)
        if res is None:
            raise ValueError(f"result {number} is no longer kept (the newest {KEEP_RESULTS} are)")
        return policy.continue_imagination(res)
    while True:
        try:
            number = conn.recv()
        except (EOFError, OSError):
            return
        _reply(conn, lambda: imagine(number))


def _child_main(cfg, action_conn, imagine_conn) -> None:
    import signal

    from .policy_loading import load_policy

    # Ctrl-C reaches the whole process group: the node shuts down and closes the pipes, which ends this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    try:
        policy = load_policy(cfg)
    except Exception as exc:  # noqa: BLE001 -- the parent raises it (e.g. a ParameterError naming the parameter)
        action_conn.send(("error", exc))
        return
    results, lock, count = OrderedDict(), threading.Lock(), 0
    threading.Thread(target=_serve_imagination, daemon=True, name="xwam_imagination",
                     args=(imagine_conn, policy.for_imagination(), results, lock, cfg.imagination_nice)).start()
    action_conn.send(("ok", policy.config))

    def predict(obs, seed, depth_every_call):
        nonlocal count
        res = policy.predict_action_chunk(obs, seed=seed, depth_every_call=depth_every_call)
        count += 1
        with lock:
            results[count] = res
            while len(results) > KEEP_RESULTS:
                results.popitem(last=False)
        return replace(res, resume=ResultHandle(count))
    while True:
        try:
            request, *args = action_conn.recv()
        except (EOFError, OSError):  # the node's process went away
            return
        if request == "close":
            return
        if request == "predict":
            _reply(action_conn, lambda: predict(*args))
        elif request == "reset":
            _reply(action_conn, policy.reset)


# --- the node's side ------------------------------------------------------------------------------------------------
class _Channel:
    """One pipe to the child, one request at a time (callers from several threads queue on the lock)."""

    def __init__(self, conn, owner: "PolicyProcess"):
        self.conn, self.owner, self.lock = conn, owner, threading.Lock()

    def call(self, message, timeout: float | None = None):
        with self.lock:
            try:
                self.conn.send(message)
            except (OSError, ValueError) as exc:
                self.owner.mark_failed()
                raise PolicyProcessError(f"the inference process is gone ({exc})") from exc
            return self.receive(timeout)

    def receive(self, timeout: float | None = None):
        proc = self.owner.process
        try:
            waited = 0.0
            while not self.conn.poll(0.2):  # a dead child must not leave the caller waiting forever
                waited += 0.2
                if proc is None or not proc.is_alive():
                    code = None if proc is None else proc.exitcode
                    raise PolicyProcessError(f"the inference process exited (code {code})")
                if timeout is not None and waited >= timeout:
                    raise PolicyProcessError(f"the inference process gave no answer in {timeout:.0f} s")
            status, value = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.owner.mark_failed()
            raise PolicyProcessError(f"the inference process is gone ({type(exc).__name__})") from exc
        except PolicyProcessError:
            self.owner.mark_failed()
            raise
        if status == "error":
            raise value
        return value


class PolicyProcess:
    """The policy ``load_policy(cfg)`` builds, running in a child process (spawned: no fork of a process that
    already runs DDS and torch threads)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self._start_lock = threading.Lock()
        self.process = None
        self.config = None
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        action_parent, action_child = ctx.Pipe()
        imagine_parent, imagine_child = ctx.Pipe()
        self.process = ctx.Process(target=_child_main, args=(self.cfg, action_child, imagine_child),
                                   name="xwam_inference", daemon=True)
        self.process.start()
        action_child.close()
        imagine_child.close()
        self._action, self._imagine = _Channel(action_parent, self), _Channel(imagine_parent, self)
        self._failed = False
        try:
            self.config = self._action.receive(START_TIMEOUT_S)  # the child speaks first: its config, or why not
        except Exception:
            self.close()
            raise

    def mark_failed(self) -> None:
        self._failed = True

    def _ensure_running(self) -> None:
        with self._start_lock:
            if self._failed:
                self.close()
                self.restarts += 1
                self._start()

    # --- the policy interface ---------------------------------------------------------------------------------------
    def predict_action_chunk(self, obs, seed: int = 0, depth_every_call: bool = False):
        self._ensure_running()
        res = self._action.call(("predict", obs, int(seed), bool(depth_every_call)))
        return replace(res, resume=replace(res.resume, generation=self.restarts))

    def continue_imagination(self, result):
        if not isinstance(result.resume, ResultHandle) or result.resume.generation != self.restarts:
            raise ValueError("this PolicyResult did not come from the running inference process")
        return self._imagine.call(result.resume.number)

    def for_imagination(self) -> "PolicyProcess":
        """The child already imagines with its own codec copy in its own thread."""
        return self

    def reset(self) -> None:
        self._ensure_running()
        self._action.call(("reset",))

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def close(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        try:
            self._action.conn.send(("close",))
        except (OSError, ValueError):
            pass
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout)
        for ch in (self._action, self._imagine):
            ch.conn.close()
