import { ValidationError } from '../../errors.ts'
import type { Graph, Tensor } from '../graph.ts'
import type { ParamDType, TrainableParam } from './optimizer.ts'

/** Checks that params and grads pair up and share one float dtype; returns it. */
export function checkParams(params: readonly TrainableParam[], grads: readonly Tensor[]): ParamDType {
  if (params.length === 0) throw new ValidationError('an optimizer needs at least one trainable parameter')
  if (params.length !== grads.length) {
    throw new ValidationError(`${params.length} params but ${grads.length} gradients`)
  }
  const dtype = params[0].tensor.dtype
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new ValidationError(`trainable params must be float32 or float64, '${params[0].name}' is ${dtype}`)
  }
  params.forEach((p, i) => {
    if (p.tensor.dtype !== dtype) {
      throw new ValidationError(
        `trainable params must share one dtype: '${p.name}' is ${p.tensor.dtype}, expected ${dtype}`,
      )
    }
    if (grads[i].dtype !== dtype) {
      throw new ValidationError(`gradient of '${p.name}' is ${grads[i].dtype}, expected ${dtype}`)
    }
  })
  return dtype
}

/** Declares scalar hyperparameter inputs named `optim.<key>`. */
export function scalarInputs<K extends string>(
  g: Graph,
  dtype: ParamDType,
  keys: readonly K[],
): Record<K, Tensor> {
  return Object.fromEntries(keys.map((k) => [k, g.input(`optim.${k}`, dtype, [])])) as Record<K, Tensor>
}
