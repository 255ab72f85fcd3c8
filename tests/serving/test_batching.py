"""Requests that arrive together are answered with one call, each with its own result or error."""

import asyncio

from recfunnel.serving.batching import Batcher


def run_together(batcher: Batcher, jobs: list) -> list:
    async def main():
        return await asyncio.gather(*(batcher.submit(j) for j in jobs), return_exceptions=True)
    return asyncio.run(main())


def test_jobs_submitted_together_share_one_call_and_keep_their_order():
    calls = []
    batcher = Batcher(lambda jobs: calls.append(list(jobs)) or [j * 10 for j in jobs], max_size=3)
    assert run_together(batcher, [1, 2, 3, 4, 5]) == [10, 20, 30, 40, 50]
    assert calls == [[1, 2, 3], [4, 5]]


def test_one_failing_job_fails_alone():
    def answer(jobs):
        if any(j < 0 for j in jobs):
            raise ValueError(f"negative in {jobs}")
        return [j + 1 for j in jobs]
    results = run_together(Batcher(answer), [1, -1, 2])
    assert results[0] == 2 and results[2] == 3
    assert isinstance(results[1], ValueError) and str(results[1]) == "negative in [-1]"


def test_a_lone_job_is_answered_at_once():
    calls = []
    batcher = Batcher(lambda jobs: calls.append(len(jobs)) or jobs)

    async def one_after_another():
        return [await batcher.submit(j) for j in range(3)]
    assert asyncio.run(one_after_another()) == [0, 1, 2]
    assert calls == [1, 1, 1]


def test_a_cancelled_caller_is_skipped():
    calls = []
    batcher = Batcher(lambda jobs: calls.append(list(jobs)) or jobs)

    async def main():
        gone = asyncio.ensure_future(batcher.submit("gone"))
        await asyncio.sleep(0)  # submitted, not yet answered
        gone.cancel()
        return await batcher.submit("kept")
    assert asyncio.run(main()) == "kept"
    assert calls == [["kept"]]
