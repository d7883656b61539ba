"""`demo_driver`: runs demonstration episodes on the sim bridge while a teleoperator drives it.

    python -m sdm_policy_ros.demo_driver --task button-press-v3 --episodes 10 [--seed 0]

For episode i it resets the bridge (`/sim_bridge/reset_episode`) with the placement seed
`episode_seed(seed, i)` that `sdm demos` uses, waits until the bridge's `episode_status` says
done, and asks `~/report_success` for the outcome. With a recorder running, the bag then holds
the same demonstrations `sdm demos` records in-process. Prints `[demos] episode ...` progress
lines and one `RESULT {json}` line (successes, lengths, seeds). Exit code 1 when the bridge does
not answer or an episode times out.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, ReliabilityPolicy
from sdm_msgs.msg import EpisodeStatus
from sdm_msgs.srv import ResetEpisode
from std_srvs.srv import Trigger

from sdm_policy_core.sim.demos import episode_seed

LATCHED = QoSProfile(
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)


class DemoDriver(Node):
    def __init__(self, bridge: str) -> None:
        super().__init__("demo_driver")
        self._done = threading.Condition()
        self._status: EpisodeStatus | None = None
        self.create_subscription(EpisodeStatus, "episode_status", self._on_status, LATCHED)
        self.reset_client = self.create_client(ResetEpisode, f"{bridge}/reset_episode")
        self.report_client = self.create_client(Trigger, f"{bridge}/report_success")

    def _on_status(self, msg: EpisodeStatus) -> None:
        with self._done:
            self._status = msg
            self._done.notify_all()

    def call(self, client, request, timeout: float):
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"{client.srv_name} is not available")
        event = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: event.set())
        if not event.wait(timeout):
            raise TimeoutError(f"{client.srv_name} did not answer in {timeout} s")
        return future.result()

    def wait_done(self, episode_id: int, timeout: float) -> EpisodeStatus:
        with self._done:
            ok = self._done.wait_for(
                lambda: (
                    self._status is not None
                    and self._status.episode_id == episode_id
                    and self._status.done
                ),
                timeout,
            )
            if not ok:
                raise TimeoutError(f"episode {episode_id} did not end within {timeout} s")
            return self._status


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--task", required=True)
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bridge", default="/sim_bridge")
    p.add_argument("--episode-timeout", type=float, default=120.0, help="[s] wall time")
    a = p.parse_args()
    rclpy.init()
    node = DemoDriver(a.bridge)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    result = {"task": a.task, "seeds": [], "lengths": [], "successes": 0, "episodes": 0}
    code = 0
    try:
        for i in range(a.episodes):
            seed = episode_seed(a.seed, i)
            start = time.monotonic()
            reply = node.call(
                node.reset_client, ResetEpisode.Request(task=a.task, seed=seed), 60.0
            )
            if not reply.success:
                raise RuntimeError(f"reset refused: {reply.message}")
            status = node.wait_done(reply.episode_id, a.episode_timeout)
            report = json.loads(node.call(node.report_client, Trigger.Request(), 30.0).message)
            result["seeds"].append(seed)
            result["lengths"].append(int(status.step))
            result["successes"] += int(bool(report.get("success")))
            result["episodes"] += 1
            print(
                f"[demos] episode {i + 1}/{a.episodes} seed {seed}: "
                f"{'success' if report.get('success') else 'FAILED'} in {status.step} steps "
                f"({time.monotonic() - start:.1f} s)",
                flush=True,
            )
    except (TimeoutError, RuntimeError) as err:
        print(f"[demos] error: {err}", file=sys.stderr, flush=True)
        code = 1
    print("RESULT " + json.dumps(result), flush=True)
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
