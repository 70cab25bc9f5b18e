"""CPU-heavy work, as a plain function: the n-th prime, by a sieve of Eratosthenes.

Pure and module-level, so that a process pool can run it (api/primes.py): its arguments and
result cross to another process by pickling. Its cost grows with n (about 0.3 s at a million on
one core here); on the event loop it would stall every other request meanwhile.
"""

import math

MAX_N = 1_000_000


def nth_prime(n: int) -> int:
    """The n-th prime (the 1st is 2), for 1 <= n <= MAX_N."""
    if not 1 <= n <= MAX_N:
        raise ValueError(f"n must be between 1 and {MAX_N}")
    # The n-th prime is below n (ln n + ln ln n) for n >= 6 (Rosser's theorem).
    limit = 15 if n < 6 else int(n * (math.log(n) + math.log(math.log(n)))) + 1
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for number in range(2, math.isqrt(limit) + 1):
        if sieve[number]:
            multiples = range(number * number, limit + 1, number)
            sieve[number * number :: number] = bytes(len(multiples))
    count = 0
    for number, is_prime in enumerate(sieve):
        count += is_prime
        if count == n:
            return number
    raise AssertionError("the bound above holds for every n")  # pragma: no cover
