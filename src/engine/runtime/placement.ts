import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { AppError } from '../../errors.ts'
import type { SerializedGraph } from '../graph.ts'
import type { Provider } from './providers.ts'

export interface PlacedNode {
  op: string
  name: string
}

/**
 * Nodes per execution provider ('WebGpuExecutionProvider', 'CPUExecutionProvider', ...) after graph
 * optimisation. onnxruntime lists the nodes by name only when a graph is split across providers.
 */
export type NodePlacement = Record<string, { count: number; nodes: PlacedNode[] }>

const EP_NAMES: Record<Provider, string> = {
  cpu: 'CPUExecutionProvider',
  webgpu: 'WebGpuExecutionProvider',
  cuda: 'CUDAExecutionProvider',
}

/** Nodes that move data between host and device: present whenever inputs or outputs live on the host. */
const COPY_OPS = new Set(['MemcpyToHost', 'MemcpyFromHost'])

/**
 * Parses onnxruntime's verbose VerifyEachNodeIsAssignedToAnEp log ("Node(s) placed on [EP]. Number of
 * nodes: N" followed by one "  OpType (name)" line per node).
 */
export function parsePlacementLog(log: string): NodePlacement {
  const placement: NodePlacement = {}
  let current: PlacedNode[] | undefined
  for (const line of log.split('\n')) {
    if (!line.includes('VerifyEachNodeIsAssignedToAnEp')) continue
    const header = line.match(/placed on \[(\w+)\]\. Number of nodes: (\d+)/)
    if (header) {
      placement[header[1]] = { count: Number(header[2]), nodes: [] }
      current = placement[header[1]].nodes
      continue
    }
    const node = line.match(/\]\s{2,}(\S+) \((.*)\)\s*$/)
    if (node && current) current.push({ op: node[1], name: node[2] })
  }
  return placement
}

/** Compute nodes that did not land on the requested provider (host/device copies excluded). */
export function misplacedNodes(placement: NodePlacement, provider: Provider): PlacedNode[] {
  const want = EP_NAMES[provider]
  return Object.entries(placement)
    .filter(([ep]) => ep !== want)
    .flatMap(([ep, p]) =>
      p.nodes.length > 0
        ? p.nodes.filter((n) => !COPY_OPS.has(n.op))
        : [{ op: `(${p.count} nodes)`, name: ep }],
    )
}

const CHILD = `
const ort = require(process.argv[1]);
const fs = require('node:fs');
const [, , dir, provider] = process.argv;
const extra = JSON.parse(fs.readFileSync(dir + '/external.json', 'utf8'))
  .map((p, i) => ({ path: p, data: fs.readFileSync(dir + '/ext' + i) }));
ort.InferenceSession.create(fs.readFileSync(dir + '/model.onnx'), {
  executionProviders: [provider], logSeverityLevel: 0, logVerbosityLevel: 0, externalData: extra,
}).then((s) => s.release(), (e) => { console.error('SESSION_FAILED ' + e.message); process.exitCode = 3; });
`

/**
 * Where onnxruntime places each node of a graph on a provider. The placement is only logged at
 * verbose level by native code, so a child process creates the session and its log is parsed.
 */
export async function nodePlacement(graph: SerializedGraph, provider: Provider): Promise<NodePlacement> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'placement-'))
  try {
    await writeFile(path.join(dir, 'model.onnx'), graph.model)
    await writeFile(path.join(dir, 'external.json'), JSON.stringify(graph.externalData.map((e) => e.path)))
    await Promise.all(graph.externalData.map((e, i) => writeFile(path.join(dir, `ext${i}`), e.data)))
    const ortMain = createRequire(import.meta.url).resolve('onnxruntime-node')
    const log = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', CHILD, ortMain, dir, provider], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      const chunks: Buffer[] = []
      child.stdout.on('data', (c: Buffer) => chunks.push(c))
      child.stderr.on('data', (c: Buffer) => chunks.push(c))
      child.on('error', reject)
      child.on('close', (code) => {
        const text = Buffer.concat(chunks).toString('utf8')
        if (code === 0) resolve(text)
        else {
          const why = text.match(/SESSION_FAILED (.*)/)?.[1] ?? `exit code ${code}`
          reject(new AppError('internal', `placement check on ${provider} failed: ${why}`))
        }
      })
    })
    return parsePlacementLog(log)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
