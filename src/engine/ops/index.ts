import { and, equal, greater, greaterOrEqual, less, lessOrEqual, not, or } from './compare.ts'
import {
  abs,
  add,
  clip,
  cos,
  div,
  erf,
  exp,
  gelu,
  log,
  max,
  min,
  mul,
  neg,
  pow,
  reciprocal,
  relu,
  sigmoid,
  sin,
  softplus,
  sqrt,
  sub,
  tanh,
  where,
} from './elementwise.ts'
import { gather, gatherElements, gatherND, scatterElementsAdd, scatterNDAdd } from './indexing.ts'
import { fusedMatMul, gemm, matMul } from './matmul.ts'
import { argMax, reduceMax, reduceMean, reduceProd, reduceSum } from './reduce.ts'
import {
  cast,
  concat,
  expand,
  expandDynamic,
  identity,
  pad,
  range,
  reshape,
  reshapeDynamic,
  rotateHalf,
  shape,
  slice,
  splitOp,
  squeeze,
  stopGradient,
  transpose,
  unsqueeze,
} from './shape.ts'
import { logSoftmax, softmax } from './softmax.ts'

export * from './compare.ts'
export * from './elementwise.ts'
export * from './indexing.ts'
export * from './matmul.ts'
export * from './reduce.ts'
export * from './shape.ts'
export * from './softmax.ts'

/** Every op, by registry key: the one-table overview that the gradient tests iterate. */
export const OPS = {
  Abs: abs,
  Add: add,
  And: and,
  ArgMax: argMax,
  Cast: cast,
  Clip: clip,
  Concat: concat,
  Cos: cos,
  Div: div,
  Equal: equal,
  Erf: erf,
  Exp: exp,
  Expand: expand,
  ExpandDynamic: expandDynamic,
  FusedMatMul: fusedMatMul,
  Gather: gather,
  GatherElements: gatherElements,
  GatherND: gatherND,
  Gelu: gelu,
  Gemm: gemm,
  Greater: greater,
  GreaterOrEqual: greaterOrEqual,
  Identity: identity,
  Less: less,
  LessOrEqual: lessOrEqual,
  Log: log,
  LogSoftmax: logSoftmax,
  MatMul: matMul,
  Max: max,
  Min: min,
  Mul: mul,
  Neg: neg,
  Not: not,
  Or: or,
  Pad: pad,
  Pow: pow,
  Range: range,
  Reciprocal: reciprocal,
  ReduceMax: reduceMax,
  ReduceMean: reduceMean,
  ReduceProd: reduceProd,
  ReduceSum: reduceSum,
  Relu: relu,
  Reshape: reshape,
  ReshapeDynamic: reshapeDynamic,
  RotateHalf: rotateHalf,
  ScatterElements: scatterElementsAdd,
  ScatterND: scatterNDAdd,
  Shape: shape,
  Sigmoid: sigmoid,
  Sin: sin,
  Slice: slice,
  Softmax: softmax,
  Softplus: softplus,
  Split: splitOp,
  Sqrt: sqrt,
  Squeeze: squeeze,
  StopGradient: stopGradient,
  Sub: sub,
  Tanh: tanh,
  Transpose: transpose,
  Unsqueeze: unsqueeze,
  Where: where,
} as const

export type OpName = keyof typeof OPS

/** Ops with a VJP rule: each needs a GRAD_SPECS entry in the gradient tests. */
export type DifferentiableOp = {
  [K in OpName]: (typeof OPS)[K]['differentiable'] extends true ? K : never
}[OpName]
