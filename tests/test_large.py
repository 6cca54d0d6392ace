"""Large canvases read lazily from a memmap folder: the summed-area tables, the single and batched worlds (equal to
the same canvases held in memory), the registered id, atomic writing and the errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from activevision.data import ArrayDataset, LargeImageDataset, write_large_canvases
from activevision.envs import GlimpseEnv
from activevision.envs.vector import GlimpseVectorEnv
from activevision.sensor import TorchSensor
from activevision.sensor.layout import MAX_BLOCK, TILE_COLS, TILE_ROWS, PhaseLayout
from activevision.sensor.table_files import SummedAreaTables


@pytest.fixture(params=[1, 3], ids=["grey", "rgb"])
def large(request, tmp_path) -> LargeImageDataset:
    rng = np.random.default_rng(request.param)
    pieces = ArrayDataset(rng.integers(0, 256, (20, 12, 10, request.param), dtype=np.uint8), np.arange(20) % 4)
    return write_large_canvases(tmp_path / "canvases", pieces, n=5, canvas=(70, 90), n_distractors=2, seed=3)


def in_memory(large: LargeImageDataset) -> ArrayDataset:
    return ArrayDataset(np.array(large.images), large.labels, num_classes=large.num_classes)


def plain(
    large: LargeImageDataset, phases: tuple[int, ...], q: int, block: int = MAX_BLOCK, copy: int = 0
) -> np.ndarray:
    """Copy ``copy`` of phase q in the tables of ``phases`` for blocks up to ``block``, read back in plain (N, C,
    H + 1, W + 1) order through the layout's offsets, as the sums modulo 2^16 or 2^32 (non-negative)."""
    table, layout = SummedAreaTables(large).tables(phases, block=block)
    height, width, _ = large.shape
    ys, xs = np.arange(height + 1), np.arange(width + 1)
    mask = 0xFFFF if table.dtype == np.int16 else 0xFFFFFFFF
    return table[:, :, layout.row_offsets(q, ys, copy)[:, None] + layout.col_offsets(q, xs)].astype(np.int64) & mask


@pytest.mark.parametrize("phases", [(1,), (1, 2, 4), (4, 1)])
@pytest.mark.parametrize("block,dtype,mask", [(16, np.int16, 0xFFFF), (17, np.int32, 0xFFFFFFFF)])
def test_tables_equal_the_in_memory_integral_images(large, phases, block, dtype, mask):
    """Both copies of every phase hold the in-memory integral images, modulo 2^16 for glimpses whose blocks are at
    most 16 pixels wide, else modulo 2^32; the overview averages blocks of the canvas."""
    assert isinstance(large.get(0)[0], np.memmap) and large.shape == (70, 90, large.shape[2])
    expected = TorchSensor(4, 1).prepare(torch.from_numpy(np.array(large.images))).table.numpy()
    table, layout = SummedAreaTables(large).tables(phases, block=block)
    assert table.dtype == dtype and table.shape[2] == layout.size and layout.copies == 2
    assert dtype is np.int32 or int(table.min()) < 0  # sums past 2^15 stored wrapped (past 2^16: the bright test)
    for q in phases:
        for copy in (0, 1):
            np.testing.assert_array_equal(plain(large, phases, q, block, copy), expected.reshape(5, -1, 71, 91) & mask)
    picture, factor = SummedAreaTables(large).overview(1, max_side=32)
    assert factor == 3 and picture.shape == (24, 30, large.shape[2])
    np.testing.assert_allclose(picture[0, 0], np.array(large.images[1, :3, :3]).mean(axis=(0, 1)), atol=0.5)


@pytest.mark.parametrize("q", [1, 4])
def test_the_copy_chosen_for_a_row_holds_the_rows_around_it_in_one_tile_row(q):
    """What the second, shifted copy is for: the 25-row block of a glimpse's coarser scale of a phase never spans
    two tile rows (a canvas-wide stride apart in memory) in the copy chosen by its middle row."""
    layout = PhaseLayout(rows=5001, cols=300, q=q, copies=2)
    tile_row = layout.tiles[1] * TILE_ROWS * TILE_COLS
    spans = []
    for y in range(0, 5001, q):
        copy = int(layout.copy(y))
        block = np.arange(max(0, y - 16 * q), min(5000, y + 16 * q) + 1, q)  # plane rows y // q - 16 .. + 16
        inside = (layout.row_offsets(block, copy) - ((y % q) * q * 2 + copy) * layout.plane) // tile_row
        spans.append(len(set(inside.tolist())))
        assert copy in (0, 1)
    assert max(spans) == 1
    one = PhaseLayout(rows=5001, cols=300, q=q)
    assert (
        max(
            len(set(((one.row_offsets(np.arange(y, y + 25 * q, q)) - (y % q) * q * one.plane) // tile_row).tolist()))
            for y in range(0, 4000, q)
        )
        == 2
    )  # without it, blocks straddle


@pytest.mark.parametrize("q,copies", [(1, 1), (1, 2), (4, 2), (16, 2)])
def test_offsets_repeat_by_the_layout_periods(q, copies):
    """What the sensor relies on to table offsets of one period only: ``rows`` rows down (``cols`` columns right)
    every offset moves by ``row_step`` (``col_step``) and the copy chosen is the same, all over a wide table."""
    layout = PhaseLayout(rows=9001, cols=7001, q=q, copies=copies)
    (rows, row_step), (cols, col_step) = layout.periods
    ys, xs = np.arange(9001 - rows), np.arange(7001 - cols)
    np.testing.assert_array_equal(layout.copy(ys + rows), layout.copy(ys))
    for copy in range(copies):
        np.testing.assert_array_equal(layout.row_offsets(ys + rows, copy), layout.row_offsets(ys, copy) + row_step)
    np.testing.assert_array_equal(layout.col_offsets(xs + cols), layout.col_offsets(xs) + col_step)
    assert (rows, cols) == (64 * q, 32 * q)


@pytest.mark.parametrize("phases,name", [((1,), "integral-v2-q1-r2.i16"), ((1, 2), "integral-v2-q1-2-r2.i16")])
def test_tables_are_built_in_bands_and_kept(large, monkeypatch, phases, name):
    from activevision.sensor import table_files as module

    def every_copy(data: LargeImageDataset) -> list[np.ndarray]:
        return [plain(data, phases, q, 16, copy) for q in phases for copy in (0, 1)]

    path = large.folder / name
    expected = every_copy(large)
    path.unlink()
    monkeypatch.setattr(module, "BAND_ELEMENTS", 200)  # bands of lcm(phases) * 64 rows: 2 of them
    np.testing.assert_array_equal(every_copy(LargeImageDataset(large.folder)), expected)
    stamp = path.stat().st_mtime_ns
    np.testing.assert_array_equal(every_copy(LargeImageDataset(large.folder)), expected)
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in large.folder.iterdir() if "partial" in p.name] == []


def test_each_scale_reads_the_widest_phase_plane_allowed():
    sensor = TorchSensor(4, 5)  # blocks of 1, 2, 4, 8, 16 pixels
    assert sensor.phases(4096) == (1, 1, 4, 4, 16)
    assert sensor.phases(1000) == (1, 1, 4, 4, 4)  # 1001 // 16 = 62 columns: too narrow a plane
    assert sensor.phases(100) == (1, 1, 1, 1, 1)
    assert TorchSensor(4, 3, scale_factor=3).phases(4096) == (1, 1, 9)


def test_worlds_reading_three_phase_tables_equal_the_same_canvases_in_memory(tmp_path):
    """A 2,100-pixel-wide canvas and 5 scales: scales 0-1 read phase 1, 2-3 phase 4, 4 phase 16; glimpses of the
    single and batched worlds, at the borders too, equal those of the canvases held in memory."""
    rng = np.random.default_rng(5)
    pieces = ArrayDataset(rng.integers(0, 256, (6, 40, 40, 1), dtype=np.uint8), np.arange(6) % 3)
    large = write_large_canvases(tmp_path / "wide", pieces, n=3, canvas=(300, 2100), n_distractors=12, seed=1)
    options = dict(patch=4, scales=5, n_glimpses=4)
    lazy, memory = GlimpseVectorEnv(large, 16, **options), GlimpseVectorEnv(in_memory(large), 16, **options)
    assert sorted(p.name for p in large.folder.glob("integral*")) == ["integral-v2-q1-4-16-r2.i16"]
    a, _ = lazy.reset(seed=2)
    b, _ = memory.reset(seed=2)
    generator = torch.Generator().manual_seed(1)
    for _ in range(4):
        torch.testing.assert_close(a["glimpse"], b["glimpse"], atol=1e-6, rtol=0)
        actions = torch.rand((16, 2 + large.num_classes), generator=generator) * 2.4 - 1.2  # some past the border
        a, *_ = lazy.step(actions)
        b, *_ = memory.step(actions)
    assert float(b["glimpse"].abs().sum()) > 0
    single, reference = (
        GlimpseEnv(large, **options, start="random"),
        GlimpseEnv(in_memory(large), **options, start="random"),
    )
    one_copy = GlimpseEnv(LargeImageDataset(large.folder, phase_copies=False), **options, start="random")
    for seed in range(3):
        expected = reference.reset(seed=seed)[0]["glimpse"]
        np.testing.assert_allclose(single.reset(seed=seed)[0]["glimpse"], expected, atol=1e-6)
        np.testing.assert_allclose(one_copy.reset(seed=seed)[0]["glimpse"], expected, atol=1e-6)
    assert sorted(p.name for p in large.folder.glob("integral*")) == [
        "integral-v2-q1-4-16-r2.i16",
        "integral-v2-q1-r1.i16",
    ]
    with pytest.raises(ValueError, match="phase_copies='no' is not allowed"):
        LargeImageDataset(large.folder, phase_copies="no")


@pytest.mark.parametrize(
    "canvas,scales,dtype,modulus,max_side", [(600, 3, torch.int16, 2**16, 20), (4500, 6, torch.int32, 2**32, 100)]
)
def test_tables_modulo_2_16_or_2_32_give_exact_glimpses_where_the_sums_wrap(
    tmp_path, canvas, scales, dtype, modulus, max_side
):
    """A bright canvas whose running sums pass the tables' modulus (2^16 for 16-bit tables: blocks up to 16 pixels;
    2^32 for 32-bit ones: 4,500^2 pixels with 32-pixel blocks), yet every glimpse, at the far corner too, equals the
    in-memory one (exact int64 integral images), and the overview's blocks (30 or 45 pixels: sums of fine blocks
    of at most 16 pixels from 16-bit tables) average the canvas."""
    rng = np.random.default_rng(0)
    image = rng.integers(200, 256, (1, canvas, canvas, 1), dtype=np.uint8)
    large = write_large_canvases(tmp_path / "bright", ArrayDataset(image, [0]), n=1, canvas=canvas)
    assert int(image.astype(np.int64).sum()) > modulus
    where = dict(patch=8, scales=scales, start="random")
    lazy, memory = GlimpseEnv(large, **where), GlimpseEnv(in_memory(large), **where)
    assert lazy.source.prepared.table.dtype == dtype
    for seed in range(2):
        np.testing.assert_allclose(
            lazy.reset(seed=seed)[0]["glimpse"], memory.reset(seed=seed)[0]["glimpse"], atol=1e-6
        )
    glimpses = []
    for data in (large, in_memory(large)):  # the batched reader, at the bottom-right corner
        envs = GlimpseVectorEnv(data, 1, **dict(where, start="center"))
        envs.reset(seed=0)
        obs, *_ = envs.step(torch.tensor([[0.98, 0.98, 1.0]]))
        glimpses.append(obs["glimpse"])
    torch.testing.assert_close(glimpses[0], glimpses[1], atol=1e-6, rtol=0)
    picture, factor = SummedAreaTables(large).overview(0, max_side=max_side)
    assert factor == canvas // max_side and picture.shape == (max_side, max_side, 1)
    blocks = image[0, :, :, 0].reshape(max_side, factor, max_side, factor).mean(axis=(1, 3))
    np.testing.assert_allclose(picture[:, :, 0], blocks, atol=0.5)
    with pytest.raises(ValueError, match="scales=14 with scale_factor=2 is not allowed"):
        GlimpseEnv(large, patch=1, scales=14)


def test_offsets_past_2_31_entries_are_read_with_int64_offsets(large, tmp_path):
    """Tables whose offsets pass 2^31 (a canvas past ~46,000^2 pixels) are looked up with int64 offsets, not int32:
    here the real tables of a small canvas sit 2^31 entries into a sparse file (8 GB on paper, a few pages on
    disk), and the glimpses read through them equal the in-memory ones."""
    table, layout = SummedAreaTables(large).tables((1,), block=4)
    start = 2**31
    path = tmp_path / "far.i16"
    far = np.memmap(path, table.dtype, "w+", shape=(1, 1, start + table.shape[2]))
    far[0, 0, start:] = table[1, 0]  # image 1, channel 0
    far.flush()

    class Shifted:  # the layout of ``table``, moved 2^31 entries into the file
        phases = layout.phases

        def copy(self, q: int, y: np.ndarray) -> np.ndarray:
            return layout.copy(q, y)

        def row_offsets(self, q: int, y: np.ndarray, copy: int) -> np.ndarray:
            return start + layout.row_offsets(q, y, copy)

        def col_offsets(self, q: int, x: np.ndarray) -> np.ndarray:
            return layout.col_offsets(q, x)

        def periods(self, q: int) -> tuple[tuple[int, int], tuple[int, int]]:
            return layout.periods(q)

    sensor = TorchSensor(4, 3)
    height, width, _ = large.shape
    prepared = sensor.wrap(lambda phases, block: (far, Shifted()), height, width)
    assert prepared.offsets.table.dtype == torch.int64
    assert sensor.wrap(SummedAreaTables(large).tables, height, width).offsets.table.dtype == torch.int32

    class Unrepeating(Shifted):
        def periods(self, q: int) -> tuple[tuple[int, int], tuple[int, int]]:
            return (0, 1), (32, 2048)

    with pytest.raises(ValueError, match=r"layout periods \[\[\[0, 1\], \[32, 2048\]\]\] are not allowed"):
        sensor.wrap(lambda phases, block: (far, Unrepeating()), height, width)
    image = torch.from_numpy(np.array(large.images[1:2, :, :, :1]))
    loc = torch.tensor([[-0.9, -0.8], [0.0, 0.1], [0.95, 0.9]], dtype=torch.float64)
    torch.testing.assert_close(
        sensor.glimpse(prepared, loc, torch.zeros(3, dtype=torch.long)),
        sensor.glimpse(sensor.prepare(image), loc, torch.zeros(3, dtype=torch.long)),
        atol=1e-6,
        rtol=0,
    )


@pytest.mark.parametrize("mode", ["continuous", "discrete"])
def test_single_env_equals_the_same_canvases_in_memory(large, mode):
    options = dict(patch=6, scales=3, n_glimpses=4, action_mode=mode, start="random", render_mode="rgb_array")
    lazy, memory = GlimpseEnv(large, **options), GlimpseEnv(in_memory(large), **options)
    lazy.action_space.seed(0)
    for episode in range(6):
        a, info_a = lazy.reset(seed=episode)
        b, info_b = memory.reset(seed=episode)
        assert info_a == info_b
        done = False
        while not done:
            for key in a:
                np.testing.assert_allclose(a[key], b[key], atol=1e-6)
            action = lazy.action_space.sample()
            a, reward_a, done, _, info_a = lazy.step(action)
            b, reward_b, _, _, info_b = memory.step(action)
            assert reward_a == pytest.approx(reward_b) and info_a.keys() == info_b.keys()
            assert info_a.get("pixels_seen") == pytest.approx(info_b.get("pixels_seen"))
    frame = lazy.render()
    assert frame.ndim == 3 and frame.dtype == np.uint8


def test_batched_env_equals_the_same_canvases_in_memory(large, device):
    options = dict(patch=6, scales=3, n_glimpses=3, device=device)  # tables on the host, glimpses on the device
    lazy, memory = GlimpseVectorEnv(large, 8, **options), GlimpseVectorEnv(in_memory(large), 8, **options)
    a, _ = lazy.reset(seed=1)
    b, _ = memory.reset(seed=1)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        torch.testing.assert_close(a["glimpse"], b["glimpse"], atol=1e-6, rtol=0)
        actions = (torch.rand((8, 2 + large.num_classes), generator=generator) * 2 - 1).to(device)
        a, reward_a, _, _, info_a = lazy.step(actions)
        b, reward_b, _, _, info_b = memory.step(actions)
        torch.testing.assert_close(reward_a, reward_b)
    assert lazy.memory_bytes()["dataset"] == large.labels.nbytes
    assert len(lazy.render() or ()) == 0  # no render_mode
    assert GlimpseVectorEnv(large, 2, render_mode="rgb_array", **options).reset(seed=0) is not None


def test_registered_id_builds_its_canvases_once(tmp_path):
    kwargs = dict(data_dir=tmp_path, canvas=256, size=6, n_distractors=1)
    env = gym.make("GlimpseLargeImage-v0", **kwargs)
    check_env(env.unwrapped)
    folders = sorted(p.name for p in tmp_path.iterdir())
    # Phases 1 and 2 (257 // 2 >= 128 columns), 32-bit: 6 scales make blocks of up to 32 pixels.
    assert len(folders) == 1 and (tmp_path / folders[0] / "integral-v2-q1-2-r2.i32").is_file()
    envs = gym.make_vec("GlimpseLargeImage-v0", num_envs=4, **kwargs)
    obs, _ = envs.reset(seed=0)
    assert obs["glimpse"].shape == (4, *env.observation_space["glimpse"].shape)
    assert sorted(p.name for p in tmp_path.iterdir()) == folders  # reused, not rebuilt


def test_trainer_and_its_pictures_on_a_large_world(tmp_path, device):
    """RAM trains on GlimpseLargeImage-v0; glimpse pictures are drawn on overviews, boxes scaled to them."""
    from activevision.agents.trainer import TrainConfig, Trainer, trace
    from activevision.render import glimpse_grid

    config = TrainConfig(
        env="GlimpseLargeImage-v0",
        env_kwargs={"data_dir": str(tmp_path), "canvas": 1100, "size": 8},
        batch=8,
        eval_batch=8,
        device=device,
        hidden=32,
        glimpse_hidden=16,
    )
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.train_step()["loss"] > 0
    seen = trace(trainer.agent, config, trainer.device, split="test", examples=2)
    assert seen["images"][0].shape == (367, 367, 3)  # 1100 pixels / 3, the last block 2 pixels wide
    boxes = seen["boxes_of"](np.zeros(2), 367, 367)
    assert boxes[0].tolist() == [(550 - 6) // 3, (550 - 6) // 3, (550 + 6) // 3, (550 + 6) // 3]
    picture = glimpse_grid(seen["images"], seen["locs"], seen["boxes_of"], seen["predictions"], seen["labels"])
    assert picture.ndim == 3 and picture.shape[0] < 400


def test_large_worlds_name_what_is_wrong(large, tmp_path):
    with pytest.raises(ValueError, match="shift=2 / context_size=None are not allowed over a LargeImageDataset"):
        GlimpseEnv(large, patch=6, shift=2)
    with pytest.raises(ValueError, match="context_size=8 are not allowed"):
        GlimpseVectorEnv(large, 2, patch=6, context_size=8)
    images, labels = large.arrays()  # never read whole: a map of the file
    assert isinstance(images, np.memmap) and labels is large.labels
    with pytest.raises(ValueError, match="exists: large-image folders are written once"):
        write_large_canvases(large.folder, in_memory(large), n=1, canvas=100)
    with pytest.raises(ValueError, match="no meta.json"):
        LargeImageDataset(tmp_path)
    with pytest.raises(ValueError, match=r"canvas=\(8, 8\) is not allowed"):
        write_large_canvases(tmp_path / "small", in_memory(large), n=1, canvas=(8, 8))
    (large.folder / "integral-v2-q1-2-r2.i32").write_bytes(b"12345678")
    with pytest.raises(ValueError, match="delete it to rebuild"):
        SummedAreaTables(LargeImageDataset(large.folder)).tables((1, 2))
    with pytest.raises(ValueError, match=r"phases=\(0, 1\) is not allowed"):
        SummedAreaTables(large).tables((0, 1))
    with pytest.raises(ValueError, match="phases=4 is not allowed"):
        SummedAreaTables(large).tables(4)
    with pytest.raises(ValueError, match=r"block=0 is not allowed: use an integer in \[1, 4104\]"):
        SummedAreaTables(large).tables((1,), block=0)
