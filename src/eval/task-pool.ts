/**
 * Runs `work` over `items` with at most `limit` calls in flight, and returns the results in the items'
 * order (not the order they finish in). The first failure rejects once every started call has settled,
 * so no call is left running unobserved; calls not yet started then never start.
 */
export async function mapPooled<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`pool size must be a whole number ≥ 1, got ${limit}`)
  const results = new Array<R>(items.length)
  let next = 0
  let failed = false
  let failure: unknown
  const lane = async () => {
    while (!failed && next < items.length) {
      const i = next++
      try {
        results[i] = await work(items[i], i)
      } catch (err) {
        if (!failed) failure = err
        failed = true
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  if (failed) throw failure
  return results
}
