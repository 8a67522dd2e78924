"""MetaDrive policies for generated agents."""

from __future__ import annotations

from metadrive.component.lane.point_lane import PointLane
from metadrive.policy.idm_policy import TrajectoryIDMPolicy

STOPPED_TARGET_KMH = 1.0  # below this target speed an agent holds still instead of creeping


class GeneratedIDMPolicy(TrajectoryIDMPolicy):
    """IDM along a route (a :class:`PointLane`) with the target speed the generated agent drives at.

    MetaDrive's ``TrajectoryIDMPolicy`` aims for 40 km/h whatever the agent did; here the target is the generated
    speed, and an agent generated stopped stays stopped (IDM's free-road term is undefined at target 0).
    """

    def __init__(self, control_object, random_seed, route: PointLane, target_speed_kmh: float) -> None:
        super().__init__(control_object=control_object, random_seed=random_seed, traj_to_follow=route)
        self.NORMAL_SPEED = float(target_speed_kmh)  # instance value: IDMPolicy.reset() restores this target
        self.target_speed = self.NORMAL_SPEED

    def acceleration(self, front_obj, dist_to_front) -> float:
        """IDM acceleration; full brake for agents that should stand still."""
        if self.target_speed < STOPPED_TARGET_KMH:
            return -1.0
        return super().acceleration(front_obj, dist_to_front)
