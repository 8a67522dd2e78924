"""An ego policy given as module:callable, for tests: full brake, counting its calls."""

CALLS = []


def brake(observation) -> list[float]:
    """[steering, throttle]: straight, braking."""
    CALLS.append(len(observation))
    return [0.0, -1.0]
