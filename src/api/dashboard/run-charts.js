// The run page's chart grid: one chart per metric group, created when its first key arrives. Each
// group has one unit (characters and tokens never share an axis) and a line on how to read it.
import { LineChart } from './chart.js'
import { h } from './dom.js'

/** Each metric key goes to the first group that matches it. */
export const CHART_GROUPS = [
  {
    id: 'loss',
    title: 'Loss',
    yLabel: 'loss',
    note: 'Falling: the policy fits its training pairs better. Flat from the start: nothing is learnt (lr too small?).',
    match: (k) => k === 'loss' || k.startsWith('loss/') || k === 'sso/l_main',
  },
  {
    id: 'accuracy',
    title: 'Reward accuracy',
    yLabel: 'fraction',
    note: 'Share of pairs whose chosen answer gets the higher implicit reward; rising towards 1 is learning, 0.5 is chance.',
    match: (k) => k.startsWith('rewards/') && k.includes('accurac'),
  },
  {
    id: 'rewards',
    title: 'Rewards and margins',
    yLabel: 'implicit reward',
    note: 'A rising margin (chosen − rejected) means the policy separates the pair more; both falling together is common.',
    match: (k) => k.startsWith('rewards/'),
  },
  {
    id: 'lr',
    title: 'Learning rate',
    yLabel: 'lr',
    note: 'The schedule, not a result: it follows warm-up and decay as configured.',
    match: (k) => k === 'learning_rate' || k === 'lr',
  },
  {
    id: 'w',
    title: 'SSO W',
    yLabel: 'W',
    note: 'Per-pair weight in (0.5, 1): near 0.5 when the pair is on-policy (likely under the plain query), near 1 when not; falling is good.',
    match: (k) => k.startsWith('sso/w'),
  },
  {
    id: 'g',
    title: 'SSO G',
    yLabel: 'G',
    note: 'The self-steering loss; falling: y+ wins under the good principle and y0 beats y+ under the bad one.',
    match: (k) => k === 'sso/g' || k.startsWith('sso/g_'),
  },
  {
    id: 'gap',
    title: 'SSO gap',
    yLabel: 'log-prob gap',
    note: 'A steady positive gap between chosen and rejected keeps the signal useful; collapsing to 0 is not.',
    match: (k) => k.startsWith('sso/gap'),
  },
  {
    id: 'on-policy',
    title: 'On-policyness',
    yLabel: 'log-prob',
    note: 'Log-prob of y+ and y- under the plain query; higher: the pairs are closer to what the policy writes.',
    match: (k) => k.startsWith('sso/on_policy'),
  },
  {
    id: 'lengths-chars',
    title: 'Answer lengths (characters)',
    yLabel: 'characters',
    note: 'Mean answer length per iteration; a steady climb of y+ alone can mean the policy learns to ramble.',
    match: (k) => k.includes('length') && k.endsWith('_chars'),
  },
  {
    id: 'lengths-tokens',
    title: 'Lengths (tokens)',
    yLabel: 'tokens',
    note: 'Mean length in tokens; a value pinned at max_new_tokens means answers are cut off.',
    match: (k) => k.includes('length'),
  },
  {
    id: 'logps',
    title: 'Log-probs',
    yLabel: 'log-prob',
    note: 'Rising for chosen and falling for rejected answers is the intended direction.',
    match: (k) => k.startsWith('logps/'),
  },
  {
    id: 'signal',
    title: 'Signal accuracy (checkers)',
    yLabel: 'fraction',
    note: 'Share of pairs whose y+ a checker prefers to y- (accuracy) and whose y- it prefers (reversed: pairs that teach the wrong way); accuracy above 0.5 means the principles give a useful signal.',
    match: (k) => k.startsWith('signal_accuracy') || k === 'signal_reversed',
  },
  {
    id: 'grad-norm',
    title: 'Gradient norm',
    yLabel: 'norm',
    note: 'Spikes are unstable updates; a slow decline is usual.',
    match: (k) => k === 'grad_norm',
  },
  {
    id: 'throughput',
    title: 'Throughput',
    yLabel: 'per second',
    note: 'Speed, not quality: higher is faster.',
    match: (k) => k.endsWith('per_second'),
  },
  {
    id: 'iteration',
    title: 'Iteration data',
    yLabel: 'count',
    note: 'Bookkeeping per iteration (records made, checked, rejected).',
    match: (k) => k.startsWith('iteration/') || k === 'signal_checked',
  },
  {
    id: 'other',
    title: 'Other metrics',
    yLabel: 'value',
    note: '',
    match: () => true,
  },
]

export function chartBoard(container) {
  let smoothing = false
  const toggle = h('input', {
    type: 'checkbox',
    'data-testid': 'smooth-all',
    onchange: () => {
      smoothing = toggle.checked
      for (const c of charts.values()) c.setSmoothing(smoothing)
    },
  })
  const grid = h('div', { class: 'chart-grid' })
  container.append(h('label', { class: 'chart-options' }, toggle, ' Smooth all curves'), grid)
  const charts = new Map()
  const chartFor = (key) => {
    const group = CHART_GROUPS.find((g) => g.match(key))
    if (!charts.has(group.id)) {
      const box = h('div', { 'data-testid': `chart-${group.id}` })
      const order = CHART_GROUPS.indexOf(group)
      const after = [...grid.children].find((el) => Number(el.dataset.order) > order)
      box.dataset.order = String(order)
      grid.insertBefore(box, after ?? null)
      const { title, yLabel, note } = group
      charts.set(group.id, new LineChart(box, { title, yLabel, note, smoothing }))
    }
    return charts.get(group.id)
  }
  chartFor('loss')
  return {
    setSeries: (key, points) => chartFor(key).setSeries(key, points),
    addPoint: (key, step, value) => chartFor(key).addPoint(key, step, value),
    destroy: () => {
      for (const c of charts.values()) c.destroy()
    },
  }
}
