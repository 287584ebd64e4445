"""float16 conversions done by table and by bits must be exactly NumPy's: a search's scores depend on every bit."""

import numpy as np
import pytest

from swimsearch import halves
from swimsearch.halves import through_half, widened


@pytest.fixture(params=["opencv", "numpy"])
def path(request, monkeypatch):
    """Each conversion both ways: by OpenCV (where it is exact here, as the engine runs) and by the table and bits."""
    if request.param == "opencv":
        assert halves.warm_up(), "OpenCV's float16 conversions are not exact here: searches take the slow way"
    else:
        monkeypatch.setattr(halves, "_opencv", lambda: None)
    return request.param


def _every_half_and_its_float32_neighbours() -> np.ndarray:
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    bits = halves[np.isfinite(halves)].view(np.uint32)
    # 0x1000 is half a float16 step in float32's fraction bits: the ties, and one float32 step either side of them
    wide = bits.astype(np.int64)
    near = [(wide + step) % (1 << 32) for step in (0, 1, -1, 0x0FFF, 0x1000, 0x1001, -0x0FFF, -0x1000, -0x1001)]
    random = np.random.default_rng(7).integers(0, 1 << 32, 2_000_000, dtype=np.int64)
    return np.concatenate(near + [random]).astype(np.uint32).view(np.float32)


def test_rounding_through_float16_is_numpys_narrowing_bit_for_bit(path):
    values = _every_half_and_its_float32_neighbours()
    with np.errstate(over="ignore", invalid="ignore"):
        want = values.astype(np.float16).astype(np.float32)
    for part in (values[np.isfinite(values) & (np.abs(values) < 65504)], values):  # the fast way, then with the slow way's values in
        with np.errstate(over="ignore", invalid="ignore"):
            got = through_half(part)
            expected = part.astype(np.float16).astype(np.float32)
        assert got.dtype == np.float32 and got.shape == part.shape
        assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))  # -0.0, subnormals, carries, ties to even
    assert len(want) == len(values)


def test_rounding_through_float16_keeps_the_shape_and_leaves_its_input_alone(path):
    prepared = (np.random.default_rng(3).standard_normal((40, 1280)) / 30).astype(np.float32)
    before = prepared.copy()
    got = through_half(prepared)
    assert got.shape == (40, 1280)
    assert np.array_equal(got, prepared.astype(np.float16).astype(np.float32))
    assert np.array_equal(prepared, before)
    assert through_half(np.zeros((0, 1280), np.float32)).shape == (0, 1280)


def test_widening_is_numpys_in_every_shape(path):
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = every[np.isfinite(every)]
    for values in (every.reshape(256, 256), finite, finite[:61440].reshape(48, 10, 128), finite[:4096].reshape(32, 128),
                   finite[:100].reshape(2, 50), np.zeros((0, 1280), np.float16)):
        got = widened(values)
        assert got.dtype == np.float32 and got.shape == values.shape
        assert np.array_equal(got.view(np.uint32), values.astype(np.float32).view(np.uint32))  # NaN payloads too


def test_a_conversion_opencv_refuses_after_its_check_is_made_the_slow_way(monkeypatch):
    """OpenCV checked exact, then failing on one array (cv2.error: its memory short, a size it refuses): the
    table and bits convert it, the search goes on."""
    assert halves.warm_up()
    cv2 = halves._opencv()

    def refuses(*args, **kwargs):
        raise cv2.error("refused")

    monkeypatch.setattr(cv2, "add", refuses)
    values = np.random.default_rng(5).standard_normal((8, 1280)).astype(np.float16)
    assert np.array_equal(widened(values), values.astype(np.float32))
    wide = values.astype(np.float32) / 3
    assert np.array_equal(through_half(wide), wide.astype(np.float16).astype(np.float32))


def test_conversions_alone_never_load_opencv(tmp_path):
    """Loading OpenCV (~150 ms) is the look's or the window's to do: a search that converts float16 without them
    takes the table and bits, and OpenCV's path once something else loaded it."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "probe.py"
    script.write_text(
        "import sys\nimport numpy as np\nfrom swimsearch.halves import widened, through_half, warm_up\n"
        "x = np.arange(8192, dtype=np.float32).reshape(4, 2048) / 7\n"
        "widened(x.astype(np.float16)); through_half(x)\n"
        "print('cv2' in sys.modules)\n"
        "print(warm_up() and 'cv2' in sys.modules)\n"
    )
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
