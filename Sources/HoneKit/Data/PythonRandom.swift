import Foundation

/// CPython's `random.Random`, for the parts data preparation uses: `seed(int)`, `shuffle`, `sample` and
/// `randbelow`. With the same seed it draws exactly the numbers Python draws, so Hone's subsets equal those of the
/// reference scripts (ScalingAlignment's split.py / sample.py seed 42) on the same file.
///
/// The generator is the Mersenne Twister MT19937 seeded by `init_by_array` with the 32-bit words of the seed
/// (least significant first, as CPython splits an int); `randbelow(n)` draws `n.bitLength` bits from one 32-bit
/// output and retries while the result is ≥ n (CPython's `_randbelow_with_getrandbits`).
public struct PythonRandom: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 625

    public init(seed: UInt64) {
        let low = UInt32(truncatingIfNeeded: seed), high = UInt32(truncatingIfNeeded: seed >> 32)
        seedByArray(high == 0 ? [low] : [low, high])
    }

    // MARK: MT19937 (Matsumoto & Nishimura's reference mt19937ar.c, which CPython uses)

    private mutating func seedLinear(_ seed: UInt32) {
        state[0] = seed
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
        index = 624
    }

    private mutating func seedByArray(_ key: [UInt32]) {
        seedLinear(19_650_218)
        var i = 1, j = 0
        for _ in 0..<max(624, key.count) {
            state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) &* 1_664_525)) &+ key[j] &+ UInt32(j)
            i += 1
            j += 1
            if i >= 624 { state[0] = state[623]; i = 1 }
            if j >= key.count { j = 0 }
        }
        for _ in 0..<623 {
            state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) &* 1_566_083_941)) &- UInt32(i)
            i += 1
            if i >= 624 { state[0] = state[623]; i = 1 }
        }
        state[0] = 0x8000_0000
    }

    public mutating func nextUInt32() -> UInt32 {
        if index >= 624 {
            for k in 0..<624 {
                let y = (state[k] & 0x8000_0000) | (state[(k + 1) % 624] & 0x7FFF_FFFF)
                state[k] = state[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1) == 0 ? 0 : 0x9908_B0DF)
            }
            index = 0
        }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    // MARK: What random.py builds on it

    /// `getrandbits(k)` for 1 ≤ k ≤ 32.
    mutating func randomBits(_ count: Int) -> UInt32 {
        nextUInt32() >> UInt32(32 - count)
    }

    /// A uniform integer in 0..<n (n ≥ 1, below 2³²), as `random._randbelow`.
    public mutating func randomBelow(_ n: Int) -> Int {
        precondition(n >= 1 && n <= Int(UInt32.max), "randomBelow needs 1 ≤ n < 2^32")
        let bits = Int.bitWidth - n.leadingZeroBitCount
        var value = Int(randomBits(bits))
        while value >= n { value = Int(randomBits(bits)) }
        return value
    }

    /// `random.shuffle(x)`: Fisher–Yates from the back.
    public mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, through: 1, by: -1) {
            items.swapAt(i, randomBelow(i + 1))
        }
    }

    /// `random.sample(population, k)`: a pool of the population for small populations, rejection of repeats
    /// for large ones, with CPython's threshold between the two.
    public mutating func sample<T>(_ population: [T], count k: Int) -> [T] {
        let n = population.count
        precondition(k >= 0 && k <= n, "sample larger than the population")
        var setSize = 21
        if k > 5 {
            // 4 ** ceil(log(k * 3, 4)), computed as CPython does, in floating point.
            setSize += Int(pow(4.0, (log(Double(k * 3)) / log(4.0)).rounded(.up)))
        }
        var result: [T] = []
        result.reserveCapacity(k)
        if n <= setSize {
            var pool = population
            for i in 0..<k {
                let j = randomBelow(n - i)
                result.append(pool[j])
                pool[j] = pool[n - i - 1]
            }
        } else {
            var selected = Set<Int>()
            for _ in 0..<k {
                var j = randomBelow(n)
                while selected.contains(j) { j = randomBelow(n) }
                selected.insert(j)
                result.append(population[j])
            }
        }
        return result
    }
}
