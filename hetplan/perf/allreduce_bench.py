"""All-reduce microbenchmark for `hetplan calibrate run` on a machine with several GPUs:
times torch.distributed all-reduces of 1-64 MiB messages over 2, 4, 8 local GPUs (NCCL) and
fits the collective efficiency per TP size against the ring model of
`collectives.ring_allreduce_s` over the GPU's intra-node link.

On a CPU (`backend="gloo"`) it runs the same code path between processes: only a smoke
test, since the result says nothing about the GPU's link. Needs PyTorch.
"""

from __future__ import annotations

import os
import socket
import time

import numpy as np

from hetplan.perf.links import Link
from hetplan.perf.collectives import ring_allreduce_s

MESSAGE_BYTES = tuple(2**p for p in range(20, 27))       # 1 MiB .. 64 MiB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, backend: str, sizes: tuple[int, ...], reps: int,
            port: int, queue) -> None:
    import torch
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        gpu = backend == "nccl"
        if gpu:
            torch.cuda.set_device(rank)
        dtype = torch.bfloat16 if gpu else torch.float32
        elem = torch.tensor([], dtype=dtype).element_size()
        for nbytes in sizes:
            x = torch.ones(nbytes // elem, dtype=dtype, device=f"cuda:{rank}" if gpu else "cpu")
            for _ in range(2):
                dist.all_reduce(x)
            dist.barrier()
            if gpu:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(reps):
                dist.all_reduce(x)
            if gpu:
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t0) / reps
            if rank == 0:
                queue.put((nbytes, dt))
    finally:
        dist.destroy_process_group()


def time_allreduce(world: int, backend: str = "nccl", sizes: tuple[int, ...] = MESSAGE_BYTES,
                   reps: int = 20) -> list[tuple[int, float]]:
    """[(message bytes, seconds per all-reduce)] measured on rank 0 of `world` processes."""
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, world, backend, sizes, reps, port, queue))
             for r in range(world)]
    for p in procs:
        p.start()
    out = [queue.get(timeout=600) for _ in sizes]
    for p in procs:
        p.join(timeout=60)
    if any(p.exitcode != 0 for p in procs):
        raise RuntimeError(f"all-reduce worker failed (exit codes {[p.exitcode for p in procs]})")
    return sorted(out)


def fit_collective_efficiency(samples: dict[int, list[tuple[int, float]]],
                              link: Link) -> dict[int, float]:
    """Efficiency per world size: median over messages of ring time at 100% / measured."""
    out = {}
    for n, rows in sorted(samples.items()):
        ratios = [ring_allreduce_s(b, n, link, 1.0) / t for b, t in rows if t > 0]
        if ratios:
            out[n] = round(float(min(1.0, np.median(ratios))), 3)
    return out
