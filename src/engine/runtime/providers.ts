import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import ort from 'onnxruntime-node'
import { ProviderUnavailableError } from '../../errors.ts'
import { hostTensor } from './host-tensor.ts'
import { toDeviceValue } from './ort-values.ts'
import { identityModel } from './tiny-models.ts'

export type Provider = 'cpu' | 'webgpu' | 'cuda'
export type ProviderRequest = Provider | 'auto'

export const PROVIDERS: readonly Provider[] = ['cpu', 'webgpu', 'cuda']

export interface ProviderStatus {
  provider: Provider
  available: boolean
  /** Why it is unavailable, or what backs it (e.g. "Vulkan driver: lvp (software)"). */
  detail: string
  /** True when the provider runs on the CPU in disguise (WebGPU over Mesa's lavapipe). */
  software: boolean
}

/** Order in which `auto` prefers providers that work; software WebGPU is never picked by `auto`. */
const AUTO_ORDER: readonly Provider[] = ['cuda', 'webgpu', 'cpu']

const require = createRequire(import.meta.url)

function bindingDir(): string {
  const main = require.resolve('onnxruntime-node')
  return path.resolve(path.dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch)
}

/** Whether the dynamic linker finds a library by soname (the same search Dawn's dlopen does). */
function sharedLibraryLoadable(soname: string): boolean {
  try {
    process.dlopen({ exports: {} }, soname)
    return true
  } catch (err) {
    // A plain C library loads but is not a Node addon: that error means the library was found.
    return !/cannot open shared object file|No such file/i.test(String((err as Error).message))
  }
}

/** Vulkan ICD libraries mapped into this process (after a WebGPU adapter was requested). */
function loadedVulkanDrivers(): string[] {
  let maps: string
  try {
    maps = readFileSync('/proc/self/maps', 'utf8')
  } catch {
    return []
  }
  const found = new Set<string>()
  for (const m of maps.matchAll(
    /\/(libvulkan_\w+|libGLX_nvidia|libnvidia-vulkan\w*|libvk_swiftshader)\.so/g,
  )) {
    found.add(m[1].replace(/^libvulkan_/, ''))
  }
  return [...found].sort()
}

const SOFTWARE_DRIVERS = new Set(['lvp', 'libvk_swiftshader'])

async function probeSession(provider: Provider): Promise<void> {
  const session = await ort.InferenceSession.create(identityModel('float32', 1), {
    executionProviders: [provider],
    logSeverityLevel: 3,
  })
  try {
    await session.run({ x: toDeviceValue(hostTensor('float32', [2], Float32Array.of(1, 2))) })
  } finally {
    await session.release()
  }
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err)
    .split('\n')[0]
    .slice(0, 300)
}

async function probeWebGpu(): Promise<ProviderStatus> {
  const base = { provider: 'webgpu' as const, software: false }
  if (process.platform === 'linux' && !sharedLibraryLoadable('libvulkan.so.1')) {
    return {
      ...base,
      available: false,
      detail: 'webgpu: no Vulkan loader found (install libvulkan1 and a Vulkan driver)',
    }
  }
  try {
    await probeSession('webgpu')
  } catch (err) {
    return {
      ...base,
      available: false,
      detail:
        `webgpu: no usable Vulkan driver found (${firstLine(err)}); install a GPU's Vulkan driver, ` +
        `or Mesa's lavapipe >= 23 for a software device`,
    }
  }
  const drivers = loadedVulkanDrivers()
  const software = drivers.length > 0 && drivers.every((d) => SOFTWARE_DRIVERS.has(d))
  const described = drivers.length > 0 ? drivers.join(', ') : 'unknown'
  return {
    ...base,
    available: true,
    software,
    detail: `Vulkan driver: ${described}${software ? ' (software)' : ''}`,
  }
}

async function probeCuda(): Promise<ProviderStatus> {
  const base = { provider: 'cuda' as const, software: false }
  if (!existsSync(path.join(bindingDir(), 'libonnxruntime_providers_cuda.so'))) {
    return {
      ...base,
      available: false,
      detail:
        'cuda: onnxruntime-node was installed without the CUDA provider; reinstall it with ' +
        'ONNXRUNTIME_NODE_INSTALL=cuda12 and its install script allowed (needs CUDA 12 and cuDNN 9)',
    }
  }
  try {
    await probeSession('cuda')
    return { ...base, available: true, detail: 'CUDA provider libraries loaded' }
  } catch (err) {
    return {
      ...base,
      available: false,
      detail: `cuda: the CUDA provider failed to start (${firstLine(err)}); it needs CUDA 12 and cuDNN 9 on the library path`,
    }
  }
}

let statuses: Promise<ProviderStatus[]> | undefined

/** Probes every provider once per process (a real session on each) and caches the answer. */
export function providerStatuses(): Promise<ProviderStatus[]> {
  statuses ??= (async () => [
    { provider: 'cpu', available: true, software: false, detail: 'onnxruntime CPU provider' },
    await probeWebGpu(),
    await probeCuda(),
  ])()
  return statuses
}

export async function availableProviders(): Promise<Provider[]> {
  return (await providerStatuses()).filter((s) => s.available).map((s) => s.provider)
}

/**
 * Turns a request into a provider that works here, with what backs it (for the run's log: "auto
 * picked webgpu: Vulkan driver: ..."). `auto` picks CUDA, then a hardware WebGPU device, then the
 * CPU; an explicit request for a missing provider throws ProviderUnavailableError.
 */
export async function chooseProvider(requested: ProviderRequest): Promise<ProviderStatus> {
  const all = await providerStatuses()
  const status = (p: string) => all.find((x) => x.provider === p)
  if (requested === 'auto') {
    const best = AUTO_ORDER.map(status).find((s) => s?.available && !s.software)
    return best ?? status('cpu')!
  }
  const s = status(requested)
  if (s === undefined) {
    throw new ProviderUnavailableError(
      `unknown execution provider '${requested}' (use one of ${PROVIDERS.join(', ')}, auto)`,
    )
  }
  if (!s.available) throw new ProviderUnavailableError(s.detail, { provider: requested })
  return s
}

/** chooseProvider's provider alone. */
export async function resolveProvider(requested: ProviderRequest): Promise<Provider> {
  return (await chooseProvider(requested)).provider
}
