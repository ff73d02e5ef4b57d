import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { Graph } from '../../src/engine/graph.ts'
import { add, argMax, matMul } from '../../src/engine/ops/index.ts'
import {
  chooseProvider,
  createGraphSession,
  DeviceState,
  flopsUtilisation,
  hostTensor,
  matMulFlops,
  misplacedNodes,
  missingMallocSettings,
  nodePlacement,
  parsePlacementLog,
  providerStatuses,
  resolveProvider,
  type ThreadHandlers,
  ThreadRunner,
  trainingProcessEnv,
  zerosHost,
} from '../../src/engine/runtime/index.ts'
import { AppError, ProviderUnavailableError } from '../../src/errors.ts'
import type { handlers } from './fixtures/engine-thread.ts'

/** y = x·W + b with W frozen (an initializer stored as external data) and b a graph input. */
function affineGraph() {
  const g = new Graph({ name: 'affine' })
  const x = g.input('x', 'float32', ['batch', 3])
  const b = g.input('b', 'float32', [2])
  const W = g.initializer('W', 'float32', [3, 2], Float32Array.of(1, 2, 3, 4, 5, 6))
  g.output(add(g, matMul(g, x, W), b), 'y')
  g.output(b, 'b_copy')
  return g
}

const expectAppError = async (p: Promise<unknown>, code: string, ...fragments: string[]) => {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`)
    assert.equal(err.code, code)
    for (const f of fragments) assert.ok(err.message.includes(f), `'${err.message}' should mention '${f}'`)
    return true
  })
}

describe('host tensors', () => {
  it('check array type and length against dtype and dims', () => {
    assert.throws(() => hostTensor('float32', [2, 2], new Float32Array(3)), /needs 4 elements, got 3/)
    assert.throws(
      () => hostTensor('float32', [2], new Float64Array(2) as never),
      /needs a Float32Array, got Float64Array/,
    )
    assert.throws(() => hostTensor('int64', [-1], new BigInt64Array(0)), /invalid dims/)
    assert.deepEqual(zerosHost('int64', [2]).data, new BigInt64Array(2))
  })
})

describe('providers', () => {
  it('always has the CPU and resolves auto to a provider that works here', async () => {
    const statuses = await providerStatuses()
    assert.equal(statuses.find((s) => s.provider === 'cpu')?.available, true)
    const auto = await resolveProvider('auto')
    const picked = statuses.find((s) => s.provider === auto)
    assert.ok(picked?.available && !picked.software, `auto picked ${auto}`)
    assert.equal(await resolveProvider('cpu'), 'cpu')
    assert.deepEqual(await chooseProvider('auto'), picked)
  })

  it('names what is missing when an unavailable provider is requested', async () => {
    for (const s of (await providerStatuses()).filter((x) => !x.available)) {
      await assert.rejects(resolveProvider(s.provider), (err: unknown) => {
        assert.ok(err instanceof ProviderUnavailableError)
        assert.match(err.message, new RegExp(`^${s.provider}: `))
        assert.match(err.message, /install|driver|reinstall/)
        return true
      })
    }
    await expectAppError(
      resolveProvider('tpu' as never),
      'provider_unavailable',
      "unknown execution provider 'tpu'",
    )
  })
})

describe('GraphSession', () => {
  it('runs a graph with frozen weights supplied from memory', async () => {
    const session = await createGraphSession(affineGraph().serialize(), {
      provider: 'cpu',
      intraOpThreads: 1,
    })
    const out = await session.run({
      x: hostTensor('float32', [2, 3], Float32Array.of(1, 0, 0, 1, 1, 1)),
      b: hostTensor('float32', [2], Float32Array.of(0.5, -0.5)),
    })
    assert.deepEqual([...out.y.data], [1.5, 1.5, 9.5, 11.5])
    assert.deepEqual(out.y.dims, [2, 2])
    await session.release()
  })

  it('returns only the outputs asked for, identically on repeated runs', async () => {
    const session = await createGraphSession(affineGraph().serialize(), { provider: 'cpu' })
    const feeds = {
      x: hostTensor('float32', [1, 3], Float32Array.of(0.1, 0.2, 0.3)),
      b: hostTensor('float32', [2], Float32Array.of(1, 2)),
    }
    const first = await session.run(feeds, ['y'])
    assert.deepEqual(Object.keys(first), ['y'])
    const second = await session.run(feeds, ['y'])
    assert.deepEqual(second.y.data, first.y.data)
    await expectAppError(session.run(feeds, ['z']), 'validation_failed', "unknown output 'z'")
    await session.release()
  })

  it('ArgMax gives int64 indices of the first of tied maxima, with or without the reduced axis', async () => {
    const g = new Graph({ name: 'argmax' })
    const x = g.input('x', 'float32', ['rows', 4])
    g.output(argMax(g, x, { axis: 1 }), 'i')
    g.output(argMax(g, x, { axis: -1, keepdims: true }), 'k')
    const session = await createGraphSession(g.serialize(), { provider: 'cpu' })
    const out = await session.run({
      x: hostTensor('float32', [2, 4], Float32Array.of(1, 3, 3, 0, -2, -1, -5, -1)),
    })
    assert.equal(out.i.dtype, 'int64')
    assert.deepEqual([...out.i.data], [1n, 1n])
    assert.deepEqual(out.k.dims, [2, 1])
    await session.release()
  })

  it('rejects bad feeds with the input name and expected vs got, and keeps working', async () => {
    const session = await createGraphSession(affineGraph().serialize(), { provider: 'cpu' })
    const b = hostTensor('float32', [2], Float32Array.of(0, 0))
    const x = hostTensor('float32', [1, 3], Float32Array.of(1, 1, 1))
    await expectAppError(
      session.run({ x: hostTensor('float32', [1, 4], new Float32Array(4)), b }),
      'shape_mismatch',
      "'x'",
      '[batch, 3]',
      '[1, 4]',
    )
    await expectAppError(
      session.run({ x: hostTensor('float32', [3], new Float32Array(3)), b }),
      'shape_mismatch',
      "'x'",
      '[3]',
    )
    await expectAppError(
      session.run({ x: hostTensor('float64', [1, 3], new Float64Array(3)), b }),
      'validation_failed',
      "'x' expects float32, got float64",
    )
    await expectAppError(session.run({ x }), 'validation_failed', 'missing inputs b')
    const short = { dtype: 'float32', dims: [1, 3], data: new Float32Array(2) } as const
    await expectAppError(session.run({ x: short, b }), 'validation_failed', "input 'x' float32 [1, 3]")
    await expectAppError(session.run({ x, b, c: b }), 'validation_failed', "'c' is not an input")
    assert.deepEqual([...(await session.run({ x, b })).y.data], [9, 12])
    await session.release()
    await expectAppError(session.run({ x, b }), 'invalid_state', 'released')
  })

  it('checks that a named dim has one size across inputs', async () => {
    const g = new Graph({ name: 'pair' })
    const a = g.input('a', 'float32', ['n'])
    const c = g.input('c', 'float32', ['n'])
    g.output(add(g, a, c), 's')
    const session = await createGraphSession(g.serialize(), { provider: 'cpu' })
    await expectAppError(
      session.run({
        a: hostTensor('float32', [2], new Float32Array(2)),
        c: hostTensor('float32', [3], new Float32Array(3)),
      }),
      'shape_mismatch',
      "dim 'n' is 2 in input 'a' but 3 in input 'c'",
    )
    await session.release()
  })

  it('reports a graph onnxruntime rejects as a GraphError instead of crashing', async () => {
    const bytes = affineGraph().serialize()
    await expectAppError(
      createGraphSession(
        { model: bytes.model.subarray(0, bytes.model.length - 7), externalData: bytes.externalData },
        { provider: 'cpu' },
      ),
      'graph_invalid',
      "session 'graph' could not be created on cpu",
    )
    await expectAppError(
      createGraphSession(bytes, { provider: 'cpu', stateOutputs: { nope: 'b' } }),
      'graph_invalid',
      "state output 'nope'",
    )
  })
})

describe('DeviceState', () => {
  it('feeds state inputs and replaces them with state outputs between runs', async () => {
    const g = new Graph({ name: 'acc' })
    const total = g.input('total', 'float32', [2])
    const inc = g.input('inc', 'float32', [2])
    g.output(add(g, total, inc), 'total.next')
    g.output(inc, 'seen')
    const acc = await createGraphSession(g.serialize(), {
      provider: 'cpu',
      stateOutputs: { 'total.next': 'total' },
    })
    const state = new DeviceState('cpu')
    state.set('total', hostTensor('float32', [2], Float32Array.of(0, 0)))
    for (let i = 1; i <= 3; i++) {
      const out = await acc.runWithState(state, { inc: hostTensor('float32', [2], Float32Array.of(i, -i)) })
      assert.deepEqual(Object.keys(out), ['seen'])
    }
    assert.deepEqual([...(await state.read(['total'])).total.data], [6, -6])
    await state.upload()
    assert.equal(state.location('total'), 'cpu', 'the CPU provider reads host tensors in place')
    await expectAppError(new DeviceState('webgpu').read(['x']), 'not_found', "state tensor 'x'")
    await expectAppError(
      acc.runWithState(new DeviceState('webgpu'), {}),
      'validation_failed',
      'state lives on webgpu',
    )
    await Promise.all([acc.release(), state.release()])
  })
})

describe('node placement', () => {
  it('parses onnxruntime verbose placement lines', () => {
    const log = [
      '2026 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 1',
      '2026 [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   LogSoftmax (n1)',
      '2026 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 2',
      '2026 [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Add (n0)',
      '2026 [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   MemcpyToHost (Memcpy)',
    ].join('\n')
    const placement = parsePlacementLog(log)
    assert.equal(placement.WebGpuExecutionProvider.count, 2)
    assert.deepEqual(misplacedNodes(placement, 'webgpu'), [{ op: 'LogSoftmax', name: 'n1' }])
  })

  it('puts every node of a graph on the CPU provider', async () => {
    const placement = await nodePlacement(affineGraph().serialize(), 'cpu')
    assert.ok(placement.CPUExecutionProvider.count >= 1)
    assert.deepEqual(misplacedNodes(placement, 'cpu'), [])
  })
})

describe('ThreadRunner', () => {
  it('runs sessions on a worker thread, relays events and typed errors, survives a dying thread', async () => {
    const events: unknown[] = []
    const runner = new ThreadRunner<typeof handlers>(
      new URL('./fixtures/engine-thread.ts', import.meta.url),
      {
        onEvent: (e) => events.push(e),
        name: 'test-engine',
      },
    )
    const y = await runner.call('identity', [1, 2, 3])
    assert.deepEqual([...y.data], [1, 2, 3])
    assert.equal(await runner.call('progress', 3), 3)
    assert.deepEqual(events, [{ done: 1 }, { done: 2 }, { done: 3 }])
    await expectAppError(runner.call('badShape', undefined), 'shape_mismatch', 'expects dims [2]')
    const untyped = runner as unknown as ThreadRunner<ThreadHandlers>
    await expectAppError(untyped.call('nope', undefined), 'not_found', "no handler 'nope'")
    await expectAppError(runner.call('exit', 7), 'training_failed', 'test-engine thread exited with code 7')
    await expectAppError(runner.call('identity', [1]), 'training_failed', 'exited')
    await runner.close()
  })
})

describe('training process environment', () => {
  it('adds the malloc settings a training process needs, keeping values already set', () => {
    const env = trainingProcessEnv({ PATH: '/bin', MALLOC_TRIM_THRESHOLD_: '1', UNSET: undefined })
    assert.equal(env.MALLOC_MMAP_THRESHOLD_, '4294967295')
    assert.equal(env.MALLOC_TRIM_THRESHOLD_, '1')
    assert.ok(!('UNSET' in env))
    assert.deepEqual(missingMallocSettings({ MALLOC_TRIM_THRESHOLD_: '1' }), ['MALLOC_MMAP_THRESHOLD_'])
    const child = spawnSync(process.execPath, ['-p', 'process.env.MALLOC_MMAP_THRESHOLD_'], {
      env: trainingProcessEnv({}),
      encoding: 'utf8',
    })
    assert.equal(child.stdout.trim(), '4294967295')
  })

  it('computes FLOPs and utilisation', () => {
    assert.equal(matMulFlops(2, 3, 4, 5), 240)
    assert.equal(flopsUtilisation(1e9, 0.5, 4e9), 0.5)
  })
})

describe('outputs written into caller buffers', () => {
  it("free onnxruntime's copy before the next run: one output's worth above the buffers, not two", () => {
    const probe = new URL('../helpers/output-reclaim-probe.ts', import.meta.url).pathname
    const child = spawnSync(process.execPath, ['--import', 'tsx', probe], {
      env: trainingProcessEnv(process.env),
      encoding: 'utf8',
    })
    assert.equal(child.status, 0, child.stderr)
    const { outputBytes, rise } = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as {
      outputBytes: number
      rise: number
    }
    // each run's own buffer (1x) is needed; the previous run's kept alive as well made it 2x
    assert.ok(rise < 1.5 * outputBytes, `peak rose ${rise} bytes for ${outputBytes}-byte outputs`)
  })
})
