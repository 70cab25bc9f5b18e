"""The CPU-heavy example: the n-th prime in a process pool, the event loop free meanwhile."""

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.api.primes import CpuPool
from {{ cookiecutter.package_name }}.domain.primes import MAX_N, nth_prime

URL = "/api/v1/primes"


@pytest.mark.parametrize(
    ("n", "prime"), [(1, 2), (2, 3), (5, 11), (6, 13), (10, 29), (1000, 7919), (10_000, 104_729)]
)
def test_the_nth_prime(n: int, prime: int) -> None:
    assert nth_prime(n) == prime


@pytest.mark.parametrize("n", [0, MAX_N + 1])
def test_an_n_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="n must be between 1 and"):
        nth_prime(n)


def test_the_route_answers_from_the_process_pool_then_logs_in_the_background(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="{{ cookiecutter.package_name }}.api.primes"):
        assert client.get(f"{URL}/1000").json() == {"n": 1000, "prime": 7919}
    [line] = [r for r in caplog.records if r.getMessage() == "prime computed"]
    assert getattr(line, "n") == 1000 and getattr(line, "seconds") >= 0
    for bad in ["0", str(MAX_N + 1), "x"]:
        assert client.get(f"{URL}/{bad}").status_code == 422


async def loop_turns_while(job: "asyncio.Future[int]") -> int:
    """How many times the event loop ran other work before `job` finished."""
    turns = 0
    while not job.done():
        await asyncio.sleep(0.005)
        turns += 1
    return turns


def test_the_event_loop_keeps_running_while_the_pool_computes() -> None:
    async def in_the_pool() -> int:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as executor:
            job = asyncio.ensure_future(CpuPool(lambda: executor, 1, 0).run(nth_prime, MAX_N))
            return await loop_turns_while(job)

    async def on_the_loop() -> int:  # the baseline: the same work called directly
        async def compute() -> int:
            return nth_prime(MAX_N)

        return await loop_turns_while(asyncio.ensure_future(compute()))

    assert asyncio.run(on_the_loop()) <= 1  # blocked: at most the turn that started it
    assert asyncio.run(in_the_pool()) > 10


def test_the_pool_opens_with_the_first_job_and_only_once() -> None:
    """No process (nor multiprocessing's resource tracker) before a prime is asked for; the
    service's shutdown closes the pool it opened."""
    opened: list[ThreadPoolExecutor] = []

    def open_executor() -> ThreadPoolExecutor:
        opened.append(ThreadPoolExecutor(1))
        return opened[-1]

    async def two_jobs() -> list[int]:
        pool = CpuPool(open_executor, workers=1, max_queued=0)
        assert opened == []
        answers = [await pool.run(nth_prime, 10), await pool.run(nth_prime, 1000)]
        pool.shutdown()
        return answers

    assert asyncio.run(two_jobs()) == [29, 7919]
    assert len(opened) == 1
    with pytest.raises(RuntimeError, match="after shutdown"):  # shut down with the pool
        opened[0].submit(int)


def test_a_full_line_is_a_503_with_retry_after() -> None:
    async def three_at_once() -> list[object]:
        release = asyncio.Event()
        with ThreadPoolExecutor(1) as executor:
            pool = CpuPool(lambda: executor, workers=1, max_queued=1)  # two places
            loop = asyncio.get_running_loop()

            def wait_for_release() -> None:
                asyncio.run_coroutine_threadsafe(release.wait(), loop).result()

            jobs = [asyncio.ensure_future(pool.run(wait_for_release)) for _ in range(3)]
            await asyncio.sleep(0.05)
            release.set()
            return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(three_at_once())
    refused = [r for r in results if isinstance(r, HTTPException)]
    assert len(refused) == 1 and refused[0].status_code == 503
    assert refused[0].headers == {"Retry-After": "1"}
    assert results.count(None) == 2
