"""Shared test data for spec tests (imported by conftest.py and test modules; a unique module name, unlike conftest)."""

from __future__ import annotations

BASE_SPEC = {
    "version": 1,
    "name": "bus_right_turn",
    "description": "A bus ahead of the ego turns right",
    "map": {"pg": {"blocks": "SX", "lanes": 2, "lane_width": 3.5, "seed": 3}},
    "ego": {"policy": "idm", "lane": 0, "start": 10.0, "speed": {"range": [5.0, 12.0]}},
    "agents": [
        {"name": "bus", "size": "bus", "placement": {"lane": "ego", "distance": {"range": [12.0, 25.0]}, "offset": 0.0},
         "heading": 0.0, "speed": {"range": [3.0, 10.0]}, "speed_2s": 4.0, "manoeuvre": "right"},
        {"name": "other", "type": "vehicle", "size": {"choice": ["car", "truck"]}, "length": 5.0, "width": 2.0,
         "placement": {"x": 30.0, "y": 7.0}, "heading": -90.0, "speed": 6.0, "manoeuvre": "straight"},
    ],
    "density": {"range": [0, 6]},
    "duration": 12.0,
    "outcome": {"objective": "min_ttc", "ttc_cap": 8.0},
    "generator": "lane",
    "seed": 7,
}
