/**
 * Tests that cannot run here (no browser, no WebGPU driver) skip with their reason, except under
 * CI=true: a CI run that passed without them would claim what it never checked, so there they fail.
 */
export const inCi = Boolean(process.env.CI) && process.env.CI !== 'false' && process.env.CI !== '0'

/** `reason` to skip with, or, in CI, an error naming it (thrown where the tests are declared, so the file fails). */
export function skipUnlessCi(reason: string | undefined): string | undefined {
  if (reason && inCi) throw new Error(`CI=true, so these tests must run, but ${reason}`)
  return reason
}
