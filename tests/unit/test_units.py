import pytest

from simulator.errors import InputError
from simulator.units import format_bytes, parse_quantity


@pytest.mark.parametrize("text,dim,expected", [
    ("80 GiB", "bytes", 80 * 2**30),
    ("40 GB", "bytes", 40e9),
    ("2039 GB/s", "bytes_per_s", 2039e9),
    ("200 Gb/s", "bytes_per_s", 25e9),
    ("312 TFLOPS", "flops_per_s", 312e12),
    ("1.5 us", "seconds", 1.5e-6),
    ("700 W", "watts", 700.0),
    ("1410 MHz", "hertz", 1.41e9),
    (3.5, "bytes", 3.5),
])
def test_parse_quantity(text, dim, expected):
    assert parse_quantity(text, dim) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["80 GiBs", "fast", "12 parsecs", ""])
def test_bad_units_raise_input_error(text):
    with pytest.raises(InputError):
        parse_quantity(text, "bytes")


def test_format_bytes():
    assert format_bytes(79.3 * 2**30) == "79.3 GiB"


def test_curve_interpolation_keeps_time_monotone_in_size():
    """Between curve points a bigger op must never be cheaper than a smaller one."""
    import numpy as np

    from simulator.hardware.curves import interpolate_log
    sizes = [1e3, 1e4, 1e5, 1e6]
    t0, c = 2.6e-6, 0.8            # launch-floor curve c / (1 + c * t0 / (size / bw)), bw = 1
    fracs = [c / (1 + c * t0 / (s / 1e9)) for s in sizes]
    x = np.logspace(3, 6, 400)
    time = x / (1e9 * interpolate_log(sizes, fracs, x))
    assert np.all(np.diff(time) >= -1e-15)
    assert interpolate_log(sizes, fracs, 1e4) == pytest.approx(fracs[1])
