/**
 * The alignment benchmark's search grid. Every variant searches the learning rates; a variant may also
 * search one setting of its own (`--knob sso=theta_g:0.1,0.5`), for example SSO's θG, which only SSO
 * has. A comparison is fair only when every variant gets as many search points, so grids of different
 * sizes are refused: a knob for SSO asks for one of the same size for PBAA (its β, say).
 */
import { parseHyperparameters } from '../sso/hyperparameters.ts'

/** One point of a variant's search: a learning rate and the knob's value, if it has one. */
export interface SearchPoint {
  lr: number
  knob: Record<string, KnobValue>
}

/** A number (θG, β) or a switch (the log-prob filter: `filter:false,true`). */
export type KnobValue = number | boolean

export interface Knob {
  key: string
  values: KnobValue[]
}

const parseKnobValue = (text: string): KnobValue =>
  text === 'true' ? true : text === 'false' ? false : Number(text)

/** Parses `variant=key:v1,v2` specs; each names a known variant, a known hyperparameter and valid values. */
export function parseKnobs(specs: readonly string[], variants: readonly string[]): Record<string, Knob> {
  const knobs: Record<string, Knob> = {}
  for (const spec of specs) {
    const match = /^([\w-]+)=([\w-]+):(.+)$/.exec(spec)
    if (!match) throw new Error(`--knob '${spec}': expected VARIANT=KEY:V1,V2 (e.g. sso=theta_g:0.1,0.5)`)
    const [, variant, key, list] = match
    if (!variants.includes(variant))
      throw new Error(`--knob '${spec}': '${variant}' is not a variant of this run (${variants.join(', ')})`)
    if (knobs[variant]) throw new Error(`--knob '${spec}': ${variant} already searches ${knobs[variant].key}`)
    if (key === 'lr') throw new Error(`--knob '${spec}': the learning rate is searched by --lrs`)
    const values = list.split(',').map(parseKnobValue)
    if (values.some((v) => typeof v === 'number' && !Number.isFinite(v)))
      throw new Error(`--knob '${spec}': values must be numbers or true/false`)
    if (new Set(values).size !== values.length) throw new Error(`--knob '${spec}': values repeat`)
    // the trainer's own validation, so a bad key or value stops the benchmark before its SFT start
    for (const value of values) parseHyperparameters({ [key]: value })
    knobs[variant] = { key, values }
  }
  return knobs
}

/** Each variant's search points: the learning rates, crossed with its knob's values when it has one. */
export function searchGrids(
  lrs: readonly number[],
  variants: readonly string[],
  knobs: Record<string, Knob>,
): Record<string, SearchPoint[]> {
  const grids = Object.fromEntries(
    variants.map((variant) => {
      const knob = knobs[variant]
      const values = knob ? knob.values.map((v) => ({ [knob.key]: v })) : [{}]
      return [variant, lrs.flatMap((lr) => values.map((k) => ({ lr, knob: k })))]
    }),
  )
  const sizes = new Set(Object.values(grids).map((g) => g.length))
  if (sizes.size > 1)
    throw new Error(
      `every variant must get a search of the same size, got ${variants
        .map((v) => `${v} ${grids[v].length}`)
        .join(', ')} points: give each variant a --knob with as many values`,
    )
  return grids
}

/** `lr3e-4` or `lr3e-4-theta_g0.5`: a folder name per search point. */
export function pointLabel(point: SearchPoint): string {
  return [`lr${point.lr}`, ...Object.entries(point.knob).map(([k, v]) => `${k}${v}`)].join('-')
}
