"""MetaDrive objects for generated agents, made safe for MetaDrive's ``IDMPolicy`` ego.

The IDM ego looks at every nearby object's ``.lane`` to find the car ahead; one object without a ``lane`` raises
inside its ``try`` and the ego then ignores *all* objects for that step. Objects off the lanes (parked cars,
pedestrians on the pavement) must not be given the nearest lane either, or the ego brakes for them.
:data:`OFF_LANE` is a lane-like marker that matches no lane.
"""

from __future__ import annotations

from metadrive.component.vehicle import vehicle_type as _vehicle_type
from metadrive.component.vehicle.vehicle_type import VaryingDynamicsVehicle

_FAR = (1e9, 1e9)


class _OffLane:
    """Stands in for a lane for objects on no lane: it joins no lane and never is the ego's lane."""

    start = _FAR
    end = _FAR
    index = None

    def is_previous_lane_of(self, target_lane, error_region: float = 0.1) -> bool:
        """Never connected."""
        return False

    def __repr__(self) -> str:
        return "OFF_LANE"


OFF_LANE = _OffLane()


class GeneratedVehicle(VaryingDynamicsVehicle):
    """A ``VaryingDynamicsVehicle`` whose ``lane`` is :data:`OFF_LANE` without navigation or off the lanes."""

    off_lane = False  # set by :meth:`localise`; the navigation itself must still see its lane while localising

    @property
    def lane(self):
        """The navigation's current lane, or :data:`OFF_LANE`."""
        if self.navigation is None or self.off_lane:
            return OFF_LANE
        return self.navigation.current_lane

    def reset(self, *args, **kwargs):
        """Reset for a new spawn. A recycled vehicle must not keep last episode's ``off_lane``: the navigation's
        first localisation falls back to ``self.lane`` and asserts "lane index mismatch!" on :data:`OFF_LANE`."""
        self.off_lane = False
        return super().reset(*args, **kwargs)

    def localise(self) -> None:
        """Update the navigation module's lane, then note whether the vehicle stands on a lane."""
        self.off_lane = False
        self.navigation.update_localization(self)
        self.off_lane = not self.on_lane


# BaseVehicle.reset looks its model name up by class; ours is a varying-dynamics vehicle.
_vehicle_type.vehicle_class_to_type.setdefault(GeneratedVehicle, "varying_dynamics")
